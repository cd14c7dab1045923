import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceSpec } from '../driver.ts';
import { qemuArgv, shQuote } from './cmdline.ts';

const base: InstanceSpec = {
  uuid: '8d0e6a47-2f1c-4c3e-9b0e-1f6d7f7c2a11', name: 'instance-0000002a', vcpus: 1, memoryMb: 256,
  boot: { kind: 'kernel', kernel: '/img/vmlinux', ramdisk: '/img/initrd', cmdline: 'panic=1' },
  disks: [
    { path: '/inst/disk', format: 'qcow2' },
    { path: '/inst/disk.config', format: 'raw', readonly: true },
  ],
  nics: [
    { kind: 'user', mac: '52:54:00:00:00:01', sshHostPort: 2222 },
    { kind: 'tap', mac: '52:54:00:00:00:02', ifname: 'tap1234' },
  ],
};

/** The value after each occurrence of an option. */
function values(argv: string[], opt: string): string[] {
  return argv.flatMap((a, i) => (a === opt ? [argv[i + 1]!] : []));
}

test('kernel boot: microvm, virtio-mmio, PVH kernel with the fast command line', () => {
  const argv = qemuArgv(base, { accel: 'tcg' }, { dir: '/inst', tscKhz: 2596124 });
  assert.deepEqual(values(argv, '-machine'), ['microvm,pit=on,pic=on,rtc=on,acpi=on']);
  assert.deepEqual(values(argv, '-accel'), ['tcg']);
  assert.deepEqual(values(argv, '-cpu'), ['max']);
  assert.deepEqual(values(argv, '-kernel'), ['/img/vmlinux']);
  assert.deepEqual(values(argv, '-initrd'), ['/img/initrd']);
  assert.deepEqual(values(argv, '-append'), ['root=/dev/vda console=ttyS0 quiet cryptomgr.notests tsc_early_khz=2596124 panic=1']);
  assert.deepEqual(values(argv, '-device'), [
    'virtio-rng-device,rng=rng0',
    'virtio-blk-device,drive=disk0', 'virtio-blk-device,drive=disk1',
    'virtio-net-device,netdev=net0,mac=52:54:00:00:00:01', 'virtio-net-device,netdev=net1,mac=52:54:00:00:00:02',
  ]);
  assert.deepEqual(values(argv, '-drive'), [
    'file=/inst/disk,if=none,id=disk0,format=qcow2,cache=writeback,discard=unmap',
    'file=/inst/disk.config,if=none,id=disk1,format=raw,cache=writeback,readonly=on',
  ]);
  assert.deepEqual(values(argv, '-netdev'), [
    'user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22',
    'tap,id=net1,ifname=tap1234,script=no,downscript=no',
  ]);
  for (const flag of ['-nodefaults', '-no-user-config', '-no-shutdown']) assert.ok(argv.includes(flag), flag);
  assert.deepEqual(values(argv, '-qmp'), ['unix:/inst/qmp.sock,server=on,wait=off', 'unix:/inst/qmp-debug.sock,server=on,wait=off']);
  assert.deepEqual(values(argv, '-pidfile'), ['/inst/qemu.pid']);
  assert.deepEqual(values(argv, '-chardev'), ['file,id=serial0,path=/inst/console.log,append=on']);
  assert.deepEqual(values(argv, '-uuid'), [base.uuid]);
  assert.deepEqual(values(argv, '-name'), ['guest=instance-0000002a,debug-threads=on']);
  assert.ok(!argv.includes('-S') && !argv.includes('-incoming'));
});

test('disk boot: pc + SeaBIOS, virtio-pci, root disk first in boot order; KVM uses -cpu host, no tsc hint', () => {
  const argv = qemuArgv({ ...base, boot: { kind: 'disk' }, vcpus: 2 }, { accel: 'kvm' }, { dir: '/inst', tscKhz: 2596124 });
  assert.deepEqual(values(argv, '-machine'), ['pc']);
  assert.deepEqual(values(argv, '-accel'), ['kvm']);
  assert.deepEqual(values(argv, '-cpu'), ['host']);
  assert.deepEqual(values(argv, '-smp'), ['2']);
  assert.equal(values(argv, '-kernel').length + values(argv, '-append').length, 0);
  assert.ok(values(argv, '-device').includes('virtio-blk-pci,drive=disk0,bootindex=1'));
  assert.ok(values(argv, '-device').includes('virtio-blk-pci,drive=disk1'));
  assert.ok(values(argv, '-device').includes('virtio-rng-pci,rng=rng0'));
});

test('resume from a state file; commas and quotes in paths are escaped', () => {
  const argv = qemuArgv({ ...base, disks: [{ path: "/a,b/it's", format: 'raw' }] }, { accel: 'tcg' }, { dir: '/x,y', incomingFile: "/x,y/st'ate" });
  assert.deepEqual(values(argv, '-incoming'), [`exec:cat '/x,y/st'\\''ate'`]);
  assert.ok(argv.includes('-S'));
  assert.equal(values(argv, '-drive')[0], "file=/a,,b/it's,if=none,id=disk0,format=raw,cache=writeback,discard=unmap");
  assert.equal(values(argv, '-qmp')[0], 'unix:/x,,y/qmp.sock,server=on,wait=off');
  assert.equal(shQuote("a'b"), `'a'\\''b'`);
});

test('invalid values are refused', () => {
  assert.throws(() => qemuArgv({ ...base, vcpus: 0 }, { accel: 'tcg' }, { dir: '/i' }), /vcpus/);
  assert.throws(() => qemuArgv({ ...base, nics: [{ kind: 'user', mac: 'zz' }] }, { accel: 'tcg' }, { dir: '/i' }), /MAC/);
  assert.throws(() => qemuArgv({ ...base, nics: [{ kind: 'tap', mac: '52:54:00:00:00:01', ifname: 'a,b' }] }, { accel: 'tcg' }, { dir: '/i' }), /tap/);
});
