import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceSpec, VolumeDiskSpec } from '../driver.ts';
import {
  assignSlots, freeSlot, HOTPLUG_ROOT_PORTS, ioThrottle, pskFileContent, qemuArgv, shQuote, tapDeviceArgs, USER_NETWORK, volumeBlockdev, volumeIds,
} from './cmdline.ts';

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

const ports = (n: number) => Array.from({ length: n }, (_, i) => `pcie-root-port,id=hp${i},chassis=${i + 1},slot=${i}`);

test('kernel boot: microvm, virtio-mmio, PVH kernel with the fast command line; tap NICs on PCIe hotplug ports', () => {
  const argv = qemuArgv(base, { accel: 'tcg' }, { dir: '/inst', tscKhz: 2596124 });
  assert.deepEqual(values(argv, '-machine'), ['microvm,pit=on,pic=on,rtc=on,acpi=on,pcie=on']);
  assert.deepEqual(values(argv, '-accel'), ['tcg']);
  assert.deepEqual(values(argv, '-cpu'), ['max']);
  assert.deepEqual(values(argv, '-kernel'), ['/img/vmlinux']);
  assert.deepEqual(values(argv, '-initrd'), ['/img/initrd']);
  assert.deepEqual(values(argv, '-append'), ['root=/dev/vda console=ttyS0 quiet cryptomgr.notests pcie_ports=native tsc_early_khz=2596124 panic=1']);
  assert.deepEqual(values(argv, '-device'), [
    'virtio-rng-device,rng=rng0',
    'virtio-blk-device,drive=disk0', 'virtio-blk-device,drive=disk1',
    ...ports(HOTPLUG_ROOT_PORTS),
    'virtio-net-device,netdev=net0,mac=52:54:00:00:00:01', 'virtio-net-pci,id=nic-tap1234,netdev=hn-tap1234,mac=52:54:00:00:00:02,bus=hp0,romfile=',
  ]);
  assert.deepEqual(values(argv, '-drive'), [
    'file=/inst/disk,if=none,id=disk0,format=qcow2,cache=writeback,discard=unmap',
    'file=/inst/disk.config,if=none,id=disk1,format=raw,cache=writeback,readonly=on',
  ]);
  assert.deepEqual(values(argv, '-netdev'), [
    'user,id=net0,net=169.254.169.0/24,host=169.254.169.1,dns=169.254.169.3,dhcpstart=169.254.169.15,hostfwd=tcp:127.0.0.1:2222-:22',
    'tap,id=hn-tap1234,ifname=tap1234,script=no,downscript=no',
  ]);
  for (const flag of ['-nodefaults', '-no-user-config', '-no-shutdown', '-no-reboot']) assert.ok(argv.includes(flag), flag);
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
  assert.ok(argv.includes('-no-shutdown') && !argv.includes('-no-reboot'), 'pc resets in place');
  assert.deepEqual(values(argv, '-accel'), ['kvm']);
  assert.deepEqual(values(argv, '-cpu'), ['host']);
  assert.deepEqual(values(argv, '-smp'), ['2']);
  assert.equal(values(argv, '-kernel').length + values(argv, '-append').length, 0);
  assert.ok(values(argv, '-device').includes('virtio-blk-pci,drive=disk0,bootindex=1'));
  assert.ok(values(argv, '-device').includes('virtio-blk-pci,drive=disk1'));
  assert.ok(values(argv, '-device').includes('virtio-rng-pci,rng=rng0'));
  assert.ok(values(argv, '-device').includes('virtio-net-pci,id=nic-tap1234,netdev=hn-tap1234,mac=52:54:00:00:00:02'), 'tap NIC on the root bus');
  assert.ok(!values(argv, '-device').some((d) => d.startsWith('pcie-root-port')), 'pc hot-plugs on pci.0');
});

test('hotplug slots: kept ones stay, others take the lowest free; more ports when the slots need them', () => {
  const tap = (name: string, slot?: number) => ({ kind: 'tap' as const, mac: '52:54:00:00:00:09', ifname: name, ...(slot !== undefined ? { slot } : {}) });
  const spec = { ...base, nics: [base.nics[0]!, tap('tapa'), tap('tapb', 0), tap('tapc', 3), tap('tapd')] };
  assert.deepEqual([...assignSlots(spec)].sort((a, b) => a[0] - b[0]), [[1, 1], [2, 0], [3, 3], [4, 2]]);
  assert.equal(freeSlot(spec), 4);
  const devices = values(qemuArgv(spec, { accel: 'tcg' }, { dir: '/i' }), '-device');
  assert.ok(devices.includes('virtio-net-pci,id=nic-tapd,netdev=hn-tapd,mac=52:54:00:00:00:09,bus=hp2,romfile='));
  const wide = values(qemuArgv({ ...base, nics: [tap('tapz', 11)] }, { accel: 'tcg' }, { dir: '/i' }), '-device');
  assert.deepEqual(wide.filter((d) => d.startsWith('pcie-root-port')), ports(12));
  assert.throws(() => assignSlots({ nics: [tap('a', 1), tap('b', 1)] }), /twice/);
  assert.deepEqual(tapDeviceArgs('tapx', '52:54:00:00:00:0a', 'hp5'), { driver: 'virtio-net-pci', id: 'nic-tapx', netdev: 'hn-tapx', mac: '52:54:00:00:00:0a', bus: 'hp5', romfile: '' });
});

test('resume from a state file; commas and quotes in paths are escaped', () => {
  const argv = qemuArgv({ ...base, disks: [{ path: "/a,b/it's", format: 'raw' }] }, { accel: 'tcg' }, { dir: '/x,y', incomingFile: "/x,y/st'ate" });
  assert.deepEqual(values(argv, '-incoming'), [`exec:cat '/x,y/st'\\''ate'`]);
  assert.ok(argv.includes('-S'));
  assert.equal(values(argv, '-drive')[0], "file=/a,,b/it's,if=none,id=disk0,format=raw,cache=writeback,discard=unmap");
  assert.equal(values(argv, '-qmp')[0], 'unix:/x,,y/qmp.sock,server=on,wait=off');
  assert.equal(shQuote("a'b"), `'a'\\''b'`);
});

test('user NIC with a metadata socket: slirp network holding 169.254.169.254, guestfwd through socat, SSH forward kept', () => {
  const nic = { kind: 'user' as const, mac: '52:54:00:00:00:01', sshHostPort: 2222, metadataSocket: '/var/lib/gureum/instances/8d0e/metadata.sock' };
  const argv = qemuArgv({ ...base, nics: [nic] }, { accel: 'tcg' }, { dir: '/inst' });
  assert.deepEqual(values(argv, '-netdev'), [
    'user,id=net0,net=169.254.169.0/24,host=169.254.169.1,dns=169.254.169.3,dhcpstart=169.254.169.15,hostfwd=tcp:127.0.0.1:2222-:22,'
    + 'guestfwd=tcp:169.254.169.254:80-cmd:socat -T 60 - UNIX-CONNECT:/var/lib/gureum/instances/8d0e/metadata.sock',
  ]);
  assert.equal(USER_NETWORK.guest, '169.254.169.15');
  // without SSH forward: the same network, no hostfwd
  const [only] = values(qemuArgv({ ...base, nics: [{ kind: 'user', mac: nic.mac, metadataSocket: '/i/metadata.sock' }] }, { accel: 'tcg' }, { dir: '/i' }), '-netdev');
  assert.equal(only, 'user,id=net0,net=169.254.169.0/24,host=169.254.169.1,dns=169.254.169.3,dhcpstart=169.254.169.15,'
    + 'guestfwd=tcp:169.254.169.254:80-cmd:socat -T 60 - UNIX-CONNECT:/i/metadata.sock');
  // paths QEMU, libslirp's argv split or socat's address syntax would mangle, and over-long ones, are refused
  for (const bad of ['/a,b/metadata.sock', '/a b/m.sock', '/a:b/m.sock', "/a'b/m.sock", 'relative/m.sock', `/${'x'.repeat(120)}`]) {
    assert.throws(() => qemuArgv({ ...base, nics: [{ ...nic, metadataSocket: bad }] }, { accel: 'tcg' }, { dir: '/i' }), /metadata socket path/, bad);
  }
});

test('invalid values are refused', () => {
  assert.throws(() => qemuArgv({ ...base, nics: [{ kind: 'user', mac: '52:54:00:00:00:01', sshHostPort: 70000 }] }, { accel: 'tcg' }, { dir: '/i' }), /SSH host port/);
  assert.throws(() => qemuArgv({ ...base, vcpus: 0 }, { accel: 'tcg' }, { dir: '/i' }), /vcpus/);
  assert.throws(() => qemuArgv({ ...base, nics: [{ kind: 'user', mac: 'zz' }] }, { accel: 'tcg' }, { dir: '/i' }), /MAC/);
  assert.throws(() => qemuArgv({ ...base, nics: [{ kind: 'tap', mac: '52:54:00:00:00:01', ifname: 'a,b' }] }, { accel: 'tcg' }, { dir: '/i' }), /tap/);
});

const VOL_A = 'a1b2c3d4-0000-4000-8000-00000000000a';
const VOL_B = 'b1b2c3d4-0000-4000-8000-00000000000b';
const VOL_R = 'c1b2c3d4-0000-4000-8000-00000000000c';
const fileVol = (volumeId: string, extra: Partial<VolumeDiskSpec> = {}): VolumeDiskSpec =>
  ({ volumeId, connection: { type: 'file', path: `/pool/${volumeId}.qcow2`, format: 'qcow2' }, ...extra });
const nbdVol: VolumeDiskSpec = {
  volumeId: VOL_B, readonly: true,
  connection: { type: 'nbd', host: '10.0.0.2', port: 10809, exportName: `volume-${VOL_B}`, tls: { identity: 'att-1', psk: '00ff'.repeat(8) } },
};
const parsed = (argv: string[], opt: string) => values(argv, opt).filter((v) => v.startsWith('{')).map((v) => JSON.parse(v) as Record<string, unknown>);

test('volumes on microvm: -blockdev chains (file, NBD over TLS-PSK), virtio-blk-pci with the volume id as serial on hotplug ports shared with NICs', () => {
  const spec: InstanceSpec = { ...base, volumes: [fileVol(VOL_A, { slot: 0 }), nbdVol] };
  const argv = qemuArgv(spec, { accel: 'tcg' }, { dir: '/inst' });
  assert.deepEqual(parsed(argv, '-object'), [{ 'qom-type': 'tls-creds-psk', id: 'vt-b1b2c3d4000040008000', endpoint: 'client', dir: '/inst', username: 'att-1' }]);
  assert.deepEqual(parsed(argv, '-blockdev'), [
    { driver: 'qcow2', 'node-name': 'vf-a1b2c3d4000040008000', discard: 'unmap',
      file: { driver: 'file', filename: `/pool/${VOL_A}.qcow2`, 'node-name': 'vp-a1b2c3d4000040008000', discard: 'unmap' } },
    { driver: 'nbd', 'node-name': 'vf-b1b2c3d4000040008000', 'read-only': true, server: { type: 'inet', host: '10.0.0.2', port: '10809' },
      export: `volume-${VOL_B}`, 'tls-creds': 'vt-b1b2c3d4000040008000', 'reconnect-delay': 15 },
  ]);
  const devices = values(argv, '-device');
  // The volume holding slot 0 keeps it; the tap NIC (no slot) takes the lowest free one, the NBD volume the next.
  assert.ok(devices.includes('virtio-net-pci,id=nic-tap1234,netdev=hn-tap1234,mac=52:54:00:00:00:02,bus=hp1,romfile='));
  assert.deepEqual(devices.filter((d) => d.startsWith('virtio-blk-pci')), [
    'virtio-blk-pci,id=vd-a1b2c3d4000040008000,drive=vf-a1b2c3d4000040008000,serial=a1b2c3d4-0000-4000-8,bus=hp0',
    'virtio-blk-pci,id=vd-b1b2c3d4000040008000,drive=vf-b1b2c3d4000040008000,serial=b1b2c3d4-0000-4000-8,bus=hp2',
  ]);
  // Block nodes are defined before the devices that use them, the TLS object before its node.
  assert.ok(argv.indexOf('-object', argv.indexOf('rng-random,id=rng0,filename=/dev/urandom') + 1) < argv.findIndex((a) => a.includes('"driver":"nbd"')));
  assert.ok(argv.findIndex((a) => a.includes('"driver":"nbd"')) < argv.findIndex((a) => a.includes('id=vd-b1b2')));
  assert.equal(pskFileContent(spec.volumes!), `att-1:${'00ff'.repeat(8)}\n`);
  assert.equal(freeSlot(spec), 3);
});

test('boot from volume: the root volume is the first disk in place of the image disk (microvm: virtio-mmio, root=/dev/vda; pc: bootindex 1)', () => {
  const spec: InstanceSpec = { ...base, disks: [{ path: '/inst/disk.config', format: 'raw', readonly: true }], nics: [], volumes: [fileVol(VOL_R, { root: true }), fileVol(VOL_A)] };
  const micro = qemuArgv(spec, { accel: 'tcg' }, { dir: '/inst' });
  const devs = values(micro, '-device');
  const rootAt = devs.indexOf('virtio-blk-device,id=vd-c1b2c3d4000040008000,drive=vf-c1b2c3d4000040008000,serial=c1b2c3d4-0000-4000-8');
  assert.ok(rootAt >= 0);
  assert.ok(rootAt < devs.indexOf('virtio-blk-device,drive=disk0'), 'before the image disks');
  assert.ok(devs.includes('virtio-blk-pci,id=vd-a1b2c3d4000040008000,drive=vf-a1b2c3d4000040008000,serial=a1b2c3d4-0000-4000-8,bus=hp0'), 'the root volume holds no hotplug slot');
  assert.match(values(micro, '-append')[0]!, /^root=\/dev\/vda /);
  const onlyVolume = qemuArgv({ ...spec, disks: [] }, { accel: 'tcg' }, { dir: '/inst' });
  assert.match(values(onlyVolume, '-append')[0]!, /^root=\/dev\/vda /);

  const pc = values(qemuArgv({ ...spec, boot: { kind: 'disk' } }, { accel: 'tcg' }, { dir: '/inst' }), '-device');
  assert.equal(pc.find((d) => d.includes('virtio-blk')), 'virtio-blk-pci,id=vd-c1b2c3d4000040008000,drive=vf-c1b2c3d4000040008000,serial=c1b2c3d4-0000-4000-8,bootindex=1');
  assert.ok(pc.includes('virtio-blk-pci,drive=disk0'), 'the config drive is not the boot disk');
  assert.ok(pc.includes('virtio-blk-pci,id=vd-a1b2c3d4000040008000,drive=vf-a1b2c3d4000040008000,serial=a1b2c3d4-0000-4000-8'), 'other volumes on pci.0');
  assert.throws(() => qemuArgv({ ...spec, volumes: [fileVol(VOL_R, { root: true }), fileVol(VOL_A, { root: true })] }, { accel: 'tcg' }, { dir: '/i' }), /more than one root volume/);
});

test('volume QoS becomes QEMU throttling limits; a readonly file volume opens read-only without discard; bad volumes are refused', () => {
  assert.equal(ioThrottle(undefined), undefined);
  assert.equal(ioThrottle({ totalIopsSec: 0 }), undefined);
  assert.deepEqual(ioThrottle({ totalIopsSec: 100, readBytesSec: 1_000_000 }), { bps: 0, bps_rd: 1_000_000, bps_wr: 0, iops: 100, iops_rd: 0, iops_wr: 0 });
  assert.throws(() => ioThrottle({ totalIopsSec: 100, readIopsSec: 50 }), /total_iops_sec cannot be combined/);
  assert.throws(() => ioThrottle({ writeBytesSec: -1 }), /writeBytesSec/);
  assert.deepEqual(volumeBlockdev(fileVol(VOL_A, { readonly: true })), {
    driver: 'qcow2', 'node-name': 'vf-a1b2c3d4000040008000', 'read-only': true,
    file: { driver: 'file', filename: `/pool/${VOL_A}.qcow2`, 'node-name': 'vp-a1b2c3d4000040008000', 'read-only': true },
  });
  // cache 'none' (the pool's filesystem takes O_DIRECT): direct I/O with native AIO, inherited by the backing chain
  const direct = { direct: true, 'no-flush': false };
  assert.deepEqual(volumeBlockdev(fileVol(VOL_A, { connection: { type: 'file', path: `/pool/${VOL_A}.qcow2`, format: 'qcow2', cache: 'none' } })), {
    driver: 'qcow2', 'node-name': 'vf-a1b2c3d4000040008000', discard: 'unmap', cache: direct,
    file: { driver: 'file', filename: `/pool/${VOL_A}.qcow2`, 'node-name': 'vp-a1b2c3d4000040008000', discard: 'unmap', cache: direct, aio: 'native' },
  });
  assert.deepEqual(volumeIds(VOL_A), {
    node: 'vf-a1b2c3d4000040008000', protocol: 'vp-a1b2c3d4000040008000', device: 'vd-a1b2c3d4000040008000', tls: 'vt-a1b2c3d4000040008000',
    overlayPrefix: 'vs-a1b2c3d4000040008000-', serial: 'a1b2c3d4-0000-4000-8',
  });
  assert.throws(() => volumeIds('../../etc'), /invalid volume id/);
  assert.throws(() => volumeBlockdev(fileVol(VOL_A, { connection: { type: 'file', path: 'rel.qcow2', format: 'qcow2' } })), /absolute/);
  const tls = (psk: string, identity = 'x'): VolumeDiskSpec => ({ ...nbdVol, connection: { type: 'nbd', host: 'h', port: 1, exportName: 'e', tls: { identity, psk } } });
  assert.throws(() => volumeBlockdev(tls('not-hex-at-all-xx')), /must be hex/);
  assert.throws(() => volumeBlockdev(tls('00'.repeat(16), 'a:b')), /identity/);
  assert.throws(() => volumeBlockdev({ ...nbdVol, connection: { type: 'nbd', host: 'h', port: 0, exportName: 'e' } }), /NBD port/);
  assert.throws(() => qemuArgv({ ...base, volumes: [{ ...nbdVol, connection: { type: 'nbd', host: 'a,b', port: 1, exportName: 'e' } }] }, { accel: 'tcg' }, { dir: '/i' }), /NBD host/);
  // Node names stay within QEMU's 31 characters.
  for (const n of Object.values(volumeIds(VOL_A))) assert.ok(n.length <= 31 - 7, n);
});
