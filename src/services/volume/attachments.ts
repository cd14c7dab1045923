import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import type { VolumeConnection } from '../../bus/volume.ts';
import { volumeSubjects } from '../../bus/volume.ts';
import type { Logger } from '../../common/logger.ts';
import { err } from './errors.ts';
import { authorize, isAdmin } from './policy.ts';
import * as store from './store.ts';
import type { AttachmentRecord, Json, VolumeDeps, VolumeRecord } from './types.ts';
import { visibleVolume } from './volumes.ts';

/**
 * Attachments, Cinder's way: the attachments API (3.27+: create reserves, update with a
 * connector exports the volume for that host, complete marks it in-use, delete unexports)
 * and the older action flow (os-reserve, os-initialize_connection, os-attach, os-detach,
 * os-terminate_connection, os-begin_detaching / os-roll_detaching, os-unreserve).
 *
 * connection_info is {driver_volume_type: 'file'|'nbd', data: <VolumeConnection>}: how a
 * hypervisor on the connector's host reaches the volume.
 */

const EXPORT_MS = 60_000;

export function connectionInfo(c: VolumeConnection, readonly: boolean): Record<string, Json> {
  return { driver_volume_type: c.type, data: { ...c, access_mode: readonly ? 'ro' : 'rw' } as unknown as Json };
}
export function connectionOf(info: Record<string, Json> | null): VolumeConnection | undefined {
  const d = info?.data;
  if (!d || typeof d !== 'object' || Array.isArray(d)) return undefined;
  const { access_mode: _mode, ...rest } = d as Record<string, Json>;
  return rest as unknown as VolumeConnection;
}

export async function visibleAttachment(deps: VolumeDeps, auth: AuthContext, id: string): Promise<{ a: AttachmentRecord; v: VolumeRecord }> {
  const a = await store.getAttachment(deps.db, id);
  const v = a ? await store.getVolume(deps.db, a.volume_id) : undefined;
  if (!a || !v || (!isAdmin(auth) && v.project_id !== auth.projectId)) throw err.attachmentNotFound(id);
  return { a, v };
}

const readonlyOf = (v: VolumeRecord): boolean => v.admin_metadata.readonly === 'True';

/** Reserve: a new attachment (reserved) and the volume reserved; refused unless it may be attached there. */
export async function reserve(deps: VolumeDeps, auth: AuthContext, volumeId: string, instanceUuid: string | null, mode: 'rw' | 'ro' = 'rw'): Promise<AttachmentRecord> {
  const v = await visibleVolume(deps, auth, volumeId, 'volume:attachment_create');
  return deps.db.transaction().execute(async (trx) => {
    const cur = (await store.getVolume(trx, volumeId))!;
    const existing = await store.attachmentsOf(trx, { volumeIds: [volumeId] });
    if (instanceUuid && existing.some((a) => a.instance_uuid === instanceUuid)) {
      throw err.invalidVolume(`Volume ${volumeId} is already attached to instance ${instanceUuid}.`);
    }
    const ok = cur.status === 'available' || (cur.multiattach && ['in-use', 'reserved', 'attaching'].includes(cur.status));
    if (!ok) throw err.invalidVolume(`Volume ${volumeId} status must be available or downloading to reserve, but the current status is ${cur.status}.`);
    if (readonlyOf(v) && mode === 'rw') mode = 'ro';
    const t = store.now();
    const a: AttachmentRecord = {
      id: randomUUID(), volume_id: volumeId, instance_uuid: instanceUuid, attached_host: null, mountpoint: null, attach_mode: mode,
      attach_status: 'reserved', connector: null, connection_info: null, attach_time: null, detach_time: null, created_at: t, updated_at: t,
    };
    await store.insertAttachment(trx, a);
    if (cur.status === 'available') await store.updateVolume(trx, volumeId, { status: 'reserved' }, ['available']);
    return a;
  });
}

/** Export the volume for the connector's host (idempotent on the pool); the volume is attaching. */
export async function connect(deps: VolumeDeps, attachmentId: string, connector: Record<string, Json>, mountpoint: string | null, log: Logger): Promise<{ a: AttachmentRecord; v: VolumeRecord; connection: VolumeConnection }> {
  const a = await store.getAttachment(deps.db, attachmentId);
  if (!a) throw err.attachmentNotFound(attachmentId);
  const v = (await store.getVolume(deps.db, a.volume_id))!;
  if (!v.host) throw err.invalidVolume(`Volume ${v.id} has no host.`);
  const instanceHost = typeof connector.host === 'string' ? connector.host : '';
  if (!instanceHost) throw err.invalidInput('Invalid input received: Connector doesn\'t have required information: host');
  if (!['reserved', 'attaching', 'attached'].includes(a.attach_status)) throw err.invalidVolume(`attachment ${a.id} is ${a.attach_status}`);
  const connection = await deps.bus.request(volumeSubjects(v.host).export, { volumeId: v.id, attachmentId, instanceHost }, { timeoutMs: EXPORT_MS })
    .catch((e: unknown) => {
      log.warn({ err: e instanceof Error ? e.message : String(e), volume: v.id, attachment: attachmentId }, 'volume export failed');
      throw err.invalidVolume(`Unable to export volume ${v.id} for host ${instanceHost}: ${e instanceof Error ? e.message : String(e)}`);
    });
  const info = connectionInfo(connection, a.attach_mode === 'ro');
  await deps.db.transaction().execute(async (trx) => {
    await store.updateAttachment(trx, attachmentId, {
      connector, connection_info: info, attached_host: instanceHost, mountpoint: mountpoint ?? a.mountpoint,
      attach_status: a.attach_status === 'attached' ? 'attached' : 'attaching',
    });
    await store.updateVolume(trx, v.id, { status: 'attaching' }, ['reserved', 'available']);
  });
  log.info({ volume: v.id, attachment: attachmentId, host: instanceHost, type: connection.type }, 'volume exported');
  return { a: (await store.getAttachment(deps.db, attachmentId))!, v, connection };
}

/** Attachment complete: attached, the volume in-use. */
export async function complete(deps: VolumeDeps, attachmentId: string, mountpoint?: string): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    const a = await store.getAttachment(trx, attachmentId);
    if (!a) throw err.attachmentNotFound(attachmentId);
    await store.updateAttachment(trx, attachmentId, { attach_status: 'attached', attach_time: a.attach_time ?? store.now(), ...(mountpoint ? { mountpoint } : {}) });
    await store.updateVolume(trx, a.volume_id, { status: 'in-use', attach_status: 'attached' });
  });
}

/** Detach begins: detaching (only when attached). */
export async function beginDetach(deps: VolumeDeps, volumeId: string): Promise<void> {
  const v = await store.getVolume(deps.db, volumeId);
  if (!v) throw err.volumeNotFound(volumeId);
  if (v.status !== 'in-use' || v.attach_status !== 'attached') throw err.invalidVolume(`Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.`);
  await store.updateVolume(deps.db, volumeId, { status: 'detaching' }, ['in-use']);
}

export async function rollDetach(deps: VolumeDeps, volumeId: string): Promise<void> {
  await store.updateVolume(deps.db, volumeId, { status: 'in-use' }, ['detaching']);
}

/** Unexport and remove the attachment; the volume becomes available when none is left (else in-use). Idempotent. */
export async function remove(deps: VolumeDeps, attachmentId: string, log: Logger, force = false): Promise<void> {
  const a = await store.getAttachment(deps.db, attachmentId);
  if (!a) return;
  const v = await store.getVolume(deps.db, a.volume_id);
  if (v?.host && a.connection_info) {
    await deps.bus.request(volumeSubjects(v.host).unexport, { volumeId: v.id, attachmentId }, { timeoutMs: EXPORT_MS }).catch((e: unknown) => {
      log.warn({ err: e instanceof Error ? e.message : String(e), volume: v.id, attachment: attachmentId }, 'volume unexport failed');
      throw err.invalidVolume(`Unable to terminate volume connection: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
  await deps.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('volume_attachments').where('id', '=', attachmentId).execute();
    const left = await store.attachmentsOf(trx, { volumeIds: [a.volume_id] });
    const attached = left.some((x) => x.attach_status === 'attached');
    const status = attached ? 'in-use' : left.length ? (left.some((x) => x.attach_status === 'attaching') ? 'attaching' : 'reserved') : 'available';
    // A force detach (admin) settles the volume whatever status it was reset to.
    await store.updateVolume(trx, a.volume_id, { status, attach_status: attached ? 'attached' : 'detached' },
      force ? undefined : ['reserved', 'attaching', 'in-use', 'detaching', 'available', 'error_attaching', 'error_detaching']);
  });
  log.info({ volume: a.volume_id, attachment: attachmentId }, 'volume attachment removed');
}

// ---- the attachments API (3.27+) ----

export async function apiCreate(deps: VolumeDeps, auth: AuthContext, f: { volumeId: string; instanceUuid?: string; connector?: Record<string, Json>; mode?: 'rw' | 'ro' }, log: Logger): Promise<AttachmentRecord> {
  if (f.mode && f.mode !== 'rw' && f.mode !== 'ro') throw err.invalidInput(`Invalid attach mode '${String(f.mode)}'.`);
  const a = await reserve(deps, auth, f.volumeId, f.instanceUuid ?? null, f.mode ?? 'rw');
  if (!f.connector) return a;
  try {
    return (await connect(deps, a.id, f.connector, null, log)).a;
  } catch (e) {
    await remove(deps, a.id, log).catch(() => undefined);
    throw e;
  }
}

export async function apiUpdate(deps: VolumeDeps, auth: AuthContext, id: string, connector: Record<string, Json>, log: Logger): Promise<AttachmentRecord> {
  const { v } = await visibleAttachment(deps, auth, id);
  authorize(auth, 'volume:attachment_update', { project_id: v.project_id });
  return (await connect(deps, id, connector, typeof connector.mountpoint === 'string' ? connector.mountpoint : null, log)).a;
}

export async function apiComplete(deps: VolumeDeps, auth: AuthContext, id: string): Promise<void> {
  const { v } = await visibleAttachment(deps, auth, id);
  authorize(auth, 'volume:attachment_complete', { project_id: v.project_id });
  await complete(deps, id);
}

export async function apiDelete(deps: VolumeDeps, auth: AuthContext, id: string, log: Logger): Promise<void> {
  const { v } = await visibleAttachment(deps, auth, id);
  authorize(auth, 'volume:attachment_delete', { project_id: v.project_id });
  await remove(deps, id, log);
}

export async function apiList(deps: VolumeDeps, auth: AuthContext, allTenants: boolean, filters: Record<string, string>): Promise<{ a: AttachmentRecord; v: VolumeRecord }[]> {
  authorize(auth, 'volume:attachment_get_all', { project_id: auth.projectId });
  const vols = await store.listVolumes(deps.db, allTenants && isAdmin(auth) ? {} : { projectId: auth.projectId ?? '' });
  const byId = new Map(vols.map((v) => [v.id, v]));
  const atts = await store.attachmentsOf(deps.db, { volumeIds: vols.map((v) => v.id) });
  return atts.filter((a) => (filters.volume_id === undefined || a.volume_id === filters.volume_id)
    && (filters.instance_id === undefined || a.instance_uuid === filters.instance_id)
    && (filters.status === undefined || a.attach_status === filters.status)).map((a) => ({ a, v: byId.get(a.volume_id)! }));
}

// ---- the older action flow ----

export async function osReserve(deps: VolumeDeps, auth: AuthContext, volumeId: string): Promise<void> {
  const v = await visibleVolume(deps, auth, volumeId, 'volume:reserve_volume');
  const ok = v.status === 'available' || (v.multiattach && v.status === 'in-use');
  if (!ok) throw err.invalidVolume(`Volume status must be available or in-use (multiattach) to reserve, but the current status is ${v.status}.`);
  await store.updateVolume(deps.db, volumeId, { status: 'attaching', previous_status: v.status }, [v.status]);
}

export async function osUnreserve(deps: VolumeDeps, auth: AuthContext, volumeId: string): Promise<void> {
  const v = await visibleVolume(deps, auth, volumeId, 'volume:unreserve_volume');
  if (v.status !== 'attaching') return;
  const left = await store.attachmentsOf(deps.db, { volumeIds: [volumeId] });
  await store.updateVolume(deps.db, volumeId, { status: left.some((a) => a.attach_status === 'attached') ? 'in-use' : 'available' }, ['attaching']);
}

/** os-initialize_connection: the connection for the connector's host (an attachment row holds the export). */
export async function osInitialize(deps: VolumeDeps, auth: AuthContext, volumeId: string, connector: Record<string, Json>, log: Logger): Promise<Record<string, Json>> {
  const v = await visibleVolume(deps, auth, volumeId, 'volume:initialize_connection');
  const all = await store.attachmentsOf(deps.db, { volumeIds: [volumeId] });
  let a = all.find((x) => x.attach_status !== 'attached' && x.attach_status !== 'detached')
    ?? all.find((x) => x.attached_host === connector.host);
  if (!a) {
    const t = store.now();
    a = { id: randomUUID(), volume_id: volumeId, instance_uuid: null, attached_host: null, mountpoint: null, attach_mode: readonlyOf(v) ? 'ro' : 'rw',
      attach_status: 'attaching', connector: null, connection_info: null, attach_time: null, detach_time: null, created_at: t, updated_at: t };
    await store.insertAttachment(deps.db, a);
  }
  const r = await connect(deps, a.id, connector, null, log);
  return connectionInfo(r.connection, a.attach_mode === 'ro');
}

export async function osAttach(deps: VolumeDeps, auth: AuthContext, volumeId: string, f: { instanceUuid?: string; hostName?: string; mountpoint: string; mode: 'rw' | 'ro' }): Promise<void> {
  await visibleVolume(deps, auth, volumeId, 'volume:attach');
  if (!f.instanceUuid && !f.hostName) throw err.invalidInput('Invalid request to attach volume to an invalid target');
  const all = await store.attachmentsOf(deps.db, { volumeIds: [volumeId] });
  const a = all.find((x) => x.attach_status === 'attaching' || x.attach_status === 'reserved');
  if (a) {
    await store.updateAttachment(deps.db, a.id, { instance_uuid: f.instanceUuid ?? null, attached_host: f.hostName ?? a.attached_host, attach_mode: f.mode });
    await complete(deps, a.id, f.mountpoint);
    return;
  }
  const t = store.now();
  const rec: AttachmentRecord = { id: randomUUID(), volume_id: volumeId, instance_uuid: f.instanceUuid ?? null, attached_host: f.hostName ?? null,
    mountpoint: f.mountpoint, attach_mode: f.mode, attach_status: 'attaching', connector: null, connection_info: null, attach_time: null, detach_time: null, created_at: t, updated_at: t };
  await store.insertAttachment(deps.db, rec);
  await complete(deps, rec.id, f.mountpoint);
}

export async function osDetach(deps: VolumeDeps, auth: AuthContext, volumeId: string, attachmentId: string | undefined, log: Logger, force = false): Promise<void> {
  await visibleVolume(deps, auth, volumeId, 'volume:detach');
  const all = await store.attachmentsOf(deps.db, { volumeIds: [volumeId] });
  if (attachmentId === undefined && all.length > 1) throw err.invalidVolume('Detach volume failed: More than one attachment, but no attachment_id provided.');
  if (attachmentId === undefined && all.length === 0) {
    // Cinder: "volume detach called, but volume not attached" — nothing to undo; the volume is settled available.
    await store.updateVolume(deps.db, volumeId, { status: 'available', attach_status: 'detached' }, ['in-use', 'detaching', 'attaching', 'reserved']);
    return;
  }
  const a = attachmentId ? all.find((x) => x.id === attachmentId) : all[0];
  if (!a) throw err.attachmentNotFound(attachmentId ?? volumeId);
  await remove(deps, a.id, log, force);
}

export async function osTerminate(deps: VolumeDeps, auth: AuthContext, volumeId: string, connector: Record<string, Json>, log: Logger): Promise<void> {
  await visibleVolume(deps, auth, volumeId, 'volume:terminate_connection');
  const all = await store.attachmentsOf(deps.db, { volumeIds: [volumeId] });
  const a = all.find((x) => x.attached_host === connector.host && x.connection_info);
  if (!a?.connection_info) return;
  const v = (await store.getVolume(deps.db, volumeId))!;
  if (v.host) {
    await deps.bus.request(volumeSubjects(v.host).unexport, { volumeId, attachmentId: a.id }, { timeoutMs: EXPORT_MS }).catch((e: unknown) => {
      log.warn({ err: e instanceof Error ? e.message : String(e) }, 'volume unexport failed');
      throw err.invalidVolume(`Unable to terminate volume connection: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
  // The export is gone; a not-yet-attached attachment goes with it.
  if (a.attach_status !== 'attached') await deps.db.deleteFrom('volume_attachments').where('id', '=', a.id).execute();
  else await store.updateAttachment(deps.db, a.id, { connection_info: null });
}

export async function osBeginDetaching(deps: VolumeDeps, auth: AuthContext, volumeId: string): Promise<void> {
  await visibleVolume(deps, auth, volumeId, 'volume:begin_detaching');
  await beginDetach(deps, volumeId);
}

export async function osRollDetaching(deps: VolumeDeps, auth: AuthContext, volumeId: string): Promise<void> {
  await visibleVolume(deps, auth, volumeId, 'volume:roll_detaching');
  await rollDetach(deps, volumeId);
}
