/**
 * Chunked backups (the idea of Cinder's chunked backup driver): the volume's content is
 * cut into 4 MiB objects made of 64 KiB blocks; every block's sha256 is kept (hashes.bin,
 * 32 bytes per block, all-zero for a block of zeros), and an object stores only the
 * blocks that differ from the parent backup's (all non-zero blocks for a full backup),
 * zlib-compressed, named with its sha256 in the metadata. Blocks that became zero since the
 * parent are listed, not stored. Unallocated ranges are never read (qemu-img map), so zero
 * blocks cost nothing.
 *
 * Target layout: `<dir>/<backupId>/` with obj-<n> files, hashes.bin and metadata.json;
 * everything is written temp+fsync+rename and metadata.json last: a backup exists exactly
 * when its metadata does. Restore applies full → ... → incremental onto a sparse raw file
 * and converts that into a qcow2.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflate, inflate } from 'node:zlib';
import type { BackupReply, BackupRequest, BackupTarget } from '../../../bus/volume.ts';
import type { Logger } from '../../../common/logger.ts';
import { checkId, qemuTool, removeDurable, writeFileDurable } from './files.ts';

export const BLOCK = 64 * 1024;
export const OBJECT = 4 * 1024 * 1024;
const PER_OBJECT = OBJECT / BLOCK;
const ZERO_HASH = Buffer.alloc(32);
const deflateAsync = promisify(deflate);
const inflateAsync = promisify(inflate);

interface BackupObject { name: string; sha256: string; blocks: number[] }
export interface BackupMetadata {
  version: 1;
  backupId: string;
  parentId?: string;
  volumeId: string;
  snapshotId?: string;
  volumeSize: number;
  blockSize: number;
  objectSize: number;
  /** sha256 of hashes.bin. */
  hashesSha256: string;
  objects: BackupObject[];
  /** Blocks that are zero now but were not in the parent. */
  zeros: number[];
  /** Bytes stored (compressed objects). */
  storedBytes: number;
  createdAt: string;
}

function backupDir(target: BackupTarget, backupId: string): string {
  if (target.kind !== 'directory') throw new Error(`Backups to ${target.kind} are not available on this host yet; configure a backup directory.`);
  if (!target.path.startsWith('/')) throw new Error(`backup directory must be an absolute path: ${target.path}`);
  return join(target.path, checkId('backup', backupId));
}

async function readMetadata(target: BackupTarget, backupId: string): Promise<BackupMetadata | undefined> {
  try { return JSON.parse(await readFile(join(backupDir(target, backupId), 'metadata.json'), 'utf8')) as BackupMetadata; } catch { return undefined; }
}

async function readHashes(target: BackupTarget, meta: BackupMetadata): Promise<Buffer> {
  const buf = await readFile(join(backupDir(target, meta.backupId), 'hashes.bin'));
  if (createHash('sha256').update(buf).digest('hex') !== meta.hashesSha256) throw new Error(`backup ${meta.backupId}: hashes.bin is corrupt`);
  return buf;
}

/** The ranges of `src` (a qcow2 chain) that hold data: qemu-img map, across the whole chain. */
async function dataBlocks(src: string): Promise<Set<number>> {
  const map = JSON.parse(await qemuTool('qemu-img', ['map', '-U', '--output=json', '-f', 'qcow2', src])) as Array<{ start: number; length: number; data: boolean; zero: boolean }>;
  const blocks = new Set<number>();
  for (const e of map) {
    if (!e.data || e.zero) continue;
    for (let b = Math.floor(e.start / BLOCK); b * BLOCK < e.start + e.length; b++) blocks.add(b);
  }
  return blocks;
}

/** Back up the qcow2 chain at `src` (a point-in-time view: nothing writes to it). */
export async function backupVolume(src: string, req: BackupRequest, log: Logger): Promise<BackupReply> {
  const dir = backupDir(req.target, req.backupId);
  const done = await readMetadata(req.target, req.backupId);
  if (done) return { sizeBytes: done.storedBytes, objectCount: done.objects.length }; // a retry
  let parentHashes: Buffer = Buffer.alloc(0);
  if (req.parentId) {
    const parent = await readMetadata(req.target, req.parentId);
    if (!parent) throw new Error(`Parent backup ${req.parentId} could not be found in the backup target.`);
    parentHashes = await readHashes(req.target, parent);
  }
  const t0 = Date.now();
  const info = JSON.parse(await qemuTool('qemu-img', ['info', '-U', '--output=json', '-f', 'qcow2', src])) as { 'virtual-size': number };
  const size = info['virtual-size'];
  const data = await dataBlocks(src);
  await rm(dir, { recursive: true, force: true }); // what an interrupted attempt left
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A sparse raw copy to read blocks from: only the allocated data takes space.
  const raw = join(dir, '.tmp-read.raw');
  const hashes = Buffer.alloc(Math.ceil(size / BLOCK) * 32);
  const objects: BackupObject[] = [];
  const zeros: number[] = [];
  let stored = 0;
  try {
    await qemuTool('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', '-S', '64k', src, raw]);
    const fh = await open(raw, 'r');
    try {
      const nBlocks = hashes.length / 32;
      const block = Buffer.alloc(BLOCK);
      for (let first = 0; first < nBlocks; first += PER_OBJECT) {
        const parts: Buffer[] = [];
        const indices: number[] = [];
        for (let b = first; b < Math.min(first + PER_OBJECT, nBlocks); b++) {
          let hash: Buffer = ZERO_HASH;
          let len = 0;
          if (data.has(b)) {
            len = Math.min(BLOCK, size - b * BLOCK);
            await fh.read(block, 0, len, b * BLOCK);
            const bytes = block.subarray(0, len);
            if (bytes.some((x) => x !== 0)) hash = createHash('sha256').update(bytes).digest();
          }
          hash.copy(hashes, b * 32);
          const before = b * 32 < parentHashes.length ? parentHashes.subarray(b * 32, b * 32 + 32) : ZERO_HASH;
          if (hash.equals(before)) continue;
          if (hash === ZERO_HASH) { zeros.push(b); continue; }
          parts.push(Buffer.from(block.subarray(0, len)));
          indices.push(b);
        }
        if (!indices.length) continue;
        const body = await deflateAsync(Buffer.concat(parts));
        const name = `obj-${String(first / PER_OBJECT).padStart(8, '0')}`;
        await writeFileDurable(join(dir, name), body, 0o600);
        objects.push({ name, sha256: createHash('sha256').update(body).digest('hex'), blocks: indices });
        stored += body.length;
      }
    } finally {
      await fh.close();
    }
  } finally {
    await rm(raw, { force: true });
  }
  await writeFileDurable(join(dir, 'hashes.bin'), hashes, 0o600);
  const meta: BackupMetadata = {
    version: 1, backupId: req.backupId, parentId: req.parentId, volumeId: req.volumeId, snapshotId: req.snapshotId, volumeSize: size,
    blockSize: BLOCK, objectSize: OBJECT, hashesSha256: createHash('sha256').update(hashes).digest('hex'), objects, zeros, storedBytes: stored,
    createdAt: new Date().toISOString(),
  };
  await writeFileDurable(join(dir, 'metadata.json'), JSON.stringify(meta), 0o600);
  log.info({ backup: req.backupId, parent: req.parentId, objects: objects.length, stored, dataBlocks: data.size, ms: Date.now() - t0 }, 'backup written');
  return { sizeBytes: stored, objectCount: objects.length };
}

async function applyBackup(target: BackupTarget, meta: BackupMetadata, fh: FileHandle): Promise<void> {
  const dir = backupDir(target, meta.backupId);
  for (const obj of meta.objects) {
    const body = await readFile(join(dir, obj.name));
    if (createHash('sha256').update(body).digest('hex') !== obj.sha256) throw new Error(`backup ${meta.backupId}: object ${obj.name} is corrupt (sha256 mismatch)`);
    const data = await inflateAsync(body);
    let off = 0;
    for (const b of obj.blocks) {
      const len = Math.min(meta.blockSize, meta.volumeSize - b * meta.blockSize);
      await fh.write(data, off, len, b * meta.blockSize);
      off += len;
    }
    if (off !== data.length) throw new Error(`backup ${meta.backupId}: object ${obj.name} has ${data.length} bytes, its blocks ${off}`);
  }
  const zero = Buffer.alloc(meta.blockSize);
  for (const b of meta.zeros) await fh.write(zero, 0, Math.min(meta.blockSize, meta.volumeSize - b * meta.blockSize), b * meta.blockSize);
}

/**
 * Restore the chain (full first) into a new qcow2 at `dest` of at least `minBytes`
 * (the backup's size otherwise). Returns the image's size in bytes.
 */
export async function restoreChain(target: BackupTarget, chain: string[], dest: string, minBytes: number, log: Logger): Promise<number> {
  if (!chain.length) throw new Error('A restore needs at least one backup.');
  const metas: BackupMetadata[] = [];
  for (const [i, id] of chain.entries()) {
    const m = await readMetadata(target, id);
    if (!m) throw new Error(`Backup ${id} could not be found in the backup target.`);
    const expectParent = i === 0 ? undefined : chain[i - 1];
    if (m.parentId !== expectParent) throw new Error(`Backup ${id} is not ${expectParent ? `an incremental of ${expectParent}` : 'a full backup'}; the chain is out of order.`);
    metas.push(m);
  }
  const last = metas[metas.length - 1]!;
  const size = Math.max(last.volumeSize, minBytes);
  const raw = `${dest}.raw`;
  const t0 = Date.now();
  try {
    const fh = await open(raw, 'wx', 0o600);
    try {
      await fh.truncate(size);
      for (const m of metas) await applyBackup(target, m, fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await qemuTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '-S', '64k', raw, dest]);
  } finally {
    await rm(raw, { force: true });
  }
  log.info({ chain, bytes: size, ms: Date.now() - t0 }, 'backup chain restored');
  return size;
}

/** Remove a backup (metadata first: a half-removed backup is recognisably gone). */
export async function deleteBackup(target: BackupTarget, backupId: string, log: Logger): Promise<boolean> {
  const dir = backupDir(target, backupId);
  if (!existsSync(dir)) return false;
  await removeDurable(join(dir, 'metadata.json'));
  await rm(dir, { recursive: true, force: true });
  log.info({ backup: backupId }, 'backup deleted');
  return true;
}
