import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { VolumeQos } from '../../bus/compute.ts';
import type { VolumeConnection } from '../../bus/volume.ts';
import { BadRequest } from '../../common/errors.ts';
import { isoNow } from '../../db/index.ts';
import type { BlockDeviceMappingTable } from '../../db/schema/compute.ts';
import * as store from './store.ts';
import type { Instance } from './types.ts';

/**
 * Block device mappings (Nova's block_device_mapping table, migration 011): the volumes of
 * each server. `attachStatus` is the durable intent of the operation in flight on a row:
 * creating (a boot from volume makes the volume), attaching, detaching, attached.
 */

export type AttachStatus = 'creating' | 'attaching' | 'attached' | 'detaching';
export type SourceType = 'image' | 'volume' | 'snapshot' | 'blank';

/** What the volume service answered for the instance's host (Cinder's connection_info), kept for rebuilds and unshelves. */
export interface SavedConnection { connection: VolumeConnection; qos?: VolumeQos; readonly: boolean }

export interface BlockDeviceMapping {
  id: number;
  uuid: string;
  instanceUuid: string;
  sourceType: SourceType;
  destinationType: 'volume' | 'local';
  bootIndex: number | null;
  deviceName: string | null;
  volumeId: string | null;
  snapshotId: string | null;
  imageId: string | null;
  volumeSize: number | null;
  volumeType: string | null;
  deleteOnTermination: boolean;
  attachmentId: string | null;
  tag: string | null;
  attachStatus: AttachStatus | null;
  connection: SavedConnection | null;
  createdAt: string;
  updatedAt: string;
}

function bdmFrom(r: Selectable<BlockDeviceMappingTable>): BlockDeviceMapping {
  return {
    id: r.id, uuid: r.uuid, instanceUuid: r.instance_uuid, sourceType: r.source_type as SourceType,
    destinationType: r.destination_type as 'volume' | 'local', bootIndex: r.boot_index, deviceName: r.device_name,
    volumeId: r.volume_id, snapshotId: r.snapshot_id, imageId: r.image_id, volumeSize: r.volume_size, volumeType: r.volume_type,
    deleteOnTermination: r.delete_on_termination === 1, attachmentId: r.attachment_id, tag: r.tag,
    attachStatus: r.attach_status as AttachStatus | null,
    connection: r.connection_info ? JSON.parse(r.connection_info) as SavedConnection : null,
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

/** The live mappings of some instances, in creation order (boot volume first when it has one). */
export async function bdmsOf(db: store.Q, instanceUuids: string[]): Promise<BlockDeviceMapping[]> {
  const out: BlockDeviceMapping[] = [];
  for (let i = 0; i < instanceUuids.length; i += 500) {
    const rows = await db.selectFrom('block_device_mappings').selectAll().where('instance_uuid', 'in', instanceUuids.slice(i, i + 500))
      .where('deleted', '=', 0).orderBy('id').execute();
    out.push(...rows.map(bdmFrom));
  }
  return out;
}

export async function listBdms(db: store.Q, instanceUuid: string): Promise<BlockDeviceMapping[]> {
  return bdmsOf(db, [instanceUuid]);
}

export async function getBdm(db: store.Q, uuid: string): Promise<BlockDeviceMapping | undefined> {
  const r = await db.selectFrom('block_device_mappings').selectAll().where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
  return r ? bdmFrom(r) : undefined;
}

export type NewBdm = Pick<BlockDeviceMapping, 'instanceUuid' | 'sourceType' | 'destinationType' | 'bootIndex' | 'deviceName' | 'volumeId'
  | 'snapshotId' | 'imageId' | 'volumeSize' | 'volumeType' | 'deleteOnTermination' | 'attachmentId' | 'tag' | 'attachStatus'>;

export async function insertBdm(db: store.Q, b: NewBdm): Promise<BlockDeviceMapping> {
  const now = isoNow();
  const id = await store.nextId(db, 'block_device_mappings');
  const uuid = randomUUID();
  await db.insertInto('block_device_mappings').values({
    id, uuid, instance_uuid: b.instanceUuid, source_type: b.sourceType, destination_type: b.destinationType, boot_index: b.bootIndex,
    device_name: b.deviceName, volume_id: b.volumeId, snapshot_id: b.snapshotId, image_id: b.imageId, volume_size: b.volumeSize,
    volume_type: b.volumeType, delete_on_termination: b.deleteOnTermination ? 1 : 0, attachment_id: b.attachmentId, tag: b.tag,
    attach_status: b.attachStatus, connection_info: null, created_at: now, updated_at: now, deleted: 0, deleted_at: null,
  }).execute();
  return (await getBdm(db, uuid))!;
}

export interface BdmPatch {
  volume_id?: string | null; attachment_id?: string | null; attach_status?: AttachStatus | null; connection_info?: string | null;
  delete_on_termination?: number; device_name?: string | null; volume_size?: number | null; deleted?: number; deleted_at?: string | null;
}

/** Update a live row, optionally only while its attach_status is one of `expect` (the guard against racing settlers). */
export async function updateBdm(db: store.Q, uuid: string, patch: BdmPatch, expect?: (AttachStatus | null)[]): Promise<boolean> {
  let q = db.updateTable('block_device_mappings').set({ ...patch, updated_at: isoNow() }).where('uuid', '=', uuid).where('deleted', '=', 0);
  if (expect) {
    const vals = expect.filter((s): s is AttachStatus => s !== null);
    q = q.where((eb) => eb.or([...(vals.length ? [eb('attach_status', 'in', vals)] : []), ...(expect.includes(null) ? [eb('attach_status', 'is', null)] : [])]));
  }
  return Number((await q.executeTakeFirst()).numUpdatedRows) === 1;
}

/** The volume left the instance: the row is soft-deleted, as Nova's (same guard as updateBdm). */
export async function removeBdm(db: store.Q, uuid: string, expect?: (AttachStatus | null)[]): Promise<boolean> {
  return updateBdm(db, uuid, { attach_status: null, deleted: 1, deleted_at: isoNow() }, expect);
}

/** A volume-backed server: its root disk is a volume (boot index 0, destination volume). */
export function isVolumeBacked(bdms: BlockDeviceMapping[]): boolean {
  return bdms.some((b) => b.bootIndex === 0 && b.destinationType === 'volume');
}

/** Nova's block_device.match_device: /dev/[x][a-z][d]<letters>[digits], or a bare name. */
const DEVICE_RE = /^(\/dev\/)?x?[a-z]?d?[a-z]+[0-9]*$/;
export function validDevicePath(device: string): boolean {
  return DEVICE_RE.test(device);
}

/**
 * The next free device name of an instance (/dev/vdb, ...): after the disks it has of its
 * own — root (an image disk, or the boot volume at vda), ephemeral, swap, config drive, in
 * the agent's guest order — and every device its volumes hold. A requested name is
 * advisory, as in Nova with the libvirt driver: the hypervisor names disks itself.
 */
export function nextDeviceName(inst: Pick<Instance, 'flavor' | 'configDrive'>, bdms: BlockDeviceMapping[], forceConfigDrive = false): string {
  const own = 1 + (inst.flavor.ephemeral > 0 ? 1 : 0) + (inst.flavor.swap > 0 ? 1 : 0) + (inst.configDrive === 'True' || forceConfigDrive ? 1 : 0);
  const used = new Set(bdms.map((b) => b.deviceName?.replace(/^\/dev\//, '')).filter((d): d is string => !!d));
  for (let i = own; i < 26; i++) {
    const name = `vd${String.fromCharCode(97 + i)}`;
    if (!used.has(name)) return `/dev/${name}`;
  }
  throw new BadRequest('No free disk device names for prefix \'vd\'');
}
