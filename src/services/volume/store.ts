import type { Transaction } from 'kysely';
import type { Database, Db } from '../../db/index.ts';
import type { VolumeAttachmentTable, VolumeBackupTable, VolumeSnapshotTable, VolumeTable, VolumeTypeTable } from '../../db/schema/volume.ts';
import type { AttachmentRecord, BackupRecord, Json, QosSpecRecord, SnapshotRecord, TransferRecord, VolumeRecord, VolumeTypeRecord } from './types.ts';

/** SQL for Cinder's tables (migration 010): rows in and out as records (JSON text parsed, 0/1 as booleans). */

export type Tx = Db | Transaction<Database>;

export const now = (): string => new Date().toISOString();
const obj = (s: string | null): Record<string, string> => (s ? JSON.parse(s) as Record<string, string> : {});
const doc = (s: string | null): Record<string, Json> | null => (s ? JSON.parse(s) as Record<string, Json> : null);

export function volumeOf(r: VolumeTable): VolumeRecord {
  return {
    ...r, bootable: r.bootable === 1, multiattach: r.multiattach === 1, encrypted: r.encrypted === 1,
    metadata: obj(r.metadata), admin_metadata: obj(r.admin_metadata), image_metadata: obj(r.image_metadata),
  };
}
export function volumeRow(v: VolumeRecord): VolumeTable {
  return {
    ...v, bootable: v.bootable ? 1 : 0, multiattach: v.multiattach ? 1 : 0, encrypted: v.encrypted ? 1 : 0,
    metadata: JSON.stringify(v.metadata), admin_metadata: JSON.stringify(v.admin_metadata), image_metadata: JSON.stringify(v.image_metadata),
  };
}

export async function getVolume(db: Tx, id: string): Promise<VolumeRecord | undefined> {
  const r = await db.selectFrom('volumes').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? volumeOf(r) : undefined;
}
export async function listVolumes(db: Tx, where: { projectId?: string; ids?: string[]; statuses?: string[]; host?: string } = {}): Promise<VolumeRecord[]> {
  let q = db.selectFrom('volumes').selectAll();
  if (where.projectId !== undefined) q = q.where('project_id', '=', where.projectId);
  if (where.ids) q = where.ids.length ? q.where('id', 'in', where.ids) : q.where('id', '=', '');
  if (where.statuses) q = q.where('status', 'in', where.statuses);
  if (where.host !== undefined) q = q.where('host', '=', where.host);
  return (await q.execute()).map(volumeOf);
}
export async function insertVolume(db: Tx, v: VolumeRecord): Promise<void> {
  await db.insertInto('volumes').values(volumeRow(v)).execute();
}
/** Update fields; with `fromStatus`, only while the volume is in one of those statuses (returns whether it changed). */
export async function updateVolume(db: Tx, id: string, fields: Partial<VolumeRecord>, fromStatus?: string[]): Promise<boolean> {
  const row: Partial<VolumeTable> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'metadata' || k === 'admin_metadata' || k === 'image_metadata') (row as Record<string, unknown>)[k] = JSON.stringify(v);
    else if (k === 'bootable' || k === 'multiattach' || k === 'encrypted') (row as Record<string, unknown>)[k] = v ? 1 : 0;
    else (row as Record<string, unknown>)[k] = v;
  }
  row.updated_at = now();
  let q = db.updateTable('volumes').set(row).where('id', '=', id);
  if (fromStatus) q = q.where('status', 'in', fromStatus);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}
export async function deleteVolumeRow(db: Tx, id: string): Promise<void> {
  await db.deleteFrom('volume_attachments').where('volume_id', '=', id).execute();
  await db.deleteFrom('volume_transfers').where('volume_id', '=', id).execute();
  await db.deleteFrom('volumes').where('id', '=', id).execute();
}

export function attachmentOf(r: VolumeAttachmentTable): AttachmentRecord {
  return { ...r, connector: doc(r.connector), connection_info: doc(r.connection_info) };
}
export async function getAttachment(db: Tx, id: string): Promise<AttachmentRecord | undefined> {
  const r = await db.selectFrom('volume_attachments').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? attachmentOf(r) : undefined;
}
export async function attachmentsOf(db: Tx, where: { volumeIds?: string[]; instanceUuid?: string }): Promise<AttachmentRecord[]> {
  let q = db.selectFrom('volume_attachments').selectAll();
  if (where.volumeIds) q = where.volumeIds.length ? q.where('volume_id', 'in', where.volumeIds) : q.where('volume_id', '=', '');
  if (where.instanceUuid !== undefined) q = q.where('instance_uuid', '=', where.instanceUuid);
  return (await q.orderBy('created_at').orderBy('id').execute()).map(attachmentOf);
}
export async function insertAttachment(db: Tx, a: AttachmentRecord): Promise<void> {
  await db.insertInto('volume_attachments').values({
    ...a, connector: a.connector ? JSON.stringify(a.connector) : null, connection_info: a.connection_info ? JSON.stringify(a.connection_info) : null,
  }).execute();
}
export async function updateAttachment(db: Tx, id: string, fields: Partial<AttachmentRecord>): Promise<void> {
  const row: Partial<VolumeAttachmentTable> = {};
  for (const [k, v] of Object.entries(fields)) {
    (row as Record<string, unknown>)[k] = (k === 'connector' || k === 'connection_info') && v !== null ? JSON.stringify(v) : v;
  }
  row.updated_at = now();
  await db.updateTable('volume_attachments').set(row).where('id', '=', id).execute();
}

export function snapshotOf(r: VolumeSnapshotTable): SnapshotRecord { return { ...r, metadata: obj(r.metadata) }; }
export async function getSnapshot(db: Tx, id: string): Promise<SnapshotRecord | undefined> {
  const r = await db.selectFrom('volume_snapshots').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? snapshotOf(r) : undefined;
}
export async function listSnapshots(db: Tx, where: { projectId?: string; volumeIds?: string[]; statuses?: string[] } = {}): Promise<SnapshotRecord[]> {
  let q = db.selectFrom('volume_snapshots').selectAll();
  if (where.projectId !== undefined) q = q.where('project_id', '=', where.projectId);
  if (where.volumeIds) q = where.volumeIds.length ? q.where('volume_id', 'in', where.volumeIds) : q.where('volume_id', '=', '');
  if (where.statuses) q = q.where('status', 'in', where.statuses);
  return (await q.execute()).map(snapshotOf);
}
export async function insertSnapshot(db: Tx, s: SnapshotRecord): Promise<void> {
  await db.insertInto('volume_snapshots').values({ ...s, metadata: JSON.stringify(s.metadata) }).execute();
}
export async function updateSnapshot(db: Tx, id: string, fields: Partial<SnapshotRecord>, fromStatus?: string[]): Promise<boolean> {
  const row: Partial<VolumeSnapshotTable> = { ...(fields as Partial<VolumeSnapshotTable>), updated_at: now() };
  if (fields.metadata) row.metadata = JSON.stringify(fields.metadata);
  let q = db.updateTable('volume_snapshots').set(row).where('id', '=', id);
  if (fromStatus) q = q.where('status', 'in', fromStatus);
  return Number((await q.executeTakeFirst()).numUpdatedRows) > 0;
}

export function backupOf(r: VolumeBackupTable): BackupRecord { return { ...r, is_incremental: r.is_incremental === 1, metadata: obj(r.metadata) }; }
export async function getBackup(db: Tx, id: string): Promise<BackupRecord | undefined> {
  const r = await db.selectFrom('volume_backups').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? backupOf(r) : undefined;
}
export async function listBackups(db: Tx, where: { projectId?: string; volumeId?: string; parentId?: string; statuses?: string[] } = {}): Promise<BackupRecord[]> {
  let q = db.selectFrom('volume_backups').selectAll();
  if (where.projectId !== undefined) q = q.where('project_id', '=', where.projectId);
  if (where.volumeId !== undefined) q = q.where('volume_id', '=', where.volumeId);
  if (where.parentId !== undefined) q = q.where('parent_id', '=', where.parentId);
  if (where.statuses) q = q.where('status', 'in', where.statuses);
  return (await q.execute()).map(backupOf);
}
export async function insertBackup(db: Tx, b: BackupRecord): Promise<void> {
  await db.insertInto('volume_backups').values({ ...b, is_incremental: b.is_incremental ? 1 : 0, metadata: JSON.stringify(b.metadata) }).execute();
}
export async function updateBackup(db: Tx, id: string, fields: Partial<BackupRecord>, fromStatus?: string[]): Promise<boolean> {
  const row: Partial<VolumeBackupTable> = { ...(fields as Partial<VolumeBackupTable>), updated_at: now() };
  if (fields.metadata) row.metadata = JSON.stringify(fields.metadata);
  if (fields.is_incremental !== undefined) row.is_incremental = fields.is_incremental ? 1 : 0;
  let q = db.updateTable('volume_backups').set(row).where('id', '=', id);
  if (fromStatus) q = q.where('status', 'in', fromStatus);
  return Number((await q.executeTakeFirst()).numUpdatedRows) > 0;
}

export function typeOf(r: VolumeTypeTable): VolumeTypeRecord { return { ...r, is_public: r.is_public === 1, extra_specs: obj(r.extra_specs) }; }
export async function getType(db: Tx, id: string): Promise<VolumeTypeRecord | undefined> {
  const r = await db.selectFrom('volume_types').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? typeOf(r) : undefined;
}
export async function getTypeByName(db: Tx, name: string): Promise<VolumeTypeRecord | undefined> {
  const r = await db.selectFrom('volume_types').selectAll().where('name', '=', name).executeTakeFirst();
  return r ? typeOf(r) : undefined;
}
export async function listTypes(db: Tx): Promise<VolumeTypeRecord[]> {
  return (await db.selectFrom('volume_types').selectAll().execute()).map(typeOf);
}
export async function typeProjects(db: Tx, typeId: string): Promise<string[]> {
  return (await db.selectFrom('volume_type_projects').select('project_id').where('volume_type_id', '=', typeId).execute()).map((r) => r.project_id);
}

export async function getQos(db: Tx, id: string): Promise<QosSpecRecord | undefined> {
  const r = await db.selectFrom('qos_specs').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? { ...r, specs: obj(r.specs) } : undefined;
}
export async function listQos(db: Tx): Promise<QosSpecRecord[]> {
  return (await db.selectFrom('qos_specs').selectAll().execute()).map((r) => ({ ...r, specs: obj(r.specs) }));
}

export async function getTransfer(db: Tx, id: string): Promise<TransferRecord | undefined> {
  const r = await db.selectFrom('volume_transfers').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? { ...r, no_snapshots: r.no_snapshots === 1 } : undefined;
}
export async function listTransfers(db: Tx, projectId?: string): Promise<TransferRecord[]> {
  let q = db.selectFrom('volume_transfers').selectAll();
  if (projectId !== undefined) q = q.where('source_project_id', '=', projectId);
  return (await q.execute()).map((r) => ({ ...r, no_snapshots: r.no_snapshots === 1 }));
}
