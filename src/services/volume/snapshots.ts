import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import { err } from './errors.ts';
import { mergeMetadata, withoutKey } from './http.ts';
import { authorize, isAdmin } from './policy.ts';
import { checkQuota } from './quotas.ts';
import * as store from './store.ts';
import type { SnapshotRecord, VolumeDeps } from './types.ts';
import { visibleVolume, type Ctx, type VolumeOps } from './volumes.ts';

/**
 * Snapshots: a point-in-time layer of a volume, taken by its pool (live through QEMU when
 * the volume is attached: force=true before 3.66, as Cinder asks). They count against the
 * snapshots and gigabytes quotas; a volume with snapshots is deleted only with cascade.
 */

export async function visibleSnapshot(deps: VolumeDeps, auth: AuthContext, id: string, action = 'volume:get_snapshot'): Promise<SnapshotRecord> {
  const s = await store.getSnapshot(deps.db, id);
  if (!s || (!isAdmin(auth) && s.project_id !== auth.projectId)) throw err.snapshotNotFound(id);
  authorize(auth, action, { project_id: s.project_id });
  return s;
}

export async function createSnapshot(o: VolumeOps, ctx: Ctx, f: { volumeId: string; name?: string; description?: string; force: boolean; metadata?: Record<string, string> }, forceNotNeeded: boolean): Promise<SnapshotRecord> {
  const { deps } = o;
  const v = await visibleVolume(deps, ctx.auth, f.volumeId, 'volume:create_snapshot');
  const ok = f.force || forceNotNeeded ? ['available', 'in-use'] : ['available'];
  if (!ok.includes(v.status)) {
    throw err.invalidVolume(v.status === 'in-use' ? `Volume ${v.id} status must be available, but current status is: in-use. (Use force=true to snapshot an attached volume.)` : `Volume ${v.id} status must be available or in-use, but current status is: ${v.status}.`);
  }
  const t = store.now();
  const s: SnapshotRecord = {
    id: randomUUID(), volume_id: v.id, project_id: v.project_id, user_id: ctx.auth.userId, name: f.name ?? '', description: f.description ?? '',
    status: 'creating', progress: '0%', size: v.size, metadata: f.metadata ?? {}, fail_reason: null, created_at: t, updated_at: t,
  };
  await deps.db.transaction().execute(async (trx) => {
    await checkQuota(deps, trx, v.project_id, { snapshots: 1, gigabytes: v.size });
    const cur = await store.getVolume(trx, v.id);
    if (!cur || !ok.includes(cur.status)) throw err.invalidVolume(`Volume ${v.id} status changed to ${cur?.status ?? 'deleted'}.`);
    await store.insertSnapshot(trx, s);
  });
  deps.log.info({ snapshot: s.id, volume: v.id, request_id: ctx.requestId }, 'snapshot create accepted');
  o.manager.snapshotCreate(s.id, ctx.requestId);
  return s;
}

export async function listSnapshots(deps: VolumeDeps, auth: AuthContext, allTenants: boolean, projectFilter: string | undefined, filters: Record<string, string>): Promise<SnapshotRecord[]> {
  authorize(auth, 'volume:get_all_snapshots', { project_id: auth.projectId });
  const everyone = allTenants && isAdmin(auth);
  const project = everyone ? projectFilter : auth.projectId ?? '';
  let out = await store.listSnapshots(deps.db, project === undefined ? {} : { projectId: project });
  for (const [k, val] of Object.entries(filters)) {
    if (!['name', 'status', 'volume_id', 'metadata'].includes(k)) throw err.invalidInput(`Invalid filter keys: ${k}`);
    if (k === 'metadata') {
      const want = JSON.parse(val.replaceAll("'", '"')) as Record<string, string>;
      out = out.filter((s) => Object.entries(want).every(([mk, mv]) => s.metadata[mk] === String(mv)));
    } else out = out.filter((s) => String((s as unknown as Record<string, unknown>)[k]) === val);
  }
  return out;
}

export async function updateSnapshot(deps: VolumeDeps, auth: AuthContext, id: string, f: { name?: string; description?: string }): Promise<SnapshotRecord> {
  const s = await visibleSnapshot(deps, auth, id, 'volume:update_snapshot');
  await store.updateSnapshot(deps.db, id, f);
  return { ...s, ...f };
}

export async function deleteSnapshot(o: VolumeOps, ctx: Ctx, id: string, force = false): Promise<void> {
  const s = await visibleSnapshot(o.deps, ctx.auth, id, 'volume:delete_snapshot');
  if (s.status === 'deleting' && !force) return;
  if (!force && !['available', 'error', 'error_deleting'].includes(s.status)) throw err.invalidSnapshot(`Snapshot status must be available or error and must not be part of a group.`);
  const clones = await o.deps.db.selectFrom('volumes').select('id').where('snapshot_id', '=', id).where('status', 'in', ['creating', 'downloading']).execute();
  if (clones.length) throw err.invalidSnapshot(`Snapshot ${id} is being used to create volume ${clones[0]!.id}.`);
  await store.updateSnapshot(o.deps.db, id, { status: 'deleting' });
  o.manager.snapshotDelete(id, ctx.requestId);
}

export async function resetSnapshotStatus(deps: VolumeDeps, auth: AuthContext, id: string, status: string): Promise<void> {
  const s = await store.getSnapshot(deps.db, id);
  if (!s) throw err.snapshotNotFound(id);
  authorize(auth, 'volume_extension:snapshot_admin_actions:reset_status', { project_id: s.project_id });
  if (!['creating', 'available', 'deleting', 'error', 'error_deleting', 'backing-up', 'restoring'].includes(status)) throw err.invalidInput('Must specify a valid status');
  await store.updateSnapshot(deps.db, id, { status });
}

/** os-update_snapshot_status (Nova's assisted snapshots): Cinder's allowed moves only. */
const STATUS_MOVES: Record<string, string[]> = { creating: ['creating', 'available', 'error'], deleting: ['deleting', 'error_deleting'] };
export async function updateSnapshotStatus(deps: VolumeDeps, auth: AuthContext, id: string, status: string, progress?: string): Promise<void> {
  const s = await store.getSnapshot(deps.db, id);
  if (!s) throw err.snapshotNotFound(id);
  authorize(auth, 'snapshot_extension:snapshot_actions:update_snapshot_status', { project_id: s.project_id });
  if (!(STATUS_MOVES[s.status] ?? []).includes(status)) throw err.invalidSnapshot(`Snapshot status ${s.status} not allowed for update_snapshot_status`);
  if (progress !== undefined && !/^\d{1,3}%$/.test(progress)) throw err.invalidInput(`Invalid progress value: ${progress}`);
  await store.updateSnapshot(deps.db, id, { status, ...(progress !== undefined ? { progress } : {}) }, [s.status]);
}

export async function forceDeleteSnapshot(o: VolumeOps, ctx: Ctx, id: string): Promise<void> {
  const s = await store.getSnapshot(o.deps.db, id);
  if (!s) throw err.snapshotNotFound(id);
  authorize(ctx.auth, 'volume_extension:snapshot_admin_actions:force_delete', { project_id: s.project_id });
  await deleteSnapshot(o, ctx, id, true);
}

export async function setSnapshotMetadata(deps: VolumeDeps, auth: AuthContext, id: string, meta: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
  const s = await visibleSnapshot(deps, auth, id, 'volume:update_snapshot_metadata');
  const next = mergeMetadata(s.metadata, meta, replace);
  await store.updateSnapshot(deps.db, id, { metadata: next });
  return next;
}

export async function deleteSnapshotMetadataKey(deps: VolumeDeps, auth: AuthContext, id: string, key: string): Promise<void> {
  const s = await visibleSnapshot(deps, auth, id, 'volume:delete_snapshot_metadata');
  await store.updateSnapshot(deps.db, id, { metadata: withoutKey(s.metadata, key, () => err.snapshotMetadataNotFound(id, key)) });
}
