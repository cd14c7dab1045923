/**
 * InstanceLifecycle with volumes, on a real QEMU (TCG) and the tiny guest: a build that boots
 * from a volume (no image disk) with a second volume whose file system a user_data script
 * makes and mounts (ext4 in the guest); the volumes in the saved spec (the host report's
 * attachedVolumes); a hard reboot into a fresh QEMU keeps them and their data; the attach
 * and detach verbs; rescue and unrescue keep the root volume.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BuildRequest, VolumeDisk } from '../bus/compute.ts';
import { createLogger } from '../common/logger.ts';
import { freePort } from '../cli/nats.ts';
import { QemuDriver } from './hypervisor/qemu/driver.ts';
import { InstanceLifecycle } from './lifecycle.ts';
import { MetadataServers } from './metadata/index.ts';
import { ImageCache } from './storage/image-cache.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const GUEST = join(ROOT, '.cache', 'guest');
const UUID = '3f0c5a52-7a8e-4c43-9a51-0b7de0e6c001';
const ROOT_VOL = '1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c01';
const DATA_VOL = '2a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c02';
const EXTRA_VOL = '3a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c03';
const log = createLogger(process.env.GUREUM_LOG_LEVEL ?? 'warn');

let work: string;
let driver: QemuDriver;
let metadata: MetadataServers;
let life: InstanceLifecycle;
let port: number;

before(async () => {
  await run(join(ROOT, 'guest', 'build.sh'), [GUEST], { maxBuffer: 16 * 1024 * 1024 });
  work = mkdtempSync(join(tmpdir(), 'lifecycle-vol-'));
  mkdirSync(join(work, 'pool'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]);
  port = await freePort();
  driver = new QemuDriver({ instancesDir: join(work, 'instances'), log, accel: 'tcg' });
  await driver.init();
  metadata = new MetadataServers({ log });
  life = new InstanceLifecycle({
    driver, cache: new ImageCache({ dataDir: work, log }), metadata, instancesDir: join(work, 'instances'), log,
    source: (ref) => ({ localPath: ref.localPath! }),
  });
});

after(async () => {
  try { await life?.remove(UUID); } catch { /* best effort */ }
  await metadata?.close();
  await driver?.close();
  rmSync(work, { recursive: true, force: true });
});

function ssh(cmd: string) {
  return run('ssh', ['-i', join(work, 'key'), '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', cmd]);
}
async function waitConsole(re: RegExp, count: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ([...(await driver.consoleOutput(UUID)).matchAll(new RegExp(re, 'g'))].length < count) {
    if (Date.now() > deadline) throw new Error(`no ${re} (#${count}) on the console:\n${await driver.consoleOutput(UUID, 30)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
const vol = (volumeId: string, device: string, extra: Partial<VolumeDisk> = {}): VolumeDisk =>
  ({ volumeId, device, connection: { type: 'file', path: join(work, 'pool', `volume-${volumeId}.qcow2`), format: 'qcow2' }, ...extra });
const byId = (volumeId: string) => `/dev/disk/by-id/virtio-${volumeId.slice(0, 20)}`;

// Formats the data volume on first boot only, mounts it, leaves a file, says so on the console.
const USER_DATA = `#!/bin/sh
d=${byId(DATA_VOL)}
while [ ! -e $d ]; do sleep 0.2; done
mkdir -p /data
mount -t ext4 $d /data 2>/dev/null || { mke2fs -q $d && mount -t ext4 $d /data && echo "written by user_data" >/data/hello && sync; }
echo "VOLUME-MOUNTED $(cat /data/hello)"
`;

test('build from a volume: no image disk, the root volume is vda, a user_data script puts ext4 on the second volume and mounts it', { timeout: 180_000 }, async () => {
  for (const id of [ROOT_VOL, DATA_VOL, EXTRA_VOL]) await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'pool', `volume-${id}.qcow2`), '64M']);
  const pub = readFileSync(join(work, 'key.pub'), 'utf8').trim();
  const img = (id: string, path: string, diskFormat: string) => ({ id, diskFormat, url: 'http://127.0.0.1:9/unused', localPath: path });
  const req: BuildRequest = {
    uuid: UUID, name: 'instance-000000c1', hostname: 'bfv', vcpus: 1, memoryMb: 256, rootGb: 1, ephemeralGb: 0, swapMb: 0,
    // The image only lends kernel and ramdisk: a path that does not exist proves it is not fetched.
    image: img('a0000000-0000-4000-8000-000000000001', join(work, 'no-such-image'), 'qcow2'),
    kernel: img('a0000000-0000-4000-8000-000000000002', join(GUEST, 'vmlinux'), 'aki'),
    ramdisk: img('a0000000-0000-4000-8000-000000000003', join(GUEST, 'initramfs.cpio'), 'ari'),
    token: 't', network: 'auto', mac: '52:54:00:cc:00:01', sshHostPort: port, configDrive: true,
    metaData: { uuid: UUID, name: 'bfv', hostname: 'bfv', public_keys: { k: `${pub}\n` } },
    userData: Buffer.from(USER_DATA).toString('base64'),
    volumes: [vol(DATA_VOL, '/dev/vdc'), vol(ROOT_VOL, '/dev/vda', { bootIndex: 0 })],
  };
  await life.build(req, log);
  await waitConsole(/VOLUME-MOUNTED written by user_data/, 1);
  const spec = await driver.getSpec(UUID);
  assert.ok(!existsSync(join(life.dir(UUID), 'disk')), 'no image disk');
  assert.deepEqual(spec.volumes?.map((v) => [v.volumeId, v.root ?? false]), [[ROOT_VOL, true], [DATA_VOL, false]], 'root volume first');
  const { stdout } = await ssh(`cat /sys/block/vda/serial; echo; cat /data/hello; mount | grep -c ' /data type ext4'`);
  assert.deepEqual(stdout.trim().split('\n'), [ROOT_VOL.slice(0, 20), 'written by user_data', '1']);
  assert.deepEqual(await life.attachedVolumes([UUID]), { [UUID]: [ROOT_VOL, DATA_VOL] });
});

test('attach and detach verbs: a third volume is hot-plugged and unplugged; a hard reboot (fresh QEMU) keeps the others and their data', { timeout: 180_000 }, async () => {
  assert.deepEqual(await life.attachVolume({ uuid: UUID, volume: vol(EXTRA_VOL, '/dev/vdd') }, log), { attached: true });
  await ssh(`for i in $(seq 50); do [ -e ${byId(EXTRA_VOL)} ] && exit 0; sleep 0.2; done; exit 1`);
  assert.deepEqual(await life.attachedVolumes([UUID]), { [UUID]: [ROOT_VOL, DATA_VOL, EXTRA_VOL] });
  assert.deepEqual(await life.detachVolume({ uuid: UUID, volumeId: EXTRA_VOL, timeoutMs: 60_000 }, log), { detached: true });
  await ssh(`for i in $(seq 50); do [ -e ${byId(EXTRA_VOL)} ] || exit 0; sleep 0.2; done; exit 1`);
  await ssh('umount /data');
  await driver.reboot(UUID, true);
  await waitConsole(/VOLUME-MOUNTED written by user_data/, 2);
  assert.deepEqual(await life.attachedVolumes([UUID]), { [UUID]: [ROOT_VOL, DATA_VOL] });
});

test('rescue boots the rescue image first with the root volume as a plain disk; unrescue boots from the root volume again', { timeout: 240_000 }, async () => {
  await life.rescue({
    uuid: UUID, token: 't', shutdownTimeoutMs: 10_000,
    image: { id: 'a0000000-0000-4000-8000-000000000004', diskFormat: 'qcow2', url: 'http://127.0.0.1:9/unused', localPath: join(GUEST, 'disk.qcow2') },
    kernel: { id: 'a0000000-0000-4000-8000-000000000002', diskFormat: 'aki', url: 'http://127.0.0.1:9/unused', localPath: join(GUEST, 'vmlinux') },
    ramdisk: { id: 'a0000000-0000-4000-8000-000000000003', diskFormat: 'ari', url: 'http://127.0.0.1:9/unused', localPath: join(GUEST, 'initramfs.cpio') },
  }, log);
  const rescued = await driver.getSpec(UUID);
  assert.ok(rescued.disks[0]!.path.endsWith('disk.rescue'));
  assert.ok(rescued.volumes?.every((v) => !v.root));
  await waitConsole(/VOLUME-MOUNTED written by user_data/, 1); // a fresh console for the rescue boot
  const { stdout } = await ssh('cat /sys/block/vda/serial 2>/dev/null; echo; ls /dev/disk/by-id/');
  assert.equal(stdout.split('\n')[0], '', 'vda is the rescue disk (no serial)');
  assert.match(stdout, new RegExp(`virtio-${ROOT_VOL.slice(0, 20)}`));
  await life.unrescue(UUID, log);
  const own = await driver.getSpec(UUID);
  assert.deepEqual(own.volumes?.map((v) => [v.volumeId, v.root ?? false]), [[ROOT_VOL, true], [DATA_VOL, false]]);
  assert.equal(own.disks.some((d) => d.path.endsWith('disk.rescue')), false);
});
