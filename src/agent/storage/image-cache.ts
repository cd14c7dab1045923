/**
 * The host's cache of base images (`<dataDir>/images/_base/<imageId>`), what instance
 * root overlays are backed by — Nova's `instances/_base`. An image is fetched once:
 * concurrent callers for the same image share one download; the bytes are hashed on
 * the way in, written to a temporary file, fsynced, checked against the expected
 * sha512 (Glance's os_hash_value) and only then renamed into place, so a crash never
 * leaves a partial base behind under the final name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../common/logger.ts';
import { imageInfo } from './disks.ts';

/** Where the image bytes come from: a download, or a file already on this host. */
export type ImageSource = (() => Promise<Readable>) | { localPath: string };

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

export class ImageCache {
  readonly dir: string;
  private inflight = new Map<string, Promise<string>>();
  private readonly log?: Logger;

  constructor(opts: { dataDir: string; log?: Logger }) {
    this.dir = join(opts.dataDir, 'images', '_base');
    this.log = opts.log;
  }

  /** The cached file's path (whether or not it exists yet). */
  pathOf(imageId: string): string {
    if (!ID.test(imageId)) throw new Error(`invalid image id ${JSON.stringify(imageId)}`);
    return join(this.dir, imageId);
  }

  /**
   * The local path of the image, fetching it first when it is not cached. With
   * `expectedSha512` the bytes must hash to it (hex, case-insensitive) or nothing is kept.
   */
  ensure(imageId: string, expectedSha512: string | undefined, source: ImageSource): Promise<string> {
    let dest: string;
    try { dest = this.pathOf(imageId); } catch (e) { return Promise.reject(e); }
    const running = this.inflight.get(imageId);
    if (running) return running;
    const p = this.fetchOnce(imageId, dest, expectedSha512?.toLowerCase(), source)
      .finally(() => this.inflight.delete(imageId));
    this.inflight.set(imageId, p);
    return p;
  }

  private async fetchOnce(imageId: string, dest: string, sha: string | undefined, source: ImageSource): Promise<string> {
    try {
      await stat(dest);
      const now = new Date();
      await utimes(dest, now, (await stat(dest)).mtime).catch(() => undefined); // last use, for prune()
      return dest;
    } catch { /* not cached */ }
    await mkdir(this.dir, { recursive: true });
    const started = Date.now();
    const tmp = join(this.dir, `.${imageId}.part-${randomBytes(4).toString('hex')}`);
    try {
      if (typeof source !== 'function' && !sha) {
        // A file on this host and nothing to verify: a hard link costs nothing (same filesystem).
        try {
          await link(source.localPath, tmp);
        } catch {
          await this.copyInto(createReadStream(source.localPath), tmp);
        }
      } else {
        const input = typeof source === 'function' ? await source() : createReadStream(source.localPath);
        const digest = await this.copyInto(input, tmp);
        if (sha && digest !== sha) {
          throw new Error(`image ${imageId}: sha512 mismatch (expected ${sha.slice(0, 16)}…, got ${digest.slice(0, 16)}…)`);
        }
      }
      await this.checkSafe(imageId, tmp);
      await rename(tmp, dest);
      await fsyncPath(this.dir);
      const size = (await stat(dest)).size;
      this.log?.info({ imageId, bytes: size, ms: Date.now() - started }, 'image cached');
      return dest;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /** Stream into `tmp` (fsynced), returning the sha512 hex of the bytes. */
  private async copyInto(input: Readable, tmp: string): Promise<string> {
    const hash = createHash('sha512');
    const tap = new Transform({ transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); } });
    const out = createWriteStream(tmp, { flags: 'wx' });
    await pipeline(input, tap, out);
    await fsyncPath(tmp);
    return hash.digest('hex');
  }

  /** A qcow2 from a user may name a backing file (any host file): refuse it, as Nova does. */
  private async checkSafe(imageId: string, path: string): Promise<void> {
    const info = await imageInfo(path);
    if (info.backingFile) throw new Error(`image ${imageId} has a backing file (${info.backingFile}); refusing it`);
  }

  /** Remove cached bases not in `inUse` and unused for at least `minAgeMs`. Returns the removed ids. */
  async prune(inUse: Iterable<string>, minAgeMs = 24 * 3600_000): Promise<string[]> {
    const keep = new Set(inUse);
    let names: string[];
    try { names = await readdir(this.dir); } catch { return []; }
    const removed: string[] = [];
    for (const name of names) {
      if (keep.has(name) || this.inflight.has(name)) continue;
      if (name.startsWith('.') && !name.includes('.part-')) continue;
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (!st || Date.now() - Math.max(st.atimeMs, st.mtimeMs) < minAgeMs) continue;
      await rm(join(this.dir, name), { force: true });
      if (!name.startsWith('.')) removed.push(name); // leftovers of an interrupted download go silently
    }
    if (removed.length) this.log?.info({ removed }, 'pruned base images');
    return removed;
  }
}
