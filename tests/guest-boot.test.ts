/**
 * The tiny guest (guest/build.sh) boots on QEMU's microvm through its PVH entry, takes
 * a DHCP lease, reads a config drive labelled config-2 (hostname, SSH key, user_data),
 * and lets root in over SSH with that key. TCG here; the same command line uses KVM
 * where it works.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../src/cli/nats.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const IMAGES = join(ROOT, '.cache', 'guest');
let work: string;
let qemu: ChildProcess | undefined;
/** The guest's serial-console marker, a whole line: hostname and address. */
const READY = /GUREUM-GUEST-READY (\S+) (\S+)\r?\n/;

before(async () => {
  await run(join(ROOT, 'guest', 'build.sh'), [IMAGES], { maxBuffer: 16 * 1024 * 1024 });
  work = mkdtempSync(join(tmpdir(), 'guest-'));
});
after(() => { qemu?.kill('SIGKILL'); });

function hostTscKhz(): number {
  const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) * 1000);
}

test('boots to SSH with the config drive applied', { timeout: 180_000 }, async () => {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]);
  const pub = readFileSync(join(work, 'key.pub'), 'utf8').trim();
  const drive = join(work, 'drive');
  mkdirSync(join(drive, 'openstack', 'latest'), { recursive: true });
  writeFileSync(join(drive, 'openstack', 'latest', 'meta_data.json'), JSON.stringify({
    uuid: '8d0e6a47-2f1c-4c3e-9b0e-1f6d7f7c2a11', hostname: 'vm1.novalocal', name: 'vm1', public_keys: { me: `${pub}\n` },
  }));
  writeFileSync(join(drive, 'openstack', 'latest', 'user_data'), '#!/bin/sh\necho user-data-ran > /tmp/proof\n');
  await run('genisoimage', ['-quiet', '-o', join(work, 'config.iso'), '-V', 'config-2', '-r', '-J', drive]);

  const port = await freePort();
  const args = [
    '-M', 'microvm,pit=on,pic=on,rtc=on', '-cpu', 'max', '-m', '256', '-smp', '1', '-nodefaults', '-no-user-config', '-nographic',
    '-serial', 'stdio', '-kernel', join(IMAGES, 'vmlinux'), '-initrd', join(IMAGES, 'initramfs.cpio'),
    '-append', `console=ttyS0 quiet cryptomgr.notests tsc_early_khz=${hostTscKhz()}`,
    '-device', 'virtio-rng-device',
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', 'virtio-net-device,netdev=n0',
    '-drive', `file=${join(work, 'config.iso')},if=none,id=cd,format=raw,readonly=on`, '-device', 'virtio-blk-device,drive=cd',
  ];
  const started = Date.now();
  qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let console_ = '';
  qemu.stdout!.on('data', (d: Buffer) => { console_ += d.toString(); });
  qemu.stderr!.on('data', (d: Buffer) => { console_ += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ready marker in 120 s:\n${console_}`)), 120_000);
    const check = () => { if (READY.test(console_)) { clearTimeout(t); resolve(); } };
    qemu!.stdout!.on('data', check);
    qemu!.once('exit', (c) => { clearTimeout(t); reject(new Error(`qemu exited ${c}:\n${console_}`)); });
  });
  const marker = READY.exec(console_)!;
  console.log(`guest ready after ${((Date.now() - started) / 1000).toFixed(2)} s: ${marker[0]}`);
  assert.equal(marker[1], 'vm1', 'hostname from the config drive');
  assert.match(marker[2]!, /^10\.0\.2\.\d+(\/24)?$/, 'address from DHCP');

  const ssh = (cmd: string) => run('ssh', ['-i', join(work, 'key'), '-p', String(port), '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', 'root@127.0.0.1', cmd]);
  const { stdout } = await ssh('hostname; cat /tmp/proof');
  assert.deepEqual(stdout.trim().split('\n'), ['vm1', 'user-data-ran']);
});
