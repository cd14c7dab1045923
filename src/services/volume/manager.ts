import { BusTimeout, type Subject } from '../../bus/index.ts';
import { VolumePoolReported, volumeSubjects, type BackupPiece, type BackupTarget, type VolumePoolReport, type VolumeSource } from '../../bus/volume.ts';
import type { Logger } from '../../common/logger.ts';
import { volumeMetadataOf } from './backups.ts';
import { choosePool, type PoolState } from './scheduler.ts';
import * as store from './store.ts';
import type { BackupRecord, VolumeDeps, VolumeRecord } from './types.ts';

/**
 * Cinder's volume manager, on the controller: it drives the pool that holds a volume
 * over the bus (`gureum.volume.<host>.<verb>`) and records each outcome. Every long
 * operation is first a persisted status (creating, deleting, extending, backing-up, ...),
 * and every pool command is idempotent, so after a restart the work is re-sent when the
 * pool next reports (or at start for work never scheduled), or failed cleanly.
 */

const SHORT_MS = 60_000;

type Subjects = ReturnType<typeof volumeSubjects>;
type ReqOf<K extends keyof Subjects> = Subjects[K] extends Subject<infer Q, infer _R> ? Q : never;
type ResOf<K extends keyof Subjects> = Subjects[K] extends Subject<infer _Q, infer R> ? R : never;

/** Transitional statuses the manager owns (the rest are driven by callers: attach, detach). */
const RESUMABLE_VOLUME = ['creating', 'downloading', 'deleting', 'extending', 'uploading'];

/**
 * A delete the pool refused ends in error_deleting; one it did not answer stays deleting
 * (the pool may still do it; its next report re-sends or finishes it).
 */
async function deleteFailed(log: Logger, what: string, e: unknown, mark: (reason: string) => Promise<unknown>): Promise<void> {
  const reason = e instanceof Error ? e.message : String(e);
  if (e instanceof BusTimeout) { log.warn({ err: reason }, `${what} delete not answered; re-sent when the pool reports`); return; }
  log.warn({ err: reason }, `${what} delete failed`);
  await mark(reason);
}

export class VolumeManager {
  /** Work under way in this process, keyed "<kind>:<id>", so a report does not re-send it. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Each pool's backup directory, as it last reported it. */
  private readonly backupDirs = new Map<string, string>();
  private stopped = false;
  private sub?: { unsubscribe(): void };

  constructor(private readonly deps: VolumeDeps) {}

  private get log(): Logger { return this.deps.log; }

  /** Listen to pool reports and pick up work an earlier run left. */
  async start(): Promise<void> {
    this.sub = this.deps.bus.subscribe(VolumePoolReported, (r) => { void this.onReport(r).catch((e: unknown) => this.log.warn({ err: e, host: r.host }, 'pool report not recorded')); });
    // Work never scheduled (no host yet) cannot wait for a pool report.
    for (const v of await store.listVolumes(this.deps.db, { statuses: ['creating', 'downloading'] })) {
      if (v.host === null) this.create(v.id, '', `req-resume-${v.id}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sub?.unsubscribe();
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** Wait for every operation under way (tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight.values()]);
  }

  backupDir(host: string): string | undefined { return this.backupDirs.get(host); }

  private run(key: string, log: Logger, fn: () => Promise<void>): void {
    if (this.inFlight.has(key) || this.stopped) return;
    const p = fn().catch((e: unknown) => log.error({ err: e, op: key }, 'volume operation failed unexpectedly')).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
  }

  private async request<K extends keyof Subjects>(host: string, verb: K, body: ReqOf<K>, requestId: string, long = false): Promise<ResOf<K>> {
    const s = volumeSubjects(host)[verb] as unknown as Subject<ReqOf<K>, ResOf<K>>;
    return this.deps.bus.request(s, body, { timeoutMs: long ? this.deps.cfg.longOperationTimeoutMs : SHORT_MS, requestId });
  }

  /** Pool states for the scheduler: the reports plus sizes scheduled there and not yet reported. */
  async poolStates(): Promise<PoolState[]> {
    const pools = await this.deps.db.selectFrom('volume_pools').selectAll().execute();
    const pending = await this.deps.db.selectFrom('volumes').select(['host', 'size']).where('status', 'in', ['creating', 'downloading']).execute();
    return pools.map((p) => ({ ...p, pendingGb: pending.filter((v) => v.host === p.host).reduce((a, v) => a + v.size, 0) }));
  }

  async onReport(r: VolumePoolReport): Promise<void> {
    const db = this.deps.db;
    const row = {
      backend: r.backend, pool: r.pool, host_ip: r.hostIp, total_gb: Math.floor(r.totalGb), free_gb: Math.floor(r.freeGb),
      provisioned_gb: Math.ceil(r.provisionedGb), last_seen: store.now(),
    };
    const had = await db.selectFrom('volume_pools').select('host').where('host', '=', r.host).executeTakeFirst();
    if (had) await db.updateTable('volume_pools').set(row).where('host', '=', r.host).execute();
    else await db.insertInto('volume_pools').values({ host: r.host, ...row, enabled: 1, disabled_reason: null }).execute();
    if (r.backupDir) this.backupDirs.set(r.host, r.backupDir);
    await this.resumeOn(r);
  }

  /** Re-send what this host's pool was asked and never answered (a restart of either side). */
  private async resumeOn(r: VolumePoolReport): Promise<void> {
    const db = this.deps.db;
    const held = new Set(r.volumes);
    for (const v of await store.listVolumes(db, { host: r.host, statuses: RESUMABLE_VOLUME })) {
      const rid = `req-resume-${v.id}`;
      switch (v.status) {
        case 'creating': case 'downloading': this.create(v.id, '', rid); break;
        case 'deleting':
          // The pool no longer has it: the delete happened and only the record is left.
          if (!held.has(v.id)) this.run(`volume:${v.id}`, this.log, () => this.finishDelete(v.id));
          else this.delete(v.id, rid);
          break;
        case 'extending': {
          const target = Number(v.admin_metadata.extend_target);
          if (Number.isInteger(target) && target > v.size) this.extend(v.id, target, rid);
          else await store.updateVolume(db, v.id, { status: v.previous_status ?? 'available', previous_status: null }, ['extending']);
          break;
        }
        case 'uploading':
          // The upload's fate is unknown: the volume returns to use; the image stays queued (killed on its own by Glance rules) .
          await store.updateVolume(db, v.id, { status: v.previous_status ?? 'available', previous_status: null }, ['uploading']);
          break;
      }
    }
    const snaps = await db.selectFrom('volume_snapshots').innerJoin('volumes', 'volumes.id', 'volume_snapshots.volume_id')
      .select(['volume_snapshots.id as id', 'volume_snapshots.status as status']).where('volumes.host', '=', r.host)
      .where('volume_snapshots.status', 'in', ['creating', 'deleting']).execute();
    for (const s of snaps) {
      if (s.status === 'creating') this.snapshotCreate(s.id, `req-resume-${s.id}`);
      else this.snapshotDelete(s.id, `req-resume-${s.id}`);
    }
    for (const b of await db.selectFrom('volume_backups').selectAll().where('host', '=', r.host).where('status', 'in', ['creating', 'deleting', 'restoring']).execute()) {
      const rid = `req-resume-${b.id}`;
      if (b.status === 'creating') this.backup(b.id, rid);
      else if (b.status === 'deleting') this.backupDelete(b.id, rid);
      else if (b.restore_volume_id) this.restore(b.id, b.restore_volume_id, rid);
    }
  }

  // ---- volumes ----

  /** Schedule (when not yet placed) and create the volume's data; available or error. */
  create(volumeId: string, token: string, requestId: string): void {
    const log = this.log.child({ volume: volumeId, request_id: requestId });
    this.run(`volume:${volumeId}`, log, async () => {
      let v = await store.getVolume(this.deps.db, volumeId);
      if (!v || !['creating', 'downloading'].includes(v.status)) return;
      try {
        if (v.host === null) {
          const required = await this.sourceHost(v);
          const pool = choosePool(await this.poolStates(), { sizeGb: v.size, availabilityZone: v.availability_zone, requiredHost: required }, this.deps.cfg);
          await store.updateVolume(this.deps.db, v.id, { host: pool.host, status: v.image_id ? 'downloading' : 'creating' }, ['creating']);
          v = (await store.getVolume(this.deps.db, volumeId))!;
          log.info({ host: pool.host }, 'volume scheduled');
        }
        const source = await this.sourceOf(v, token);
        const reply = await this.request(v.host!, 'create', { volumeId: v.id, sizeGb: v.size, source }, requestId, source.kind === 'image' || source.kind === 'backup');
        if (reply.sizeGb > v.size) throw new Error(`Image virtual size is ${reply.sizeGb}GB and doesn't fit in a volume of size ${v.size}GB.`);
        await store.updateVolume(this.deps.db, v.id, { status: 'available', launched_at: store.now(), fail_reason: null }, ['creating', 'downloading']);
        if (v.backup_id) await store.updateBackup(this.deps.db, v.backup_id, { status: 'available', restore_volume_id: null }, ['restoring']);
        log.info({ host: v.host }, 'volume created');
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        log.warn({ err: reason }, 'volume create failed');
        await store.updateVolume(this.deps.db, v.id, { status: 'error', fail_reason: reason }, ['creating', 'downloading']);
        if (v.backup_id) await store.updateBackup(this.deps.db, v.backup_id, { status: 'available', restore_volume_id: null }, ['restoring']);
      }
    });
  }

  /** The host a clone must be made on (the source's pool), if any. */
  private async sourceHost(v: VolumeRecord): Promise<string | undefined> {
    if (v.snapshot_id) {
      const s = await store.getSnapshot(this.deps.db, v.snapshot_id);
      return s ? (await store.getVolume(this.deps.db, s.volume_id))?.host ?? undefined : undefined;
    }
    if (v.source_volid) return (await store.getVolume(this.deps.db, v.source_volid))?.host ?? undefined;
    if (v.backup_id) return (await store.getBackup(this.deps.db, v.backup_id))?.host ?? undefined;
    return undefined;
  }

  private async sourceOf(v: VolumeRecord, token: string): Promise<VolumeSource> {
    if (v.snapshot_id) return { kind: 'snapshot', snapshotId: v.snapshot_id };
    if (v.source_volid) return { kind: 'volume', volumeId: v.source_volid };
    if (v.backup_id) {
      const b = await store.getBackup(this.deps.db, v.backup_id);
      if (!b) throw new Error(`Backup ${v.backup_id} could not be found.`);
      return { kind: 'backup', chain: await this.chain(b), target: this.target(b) };
    }
    if (v.image_id) {
      const sha512 = v.admin_metadata.image_sha512;
      const local = this.deps.images.localPath(v.image_id);
      return {
        kind: 'image', token,
        image: { id: v.image_id, diskFormat: v.image_metadata.disk_format ?? 'raw', url: this.deps.images.fileUrl(v.image_id), ...(sha512 ? { sha512 } : {}), ...(local ? { localPath: local } : {}) },
      };
    }
    return { kind: 'empty' };
  }

  /** Delete the data, then the record; error_deleting when the pool refuses. */
  delete(volumeId: string, requestId: string): void {
    const log = this.log.child({ volume: volumeId, request_id: requestId });
    this.run(`volume:${volumeId}`, log, async () => {
      const v = await store.getVolume(this.deps.db, volumeId);
      if (!v || v.status !== 'deleting') return;
      try {
        if (v.host) {
          // A cascade: the snapshots' layers go first.
          for (const snap of await store.listSnapshots(this.deps.db, { volumeIds: [volumeId], statuses: ['deleting'] })) {
            await this.request(v.host, 'snapshotDelete', { volumeId, snapshotId: snap.id }, requestId);
          }
          await this.request(v.host, 'delete', { volumeId }, requestId);
        }
        await this.finishDelete(volumeId);
        log.info('volume deleted');
      } catch (e) {
        await deleteFailed(log, 'volume', e, (reason) => store.updateVolume(this.deps.db, volumeId, { status: 'error_deleting', fail_reason: reason }, ['deleting']));
      }
    });
  }

  private async finishDelete(volumeId: string): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('volume_snapshots').where('volume_id', '=', volumeId).where('status', '=', 'deleting').execute();
      await store.deleteVolumeRow(trx, volumeId);
    });
  }

  extend(volumeId: string, sizeGb: number, requestId: string): void {
    const log = this.log.child({ volume: volumeId, request_id: requestId });
    this.run(`volume:${volumeId}`, log, async () => {
      const v = await store.getVolume(this.deps.db, volumeId);
      if (!v || v.status !== 'extending' || !v.host) return;
      const back = v.previous_status ?? 'available';
      const meta = { ...v.admin_metadata };
      delete meta.extend_target;
      try {
        const r = await this.request(v.host, 'extend', { volumeId, sizeGb }, requestId);
        await store.updateVolume(this.deps.db, volumeId, { status: back, previous_status: null, size: Math.max(sizeGb, r.sizeGb), admin_metadata: meta }, ['extending']);
        log.info({ size: sizeGb, online: r.online }, 'volume extended');
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        log.warn({ err: reason }, 'volume extend failed');
        await store.updateVolume(this.deps.db, volumeId, { status: 'error_extending', previous_status: null, fail_reason: reason, admin_metadata: meta }, ['extending']);
      }
    });
  }

  uploadImage(volumeId: string, imageId: string, diskFormat: 'qcow2' | 'raw', token: string, requestId: string, discard: () => Promise<void>): void {
    const log = this.log.child({ volume: volumeId, image: imageId, request_id: requestId });
    this.run(`volume:${volumeId}`, log, async () => {
      const v = await store.getVolume(this.deps.db, volumeId);
      if (!v || v.status !== 'uploading' || !v.host) return;
      try {
        await this.request(v.host, 'uploadImage', { volumeId, uploadUrl: this.deps.images.fileUrl(imageId), token, diskFormat }, requestId, true);
        log.info('volume uploaded to image');
      } catch (e) {
        log.warn({ err: e instanceof Error ? e.message : String(e) }, 'volume upload to image failed');
        await discard().catch(() => undefined);
      }
      await store.updateVolume(this.deps.db, volumeId, { status: v.previous_status ?? 'available', previous_status: null }, ['uploading']);
    });
  }

  // ---- snapshots ----

  snapshotCreate(snapshotId: string, requestId: string): void {
    const log = this.log.child({ snapshot: snapshotId, request_id: requestId });
    this.run(`snapshot:${snapshotId}`, log, async () => {
      const s = await store.getSnapshot(this.deps.db, snapshotId);
      const v = s ? await store.getVolume(this.deps.db, s.volume_id) : undefined;
      if (!s || s.status !== 'creating' || !v?.host) return;
      try {
        await this.request(v.host, 'snapshotCreate', { volumeId: v.id, snapshotId }, requestId);
        await store.updateSnapshot(this.deps.db, snapshotId, { status: 'available', progress: '100%', fail_reason: null }, ['creating']);
        log.info('snapshot created');
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        log.warn({ err: reason }, 'snapshot create failed');
        await store.updateSnapshot(this.deps.db, snapshotId, { status: 'error', fail_reason: reason }, ['creating']);
      }
    });
  }

  snapshotDelete(snapshotId: string, requestId: string): void {
    const log = this.log.child({ snapshot: snapshotId, request_id: requestId });
    this.run(`snapshot:${snapshotId}`, log, async () => {
      const s = await store.getSnapshot(this.deps.db, snapshotId);
      const v = s ? await store.getVolume(this.deps.db, s.volume_id) : undefined;
      if (!s || s.status !== 'deleting') return;
      try {
        if (v?.host) await this.request(v.host, 'snapshotDelete', { volumeId: v.id, snapshotId }, requestId);
        await this.deps.db.deleteFrom('volume_snapshots').where('id', '=', snapshotId).execute();
        log.info('snapshot deleted');
      } catch (e) {
        await deleteFailed(log, 'snapshot', e, (reason) => store.updateSnapshot(this.deps.db, snapshotId, { status: 'error_deleting', fail_reason: reason }, ['deleting']));
      }
    });
  }

  // ---- backups ----

  /** Where a backup lives: the backup directory its host's pool reports (the row's host; `container` is only Cinder's label). */
  target(b: BackupRecord): BackupTarget {
    const dir = b.host ? this.backupDirs.get(b.host) : undefined;
    if (!dir) throw new Error(`the backup directory of host ${b.host ?? '?'} is not known yet (its pool has not reported)`);
    return { kind: 'directory', path: dir };
  }

  /** full → ... → b */
  async chain(b: BackupRecord): Promise<BackupPiece[]> {
    const out: BackupPiece[] = [{ backupId: b.id }];
    let cur = b;
    while (cur.parent_id) {
      const p = await store.getBackup(this.deps.db, cur.parent_id);
      if (!p) throw new Error(`backup ${cur.id}'s parent ${cur.parent_id} is gone`);
      out.unshift({ backupId: p.id });
      cur = p;
    }
    return out;
  }

  backup(backupId: string, requestId: string): void {
    const log = this.log.child({ backup: backupId, request_id: requestId });
    this.run(`backup:${backupId}`, log, async () => {
      const b = await store.getBackup(this.deps.db, backupId);
      if (!b || b.status !== 'creating' || !b.host) return;
      const restoreSource = async () => {
        const v = await store.getVolume(this.deps.db, b.volume_id);
        if (v?.status === 'backing-up') await store.updateVolume(this.deps.db, v.id, { status: v.previous_status ?? 'available', previous_status: null }, ['backing-up']);
        if (b.snapshot_id) await store.updateSnapshot(this.deps.db, b.snapshot_id, { status: 'available' }, ['backing-up']);
      };
      try {
        const r = await this.request(b.host, 'backup', {
          volumeId: b.volume_id, backupId, target: this.target(b), ...(b.snapshot_id ? { snapshotId: b.snapshot_id } : {}), ...(b.parent_id ? { parentId: b.parent_id } : {}),
        }, requestId, true);
        await store.updateBackup(this.deps.db, backupId, { status: 'available', object_count: r.objectCount, fail_reason: null }, ['creating']);
        log.info({ bytes: r.sizeBytes }, 'backup created');
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        log.warn({ err: reason }, 'backup failed');
        await store.updateBackup(this.deps.db, backupId, { status: 'error', fail_reason: reason }, ['creating']);
      }
      await restoreSource();
    });
  }

  backupDelete(backupId: string, requestId: string): void {
    const log = this.log.child({ backup: backupId, request_id: requestId });
    this.run(`backup:${backupId}`, log, async () => {
      const b = await store.getBackup(this.deps.db, backupId);
      if (!b || b.status !== 'deleting') return;
      try {
        if (b.host) await this.request(b.host, 'backupDelete', { backupId, target: this.target(b) }, requestId, true);
        await this.deps.db.deleteFrom('volume_backups').where('id', '=', backupId).execute();
        log.info('backup deleted');
      } catch (e) {
        await deleteFailed(log, 'backup', e, (reason) => store.updateBackup(this.deps.db, backupId, { status: 'error_deleting', fail_reason: reason }, ['deleting']));
      }
    });
  }

  /** Restore into an existing volume (status restoring-backup); a new volume is made by create() with backup_id. */
  restore(backupId: string, volumeId: string, requestId: string): void {
    const log = this.log.child({ backup: backupId, volume: volumeId, request_id: requestId });
    this.run(`backup:${backupId}`, log, async () => {
      const b = await store.getBackup(this.deps.db, backupId);
      const v = await store.getVolume(this.deps.db, volumeId);
      if (!b || b.status !== 'restoring') return;
      if (!v || v.status !== 'restoring-backup' || !v.host) {
        // A restore into a new volume is that volume's create.
        if (v && (v.status === 'creating' || v.status === 'downloading')) this.create(v.id, '', requestId);
        return;
      }
      try {
        await this.request(v.host, 'restore', { volumeId, chain: await this.chain(b), target: this.target(b) }, requestId, true);
        await store.updateVolume(this.deps.db, volumeId, { status: 'available', metadata: { ...v.metadata, ...volumeMetadataOf(b) } }, ['restoring-backup']);
        log.info('backup restored');
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        log.warn({ err: reason }, 'backup restore failed');
        await store.updateVolume(this.deps.db, volumeId, { status: 'error_restoring', fail_reason: reason }, ['restoring-backup']);
      }
      await store.updateBackup(this.deps.db, backupId, { status: 'available', restore_volume_id: null }, ['restoring']);
    });
  }
}
