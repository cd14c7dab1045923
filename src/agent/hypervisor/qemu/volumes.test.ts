/**
 * QemuDriver volumes with real QEMU (TCG) and the tiny guest: hot-plug a qcow2 volume into a
 * running microvm, use it from the guest, unplug and plug it again, live snapshot and live
 * resize through QEMU, QoS throttling, a fresh QEMU (reboot) keeping it all, and a stopped
 * instance's spec-only attach. Steps run in order and share the guest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../../common/logger.ts';
import { freePort } from '../../../cli/nats.ts';
import { buildConfigDrive } from '../../storage/config-drive.ts';
import type { VolumeDiskSpec } from '../driver.ts';
import { QemuDriver } from './driver.ts';

const run = promisify(execFile);
const ROOT = new URL('../../../../', import.meta.url).pathname;
const GUEST = join(ROOT, '.cache', 'guest');
const UUID = '3f0c5a52-7a8e-4c43-9a51-0b7de0e6b001';
const VOL = '7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f';
const VOL2 = '8d1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e60';
const log = createLogger(process.env.GUREUM_LOG_LEVEL ?? 'warn');
const MiB = 1024 * 1024;

let work: string;
let pool: string;
let driver: QemuDriver;
let port: number;

before(async () => {
  await run(join(ROOT, 'guest', 'build.sh'), [GUEST], { maxBuffer: 16 * 1024 * 1024 });
  work = mkdtempSync(join(tmpdir(), 'qemu-volumes-'));
  pool = join(work, 'pool');
  mkdirSync(pool);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]);
  port = await freePort();
});

after(async () => {
  try { await driver?.remove(UUID); } catch { /* best effort */ }
  await driver?.close();
  rmSync(work, { recursive: true, force: true });
});

function ssh(cmd: string) {
  return run('ssh', ['-i', join(work, 'key'), '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', cmd]);
}
async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
/** The guest's block device whose virtio serial is the volume id's first 20 characters (as Nova names it). */
async function guestDisk(volumeId: string): Promise<string | undefined> {
  const { stdout } = await ssh('for d in /sys/block/vd*; do echo "${d##*/} $(cat $d/serial 2>/dev/null) $(cat $d/size)"; done');
  const line = stdout.trim().split('\n').map((l) => l.split(' ')).find((f) => f[1] === volumeId.slice(0, 20));
  return line?.[0];
}
async function guestSectors(dev: string): Promise<number> { return Number((await ssh(`cat /sys/block/${dev}/size`)).stdout.trim()); }
/** The first `n` bytes of a qcow2 file's guest-visible content, read on the host (-U: QEMU may hold it). */
async function hostRead(path: string, n: number): Promise<string> {
  const out = join(work, 'read.raw');
  await run('qemu-img', ['dd', '-U', '-f', 'qcow2', '-O', 'raw', `if=${path}`, `of=${out}`, 'bs=512', 'count=1']);
  return readFileSync(out).subarray(0, n).toString('latin1');
}
const file = (volumeId: string, path: string, extra: Partial<VolumeDiskSpec> = {}): VolumeDiskSpec =>
  ({ volumeId, connection: { type: 'file', path, format: 'qcow2' }, ...extra });

test('boot a microvm guest to attach volumes to', { timeout: 120_000 }, async () => {
  driver = new QemuDriver({ instancesDir: join(work, 'instances'), log, accel: 'tcg' });
  await driver.init();
  const dir = driver.dirOf(UUID);
  mkdirSync(dir, { recursive: true });
  const pub = readFileSync(join(work, 'key.pub'), 'utf8').trim();
  await buildConfigDrive(join(dir, 'disk.config'), { metaData: { uuid: UUID, name: 'vm', hostname: 'vm', public_keys: { k: `${pub}\n` } } });
  await driver.spawn({
    uuid: UUID, name: 'instance-000000b1', vcpus: 1, memoryMb: 256,
    boot: { kind: 'kernel', kernel: join(GUEST, 'vmlinux'), ramdisk: join(GUEST, 'initramfs.cpio') },
    disks: [{ path: join(dir, 'disk.config'), format: 'raw', readonly: true }],
    nics: [{ kind: 'user', mac: '52:54:00:bb:00:01', sshHostPort: port }],
  });
  await waitFor('the guest', async () => ((await driver.consoleOutput(UUID)).includes('GUREUM-GUEST-READY') ? true : undefined), 90_000);
  await waitFor('SSH', async () => (await ssh('true')).stdout, 30_000);
});

test('attachVolume hot-plugs a qcow2 volume: the guest sees a disk with the volume id as serial and writes through it; the spec keeps it', { timeout: 90_000 }, async () => {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(pool, 'vol.qcow2'), '64M']);
  const t0 = Date.now();
  await driver.attachVolume(UUID, file(VOL, join(pool, 'vol.qcow2')));
  const dev = await waitFor('the volume in the guest', () => guestDisk(VOL));
  console.log(`volume visible in the guest as /dev/${dev} after ${Date.now() - t0} ms`);
  assert.equal(await guestSectors(dev), 64 * MiB / 512);
  await ssh(`printf hello-volume | dd of=/dev/${dev} conv=fsync 2>/dev/null && sync`);
  const saved = await driver.getSpec(UUID);
  assert.deepEqual(saved.volumes, [{ volumeId: VOL, connection: { type: 'file', path: join(pool, 'vol.qcow2'), format: 'qcow2' }, slot: 0 }]);
  assert.equal(await driver.volumeHolder(VOL), UUID);
  assert.equal(await driver.volumeHolder(VOL2), undefined);
  await driver.attachVolume(UUID, file(VOL, join(pool, 'vol.qcow2'))); // idempotent
  assert.equal((await driver.getSpec(UUID)).volumes!.length, 1);
});

test('detachVolume unplugs it (the guest lets go), the data is in the file; attaching again shows the same data', { timeout: 120_000 }, async () => {
  assert.equal(await driver.detachVolume(UUID, VOL, 60_000), true);
  assert.equal(await guestDisk(VOL), undefined);
  assert.deepEqual((await driver.getSpec(UUID)).volumes, []);
  assert.equal(await driver.volumeHolder(VOL), undefined);
  assert.equal(await hostRead(join(pool, 'vol.qcow2'), 12), 'hello-volume');
  assert.equal(await driver.detachVolume(UUID, VOL), false);
  await driver.attachVolume(UUID, file(VOL, join(pool, 'vol.qcow2')));
  const dev = await waitFor('the volume in the guest again', () => guestDisk(VOL));
  assert.equal((await ssh(`dd if=/dev/${dev} bs=12 count=1 2>/dev/null`)).stdout, 'hello-volume');
});

test('snapshotVolumeLive: the guest goes on writing to the new top, the old top keeps the point-in-time data', { timeout: 60_000 }, async () => {
  const top = join(pool, 'vol.top1.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', join(pool, 'vol.qcow2'), '-F', 'qcow2', top, '64M']);
  await driver.snapshotVolumeLive(UUID, VOL, top);
  const dev = (await guestDisk(VOL))!;
  await ssh(`echo 3 >/proc/sys/vm/drop_caches; printf after-snap! | dd of=/dev/${dev} conv=fsync 2>/dev/null && sync`);
  assert.equal(await hostRead(join(pool, 'vol.qcow2'), 12), 'hello-volume', 'the old top is frozen');
  assert.equal(await hostRead(top, 12), 'after-snap!e', 'the new top has the new write over the old data');
  assert.deepEqual((await driver.getSpec(UUID)).volumes![0]!.connection, { type: 'file', path: top, format: 'qcow2' }, 'a fresh QEMU opens the new top');
  // A second snapshot stacks on the first (the top node is resolved again).
  const top2 = join(pool, 'vol.top2.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', top, '-F', 'qcow2', top2, '64M']);
  await driver.snapshotVolumeLive(UUID, VOL, top2);
  await ssh(`printf second | dd of=/dev/${dev} seek=1 conv=fsync 2>/dev/null && sync`);
  assert.equal(await hostRead(top, 12), 'after-snap!e');
  await assert.rejects(driver.snapshotVolumeLive(UUID, VOL2, top2), /not attached/);
});

test('resizeVolumeLive: the guest sees the new size', { timeout: 60_000 }, async () => {
  const dev = (await guestDisk(VOL))!;
  await driver.resizeVolumeLive(UUID, VOL, 128 * MiB);
  assert.equal(await waitFor('the new size', async () => ((await guestSectors(dev)) === 128 * MiB / 512 ? true : undefined)), true);
  await assert.rejects(driver.resizeVolumeLive(UUID, VOL, 1000), /multiple of 512/);
});

test('QoS: a volume with IOPS/bandwidth limits is throttled by QEMU, also after a reboot into a fresh QEMU that keeps every volume', { timeout: 150_000 }, async () => {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(pool, 'vol2.qcow2'), '32M']);
  await driver.attachVolume(UUID, file(VOL2, join(pool, 'vol2.qcow2'), { qos: { totalIopsSec: 50, writeBytesSec: 4 * MiB } }));
  await waitFor('the second volume', () => guestDisk(VOL2));
  const limits = async () => {
    const q = await (await driver.qmp(UUID)).execute('query-block');
    const b = q.find((x) => x.qdev?.includes('vd-8d1d2e3f4a5b4c6d8e9f'));
    return b?.inserted && { iops: b.inserted.iops, bps_wr: b.inserted.bps_wr };
  };
  assert.deepEqual(await limits(), { iops: 50, bps_wr: 4 * MiB });
  const pid = (await driver.getState(UUID)).pid;
  await driver.reboot(UUID, true);
  assert.notEqual((await driver.getState(UUID)).pid, pid);
  assert.deepEqual(await limits(), { iops: 50, bps_wr: 4 * MiB });
  await waitFor('the guest after the reboot', async () => (await ssh('true')).stdout, 90_000);
  const dev = await waitFor('the first volume after the reboot', () => guestDisk(VOL));
  assert.equal((await ssh(`dd if=/dev/${dev} bs=12 count=1 2>/dev/null`)).stdout, 'after-snap!e');
  assert.equal((await ssh(`dd if=/dev/${dev} bs=512 skip=1 count=1 2>/dev/null | head -c 6`)).stdout, 'second');
  assert.equal(await guestSectors(dev), 128 * MiB / 512);
  assert.ok(await guestDisk(VOL2));
});

test('a stopped instance: attach and detach change only its spec; it starts with the volume', { timeout: 120_000 }, async () => {
  assert.equal(await driver.detachVolume(UUID, VOL2, 60_000), true);
  await driver.powerOff(UUID, 30_000);
  assert.equal(await driver.volumeHolder(VOL), undefined, 'nobody holds it while stopped');
  assert.equal(await driver.detachVolume(UUID, VOL), true);
  await driver.attachVolume(UUID, file(VOL2, join(pool, 'vol2.qcow2')));
  assert.deepEqual((await driver.getSpec(UUID)).volumes!.map((v) => [v.volumeId, v.slot]), [[VOL2, 0]]);
  await assert.rejects(driver.attachVolume(UUID, file('9e1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e61', 'relative.qcow2')), /absolute/);
  assert.equal((await driver.getSpec(UUID)).volumes!.length, 1, 'a refused attach changes nothing');
  await driver.powerOn(UUID);
  await waitFor('the guest', async () => (await ssh('true')).stdout, 90_000);
  assert.ok(await waitFor('the volume after start', () => guestDisk(VOL2)));
  assert.equal(await driver.volumeHolder(VOL2), UUID);
  assert.ok(existsSync(join(pool, 'vol2.qcow2')));
});
