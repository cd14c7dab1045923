import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import { CinderError, err } from './errors.ts';
import { authorize, isAdmin } from './policy.ts';
import { checkQuota } from './quotas.ts';
import * as store from './store.ts';
import type { BackupRecord, VolumeDeps } from './types.ts';
import { createVolume, visibleVolume, type Ctx, type VolumeOps } from './volumes.ts';

/**
 * Backups (Cinder's chunked driver on the pool): full or incremental (on top of the
 * volume's latest available backup), of the volume or of one of its snapshots, kept in
 * the backup directory of the volume's pool host (recorded in the row: host, container).
 * The volume is backing-up meanwhile (previous_status remembers available or in-use);
 * restore goes to a new volume or over an available one (restoring-backup).
 */

/** The backed-up volume's metadata, kept with the backup (Cinder's backup metadata object) and given back on restore; never shown. */
export const VOLUME_METADATA_KEY = 'gureum:volume_metadata';
export function volumeMetadataOf(b: BackupRecord): Record<string, string> {
  try { return JSON.parse(b.metadata[VOLUME_METADATA_KEY] ?? '{}') as Record<string, string>; } catch { return {}; }
}
export function userMetadataOf(b: BackupRecord): Record<string, string> {
  const out = { ...b.metadata };
  delete out[VOLUME_METADATA_KEY];
  return out;
}

export async function visibleBackup(deps: VolumeDeps, auth: AuthContext, id: string, action = 'backup:get'): Promise<BackupRecord> {
  const b = await store.getBackup(deps.db, id);
  if (!b || (!isAdmin(auth) && b.project_id !== auth.projectId)) throw err.backupNotFound(id);
  authorize(auth, action, { project_id: b.project_id });
  return b;
}

export async function createBackup(o: VolumeOps, ctx: Ctx, f: { volumeId: string; name?: string; description?: string; incremental: boolean; force: boolean; snapshotId?: string; metadata?: Record<string, string>; container?: string }): Promise<BackupRecord> {
  const { deps } = o;
  const v = await visibleVolume(deps, ctx.auth, f.volumeId, 'backup:create');
  const ok = f.force ? ['available', 'in-use'] : ['available'];
  if (!ok.includes(v.status)) throw err.invalidVolume(`Volume to be backed up must be available or in-use, but the current status is "${v.status}".${v.status === 'in-use' ? ' (Use force=true to back up an attached volume.)' : ''}`);
  if (!v.host) throw err.invalidVolume('Volume has no host.');
  const dir = o.manager.backupDir(v.host);
  if (!dir) throw new CinderError(503, `Backup service of host ${v.host} is not available; its pool has not reported a backup directory.`, 'ServiceNotFound');
  if (f.snapshotId) {
    const s = await store.getSnapshot(deps.db, f.snapshotId);
    if (!s || s.volume_id !== v.id) throw err.invalidSnapshot(`Snapshot ${f.snapshotId} is not a snapshot of volume ${v.id}.`);
    if (s.status !== 'available') throw err.invalidSnapshot(`Snapshot to be backed up must be available, but the current status is "${s.status}".`);
  }
  let parentId: string | null = null;
  if (f.incremental) {
    const prior = (await store.listBackups(deps.db, { volumeId: v.id, statuses: ['available'] })).sort((a, b) => b.data_timestamp.localeCompare(a.data_timestamp))[0];
    if (!prior) throw err.invalidBackup('No backups available to do an incremental backup.');
    parentId = prior.id;
  }
  const t = store.now();
  const b: BackupRecord = {
    id: randomUUID(), project_id: v.project_id, user_id: ctx.auth.userId, volume_id: v.id, snapshot_id: f.snapshotId ?? null,
    name: f.name ?? '', description: f.description ?? '', status: 'creating', size: v.size, object_count: 0, container: f.container ?? 'volumebackups', parent_id: parentId,
    is_incremental: parentId !== null, availability_zone: v.availability_zone, host: v.host, restore_volume_id: null,
    metadata: { ...f.metadata ?? {}, [VOLUME_METADATA_KEY]: JSON.stringify(v.metadata) },
    fail_reason: null, data_timestamp: t, created_at: t, updated_at: t,
  };
  await deps.db.transaction().execute(async (trx) => {
    await checkQuota(deps, trx, v.project_id, { backups: 1, backup_gigabytes: v.size });
    if (!(await store.updateVolume(trx, v.id, { status: 'backing-up', previous_status: v.status }, [v.status]))) throw err.invalidVolume('Volume status changed; try again.');
    if (f.snapshotId) await store.updateSnapshot(trx, f.snapshotId, { status: 'backing-up' }, ['available']);
    await store.insertBackup(trx, b);
  });
  deps.log.info({ backup: b.id, volume: v.id, incremental: b.is_incremental, request_id: ctx.requestId }, 'backup create accepted');
  o.manager.backup(b.id, ctx.requestId);
  return b;
}

export async function listBackups(deps: VolumeDeps, auth: AuthContext, allTenants: boolean, projectFilter: string | undefined, filters: Record<string, string>): Promise<BackupRecord[]> {
  authorize(auth, 'backup:get_all', { project_id: auth.projectId });
  const project = allTenants && isAdmin(auth) ? projectFilter : auth.projectId ?? '';
  let out = await store.listBackups(deps.db, project === undefined ? {} : { projectId: project });
  for (const [k, val] of Object.entries(filters)) {
    if (!['name', 'status', 'volume_id'].includes(k)) throw err.invalidInput(`Invalid filter keys: ${k}`);
    out = out.filter((b) => String((b as unknown as Record<string, unknown>)[k]) === val);
  }
  return out;
}

export async function deleteBackup(o: VolumeOps, ctx: Ctx, id: string, force = false): Promise<void> {
  const b = await visibleBackup(o.deps, ctx.auth, id, 'backup:delete');
  if (force) authorize(ctx.auth, 'backup:delete', { project_id: b.project_id });
  if (!force && !['available', 'error'].includes(b.status)) throw err.invalidBackup('Backup status must be available or error');
  const children = await store.listBackups(o.deps.db, { parentId: id });
  if (children.length) throw err.invalidBackup('Incremental backups exist for this backup.');
  await store.updateBackup(o.deps.db, id, { status: 'deleting' });
  o.manager.backupDelete(id, ctx.requestId);
}

export async function restoreBackup(o: VolumeOps, ctx: Ctx, id: string, f: { volumeId?: string; name?: string }): Promise<{ backup_id: string; volume_id: string; volume_name: string }> {
  const { deps } = o;
  const b = await visibleBackup(deps, ctx.auth, id, 'backup:restore');
  if (b.status !== 'available') throw err.invalidBackup(`Backup status must be available but is ${b.status}.`);
  if (!f.volumeId) {
    const v = await createVolume(o, ctx, { size: b.size, name: f.name ?? `restore_backup_${b.id}`, backupId: b.id, metadata: volumeMetadataOf(b) });
    return { backup_id: b.id, volume_id: v.id, volume_name: v.name };
  }
  const v = await visibleVolume(deps, ctx.auth, f.volumeId, 'volume:update');
  if (v.status !== 'available') throw err.invalidVolume(`Volume to be restored to must be available`);
  if (v.size < b.size) throw err.invalidVolume(`volume size ${v.size} is too small to restore backup of size ${b.size}.`);
  if (v.host !== b.host) throw err.invalidVolume(`Volume ${v.id} is on host ${v.host}, but the backup is kept on ${b.host}; restore to a new volume instead.`);
  await deps.db.transaction().execute(async (trx) => {
    if (!(await store.updateBackup(trx, id, { status: 'restoring', restore_volume_id: v.id }, ['available']))) throw err.invalidBackup('Backup status must be available.');
    if (!(await store.updateVolume(trx, v.id, { status: 'restoring-backup' }, ['available']))) throw err.invalidVolume('Volume to be restored to must be available');
  });
  o.manager.restore(id, v.id, ctx.requestId);
  return { backup_id: b.id, volume_id: v.id, volume_name: v.name };
}

export async function resetBackupStatus(deps: VolumeDeps, auth: AuthContext, id: string, status: string): Promise<void> {
  const b = await store.getBackup(deps.db, id);
  if (!b) throw err.backupNotFound(id);
  authorize(auth, 'volume_extension:backup_admin_actions:reset_status', { project_id: b.project_id });
  if (!['available', 'error'].includes(status)) throw err.invalidInput('Must specify a valid status');
  await store.updateBackup(deps.db, id, { status });
}

export async function updateBackup(deps: VolumeDeps, auth: AuthContext, id: string, f: { name?: string; description?: string; metadata?: Record<string, string> }): Promise<BackupRecord> {
  const b = await visibleBackup(deps, auth, id, 'backup:update');
  const metadata = f.metadata ? { ...f.metadata, [VOLUME_METADATA_KEY]: b.metadata[VOLUME_METADATA_KEY] ?? '{}' } : b.metadata;
  await store.updateBackup(deps.db, id, { ...f, metadata });
  return { ...b, ...f, metadata };
}
