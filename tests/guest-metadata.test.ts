/**
 * The metadata service end to end, without the agent: the tiny guest boots through the
 * product's QemuDriver (so the product's QEMU command line) with NO config drive and a
 * user-mode NIC carrying a metadata socket; slirp's guestfwd hands each connection to
 * 169.254.169.254:80 to a socat joined to the instance's MetadataServers socket, which
 * serves the document written into the instance directory. The guest takes its hostname
 * and SSH key from it, runs its user_data (seen on the console), and from inside can read
 * the EC2 tree and post its password. Stopping and restarting the server (an agent
 * restart) needs no QEMU restart.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../src/common/logger.ts';
import { freePort } from '../src/cli/nats.ts';
import { ensureGuestImages, type GuestImages } from '../src/cli/guest-images.ts';
import { QemuDriver } from '../src/agent/hypervisor/qemu/driver.ts';
import { USER_NETWORK } from '../src/agent/hypervisor/qemu/cmdline.ts';
import type { InstanceSpec } from '../src/agent/hypervisor/driver.ts';
import { MetadataServers, readPassword, writeMetadataDocument } from '../src/agent/metadata/index.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const IMAGES = process.env.GUREUM_TEST_GUEST_DIR ?? join(ROOT, '.cache', 'guest');
const UUID = '5b6d2f0e-8c1a-4e7b-9d3f-2a4c6e8f0b11';
const log = createLogger(process.env.GUREUM_LOG_LEVEL ?? 'warn');

let images: GuestImages;
let work: string;
let pub: string;
let driver: QemuDriver;
let servers: MetadataServers;
let port: number;
let dir: string;

before(async () => {
  images = await ensureGuestImages(IMAGES);
  work = mkdtempSync(join(tmpdir(), 'guest-md-'));
  await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', join(work, 'key')]); // ecdsa-sha2-* keys are installed too, not only ssh-*
  pub = readFileSync(join(work, 'key.pub'), 'utf8').trim();
  port = await freePort();
  driver = new QemuDriver({ instancesDir: join(work, 'instances'), log, accel: 'tcg' });
  await driver.init();
  servers = new MetadataServers({ log });
  dir = driver.dirOf(UUID);
  mkdirSync(dir, { recursive: true });
});
after(async () => {
  await driver?.destroy(UUID).catch(() => { /* not running */ });
  await driver?.remove(UUID).catch(() => { /* already gone */ });
  await driver?.close();
  await servers?.close();
  rmSync(work, { recursive: true, force: true });
});

function ssh(cmd: string) {
  return run('ssh', ['-i', join(work, 'key'), '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'LogLevel=ERROR',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', 'root@127.0.0.1', cmd]);
}

async function waitConsole(pattern: RegExp, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await driver.consoleOutput(UUID);
    if (pattern.test(out)) return out;
    if (Date.now() > deadline) throw new Error(`console never matched ${pattern} in ${timeoutMs / 1000} s:\n${out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** busybox wget inside the guest (wrapped in timeout: busybox 1.35's wget -T segfaults). */
const wget = (path: string, extra = '') => `timeout 10 wget -q -O - ${extra} http://169.254.169.254${path}`;

test('no config drive: hostname, SSH key and user_data come from the metadata service over slirp guestfwd', { timeout: 240_000 }, async () => {
  await writeMetadataDocument(dir, {
    metaData: {
      uuid: UUID, name: 'mdvm', hostname: 'mdvm.novalocal', launch_index: 0, availability_zone: 'nova',
      public_keys: { me: `${pub}\n` }, keys: [{ name: 'me', type: 'ssh', data: `${pub}\n` }],
    },
    userData: Buffer.from('#!/bin/sh\necho hello-from-metadata\n').toString('base64'),
    networkData: { links: [], networks: [], services: [] },
    ec2: { instanceId: 'i-00000001', instanceType: 'm1.tiny', localIpv4: USER_NETWORK.guest },
  });
  const socket = await servers.start(UUID, dir);
  const spec: InstanceSpec = {
    uuid: UUID, name: 'instance-00000001', vcpus: 1, memoryMb: 256,
    boot: { kind: 'kernel', kernel: images.vmlinux, ramdisk: images.initramfs },
    disks: [],
    nics: [{ kind: 'user', mac: '52:54:00:aa:00:07', sshHostPort: port, metadataSocket: socket }],
  };
  const started = Date.now();
  await driver.spawn(spec);
  const marker = /GUREUM-GUEST-READY (\S+) (\S+)/.exec(await waitConsole(/GUREUM-GUEST-READY \S+ \S+\r?\n/));
  console.log(`guest ready ${((Date.now() - started) / 1000).toFixed(2)} s after spawn: ${marker?.[0]}`);
  await waitConsole(/user-data: hello-from-metadata/, 30_000); // user_data runs in the background; its output is prefixed
  assert.equal(marker?.[1], 'mdvm', 'hostname from the metadata service');
  assert.equal(marker?.[2], `${USER_NETWORK.guest}/24`, 'the slirp network that holds 169.254.169.254');

  const { stdout } = await ssh([
    'hostname', 'cat /etc/resolv.conf', 'ip route',
    wget('/openstack'), 'echo', wget('/latest/meta-data/local-ipv4'), 'echo', wget('/latest/meta-data/instance-type'), 'echo',
    wget('/latest/meta-data/public-keys/'), 'echo', wget('/latest/meta-data/public-keys/0/openssh-key'),
    `${wget('/openstack/latest/password', '--post-data=guest-pw')} && echo posted`,
    `${wget('/openstack/latest/password', '--post-data=again')} || echo refused`,
  ].join('; '));
  const lines = stdout.split('\n');
  assert.equal(lines[0], 'mdvm');
  assert.ok(lines.includes(`nameserver ${USER_NETWORK.dns}`), stdout);
  assert.ok(lines.some((l) => l.startsWith(`default via ${USER_NETWORK.gateway}`)), stdout);
  assert.ok(lines.includes('2018-08-27') && lines.includes('latest'), stdout);
  assert.ok(lines.includes(USER_NETWORK.guest) && lines.includes('m1.tiny') && lines.includes('0=me'), stdout);
  assert.ok(lines.includes(pub), 'EC2 openssh-key');
  assert.ok(lines.includes('posted') && lines.includes('refused'), stdout);
  assert.equal(await readPassword(dir), 'guest-pw');

  // An agent restart: the server goes away and comes back on a fresh socket; QEMU keeps
  // running and its guestfwd (one socat per connection) reaches the new server.
  await servers.stop(UUID);
  const down = await ssh(`${wget('/latest/meta-data/hostname')} || echo unreachable`);
  assert.equal(down.stdout.trim(), 'unreachable');
  await servers.start(UUID, dir);
  assert.equal((await ssh(wget('/latest/meta-data/hostname'))).stdout, 'mdvm.novalocal');
});
