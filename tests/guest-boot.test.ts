/**
 * The tiny guest's fast form (guest/build.sh → vmlinux + initramfs.cpio) boots on QEMU's
 * microvm through its PVH entry, takes a DHCP lease, reads a config drive labelled
 * config-2 (hostname, SSH key, user_data) — or, without one, the metadata service at
 * 169.254.169.254 — lets root in over SSH with that key, reboots from inside, and powers
 * off on the ACPI power button (QMP system_powerdown). TCG here; the same command line
 * uses KVM where it works. (The whole-disk form: tests/guest-disk-boot.test.ts.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
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
let pub: string;
const qemus: ChildProcess[] = [];
/** The guest's serial-console marker, a whole line: hostname and address. */
const READY = /GUREUM-GUEST-READY (\S+) (\S+)\r?\n/;
const READY_ALL = new RegExp(READY.source, 'g');

before(async () => {
  images = await ensureGuestImages(IMAGES);
  work = mkdtempSync(join(tmpdir(), 'guest-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]);
  pub = readFileSync(join(work, 'key.pub'), 'utf8').trim();
});
after(() => {
  for (const q of qemus) q.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function hostTscKhz(): number {
  const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) * 1000);
}

/** OpenStack metadata as Nova serves it: on the config drive and from the metadata service. */
function metadata(hostname: string) {
  return {
    'meta_data.json': JSON.stringify({
      uuid: '8d0e6a47-2f1c-4c3e-9b0e-1f6d7f7c2a11', hostname: `${hostname}.novalocal`, name: hostname, public_keys: { me: `${pub}\n` },
    }),
    user_data: '#!/bin/sh\necho user-data-ran > /tmp/proof\n',
  };
}

interface Guest { qemu: ChildProcess; console: () => string; qmpPath: string; sshPort: number }

/** Starts QEMU (serial on stdio, QMP on a socket) and waits for the nth ready marker. */
async function boot(args: string[], sshPort: number): Promise<Guest & { seconds: number }> {
  const qmpPath = join(work, `qmp-${sshPort}.sock`);
  const started = Date.now();
  const qemu = spawn('qemu-system-x86_64', [...args, '-qmp', `unix:${qmpPath},server=on,wait=off`], { stdio: ['ignore', 'pipe', 'pipe'] });
  qemus.push(qemu);
  let out = '';
  qemu.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  qemu.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const guest = { qemu, console: () => out, qmpPath, sshPort };
  await waitReady(guest, 1);
  return { ...guest, seconds: (Date.now() - started) / 1000 };
}

function waitReady(g: Guest, n: number, ms = 120_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const markers = () => [...g.console().matchAll(READY_ALL)];
    const done = (err?: Error) => {
      clearTimeout(t); clearInterval(poll); g.qemu.off('exit', onExit);
      if (err) reject(err); else resolve(markers()[n - 1] as RegExpExecArray);
    };
    const onExit = (c: number | null) => done(new Error(`qemu exited ${c}:\n${g.console()}`));
    const t = setTimeout(() => done(new Error(`no ready marker #${n} in ${ms / 1000} s:\n${g.console()}`)), ms);
    const poll = setInterval(() => { if (markers().length >= n) done(); }, 50);
    g.qemu.once('exit', onExit);
  });
}

function ssh(g: Guest, cmd: string) {
  return run('ssh', ['-i', join(work, 'key'), '-p', String(g.sshPort), '-o', 'StrictHostKeyChecking=no', '-o', 'LogLevel=ERROR',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', 'root@127.0.0.1', cmd]);
}


/** QMP system_powerdown (the ACPI power button) must make the guest power off: QEMU exits 0. */
async function assertPowersOff(g: Guest, withinMs = 5000): Promise<number> {
  const started = Date.now();
  const exited = once(g.qemu, 'exit');
  await powerButton(g.qmpPath);
  const timer = setTimeout(() => g.qemu.kill('SIGKILL'), withinMs);
  const [code, signal] = await exited;
  clearTimeout(timer);
  assert.equal(signal, null, `no power-off within ${withinMs} ms of system_powerdown:\n${g.console().slice(-2000)}`);
  assert.equal(code, 0);
  return (Date.now() - started) / 1000;
}

function microvmArgs(netdev: string): string[] {
  return [
    '-M', 'microvm,pit=on,pic=on,rtc=on', '-cpu', 'max', '-m', '256', '-smp', '1', '-nodefaults', '-no-user-config', '-nographic',
    '-serial', 'stdio', '-kernel', images.vmlinux, '-initrd', images.initramfs,
    '-append', `console=ttyS0 quiet cryptomgr.notests tsc_early_khz=${hostTscKhz()}`,
    '-device', 'virtio-rng-device', '-netdev', netdev, '-device', 'virtio-net-device,netdev=n0',
  ];
}

test('boots to SSH with the config drive applied; powers off on system_powerdown', { timeout: 180_000 }, async () => {
  const drive = join(work, 'drive');
  mkdirSync(join(drive, 'openstack', 'latest'), { recursive: true });
  for (const [name, content] of Object.entries(metadata('vm1'))) writeFileSync(join(drive, 'openstack', 'latest', name), content);
  await run('genisoimage', ['-quiet', '-o', join(work, 'config.iso'), '-V', 'config-2', '-r', '-J', drive]);

  const port = await freePort();
  const g = await boot([
    ...microvmArgs(`user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`),
    '-drive', `file=${join(work, 'config.iso')},if=none,id=cd,format=raw,readonly=on`, '-device', 'virtio-blk-device,drive=cd',
  ], port);
  const marker = READY.exec(g.console())!;
  console.log(`guest ready after ${g.seconds.toFixed(2)} s: ${marker[0].trim()}`);
  assert.equal(marker[1], 'vm1', 'hostname from the config drive');
  assert.match(marker[2]!, /^10\.0\.2\.\d+(\/24)?$/, 'address from DHCP');

  const sshStarted = Date.now();
  const { stdout } = await ssh(g, 'for i in $(seq 1 100); do [ -e /tmp/proof ] && break; sleep 0.1; done; hostname; cat /tmp/proof');
  console.log(`first SSH command took ${((Date.now() - sshStarted) / 1000).toFixed(2)} s`);
  assert.deepEqual(stdout.trim().split('\n'), ['vm1', 'user-data-ran']);
  console.log(`powered off ${(await assertPowersOff(g)).toFixed(2)} s after system_powerdown`);
});

test('without a config drive: metadata from 169.254.169.254; reboot from inside the guest', { timeout: 240_000 }, async () => {
  // Nova's metadata service, reached as QEMU user networking forwards 169.254.169.254:80
  // (the user network is 169.254.169.0/24 so that the address is inside it).
  const files = metadata('vm2');
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const name = /^\/openstack\/latest\/(meta_data\.json|user_data)$/.exec(req.url ?? '')?.[1] as keyof typeof files | undefined;
    if (name) res.end(files[name]); else { res.statusCode = 404; res.end(); }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const httpPort = (server.address() as { port: number }).port;
    const forward = join(work, 'metadata-forward.cjs');
    writeFileSync(forward, `const s = require('net').connect(${httpPort}, '127.0.0.1'); process.stdin.pipe(s); s.pipe(process.stdout);\n`);
    const port = await freePort();
    const g = await boot(microvmArgs(`user,id=n0,net=169.254.169.0/24,hostfwd=tcp:127.0.0.1:${port}-:22,`
      + `guestfwd=tcp:169.254.169.254:80-cmd:${process.execPath} ${forward}`), port);
    const marker = READY.exec(g.console())!;
    console.log(`guest ready after ${g.seconds.toFixed(2)} s: ${marker[0].trim()}`);
    assert.equal(marker[1], 'vm2', 'hostname from the metadata service');
    assert.deepEqual(requests, ['/openstack/latest/meta_data.json', '/openstack/latest/user_data']);
    const { stdout } = await ssh(g, 'for i in $(seq 1 100); do [ -e /tmp/proof ] && break; sleep 0.1; done; hostname; cat /tmp/proof');
    assert.deepEqual(stdout.trim().split('\n'), ['vm2', 'user-data-ran']);

    const started = Date.now();
    await ssh(g, 'reboot').catch(() => { /* the session may be cut as the guest goes down */ });
    await waitReady(g, 2, 60_000);
    console.log(`rebooted from inside to ready in ${((Date.now() - started) / 1000).toFixed(2)} s`);
    await assertPowersOff(g);
  } finally {
    server.close();
  }
});
