import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/logger.ts';

/** The tiny guest's built images (guest/build.sh): both boot forms share the initramfs. */
export interface GuestImages {
  dir: string;
  /** Debian kernel release, e.g. 6.1.0-56-amd64. */
  kernelVersion: string;
  /** Fast form: uncompressed kernel with a PVH entry, for `-M microvm ... -kernel`. */
  vmlinux: string;
  /** Uncompressed initramfs (`-initrd` of the fast form; also inside disk.qcow2). */
  initramfs: string;
  /** Whole-disk form: MBR + FAT16 + syslinux + vmlinuz + initramfs, boots through SeaBIOS. */
  disk: string;
}

export interface EnsureGuestImagesOptions {
  /** Build even when the outputs are up to date. */
  rebuild?: boolean;
  log?: Logger;
  /** The guest sources (default: this checkout's guest/); for tests. */
  guestDir?: string;
  /** How long to wait for another process's build of the same dir (default 30 min). */
  lockTimeoutMs?: number;
}

/** Files whose content decides whether a built dir is current; guest/build.sh hashes the same list, in this order. */
export const GUEST_SOURCES = ['build.sh', 'init', 'udhcpc.script'] as const;
const OUTPUTS = ['vmlinux', 'initramfs.cpio', 'disk.qcow2', 'kernel-version'] as const;
const DEFAULT_GUEST_DIR = fileURLToPath(new URL('../../guest/', import.meta.url));
const LOG_TAIL_LINES = 40;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** The sources' stamp, as guest/build.sh writes it: sha256 of `sha256sum build.sh init udhcpc.script`'s output. */
export async function guestSourceStamp(guestDir: string = DEFAULT_GUEST_DIR): Promise<string> {
  let listing = '';
  for (const name of GUEST_SOURCES) listing += `${sha256(await readFile(join(guestDir, name)))}  ${name}\n`;
  return sha256(listing);
}

/** The images in dir when every output is there and the stamp matches; otherwise undefined. */
async function upToDate(dir: string, stamp: string): Promise<GuestImages | undefined> {
  try {
    if ((await readFile(join(dir, 'stamp'), 'utf8')).trim() !== stamp) return undefined;
    for (const f of OUTPUTS) if ((await stat(join(dir, f))).size === 0) return undefined;
    const kernelVersion = (await readFile(join(dir, 'kernel-version'), 'utf8')).trim();
    return { dir, kernelVersion, vmlinux: join(dir, 'vmlinux'), initramfs: join(dir, 'initramfs.cpio'), disk: join(dir, 'disk.qcow2') };
  } catch {
    return undefined;
  }
}

/**
 * Returns the tiny guest's images in dir (the product uses `<dataDir>/guest`), running
 * guest/build.sh first when an output is missing, the stamp does not match the guest
 * sources, or `rebuild` is asked. Builds are serialized by an flock(1) on `dir/.build.lock`
 * (released by the kernel if the builder dies); a waiter whose turn comes finds the dir
 * current and build.sh returns at once. Throws an Error carrying the tail of the build log.
 */
export async function ensureGuestImages(dir: string, opts: EnsureGuestImagesOptions = {}): Promise<GuestImages> {
  const guestDir = opts.guestDir ?? DEFAULT_GUEST_DIR;
  const stamp = await guestSourceStamp(guestDir);
  if (!opts.rebuild) {
    const current = await upToDate(dir, stamp);
    if (current) return current;
  }
  await mkdir(dir, { recursive: true });
  opts.log?.info({ dir, rebuild: !!opts.rebuild }, 'guest images: building (guest/build.sh)');
  const started = Date.now();
  const { code, output } = await runBuild(guestDir, dir, !!opts.rebuild, opts.lockTimeoutMs ?? 30 * 60_000);
  const tail = output.split('\n').filter(Boolean).slice(-LOG_TAIL_LINES).join('\n');
  if (code !== 0) {
    const why = code === 75 ? `another build of ${dir} held the lock too long` : `guest/build.sh ${dir} failed (${code})`;
    throw new Error(`${why}:\n${tail}`);
  }
  const images = await upToDate(dir, await guestSourceStamp(guestDir));
  if (!images) throw new Error(`guest/build.sh ${dir} finished but the outputs are missing or stale (did guest/ change meanwhile?):\n${tail}`);
  const built = /guest\/build\.sh: built /.test(output);
  opts.log?.info({ dir, kernelVersion: images.kernelVersion, built, ms: Date.now() - started },
    built ? 'guest images: built' : 'guest images: up to date (built by another process)');
  return images;
}

/** guest/build.sh under an exclusive lock; exit code 75 (EX_TEMPFAIL) when the lock wait times out. */
function runBuild(guestDir: string, dir: string, force: boolean, lockTimeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const args = ['-w', String(Math.max(1, Math.ceil(lockTimeoutMs / 1000))), '-E', '75', join(dir, '.build.lock'),
      join(guestDir, 'build.sh'), dir];
    const child = spawn('flock', args, {
      env: { ...process.env, FORCE: force ? '1' : '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Keep only the end of the log: the tail is what a failure report needs.
    let output = '';
    const keep = (d: Buffer) => { output = (output + d.toString()).slice(-64 * 1024); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output: signal ? `${output}\nkilled by ${signal}` : output }));
  });
}
