import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { ImageCache } from './image-cache.ts';

const run = promisify(execFile);
let dir: string;
let image: Buffer;
let sha: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imgcache-'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'src.qcow2'), '16M']);
  image = readFileSync(join(dir, 'src.qcow2'));
  sha = createHash('sha512').update(image).digest('hex');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A download in small chunks, counted. */
function source(counter: { n: number }, bytes = image) {
  return async () => {
    counter.n++;
    await new Promise((r) => setTimeout(r, 20));
    return Readable.from((function* () { for (let i = 0; i < bytes.length; i += 4096) yield bytes.subarray(i, i + 4096); })());
  };
}

test('concurrent callers share one verified download; later calls hit the cache', async () => {
  const cache = new ImageCache({ dataDir: join(dir, 'data1') });
  const c = { n: 0 };
  const paths = await Promise.all([1, 2, 3].map(() => cache.ensure('img-1', sha.toUpperCase(), source(c))));
  assert.equal(c.n, 1);
  assert.deepEqual(new Set(paths), new Set([join(dir, 'data1', 'images', '_base', 'img-1')]));
  assert.ok(readFileSync(paths[0]!).equals(image));
  assert.equal(await cache.ensure('img-1', sha, source(c)), paths[0]);
  assert.equal(c.n, 1);
  assert.deepEqual(readdirSync(cache.dir), ['img-1'], 'no temporary files left');
});

test('a sha512 mismatch keeps nothing; a bad id or a qcow2 with a backing file is refused', async () => {
  const cache = new ImageCache({ dataDir: join(dir, 'data2') });
  await assert.rejects(cache.ensure('img-2', 'ab'.repeat(64), source({ n: 0 })), /sha512 mismatch/);
  assert.deepEqual(readdirSync(cache.dir), []);
  await assert.rejects(cache.ensure('../etc', undefined, source({ n: 0 })), /invalid image id/);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(dir, 'src.qcow2'), '-F', 'qcow2', join(dir, 'evil.qcow2')]);
  await assert.rejects(cache.ensure('evil', undefined, { localPath: join(dir, 'evil.qcow2') }), /backing file/);
  assert.deepEqual(readdirSync(cache.dir), []);
});

test('a failing download leaves no partial file', async () => {
  const cache = new ImageCache({ dataDir: join(dir, 'data3') });
  const broken = async () => Readable.from((async function* () { yield image.subarray(0, 1000); throw new Error('connection reset'); })());
  await assert.rejects(cache.ensure('img-3', sha, broken), /connection reset/);
  assert.deepEqual(readdirSync(cache.dir), []);
  assert.equal(existsSync(cache.pathOf('img-3')), false);
});

test('localPath: hard link when unverified, copy+verify with a checksum; prune removes unused old bases', async () => {
  const cache = new ImageCache({ dataDir: join(dir, 'data4') });
  const p1 = await cache.ensure('img-4', undefined, { localPath: join(dir, 'src.qcow2') });
  assert.equal(statSync(p1).ino, statSync(join(dir, 'src.qcow2')).ino);
  const p2 = await cache.ensure('img-5', sha, { localPath: join(dir, 'src.qcow2') });
  assert.notEqual(statSync(p2).ino, statSync(join(dir, 'src.qcow2')).ino);
  assert.ok(readFileSync(p2).equals(image));
  assert.deepEqual(await cache.prune(['img-4']), [], 'fresh bases stay');
  const old = new Date(Date.now() - 2 * 86400_000);
  utimesSync(p2, old, old);
  utimesSync(p1, old, old);
  assert.deepEqual(await cache.prune(['img-4']), ['img-5']);
  assert.deepEqual(readdirSync(cache.dir), ['img-4']);
});
