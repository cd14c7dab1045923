/**
 * The volume pool on a host, on the bus: serves every `gureum.volume.<host>.<verb>`
 * subject with the host's VolumeBackend (the local qcow2 pool) and reports the pool's
 * capacity and contents at start and periodically (Cinder's volume manager + driver
 * stats). Each request's id flows into the log lines of the work it causes.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bus } from '../bus/index.ts';
import type { ImageRef } from '../bus/compute.ts';
import { VolumePoolReported, volumeSubjects, type VolumePoolReport } from '../bus/volume.ts';
import type { Logger } from '../common/logger.ts';
import type { ImageCache, ImageSource } from './storage/image-cache.ts';
import { LocalQcow2Pool } from './storage/volumes/local-pool.ts';

/**
 * What the pool needs from the hypervisor for volumes an instance's QEMU on this host
 * holds open (file connection): the pool cannot talk to that QEMU itself. QemuDriver
 * implements it (volumeHolder, snapshotVolumeLive, resizeVolumeLive); agent.ts passes it in.
 */
export interface LiveVolumeOps {
  /** The instance whose running QEMU holds the volume, if any. */
  holderOf(volumeId: string): Promise<string | undefined>;
  /**
   * Switch the volume's disk onto `overlayPath` at one instant: blockdev-add of the new
   * top file (qcow2, backing null) + blockdev-snapshot onto the disk's current top node.
   * The file already exists, backed (in its header) by the layer the old top became.
   */
  snapshot(instanceUuid: string, volumeId: string, overlayPath: string): Promise<void>;
  /** block_resize of the volume's disk to `bytes` (the guest sees the new size). */
  resize(instanceUuid: string, volumeId: string, bytes: number): Promise<void>;
}

const GiB = 1024 ** 3;
const gb = (bytes: number) => Math.floor((bytes / GiB) * 100) / 100;

export async function startVolumeAgent(opts: {
  bus: Bus; host: string; hostIp: string; dataDir: string; log: Logger; cache: ImageCache;
  source: (ref: ImageRef, token: string) => ImageSource; live: LiveVolumeOps; reportEveryMs?: number;
  /** Where backups to a 'directory' target go on this host (reported as backupDir); default `<dataDir>/backups`. */
  backupDir?: string;
}): Promise<{ stop(): Promise<void>; pool: LocalQcow2Pool }> {
  const log = opts.log.child({ component: 'volume-pool', host: opts.host });
  const pool = new LocalQcow2Pool({
    dataDir: opts.dataDir, hostIp: opts.hostIp, host: opts.host, cache: opts.cache, source: opts.source, live: opts.live, log,
  });
  await pool.start();
  const backupDir = opts.backupDir ?? join(opts.dataDir, 'backups');
  await mkdir(backupDir, { recursive: true, mode: 0o700 });
  const { bus } = opts;
  const s = volumeSubjects(opts.host);
  const rlog = (requestId: string, ids: Record<string, string | undefined>) => log.child({ request_id: requestId, ...ids });
  const subs = [
    bus.serve(s.create, (req, m) => pool.create(req.volumeId, req.sizeGb, req.source, rlog(m.requestId, { volume: req.volumeId }))),
    bus.serve(s.delete, async (req, m) => ({ deleted: await pool.delete(req.volumeId, rlog(m.requestId, { volume: req.volumeId })) })),
    bus.serve(s.extend, (req, m) => pool.extend(req.volumeId, req.sizeGb, rlog(m.requestId, { volume: req.volumeId }))),
    bus.serve(s.snapshotCreate, (req, m) => pool.snapshotCreate(req.volumeId, req.snapshotId, rlog(m.requestId, { volume: req.volumeId, snapshot: req.snapshotId }))),
    bus.serve(s.snapshotDelete, async (req, m) => ({
      deleted: await pool.snapshotDelete(req.volumeId, req.snapshotId, rlog(m.requestId, { volume: req.volumeId, snapshot: req.snapshotId })),
    })),
    bus.serve(s.export, (req, m) => pool.export(req, rlog(m.requestId, { volume: req.volumeId, attachment: req.attachmentId }))),
    bus.serve(s.unexport, async (req, m) => ({
      removed: await pool.unexport(req.volumeId, req.attachmentId, rlog(m.requestId, { volume: req.volumeId, attachment: req.attachmentId })),
    })),
    bus.serve(s.backup, (req, m) => pool.backup(req, rlog(m.requestId, { volume: req.volumeId, backup: req.backupId }))),
    bus.serve(s.restore, (req, m) => pool.restore(req, rlog(m.requestId, { volume: req.volumeId }))),
    bus.serve(s.backupDelete, async (req, m) => ({ deleted: await pool.backupDelete(req.backupId, req.target, rlog(m.requestId, { backup: req.backupId })) })),
    bus.serve(s.uploadImage, (req, m) => pool.uploadImage(req, rlog(m.requestId, { volume: req.volumeId }))),
  ];

  async function report(): Promise<VolumePoolReport> {
    const c = await pool.capacity();
    return {
      host: opts.host, backend: pool.backend, pool: pool.pool, hostIp: opts.hostIp,
      totalGb: gb(c.totalBytes), freeGb: gb(c.freeBytes), provisionedGb: gb(c.provisionedBytes), volumes: c.volumes, snapshots: c.snapshots, backupDir,
    };
  }
  const publish = async () => { if (!bus.closed) bus.publish(VolumePoolReported, await report()); };
  await publish();
  const timer = setInterval(() => { void publish().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'pool report failed')); }, opts.reportEveryMs ?? 30_000);
  log.info({ dir: pool.dir }, 'volume pool ready');
  return {
    pool,
    async stop() {
      clearInterval(timer);
      for (const sub of subs) sub.unsubscribe();
      await pool.close();
    },
  };
}
