import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import type { ImageRef } from '../../../bus/compute.ts';
import { ImageCache } from '../image-cache.ts';
import { LocalQcow2Pool } from './local-pool.ts';
import type { LiveVolumeOps } from '../../volume-agent.ts';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const log = pino({ level: 'silent' });
let dir: string;
let imagePath: string;
const noLive: LiveVolumeOps = {
  holderOf: async () => undefined,
  snapshot: async () => { throw new Error('not held'); },
  resize: async () => { throw new Error('not held'); },
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volpool-'));
  imagePath = join(dir, 'image.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', imagePath, '1G']);
  await run('qemu-io', ['-c', 'write -P 0x11 0 1M', imagePath]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function newPool(name: string, live: LiveVolumeOps = noLive) {
  const dataDir = join(dir, name);
  const cache = new ImageCache({ dataDir });
  const pool = new LocalQcow2Pool({ dataDir, host: 'h1', hostIp: '127.0.0.1', cache, source: (ref: ImageRef) => ({ localPath: ref.localPath! }), live, log });
  return { pool, dataDir, cache };
}

/** qemu-io reads `len` at `off` and checks every byte is `pattern`. */
async function reads(path: string, off: number, len: number, pattern: number): Promise<boolean> {
  try {
    const { stdout } = await run('qemu-io', ['-U', '-r', '-f', 'qcow2', '-c', `read -P 0x${pattern.toString(16)} ${off} ${len}`, path]);
    return !/Pattern verification failed/.test(stdout);
  } catch { return false; }
}
async function write(path: string, off: number, len: number, pattern: number) {
  await run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x${pattern.toString(16)} ${off} ${len}`, path]);
}
async function info(path: string) {
  return JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', path])).stdout) as { 'virtual-size': number; 'backing-filename'?: string };
}
const files = (p: string) => readdirSync(p).filter((n) => n.endsWith('.qcow2')).sort();

test('empty volume: created once, retries answer the same, capacity counts it', async () => {
  const { pool } = newPool('empty');
  await pool.start();
  assert.deepEqual(await pool.create('v1', 2, { kind: 'empty' }, log), { sizeGb: 2 });
  assert.deepEqual(await pool.create('v1', 2, { kind: 'empty' }, log), { sizeGb: 2 });
  assert.equal((await info(pool.topPath('v1')))['virtual-size'], 2 * GiB);
  const c = await pool.capacity();
  assert.equal(c.provisionedBytes, 2 * GiB);
  assert.deepEqual(c.volumes, ['v1']);
  assert.ok(c.totalBytes > 0 && c.freeBytes > 0 && c.freeBytes <= c.totalBytes);
  await assert.rejects(pool.create('../x', 1, { kind: 'empty' }, log), /invalid volume id/);
  await assert.rejects(pool.create('v2', 0, { kind: 'empty' }, log), /at least 1GB/);
  assert.equal(await pool.delete('v1', log), true);
  assert.equal(await pool.delete('v1', log), false);
  assert.deepEqual(files(pool.dir), []);
});

test('from image: an overlay over the cached base, grown; too large an image is refused and leaves nothing', async () => {
  const { pool, cache } = newPool('image');
  await pool.start();
  const image: ImageRef = { id: 'img-1', diskFormat: 'qcow2', url: 'http://unused', localPath: imagePath };
  await assert.rejects(pool.create('small', 0.5 as number, { kind: 'image', image, token: 't' }, log), /whole number/);
  await assert.rejects(
    pool.create('v0', 1, { kind: 'image', image: { ...image, id: 'img-big', diskFormat: 'raw', localPath: await big() }, token: 't' }, log),
    { message: "Image virtual size is 2GB and doesn't fit in a volume of size 1GB." },
  );
  assert.deepEqual(files(pool.dir), []);
  const t0 = Date.now();
  assert.deepEqual(await pool.create('v1', 3, { kind: 'image', image, token: 't' }, log), { sizeGb: 3 });
  const ms = Date.now() - t0;
  const i = await info(pool.topPath('v1'));
  assert.equal(i['virtual-size'], 3 * GiB);
  assert.equal(i['backing-filename'], '../images/_base/img-1');
  assert.ok(await reads(pool.topPath('v1'), 0, MiB, 0x11));
  assert.ok(await reads(pool.topPath('v1'), 2 * GiB, MiB, 0));
  assert.deepEqual(await pool.basesInUse(), ['img-1']);
  // The image cache's prune keeps what the pool names as in use.
  assert.deepEqual(await cache.prune(await pool.basesInUse(), 0), ['img-big']);
  assert.ok(existsSync(cache.pathOf('img-1')));
  // Size 0: the image's own size.
  assert.deepEqual(await pool.create('v2', 0, { kind: 'image', image, token: 't' }, log), { sizeGb: 1 });
  assert.ok(ms < 5000, `create from image took ${ms} ms`);
});

async function big(): Promise<string> {
  const p = join(dir, 'big.raw');
  await run('qemu-img', ['create', '-q', '-f', 'raw', p, String(2 * GiB)]);
  return p;
}

test('snapshots freeze content; clones are overlays; layers go only when nothing needs them', async () => {
  const { pool } = newPool('snap');
  await pool.start();
  await pool.create('v1', 1, { kind: 'empty' }, log);
  const top = pool.topPath('v1');
  await write(top, 0, MiB, 0xa1);
  assert.deepEqual(await pool.snapshotCreate('v1', 's1', log), { sizeGb: 1, online: false });
  assert.deepEqual(await pool.snapshotCreate('v1', 's1', log), { sizeGb: 1, online: false }); // retry
  await write(top, 0, MiB, 0xb2);
  assert.ok(await reads(top, 0, MiB, 0xb2), 'the volume keeps its path and its new data');
  await pool.create('c1', 2, { kind: 'snapshot', snapshotId: 's1' }, log);
  assert.ok(await reads(pool.topPath('c1'), 0, MiB, 0xa1), 'a volume from the snapshot has the data at snapshot time');
  await assert.rejects(pool.create('c9', 1, { kind: 'snapshot', snapshotId: 'nope' }, log), /could not be found/);
  // A clone of the volume's current content.
  await pool.create('c2', 0, { kind: 'volume', volumeId: 'v1' }, log);
  await write(top, 0, MiB, 0xc3);
  assert.ok(await reads(pool.topPath('c2'), 0, MiB, 0xb2));
  assert.ok(await reads(top, 0, MiB, 0xc3));
  assert.deepEqual((await pool.capacity()).snapshots, ['s1']);
  assert.deepEqual(files(pool.dir), ['layer-clone-c2.qcow2', 'layer-s1.qcow2', 'volume-c1.qcow2', 'volume-c2.qcow2', 'volume-v1.qcow2']);

  // The origin goes: both layers stay (the snapshot and the clones need them).
  await pool.delete('v1', log);
  assert.deepEqual(files(pool.dir), ['layer-clone-c2.qcow2', 'layer-s1.qcow2', 'volume-c1.qcow2', 'volume-c2.qcow2']);
  await pool.delete('c2', log);
  assert.deepEqual(files(pool.dir), ['layer-s1.qcow2', 'volume-c1.qcow2']);
  assert.equal(await pool.snapshotDelete('v1', 's1', log), true);
  assert.equal(await pool.snapshotDelete('v1', 's1', log), false);
  assert.deepEqual(files(pool.dir), ['layer-s1.qcow2', 'volume-c1.qcow2'], 'c1 still reads through the layer');
  assert.ok(await reads(pool.topPath('c1'), 0, MiB, 0xa1));
  await pool.delete('c1', log);
  assert.deepEqual(files(pool.dir), []);
});

test('extend grows, refuses to shrink, and a retry is a no-op', async () => {
  const { pool } = newPool('extend');
  await pool.start();
  await pool.create('v1', 1, { kind: 'empty' }, log);
  await write(pool.topPath('v1'), 0, MiB, 0x33);
  assert.deepEqual(await pool.extend('v1', 3, log), { sizeGb: 3, online: false });
  assert.deepEqual(await pool.extend('v1', 3, log), { sizeGb: 3, online: false });
  await assert.rejects(pool.extend('v1', 2, log), { message: 'New size for extend must be greater than current size. (current: 3, extended: 2).' });
  assert.equal((await info(pool.topPath('v1')))['virtual-size'], 3 * GiB);
  assert.ok(await reads(pool.topPath('v1'), 0, MiB, 0x33));
  await assert.rejects(pool.extend('nope', 3, log), /could not be found/);
});

test('start-up recovery: a snapshot interrupted before its new top is undone, after it is completed', async () => {
  const { pool, dataDir } = newPool('crash');
  await pool.start();
  await pool.create('v1', 1, { kind: 'empty' }, log);
  await write(pool.topPath('v1'), 0, MiB, 0x44);
  const jdir = join(pool.dir, 'journal');
  // Killed right after the rename (step 1).
  writeFileSync(join(jdir, 's1.json'), JSON.stringify({ volumeId: 'v1', layerId: 's1', snapshotId: 's1', live: false }));
  renameSync(pool.topPath('v1'), join(pool.dir, 'layer-s1.qcow2'));
  writeFileSync(join(pool.dir, '.tmp-abcd-volume-v1.qcow2'), 'partial');
  const again = newPool('crash').pool;
  await again.start();
  assert.deepEqual(files(pool.dir), ['volume-v1.qcow2']);
  assert.deepEqual(readdirSync(jdir), []);
  assert.ok(await reads(again.topPath('v1'), 0, MiB, 0x44));
  assert.ok(!readdirSync(pool.dir).some((n) => n.startsWith('.tmp-')));

  // Killed after the new top was in place (step 2) but before the marker: completed.
  writeFileSync(join(jdir, 's2.json'), JSON.stringify({ volumeId: 'v1', layerId: 's2', snapshotId: 's2', live: false }));
  renameSync(again.topPath('v1'), join(pool.dir, 'layer-s2.qcow2'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'layer-s2.qcow2', '-F', 'qcow2', again.topPath('v1')]);
  const third = newPool('crash').pool;
  await third.start();
  assert.deepEqual((await third.capacity()).snapshots, ['s2']);
  assert.deepEqual(files(join(dataDir, 'volumes')), ['layer-s2.qcow2', 'volume-v1.qcow2']);
  await third.create('c', 1, { kind: 'snapshot', snapshotId: 's2' }, log);
  assert.ok(await reads(third.topPath('c'), 0, MiB, 0x44));
});
