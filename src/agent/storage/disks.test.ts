import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { convertImage, createEphemeral, createRootOverlay, createSwap, imageInfo, virtualSize } from './disks.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'disks-'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '64M']);
  await run('qemu-io', ['-c', 'write -P 0xab 0 1M', join(dir, 'base.qcow2')]);
  await run('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'base.raw'), '32M']);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('root overlay keeps the image size, grows to the flavor size, refuses a smaller one', async () => {
  const o1 = join(dir, 'o1.qcow2');
  await createRootOverlay(join(dir, 'base.qcow2'), 'qcow2', o1);
  const i1 = await imageInfo(o1);
  assert.equal(i1.format, 'qcow2');
  assert.equal(i1.virtualSize, 64 * MiB);
  assert.equal(i1.backingFile, join(dir, 'base.qcow2'));
  assert.equal(i1.backingFormat, 'qcow2');

  const o2 = join(dir, 'o2.qcow2');
  await createRootOverlay(join(dir, 'base.raw'), 'raw', o2, 1);
  assert.equal(await virtualSize(o2), 1024 * MiB);
  assert.equal((await imageInfo(o2)).backingFormat, 'raw');

  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'big.qcow2'), '2G']);
  await assert.rejects(createRootOverlay(join(dir, 'big.qcow2'), 'qcow2', join(dir, 'o3.qcow2'), 1), /Flavor's disk is too small/);
  await assert.rejects(createRootOverlay('relative.qcow2', 'qcow2', join(dir, 'o4.qcow2')), /absolute/);
  await assert.rejects(createRootOverlay(join(dir, 'missing.qcow2'), 'qcow2', join(dir, 'o5.qcow2')), /qemu-img info failed/);
});

test('ephemeral is a blank qcow2, swap is raw with a swap signature', async () => {
  await createEphemeral(join(dir, 'eph.qcow2'), 2);
  const e = await imageInfo(join(dir, 'eph.qcow2'));
  assert.equal(e.format, 'qcow2');
  assert.equal(e.virtualSize, 2048 * MiB);
  assert.equal(e.backingFile, undefined);

  await createSwap(join(dir, 'swap'), 16);
  assert.equal(statSync(join(dir, 'swap')).size, 16 * MiB);
  const hasMkswap = await run('sh', ['-c', 'command -v mkswap || test -x /sbin/mkswap']).then(() => true, () => false);
  if (hasMkswap) assert.equal(readFileSync(join(dir, 'swap')).subarray(4096 - 10, 4096).toString(), 'SWAPSPACE2');
  await assert.rejects(createSwap(join(dir, 'swap'), 16), /EEXIST/);
});

test('convert flattens an overlay chain into a standalone image with the same content', async () => {
  const o = join(dir, 'chain.qcow2');
  await createRootOverlay(join(dir, 'base.qcow2'), 'qcow2', o);
  await run('qemu-io', ['-c', 'write -P 0xcd 2M 1M', o]);
  const flat = join(dir, 'flat.qcow2');
  await convertImage(o, flat, 'qcow2');
  assert.equal((await imageInfo(flat)).backingFile, undefined);
  await run('qemu-img', ['compare', o, flat]); // throws when they differ
});

test('a formatted ephemeral disk is an overlay on one cached base per size and filesystem', async () => {
  const baseDir = join(dir, '_ephemeral');
  for (const fs of ['vfat', 'ext4'] as const) {
    await createEphemeral(join(dir, `eph-${fs}-a.qcow2`), 1, { fs, baseDir });
    await createEphemeral(join(dir, `eph-${fs}-b.qcow2`), 1, { fs, baseDir });
    const base = join(baseDir, `ephemeral_1_${fs}`);
    for (const x of ['a', 'b']) {
      const info = await imageInfo(join(dir, `eph-${fs}-${x}.qcow2`));
      assert.equal(info.backingFile, base);
      assert.equal(info.virtualSize, 1024 * MiB);
    }
    // Read what the guest would see at the start of the disk through the overlay.
    await run('qemu-img', ['convert', '-O', 'raw', join(dir, `eph-${fs}-a.qcow2`), join(dir, `eph-${fs}.raw`)]);
    const head = readFileSync(join(dir, `eph-${fs}.raw`)).subarray(0, 4096);
    if (fs === 'ext4') assert.equal(head.readUInt16LE(1024 + 56), 0xef53, 'ext4 superblock magic');
    else assert.match(head.toString('latin1', 0, 512), /EPHEMERAL0\s*FAT/, 'FAT boot sector with the label');
    rmSync(join(dir, `eph-${fs}.raw`));
  }
  assert.deepEqual(readdirSync(baseDir).sort(), ['ephemeral_1_ext4', 'ephemeral_1_vfat'], 'one base each, no leftovers');
});
