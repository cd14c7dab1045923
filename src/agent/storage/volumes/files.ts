/**
 * The small durable-file and QEMU-tool helpers the volume pool is built on: write a file
 * so that a crash leaves either the old or the new content (temp, fsync, rename, fsync
 * the directory), read a qcow2 header without spawning a process, and run qemu-img /
 * qemu-io with their error text kept.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const GiB = 1024 ** 3;

/** Ids the pool turns into file names: no dots or slashes, so a name never escapes the pool. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
export function checkId(kind: string, id: string): string {
  if (typeof id !== 'string' || !ID.test(id)) throw new Error(`invalid ${kind} id ${JSON.stringify(id)}`);
  return id;
}

/**
 * Whether files in `dir` can be opened with O_DIRECT (ext4, xfs: yes; tmpfs: no), so QEMU
 * may open volumes there with cache.direct=on, as Nova's libvirt driver checks before it
 * picks cache=none.
 */
export async function directIoSupported(dir: string): Promise<boolean> {
  const probe = join(dir, `.tmp-odirect-${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(probe, constants.O_CREAT | constants.O_WRONLY | constants.O_DIRECT, 0o600);
    await fh.close();
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { force: true });
  }
}

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/** A temporary name beside `path`, recognisable by start-up cleanup (`.tmp-` prefix). */
export function tempBeside(path: string): string {
  return join(dirname(path), `.tmp-${randomBytes(4).toString('hex')}-${basename(path)}`);
}

/** Make `tmp` (already written) durable under `dest`: fsync it, rename, fsync the directory. */
export async function commitFile(tmp: string, dest: string): Promise<void> {
  await fsyncPath(tmp);
  await rename(tmp, dest);
  await fsyncPath(dirname(dest));
}

/** Write `data` to `dest` atomically and durably. */
export async function writeFileDurable(dest: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempBeside(dest);
  try {
    const fh = await open(tmp, 'wx', mode);
    try { await fh.writeFile(data); } finally { await fh.close(); }
    await commitFile(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Remove a file and make the removal durable; false when it was not there. */
export async function removeDurable(path: string): Promise<boolean> {
  try {
    await rm(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  await fsyncPath(dirname(path));
  return true;
}

export interface Qcow2Header {
  virtualSize: number;
  /** The backing file as written in the header (may be relative to the image's directory). */
  backing?: string;
  /** `backing` resolved against the image's directory. */
  backingPath?: string;
}

/**
 * The fields of a qcow2 header the pool needs (QEMU's docs/interop/qcow2.txt: magic,
 * version, backing_file_offset u64 @8, backing_file_size u32 @16, size u64 @24), read
 * directly: the pool walks every chain on each GC and report, and a process per file
 * would cost more than the walk.
 */
export async function readQcow2Header(path: string): Promise<Qcow2Header> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(32);
    const { bytesRead } = await fh.read(head, 0, 32, 0);
    if (bytesRead < 32 || head.readUInt32BE(0) !== 0x514649fb) throw new Error(`${path} is not a qcow2 image`);
    const virtualSize = Number(head.readBigUInt64BE(24));
    const off = Number(head.readBigUInt64BE(8));
    const len = head.readUInt32BE(16);
    if (!off || !len) return { virtualSize };
    if (len > 1023) throw new Error(`${path}: backing file name too long`);
    const name = Buffer.alloc(len);
    await fh.read(name, 0, len, off);
    const backing = name.toString('utf8');
    return { virtualSize, backing, backingPath: resolve(dirname(path), backing) };
  } finally {
    await fh.close();
  }
}

/** Run a QEMU tool; the error carries its stderr (without the tool's name prefix). */
export async function qemuTool(tool: 'qemu-img' | 'qemu-io' | 'qemu-storage-daemon', args: string[], timeoutMs = 0): Promise<string> {
  try {
    const { stdout } = await run(tool, args, { maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs });
    return stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string; code?: string | number };
    if (err.code === 'ENOENT') throw new Error(`${tool} is not installed (Debian package qemu-utils / qemu-system-common)`);
    const msg = (err.stderr || err.message).trim().split('\n').map((l) => l.replace(new RegExp(`^${tool}: `), '')).join('; ');
    throw new Error(`${tool} ${args[0] ?? ''} failed: ${msg}`);
  }
}

/** True when a running QEMU holds the image open for writing (its lock refuses a consistent reader). */
export async function writeLocked(path: string): Promise<boolean> {
  try {
    await qemuTool('qemu-img', ['info', '--output=json', path]);
    return false;
  } catch (e) {
    if (/lock/i.test((e as Error).message)) return true;
    throw e;
  }
}

/** A promise-chain mutex: one holder at a time, in arrival order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => { release = r; });
    await prev;
    try { return await fn(); } finally { release(); }
  }
}
