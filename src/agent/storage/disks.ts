/**
 * Instance disks on the host: a qcow2 overlay over the cached base image for the root
 * disk (O(1) whatever the image size: only the header is written), formatted ephemeral
 * disks (overlays on a formatted base) and raw swap. All through `qemu-img`, as Nova's libvirt imagebackend
 * does for its qcow2 backend.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface ImageInfo {
  format: string;
  virtualSize: number;
  actualSize?: number;
  backingFile?: string;
  backingFormat?: string;
}

async function qemuImg(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('qemu-img', args, { maxBuffer: 16 * MiB });
    return stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string; code?: string | number };
    if (err.code === 'ENOENT') throw new Error('qemu-img is not installed (Debian package qemu-utils)');
    const msg = (err.stderr ?? err.message).trim().replace(/^qemu-img: /, '');
    throw new Error(`qemu-img ${args[0]} failed: ${msg}`);
  }
}

/** `qemu-img info` of one image (not its chain). `-U`: works while QEMU has it open. */
export async function imageInfo(path: string, format?: string): Promise<ImageInfo> {
  const args = ['info', '-U', '--output=json'];
  if (format) args.push('-f', format);
  const j = JSON.parse(await qemuImg([...args, path])) as {
    format: string; 'virtual-size': number; 'actual-size'?: number;
    'backing-filename'?: string; 'full-backing-filename'?: string; 'backing-filename-format'?: string;
  };
  return {
    format: j.format,
    virtualSize: j['virtual-size'],
    actualSize: j['actual-size'],
    backingFile: j['full-backing-filename'] ?? j['backing-filename'],
    backingFormat: j['backing-filename-format'],
  };
}

/** The virtual size in bytes (what the guest sees). */
export async function virtualSize(path: string, format?: string): Promise<number> {
  return (await imageInfo(path, format)).virtualSize;
}

/**
 * The root disk: a qcow2 overlay backed by `base`. `sizeGb` (the flavor's root_gb):
 * undefined or 0 keeps the image's own size; larger grows the disk; smaller than the
 * image's virtual size is refused (Nova's FlavorDiskSmallerThanImage).
 */
export async function createRootOverlay(base: string, baseFormat: 'qcow2' | 'raw', dest: string, sizeGb?: number): Promise<void> {
  if (!base.startsWith('/')) throw new Error(`base image path must be absolute: ${base}`);
  const baseSize = await virtualSize(base, baseFormat);
  const args = ['create', '-q', '-f', 'qcow2', '-b', base, '-F', baseFormat, dest];
  if (sizeGb !== undefined && sizeGb > 0) {
    const want = Math.round(sizeGb * GiB);
    if (want < baseSize) {
      throw new Error(`Flavor's disk is too small for requested image. Flavor disk is ${want} bytes, image is ${baseSize} bytes.`);
    }
    if (want > baseSize) args.push(String(want));
  }
  await qemuImg(args);
}

/** Grow a disk to sizeGb (resize to a larger flavor); a disk already that large is left alone. Never shrinks. */
export async function growDisk(path: string, sizeGb: number, format: 'qcow2' | 'raw' = 'qcow2'): Promise<boolean> {
  const want = Math.round(sizeGb * GiB);
  const have = await virtualSize(path, format);
  if (want <= have) return false;
  await qemuImg(['resize', '-q', '-f', format, path, String(want)]);
  return true;
}

export type EphemeralFormat = 'vfat' | 'ext4';

/**
 * An ephemeral disk of sizeGb. With `format`, a qcow2 overlay on a formatted base kept in
 * `baseDir` (`ephemeral_<size>_<fs>`, made once per size and filesystem with mkfs on a
 * sparse file, labelled `ephemeral0`: Nova's libvirt does the same), so every instance
 * gets a formatted disk for the cost of an overlay. Without, a blank qcow2 disk.
 */
export async function createEphemeral(dest: string, sizeGb: number, format?: { fs: EphemeralFormat; baseDir: string }): Promise<void> {
  if (!(sizeGb > 0)) throw new Error(`ephemeral size must be positive, got ${sizeGb}`);
  if (!format) {
    await qemuImg(['create', '-q', '-f', 'qcow2', dest, String(Math.round(sizeGb * GiB))]);
    return;
  }
  const base = join(format.baseDir, `ephemeral_${sizeGb}_${format.fs}`);
  if (!existsSync(base)) {
    await mkdir(format.baseDir, { recursive: true });
    const tmp = `${base}.part-${randomBytes(4).toString('hex')}`;
    try {
      const fh = await open(tmp, 'wx');
      try { await fh.truncate(Math.round(sizeGb * GiB)); } finally { await fh.close(); }
      if (format.fs === 'ext4') await run('mkfs.ext4', ['-q', '-F', '-L', 'ephemeral0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', tmp]);
      else await run('mkfs.vfat', ['-n', 'EPHEMERAL0', tmp]);
      await rename(tmp, base);
    } catch (e) {
      await rm(tmp, { force: true });
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      throw new Error(`formatting the ${format.fs} ephemeral base failed: ${(err.stderr ?? err.message).trim()}`);
    }
  }
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', dest]);
}

/** Raw swap of sizeMb, sparse, with a swap signature when `mkswap` is on this host. */
export async function createSwap(dest: string, sizeMb: number): Promise<void> {
  if (!(sizeMb > 0)) throw new Error(`swap size must be positive, got ${sizeMb}`);
  const fh = await open(dest, 'wx');
  try { await fh.truncate(Math.round(sizeMb * MiB)); } finally { await fh.close(); }
  try {
    await run('mkswap', ['-L', 'swap0', dest]);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') return; // no mkswap here: leave it raw, the guest can mkswap
    await rm(dest, { force: true });
    throw new Error(`mkswap ${dest} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

/**
 * A standalone copy of an image chain (no backing file), e.g. an instance's root disk
 * for a snapshot. `-U` reads images a running QEMU holds open; callers pause the guest
 * (or otherwise quiesce it) first for a consistent copy.
 */
export async function convertImage(src: string, dest: string, format: 'qcow2' | 'raw', opts: { forceShare?: boolean } = {}): Promise<void> {
  const args = ['convert', '-O', format];
  if (opts.forceShare) args.push('-U');
  await qemuImg([...args, src, dest]);
}
