import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PayloadTooLarge } from '../../common/errors.ts';
import { HEAD_BYTES, TAIL_BYTES, type Sample } from './format.ts';

export interface PutResult { size: number; md5: string; sha512: string }
export interface ByteRange { start: number; end: number }

/**
 * Where image bytes live. The local directory store is the first implementation; the
 * object store implements the same interface. `put` streams (never buffers the whole
 * image), lets the caller check a sample before the data becomes visible, and commits
 * atomically: either the whole verified image is stored under `id`, or nothing is.
 */
export interface ImageStore {
  put(id: string, data: Readable | NodeJS.ReadableStream, opts?: { maxBytes?: number; check?: (s: Sample & PutResult) => void | Promise<void> }): Promise<PutResult>;
  /** The data, or a byte range of it (inclusive end). */
  get(id: string, range?: ByteRange): Promise<Readable>;
  delete(id: string): Promise<void>;
  has(id: string): Promise<boolean>;
  /** A path on this host when the store is local (the compute agent's image cache), else null. */
  localPath(id: string): string | null;
  /** Drop partial uploads left by a crash. */
  cleanup(): Promise<void>;
}

const SAFE_ID = /^[A-Za-z0-9-]{1,64}$/;

/** Images as files under `<dataDir>/images`; uploads go to tmp/, fsync, then rename. */
export class LocalImageStore implements ImageStore {
  private readonly tmp: string;
  constructor(readonly dir: string) {
    this.tmp = join(dir, 'tmp');
    mkdirSync(this.tmp, { recursive: true, mode: 0o700 });
  }

  private path(id: string): string {
    if (!SAFE_ID.test(id)) throw new Error(`invalid image id for the store: ${id}`);
    return join(this.dir, id);
  }

  async put(id: string, data: Readable | NodeJS.ReadableStream, opts: { maxBytes?: number; check?: (s: Sample & PutResult) => void | Promise<void> } = {}): Promise<PutResult> {
    const final = this.path(id);
    const tmp = join(this.tmp, `${id}.${process.pid}.${Date.now()}`);
    const md5 = createHash('md5');
    const sha = createHash('sha512');
    const headParts: Buffer[] = [];
    let headLen = 0;
    let tail = Buffer.alloc(0);
    let size = 0;
    const out = createWriteStream(tmp, { mode: 0o600 });
    const outDone = new Promise<void>((resolve, reject) => { out.once('finish', resolve); out.once('error', reject); });
    try {
      for await (const c of data as AsyncIterable<Buffer | string>) {
        const chunk = typeof c === 'string' ? Buffer.from(c) : c;
        size += chunk.length;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new PayloadTooLarge(`Image exceeds the image size limit of ${opts.maxBytes} bytes.`);
        md5.update(chunk);
        sha.update(chunk);
        if (headLen < HEAD_BYTES) { const part = chunk.subarray(0, HEAD_BYTES - headLen); headParts.push(Buffer.from(part)); headLen += part.length; }
        tail = chunk.length >= TAIL_BYTES ? Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES)) : Buffer.concat([tail, chunk]).subarray(-TAIL_BYTES);
        if (!out.write(chunk)) await once(out, 'drain'); // rejects on 'error' and removes its listeners
      }
      out.end();
      await outDone;
      const result: PutResult = { size, md5: md5.digest('hex'), sha512: sha.digest('hex') };
      if (opts.check) await opts.check({ ...result, head: Buffer.concat(headParts), tail, size });
      const fh = await open(tmp, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
      await rename(tmp, final);
      const dh = await open(this.dir, 'r');
      try { await dh.sync(); } finally { await dh.close(); }
      return result;
    } catch (err) {
      out.destroy();
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(id: string, range?: ByteRange): Promise<Readable> {
    const p = this.path(id);
    return createReadStream(p, range ? { start: range.start, end: range.end } : {});
  }

  async delete(id: string): Promise<void> { await rm(this.path(id), { force: true }); }

  async has(id: string): Promise<boolean> {
    try { return (await stat(this.path(id))).isFile(); } catch { return false; }
  }

  localPath(id: string): string | null {
    const p = this.path(id);
    return existsSync(p) ? p : null;
  }

  async cleanup(): Promise<void> {
    for (const f of readdirSync(this.tmp)) rmSync(join(this.tmp, f), { force: true });
  }
}
