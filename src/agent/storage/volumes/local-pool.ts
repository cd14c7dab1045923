/**
 * The local volume pool: qcow2 files under `<dataDir>/volumes/`, copy-on-write everywhere.
 *
 *   volume-<id>.qcow2       a volume's top: the only writable file, its path never changes
 *   layer-<id>.qcow2        immutable layers (a snapshot's is layer-<snapshotId>)
 *   snapshots/<id>.json     a snapshot exists: which volume, which layer, its size
 *   journal/<layer>.json    a freeze (snapshot) in flight, for crash recovery
 *   exports/<volumeId>/     a running NBD export (nbd-exports.ts)
 *
 * A volume from an image is an overlay over the host's cached base image (grown to the
 * requested size); a snapshot renames the top to a layer and puts a new empty top over
 * it (through the running QEMU when one holds the volume: blockdev-snapshot); volumes from
 * snapshots or other volumes are overlays over layers. A layer is removed only when no
 * top, snapshot, in-flight freeze or other layer's chain reaches it — derived from the
 * qcow2 headers on disk, so it survives restarts without a separate reference count.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import type { ImageRef } from '../../../bus/compute.ts';
import type {
  BackupReply, BackupRequest, BackupTarget, CreateVolumeReply, ExportRequest, ExtendReply, RestoreRequest,
  SnapshotReply, VolumeConnection, VolumeSource,
} from '../../../bus/volume.ts';
import type { Logger } from '../../../common/logger.ts';
import type { LiveVolumeOps } from '../../volume-agent.ts';
import { imageInfo } from '../disks.ts';
import type { ImageCache, ImageSource } from '../image-cache.ts';
import type { PoolCapacity, UploadImageRequest, VolumeBackend } from './backend.ts';
import { backupVolume, deleteBackup, restoreChain } from './backup.ts';
import {
  checkId, commitFile, directIoSupported, fsyncPath, GiB, Mutex, qemuTool, readQcow2Header, removeDurable, tempBeside, writeFileDurable, writeLocked,
} from './files.ts';
import { NbdExports } from './nbd-exports.ts';

interface SnapshotMarker { snapshotId: string; volumeId: string; layer: string; sizeBytes: number; createdAt: string }
interface FreezeJournal { volumeId: string; layerId: string; snapshotId?: string; live: boolean }
type Holder = { kind: 'instance'; uuid: string } | { kind: 'nbd' };

/** Glance disk formats → the QEMU format that reads them; qcow2 and raw can back an overlay directly. */
const QEMU_FORMAT: Record<string, string> = {
  qcow2: 'qcow2', raw: 'raw', ami: 'raw', ari: 'raw', aki: 'raw', iso: 'raw', vmdk: 'vmdk', vdi: 'vdi', vhd: 'vpc', vhdx: 'vhdx', ploop: 'parallels',
};

const gbOf = (bytes: number) => Math.ceil(bytes / GiB);

export class LocalQcow2Pool implements VolumeBackend {
  readonly backend = 'local-qcow2';
  readonly pool = 'default';
  readonly dir: string;
  private readonly snapDir: string;
  private readonly journalDir: string;
  private readonly nbd: NbdExports;
  /** The pool's filesystem takes O_DIRECT: volumes are opened with cache 'none' (probed at start). */
  private direct = false;
  /** Changes to the set of files (create, delete, freeze, GC) run one at a time. */
  private readonly lock = new Mutex();

  constructor(private readonly opts: {
    dataDir: string; host: string; hostIp: string; cache: ImageCache;
    source: (ref: ImageRef, token: string) => ImageSource; live: LiveVolumeOps; log: Logger;
  }) {
    this.dir = join(opts.dataDir, 'volumes');
    this.snapDir = join(this.dir, 'snapshots');
    this.journalDir = join(this.dir, 'journal');
    this.nbd = new NbdExports({ dir: join(this.dir, 'exports'), hostIp: opts.hostIp, log: opts.log });
  }

  topPath(volumeId: string): string { return join(this.dir, `volume-${checkId('volume', volumeId)}.qcow2`); }
  private layerPath(layerId: string): string { return join(this.dir, `layer-${checkId('layer', layerId)}.qcow2`); }
  private markerPath(snapshotId: string): string { return join(this.snapDir, `${checkId('snapshot', snapshotId)}.json`); }

  async start(): Promise<void> {
    for (const d of [this.dir, this.snapDir, this.journalDir]) await mkdir(d, { recursive: true, mode: 0o700 });
    this.direct = await directIoSupported(this.dir);
    this.nbd.direct = this.direct;
    await this.lock.run(async () => {
      for (const name of await readdir(this.dir)) {
        if (name.startsWith('.tmp-')) await rm(join(this.dir, name), { force: true });
      }
      for (const name of await readdir(this.journalDir)) {
        if (name.startsWith('.tmp-')) { await rm(join(this.journalDir, name), { force: true }); continue; }
        const j = JSON.parse(await readFile(join(this.journalDir, name), 'utf8')) as FreezeJournal;
        await this.recoverFreeze(j);
      }
      await this.gc();
    });
    await this.nbd.start((volumeId) => this.topPath(volumeId));
  }

  async close(): Promise<void> { /* exports outlive the agent; nothing else runs in the background */ }

  // ---- create / delete / extend ---------------------------------------------------------

  async create(volumeId: string, sizeGb: number, source: VolumeSource, log: Logger): Promise<CreateVolumeReply> {
    const top = this.topPath(volumeId);
    if (!(Number.isInteger(sizeGb) && sizeGb >= 0)) throw new Error(`Invalid volume size ${JSON.stringify(sizeGb)}: must be a whole number of GB.`);
    if (existsSync(top)) return { sizeGb: gbOf((await readQcow2Header(top)).virtualSize) }; // done before (a retry)
    const t0 = Date.now();
    let made: CreateVolumeReply;
    switch (source.kind) {
      case 'empty':
        if (sizeGb < 1) throw new Error('Invalid volume size 0GB: a blank volume needs a size of at least 1GB.');
        made = await this.lock.run(() => this.newTop(top, sizeGb * GiB));
        break;
      case 'image': made = await this.fromImage(top, sizeGb, source.image, source.token); break;
      case 'snapshot': {
        const marker = await this.marker(source.snapshotId);
        if (!marker) throw new Error(`Snapshot ${source.snapshotId} could not be found in pool ${this.opts.host}.`);
        if (sizeGb && sizeGb * GiB < marker.sizeBytes) {
          throw new Error(`Volume size '${sizeGb}'GB cannot be smaller than the snapshot size ${gbOf(marker.sizeBytes)}GB. They must be >= original snapshot size.`);
        }
        made = await this.lock.run(() => this.newTop(top, Math.max(sizeGb * GiB, marker.sizeBytes), join(this.dir, marker.layer)));
        break;
      }
      case 'volume': {
        const srcTop = this.topPath(source.volumeId);
        if (!existsSync(srcTop)) throw new Error(`Volume ${source.volumeId} could not be found in pool ${this.opts.host}.`);
        const srcSize = (await readQcow2Header(srcTop)).virtualSize;
        if (sizeGb && sizeGb * GiB < srcSize) {
          throw new Error(`Volume size '${sizeGb}'GB cannot be smaller than original volume size ${gbOf(srcSize)}GB. They must be >= original volume size.`);
        }
        const layerId = `clone-${volumeId}`;
        await this.freeze(source.volumeId, layerId, undefined, log);
        made = await this.lock.run(() => this.newTop(top, Math.max(sizeGb * GiB, srcSize), this.layerPath(layerId)));
        break;
      }
      case 'backup': {
        const tmp = tempBeside(top);
        try {
          const bytes = await restoreChain(source.target, source.chain.map((p) => p.backupId), tmp, sizeGb * GiB, log);
          await this.lock.run(() => commitFile(tmp, top));
          made = { sizeGb: gbOf(bytes) };
        } finally {
          await rm(tmp, { force: true });
        }
        break;
      }
    }
    log.info({ volume: volumeId, source: source.kind, sizeGb: made.sizeGb, ms: Date.now() - t0 }, 'volume created');
    return made;
  }

  /** A new top at `top` of `bytes`, empty or an overlay over `backing` (a path in the pool or the image cache). */
  private async newTop(top: string, bytes: number, backing?: string, backingFormat = 'qcow2'): Promise<CreateVolumeReply> {
    if (existsSync(top)) return { sizeGb: gbOf((await readQcow2Header(top)).virtualSize) };
    const tmp = tempBeside(top);
    try {
      const args = ['create', '-q', '-f', 'qcow2'];
      // Relative backing names keep the pool movable; -u: the backing may be held open by a running QEMU.
      if (backing) args.push('-u', '-b', relative(this.dir, backing), '-F', backingFormat);
      await qemuTool('qemu-img', [...args, tmp, String(bytes)]);
      await commitFile(tmp, top);
    } finally {
      await rm(tmp, { force: true });
    }
    return { sizeGb: gbOf(bytes) };
  }

  private async fromImage(top: string, sizeGb: number, image: ImageRef, token: string): Promise<CreateVolumeReply> {
    const format = QEMU_FORMAT[image.diskFormat];
    if (!format) throw new Error(`Image ${image.id} has disk format ${image.diskFormat}, which cannot become a volume.`);
    const base = await this.opts.cache.ensure(image.id, image.sha512, this.opts.source(image, token));
    const info = await imageInfo(base, format);
    const want = (sizeGb || gbOf(info.virtualSize)) * GiB;
    if (info.virtualSize > want) {
      throw new Error(`Image virtual size is ${gbOf(info.virtualSize)}GB and doesn't fit in a volume of size ${want / GiB}GB.`);
    }
    if (format === 'qcow2' || format === 'raw') return this.lock.run(() => this.newTop(top, want, base, format));
    // Other formats cannot back a qcow2 overlay safely: convert once into the volume.
    const tmp = tempBeside(top);
    try {
      await qemuTool('qemu-img', ['convert', '-q', '-f', format, '-O', 'qcow2', base, tmp]);
      await qemuTool('qemu-img', ['resize', '-q', '-f', 'qcow2', tmp, String(want)]);
      await this.lock.run(() => commitFile(tmp, top));
    } finally {
      await rm(tmp, { force: true });
    }
    return { sizeGb: want / GiB };
  }

  async delete(volumeId: string, log: Logger): Promise<boolean> {
    const top = this.topPath(volumeId);
    return this.lock.run(async () => {
      if (!existsSync(top)) return false;
      if (await this.holder(volumeId)) throw new Error(`Volume ${volumeId} is still attached or exported; detach it before deleting it.`);
      await removeDurable(top);
      const removed = await this.gc();
      log.info({ volume: volumeId, layersRemoved: removed }, 'volume deleted');
      return true;
    });
  }

  async extend(volumeId: string, sizeGb: number, log: Logger): Promise<ExtendReply> {
    const top = this.topPath(volumeId);
    if (!(Number.isInteger(sizeGb) && sizeGb > 0)) throw new Error(`Invalid volume size ${JSON.stringify(sizeGb)}: must be a whole number of GB.`);
    return this.lock.run(async () => {
      if (!existsSync(top)) throw new Error(`Volume ${volumeId} could not be found in pool ${this.opts.host}.`);
      const have = (await readQcow2Header(top)).virtualSize;
      const want = sizeGb * GiB;
      const holder = await this.holder(volumeId);
      if (want < have) throw new Error(`New size for extend must be greater than current size. (current: ${gbOf(have)}, extended: ${sizeGb}).`);
      if (want === have) return { sizeGb, online: holder !== undefined }; // done before (a retry)
      if (holder?.kind === 'nbd') {
        // An NBD export's size is fixed while it is served (the daemon does not share the
        // resize permission) and QEMU's NBD client cannot grow a disk: refuse, changing nothing.
        throw new Error(`Volume ${volumeId} is attached to an instance on another host (NBD); it cannot be extended while attached there. Detach it, extend it, and attach it again.`);
      }
      if (holder?.kind === 'instance') await this.opts.live.resize(holder.uuid, volumeId, want);
      else await qemuTool('qemu-img', ['resize', '-q', '-f', 'qcow2', top, String(want)]);
      await fsyncPath(top);
      log.info({ volume: volumeId, from: have, to: want, holder }, 'volume extended');
      return { sizeGb, online: holder !== undefined };
    });
  }

  // ---- snapshots -------------------------------------------------------------------------

  async snapshotCreate(volumeId: string, snapshotId: string, log: Logger): Promise<SnapshotReply> {
    const existing = await this.marker(snapshotId);
    if (existing) {
      if (existing.volumeId !== volumeId) throw new Error(`Snapshot ${snapshotId} belongs to volume ${existing.volumeId}, not ${volumeId}.`);
      return { sizeGb: gbOf(existing.sizeBytes), online: false };
    }
    const online = await this.freeze(volumeId, snapshotId, snapshotId, log);
    const marker = await this.marker(snapshotId);
    if (!marker) throw new Error(`snapshot ${snapshotId} of volume ${volumeId} was not recorded`);
    log.info({ volume: volumeId, snapshot: snapshotId, online }, 'snapshot created');
    return { sizeGb: gbOf(marker.sizeBytes), online };
  }

  async snapshotDelete(volumeId: string, snapshotId: string, log: Logger): Promise<boolean> {
    return this.lock.run(async () => {
      const marker = await this.marker(snapshotId);
      if (!marker) return false;
      if (marker.volumeId !== volumeId) throw new Error(`Snapshot ${snapshotId} belongs to volume ${marker.volumeId}, not ${volumeId}.`);
      await removeDurable(this.markerPath(snapshotId));
      const removed = await this.gc();
      log.info({ volume: volumeId, snapshot: snapshotId, layersRemoved: removed }, 'snapshot deleted');
      return true;
    });
  }

  private async marker(snapshotId: string): Promise<SnapshotMarker | undefined> {
    try { return JSON.parse(await readFile(this.markerPath(snapshotId), 'utf8')) as SnapshotMarker; } catch { return undefined; }
  }

  /**
   * Freeze the volume's current content as layer `layerId` and continue it on a new top.
   * Returns whether a running QEMU was switched (online). Idempotent: a layer already made
   * (and the top already over it) is success. Journaled: recoverFreeze() finishes or undoes
   * it after a crash at any step.
   */
  private freeze(volumeId: string, layerId: string, snapshotId: string | undefined, log: Logger): Promise<boolean> {
    return this.lock.run(async () => {
      const top = this.topPath(volumeId);
      const layer = this.layerPath(layerId);
      if (existsSync(layer)) {
        if (existsSync(top) && (await readQcow2Header(top)).backingPath === layer) {
          if (snapshotId) await this.writeMarker(snapshotId, volumeId, layer);
          return false;
        }
        throw new Error(`layer ${layerId} exists but volume ${volumeId} is not on it`);
      }
      if (!existsSync(top)) throw new Error(`Volume ${volumeId} could not be found in pool ${this.opts.host}.`);
      const size = (await readQcow2Header(top)).virtualSize;
      const holder = await this.holder(volumeId);
      const j: FreezeJournal = { volumeId, layerId, snapshotId, live: holder !== undefined };
      const jpath = join(this.journalDir, `${layerId}.json`);
      await writeFileDurable(jpath, JSON.stringify(j));
      // 1. The top becomes the layer (a QEMU holding it keeps writing through its descriptor).
      await rename(top, layer);
      await fsyncPath(this.dir);
      // 2. A new empty top over it, under the stable name.
      await this.newTop(top, size, layer);
      // 3. The QEMU holding the volume moves onto the new top at one instant.
      try {
        if (holder?.kind === 'instance') await this.opts.live.snapshot(holder.uuid, volumeId, top);
        else if (holder?.kind === 'nbd') await this.nbd.snapshot(volumeId, top);
      } catch (e) {
        log.warn({ volume: volumeId, layer: layerId, err: (e as Error).message }, 'live snapshot failed; rolling back');
        await this.undoFreeze(top, layer, jpath);
        throw new Error(`Snapshot of volume ${volumeId} failed: ${(e as Error).message}`);
      }
      await this.finishFreeze(j, layer, jpath);
      return holder !== undefined;
    });
  }

  private async finishFreeze(j: FreezeJournal, layer: string, jpath: string): Promise<void> {
    await chmod(layer, 0o444); // immutable from now on (an open descriptor is not affected)
    if (j.snapshotId) await this.writeMarker(j.snapshotId, j.volumeId, layer);
    await removeDurable(jpath);
  }

  private async undoFreeze(top: string, layer: string, jpath: string): Promise<void> {
    await rm(top, { force: true });
    await rename(layer, top);
    await fsyncPath(this.dir);
    await removeDurable(jpath);
  }

  private async writeMarker(snapshotId: string, volumeId: string, layer: string): Promise<void> {
    const m: SnapshotMarker = {
      snapshotId, volumeId, layer: relative(this.dir, layer), sizeBytes: (await readQcow2Header(layer)).virtualSize, createdAt: new Date().toISOString(),
    };
    await writeFileDurable(this.markerPath(snapshotId), JSON.stringify(m));
  }

  /**
   * After a crash during freeze(): the rename (step 1) is the only step that moved the
   * volume's data, so a layer without a new top over it goes back to being the top. With
   * the new top in place the freeze is complete unless a running QEMU still writes to the
   * layer (it was never switched): then it is undone too. Which file a QEMU holds for
   * writing shows in its image lock.
   */
  private async recoverFreeze(j: FreezeJournal): Promise<void> {
    const top = this.topPath(j.volumeId);
    const layer = this.layerPath(j.layerId);
    const jpath = join(this.journalDir, `${j.layerId}.json`);
    const log = this.opts.log.child({ volume: j.volumeId, layer: j.layerId });
    if (!existsSync(layer)) { await removeDurable(jpath); return; }
    const overLayer = existsSync(top) && (await readQcow2Header(top).catch(() => undefined))?.backingPath === layer;
    if (!overLayer || (j.live && !(await writeLocked(top)) && (await writeLocked(layer)))) {
      log.warn('undoing an interrupted snapshot');
      await this.undoFreeze(top, layer, jpath);
      return;
    }
    log.warn('completing an interrupted snapshot');
    await this.finishFreeze(j, layer, jpath);
  }

  // ---- garbage collection ----------------------------------------------------------------

  /** Files every chain in the pool reaches (tops, snapshot layers, in-flight freezes). */
  private async reachable(): Promise<{ layers: Set<string>; bases: Set<string>; tops: string[]; snapshots: SnapshotMarker[] }> {
    const names = await readdir(this.dir);
    const tops = names.filter((n) => n.startsWith('volume-') && n.endsWith('.qcow2'));
    const roots = tops.map((n) => join(this.dir, n));
    const snapshots: SnapshotMarker[] = [];
    for (const n of await readdir(this.snapDir)) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      const m = await this.marker(n.slice(0, -5));
      if (m) { snapshots.push(m); roots.push(join(this.dir, m.layer)); }
    }
    for (const n of await readdir(this.journalDir)) {
      if (n.endsWith('.json') && !n.startsWith('.')) roots.push(this.layerPath(n.slice(0, -5)));
    }
    const layers = new Set<string>();
    const bases = new Set<string>();
    for (const root of roots) {
      let path: string | undefined = root;
      for (let depth = 0; path && depth < 1000; depth++) {
        if (!path.startsWith(this.dir + '/')) { bases.add(path); break; }
        if (path !== root && layers.has(path)) break; // the rest of this chain is known
        layers.add(path);
        path = existsSync(path) ? (await readQcow2Header(path)).backingPath : undefined;
      }
    }
    return { layers, bases, tops, snapshots };
  }

  /** Remove layers nothing reaches; returns their names. Callers hold the lock. */
  private async gc(): Promise<string[]> {
    const { layers } = await this.reachable();
    const removed: string[] = [];
    for (const n of await readdir(this.dir)) {
      if (!n.startsWith('layer-') || layers.has(join(this.dir, n))) continue;
      await rm(join(this.dir, n), { force: true });
      removed.push(n);
    }
    if (removed.length) await fsyncPath(this.dir);
    return removed;
  }

  /**
   * Image ids whose cached base some volume or snapshot chain in the pool is backed by:
   * whoever prunes the image cache must keep them (ImageCache.prune's `inUse`).
   */
  async basesInUse(): Promise<string[]> {
    const { bases } = await this.lock.run(() => this.reachable());
    return [...bases].filter((p) => p.startsWith(this.opts.cache.dir + '/')).map((p) => p.slice(this.opts.cache.dir.length + 1));
  }

  async capacity(): Promise<PoolCapacity> {
    const fs = await statfs(this.dir);
    const { tops, snapshots } = await this.lock.run(() => this.reachable());
    let provisioned = 0;
    for (const t of tops) provisioned += (await readQcow2Header(join(this.dir, t)).catch(() => ({ virtualSize: 0 }))).virtualSize;
    return {
      totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize, provisionedBytes: provisioned,
      volumes: tops.map((t) => t.slice('volume-'.length, -'.qcow2'.length)), snapshots: snapshots.map((s) => s.snapshotId),
    };
  }

  // ---- holders and exports ---------------------------------------------------------------

  private async holder(volumeId: string): Promise<Holder | undefined> {
    if (await this.nbd.running(volumeId)) return { kind: 'nbd' };
    const uuid = await this.opts.live.holderOf(volumeId);
    if (uuid) return { kind: 'instance', uuid };
    // Nobody we know holds it, yet a QEMU might (an instance not adopted again yet after a
    // restart): working on the file as if offline would split it from that QEMU's view.
    const top = this.topPath(volumeId);
    if (existsSync(top) && await writeLocked(top)) {
      throw new Error(`Volume ${volumeId} is held open by a QEMU process this host does not know as its holder yet; try again shortly.`);
    }
    return undefined;
  }

  async export(req: ExportRequest, log: Logger): Promise<VolumeConnection> {
    const top = this.topPath(req.volumeId);
    checkId('attachment', req.attachmentId);
    if (!existsSync(top)) throw new Error(`Volume ${req.volumeId} could not be found in pool ${this.opts.host}.`);
    if (req.instanceHost === this.opts.host) return { type: 'file', path: top, format: 'qcow2', cache: this.direct ? 'none' : 'writeback' };
    return this.nbd.export(req.volumeId, req.attachmentId, top, log);
  }

  async unexport(volumeId: string, attachmentId: string, log: Logger): Promise<boolean> {
    checkId('volume', volumeId);
    return this.nbd.unexport(volumeId, attachmentId, log);
  }

  // ---- backups and images ----------------------------------------------------------------

  /**
   * A point-in-time view to read: a snapshot's layer, the volume's top when nothing writes
   * to it, or else a fresh layer frozen through the QEMU holding it.
   */
  private async readableChain(volumeId: string, snapshotId: string | undefined, tag: string, log: Logger): Promise<string> {
    if (snapshotId) {
      const m = await this.marker(snapshotId);
      if (!m || m.volumeId !== volumeId) throw new Error(`Snapshot ${snapshotId} of volume ${volumeId} could not be found in pool ${this.opts.host}.`);
      return join(this.dir, m.layer);
    }
    const top = this.topPath(volumeId);
    if (!existsSync(top)) throw new Error(`Volume ${volumeId} could not be found in pool ${this.opts.host}.`);
    if (!(await this.holder(volumeId))) return top;
    const layerId = `${tag}-${randomBytes(6).toString('hex')}`;
    await this.freeze(volumeId, layerId, undefined, log);
    return this.layerPath(layerId);
  }

  async backup(req: BackupRequest, log: Logger): Promise<BackupReply> {
    checkId('backup', req.backupId);
    if (req.parentId) checkId('backup', req.parentId);
    const src = await this.readableChain(req.volumeId, req.snapshotId, 'backup', log);
    return backupVolume(src, req, log);
  }

  async restore(req: RestoreRequest, log: Logger): Promise<{ sizeGb: number }> {
    const top = this.topPath(req.volumeId);
    if (!existsSync(top)) throw new Error(`Volume ${req.volumeId} could not be found in pool ${this.opts.host}.`);
    if (await this.holder(req.volumeId)) throw new Error(`Volume ${req.volumeId} is attached or exported; it cannot be restored onto.`);
    const size = (await readQcow2Header(top)).virtualSize;
    const tmp = tempBeside(top);
    try {
      const bytes = await restoreChain(req.target, req.chain.map((p) => p.backupId), tmp, size, log);
      // The new content replaces the top in one rename; layers only it used are collected.
      await this.lock.run(async () => { await commitFile(tmp, top); await this.gc(); });
      log.info({ volume: req.volumeId, chain: req.chain.length, bytes }, 'backup restored');
      return { sizeGb: gbOf(bytes) };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  backupDelete(backupId: string, target: BackupTarget, log: Logger): Promise<boolean> {
    checkId('backup', backupId);
    return deleteBackup(target, backupId, log);
  }

  async uploadImage(req: UploadImageRequest, log: Logger): Promise<{ size: number }> {
    const src = await this.readableChain(req.volumeId, undefined, 'upload', log);
    const tmp = join(this.dir, `.tmp-upload-${randomBytes(4).toString('hex')}.${req.diskFormat}`);
    try {
      const t0 = Date.now();
      await qemuTool('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', req.diskFormat, src, tmp]);
      const size = (await stat(tmp)).size;
      const res = await fetch(req.uploadUrl, {
        method: 'PUT', headers: { 'X-Auth-Token': req.token, 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
        body: Readable.toWeb(createReadStream(tmp)) as unknown as BodyInit, duplex: 'half',
      } as RequestInit & { duplex: 'half' });
      if (!res.ok) throw new Error(`uploading volume ${req.volumeId} to the image service failed: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
      log.info({ volume: req.volumeId, size, format: req.diskFormat, ms: Date.now() - t0 }, 'volume uploaded to image');
      return { size };
    } finally {
      await rm(tmp, { force: true });
    }
  }
}
