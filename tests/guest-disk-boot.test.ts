/**
 * The tiny guest's whole-disk form (guest/build.sh → disk.qcow2) boots like a
 * distribution cloud image: `-M pc`, SeaBIOS → syslinux (MBR, FAT partition) → the
 * compressed Debian kernel + initramfs, virtio-pci disk and NIC. An instance disk is a
 * qcow2 overlay on it (as the compute driver makes them); the config drive is the second
 * virtio disk (/dev/vdb). Asserts the ready marker, hostname, SSH and user_data, and that
 * QMP system_powerdown (the ACPI power button) powers the guest off within a few seconds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../src/cli/nats.ts';
import { ensureGuestImages, type GuestImages } from '../src/cli/guest-images.ts';
import { powerButton } from './helpers/guest.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const IMAGES = process.env.GUREUM_TEST_GUEST_DIR ?? join(ROOT, '.cache', 'guest');
let images: GuestImages;
let work: string;
let qemu: ChildProcess | undefined;
/** The guest's serial-console marker, a whole line: hostname and address. */
const READY = /GUREUM-GUEST-READY (\S+) (\S+)\r?\n/;

before(async () => {
  images = await ensureGuestImages(IMAGES);
  work = mkdtempSync(join(tmpdir(), 'guest-disk-'));
});
after(() => {
  qemu?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});


test('boots through SeaBIOS and syslinux to SSH with the config drive; powers off on system_powerdown', { timeout: 240_000 }, async () => {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]);
  const pub = readFileSync(join(work, 'key.pub'), 'utf8').trim();
  const drive = join(work, 'drive');
  mkdirSync(join(drive, 'openstack', 'latest'), { recursive: true });
  writeFileSync(join(drive, 'openstack', 'latest', 'meta_data.json'), JSON.stringify({
    uuid: '5b3c1e0f-7d4a-4f7e-8a63-2c9d0e1f4b22', hostname: 'disk1.novalocal', name: 'disk1', public_keys: { me: `${pub}\n` },
  }));
  writeFileSync(join(drive, 'openstack', 'latest', 'user_data'), '#!/bin/sh\necho user-data-ran > /tmp/proof\n');
  await run('genisoimage', ['-quiet', '-o', join(work, 'config.iso'), '-V', 'config-2', '-r', '-J', drive]);
  const disk = join(work, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', images.disk, '-F', 'qcow2', disk]);

  const port = await freePort();
  const qmpPath = join(work, 'qmp.sock');
  const args = [
    '-M', 'pc', '-m', '256', '-smp', '1', '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio',
    '-qmp', `unix:${qmpPath},server=on,wait=off`,
    '-drive', `file=${disk},if=virtio,format=qcow2`,
    '-drive', `file=${join(work, 'config.iso')},if=virtio,format=raw,readonly=on`,
    '-device', 'virtio-rng-pci',
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', 'virtio-net-pci,netdev=n0,romfile=',
  ];
  const started = Date.now();
  qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let console_ = '';
  qemu.stdout!.on('data', (d: Buffer) => { console_ += d.toString(); });
  qemu.stderr!.on('data', (d: Buffer) => { console_ += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ready marker in 180 s:\n${console_}`)), 180_000);
    const check = () => { if (READY.test(console_)) { clearTimeout(t); resolve(); } };
    qemu!.stdout!.on('data', check);
    qemu!.once('exit', (c) => { clearTimeout(t); reject(new Error(`qemu exited ${c}:\n${console_}`)); });
  });
  const marker = READY.exec(console_)!;
  console.log(`guest ready after ${((Date.now() - started) / 1000).toFixed(2)} s: ${marker[0].trim()}`);
  assert.equal(marker[1], 'disk1', 'hostname from the config drive');
  assert.match(marker[2]!, /^10\.0\.2\.\d+(\/24)?$/, 'address from DHCP');

  const ssh = (cmd: string) => run('ssh', ['-i', join(work, 'key'), '-p', String(port), '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', cmd]);
  const { stdout } = await ssh('for i in $(seq 1 100); do [ -e /tmp/proof ] && break; sleep 0.1; done; hostname; cat /tmp/proof; cat /proc/cmdline');
  const [hostname, proof, cmdline] = stdout.trim().split('\n');
  assert.deepEqual([hostname, proof], ['disk1', 'user-data-ran']);
  assert.match(cmdline!, /BOOT_IMAGE=\/vmlinuz .*console=ttyS0/, 'booted by syslinux from the disk');

  const down = Date.now();
  const exited = once(qemu, 'exit');
  await powerButton(qmpPath);
  const timer = setTimeout(() => qemu!.kill('SIGKILL'), 5000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  assert.equal(signal, null, `no power-off within 5 s of system_powerdown:\n${console_.slice(-2000)}`);
  assert.equal(code, 0);
  console.log(`powered off ${((Date.now() - down) / 1000).toFixed(2)} s after system_powerdown`);
});
