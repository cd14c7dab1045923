import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import { GureumError } from '../../common/errors.ts';
import { err } from './errors.ts';
import { mergeMetadata, withoutKey } from './http.ts';
import type { VolumeManager } from './manager.ts';
import { authorize, isAdmin } from './policy.ts';
import { checkQuota } from './quotas.ts';
import * as store from './store.ts';
import type { VolumeDeps, VolumeRecord } from './types.ts';
import { defaultType, findType } from './volume-types.ts';

/**
 * Volumes: create (empty, from an image, a snapshot, another volume or a backup), list
 * and show in the caller's scope, update, delete, and the actions that change a volume's
 * size, flags and status — each with Cinder's status rules.
 */

export interface Ctx { auth: AuthContext; requestId: string }
export interface VolumeOps { deps: VolumeDeps; manager: VolumeManager }

const GiB = 1024 ** 3;

/** A volume the caller may see (admins: any); 404 otherwise, as Cinder's project-scoped get. */
export async function visibleVolume(deps: VolumeDeps, auth: AuthContext, id: string, action = 'volume:get'): Promise<VolumeRecord> {
  const v = await store.getVolume(deps.db, id);
  if (!v || (!isAdmin(auth) && v.project_id !== auth.projectId)) throw err.volumeNotFound(id);
  authorize(auth, action, { project_id: v.project_id });
  return v;
}

export interface CreateInput {
  size?: number; name?: string; description?: string; volumeType?: string; availabilityZone?: string; metadata?: Record<string, string>;
  imageRef?: string; snapshotId?: string; sourceVolid?: string; backupId?: string; multiattach?: boolean;
}

/** Cinder's create: checks, quota and the record in one transaction (status creating), then the manager's work. */
export async function createVolume(o: VolumeOps, ctx: Ctx, input: CreateInput, projectId = ctx.auth.projectId): Promise<VolumeRecord> {
  const { deps } = o;
  const auth = ctx.auth;
  if (!projectId) throw err.badRequest('A project-scoped token is required to create volumes.');
  authorize(auth, 'volume:create', { project_id: projectId });
  const sources = [input.imageRef, input.snapshotId, input.sourceVolid, input.backupId].filter((x) => x !== undefined && x !== null && x !== '');
  if (sources.length > 1) throw err.invalidInput('Invalid input received: Only one of imageRef, snapshot_id, source_volid or backup_id may be specified.');
  const az = input.availabilityZone ?? deps.cfg.availabilityZone;
  if (az !== deps.cfg.availabilityZone) throw err.invalidInput(`Availability zone '${az}' is invalid.`);

  let size = input.size;
  let type = input.volumeType ? await findType(deps, auth, input.volumeType) : undefined;
  let bootable = false;
  let imageMeta: Record<string, string> = {};
  const adminMeta: Record<string, string> = {};
  let host: string | null = null;

  if (input.snapshotId) {
    const s = await store.getSnapshot(deps.db, input.snapshotId);
    if (!s || (!isAdmin(auth) && s.project_id !== auth.projectId)) throw err.snapshotNotFound(input.snapshotId);
    if (s.status !== 'available') throw err.invalidSnapshot(`Originating snapshot status must be one of 'available' values`);
    const src = await store.getVolume(deps.db, s.volume_id);
    size ??= s.size;
    if (size < s.size) throw err.invalidInput(`Volume size '${size}'GB cannot be smaller than the snapshot size ${s.size}GB. They must be >= original snapshot size.`);
    if (src) { type ??= await store.getType(deps.db, src.volume_type_id); bootable = src.bootable; imageMeta = src.image_metadata; host = src.host; }
  } else if (input.sourceVolid) {
    const src = await store.getVolume(deps.db, input.sourceVolid);
    if (!src || (!isAdmin(auth) && src.project_id !== auth.projectId)) throw err.volumeNotFound(input.sourceVolid);
    if (!['available', 'in-use'].includes(src.status)) throw err.invalidVolume(`Unable to clone volumes that are in an error state`);
    size ??= src.size;
    if (size < src.size) throw err.invalidInput(`Volume size '${size}'GB cannot be smaller than original volume size  ${src.size}GB. They must be >= original volume size.`);
    type ??= await store.getType(deps.db, src.volume_type_id);
    bootable = src.bootable; imageMeta = src.image_metadata; host = src.host;
  } else if (input.backupId) {
    const b = await store.getBackup(deps.db, input.backupId);
    if (!b || (!isAdmin(auth) && b.project_id !== auth.projectId)) throw err.backupNotFound(input.backupId);
    if (b.status !== 'available') throw err.invalidBackup(`Backup status must be available but is ${b.status}.`);
    size ??= b.size;
    if (size < b.size) throw err.invalidInput(`Volume size ${size}GB cannot be smaller than the backup size ${b.size}GB.`);
    host = b.host;
  } else if (input.imageRef) {
    authorize(auth, 'volume:create_from_image', { project_id: projectId });
    const image = await deps.images.get(auth, input.imageRef).catch((e: unknown) => {
      if (e instanceof GureumError && e.status === 404) throw err.invalidInput(`Invalid image identifier or unable to access requested image.`);
      throw e;
    });
    if (image.status !== 'active') throw err.imageNotActive(image.id);
    const virtualGb = Math.ceil((image.virtualSize ?? image.size ?? 0) / GiB);
    const dataGb = Math.ceil((image.size ?? 0) / GiB);
    size ??= Math.max(virtualGb, dataGb, image.minDisk, 1);
    if (size < virtualGb) throw err.imageTooLarge(size, virtualGb);
    if (size < dataGb) throw err.invalidInput(`Size of specified image ${dataGb}GB is larger than volume size ${size}GB.`);
    if (size < image.minDisk) throw err.invalidInput(`Volume size ${size}GB cannot be smaller than the image minDisk size ${image.minDisk}GB.`);
    bootable = true;
    imageMeta = {
      ...image.properties, image_id: image.id, image_name: image.name, container_format: image.containerFormat ?? 'bare',
      disk_format: image.diskFormat ?? 'raw', min_disk: String(image.minDisk), min_ram: String(image.minRam), size: String(image.size ?? 0),
      ...(image.checksum ? { checksum: image.checksum } : {}),
    };
    if (image.sha512) adminMeta.image_sha512 = image.sha512;
  }
  if (size === undefined) throw err.badField('volume', {}, `'size' is a required property`);
  type ??= await defaultType(deps);
  const multiattach = input.multiattach ?? type.extra_specs.multiattach === '<is> True';

  const t = store.now();
  const v: VolumeRecord = {
    id: randomUUID(), project_id: projectId, user_id: auth.userId, name: input.name ?? '', description: input.description ?? '', size,
    status: 'creating', previous_status: null, attach_status: 'detached', migration_status: null, availability_zone: az, volume_type_id: type.id,
    host, bootable, multiattach, encrypted: false, metadata: input.metadata ?? {}, admin_metadata: adminMeta, image_metadata: imageMeta,
    source_volid: input.sourceVolid ?? null, snapshot_id: input.snapshotId ?? null, image_id: input.imageRef ?? null, backup_id: input.backupId ?? null,
    group_id: null, fail_reason: null, created_at: t, updated_at: t, launched_at: null,
  };
  await deps.db.transaction().execute(async (trx) => {
    await checkQuota(deps, trx, projectId, { volumes: 1, gigabytes: size }, size);
    if (v.backup_id && !(await store.updateBackup(trx, v.backup_id, { status: 'restoring', restore_volume_id: v.id }, ['available']))) {
      throw err.invalidBackup('Backup status must be available.');
    }
    await store.insertVolume(trx, v);
  });
  deps.log.info({ volume: v.id, size, request_id: ctx.requestId, source: sources[0] ?? 'empty' }, 'volume create accepted');
  o.manager.create(v.id, auth.token, ctx.requestId);
  return v;
}

/** Filters Cinder's volume list accepts (resource_filters). */
export const VOLUME_FILTERS = ['name', 'status', 'metadata', 'bootable', 'availability_zone', 'volume_type', 'user_id', 'size', 'id', 'migration_status', 'image_metadata', 'group_id', 'host', 'name~', 'description~'];

/** Cinder passes dict filters as Python reprs ("{'k': 'v'}") or JSON. */
export function parseDictFilter(name: string, s: string): Record<string, string> {
  try {
    const v = JSON.parse(s.replaceAll("'", '"').replace(/\bu"/g, '"')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
  } catch { /* below */ }
  throw err.invalidInput(`Invalid ${name} filter: ${s}`);
}

export async function listVolumes(deps: VolumeDeps, auth: AuthContext, allTenants: boolean, projectFilter: string | undefined, filters: Record<string, string>): Promise<VolumeRecord[]> {
  authorize(auth, 'volume:get_all', { project_id: auth.projectId });
  const everyone = allTenants && isAdmin(auth);
  for (const k of Object.keys(filters)) if (!VOLUME_FILTERS.includes(k)) throw err.invalidInput(`Invalid filter keys: ${k}`);
  const project = everyone ? projectFilter : auth.projectId ?? '';
  let out = await store.listVolumes(deps.db, project === undefined ? {} : { projectId: project });
  const types = new Map((await store.listTypes(deps.db)).map((t) => [t.id, t.name]));
  for (const [k, val] of Object.entries(filters)) {
    switch (k) {
      case 'metadata': case 'image_metadata': {
        const want = parseDictFilter(k, val);
        out = out.filter((v) => Object.entries(want).every(([mk, mv]) => (k === 'metadata' ? v.metadata : v.image_metadata)[mk] === mv));
        break;
      }
      case 'bootable': { const b = ['1', 'true', 't', 'yes'].includes(val.toLowerCase()); out = out.filter((v) => v.bootable === b); break; }
      case 'volume_type': out = out.filter((v) => v.volume_type_id === val || types.get(v.volume_type_id) === val); break;
      case 'size': out = out.filter((v) => String(v.size) === val); break;
      case 'host': if (isAdmin(auth)) out = out.filter((v) => v.host === val || v.host === val.split('@')[0]); break;
      case 'name~': out = out.filter((v) => v.name.includes(val)); break;
      case 'description~': out = out.filter((v) => v.description.includes(val)); break;
      default: out = out.filter((v) => String((v as unknown as Record<string, unknown>)[k] ?? '') === val);
    }
  }
  return out;
}

export async function updateVolume(deps: VolumeDeps, auth: AuthContext, id: string, f: { name?: string; description?: string; metadata?: Record<string, string> }): Promise<VolumeRecord> {
  const v = await visibleVolume(deps, auth, id, 'volume:update');
  await store.updateVolume(deps.db, id, { ...f });
  return { ...v, ...f };
}

const DELETABLE = ['available', 'error', 'error_restoring', 'error_extending', 'error_managing'];

export async function deleteVolume(o: VolumeOps, ctx: Ctx, id: string, opts: { cascade: boolean; force: boolean }): Promise<void> {
  const { deps } = o;
  const v = await visibleVolume(deps, ctx.auth, id, 'volume:delete');
  if (opts.force) authorize(ctx.auth, 'volume:force_delete', { project_id: v.project_id });
  if (v.status === 'deleting' && !opts.force) return;
  const reason = 'Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, be awaiting a transfer, or be disassociated from snapshots after volume transfer.';
  await deps.db.transaction().execute(async (trx) => {
    const attached = await store.attachmentsOf(trx, { volumeIds: [id] });
    if (attached.length || v.attach_status === 'attached') throw err.invalidVolume(reason);
    if (!opts.force && !DELETABLE.includes(v.status)) throw err.invalidVolume(reason);
    const snaps = await store.listSnapshots(trx, { volumeIds: [id] });
    if (snaps.length && !opts.cascade) throw err.invalidVolume(reason);
    for (const s of snaps) {
      if (!opts.force && !['available', 'error', 'deleting'].includes(s.status)) throw err.invalidVolume(`Snapshot ${s.id} must not be part of a group or have status ${s.status}.`);
    }
    if (snaps.length) await trx.updateTable('volume_snapshots').set({ status: 'deleting', updated_at: store.now() }).where('volume_id', '=', id).execute();
    await store.updateVolume(trx, id, { status: 'deleting', previous_status: v.status });
  });
  deps.log.info({ volume: id, request_id: ctx.requestId, cascade: opts.cascade, force: opts.force }, 'volume delete accepted');
  o.manager.delete(id, ctx.requestId);
}

export async function extendVolume(o: VolumeOps, ctx: Ctx, id: string, newSize: number, inUseAllowed: boolean): Promise<void> {
  const { deps } = o;
  const v = await visibleVolume(deps, ctx.auth, id, 'volume:extend');
  const allowedStatus = inUseAllowed ? ['available', 'in-use'] : ['available'];
  if (v.status === 'in-use') authorize(ctx.auth, 'volume:extend_attached_volume', { project_id: v.project_id });
  if (!allowedStatus.includes(v.status)) {
    throw err.invalidVolume(`Volume status must be '${allowedStatus.join("' or '")}' to extend, currently ${v.status}.`);
  }
  if (newSize <= v.size) throw err.invalidInput(`New size for extend must be greater than current size. (current: ${v.size}, extended: ${newSize}).`);
  await deps.db.transaction().execute(async (trx) => {
    await checkQuota(deps, trx, v.project_id, { gigabytes: newSize - v.size }, newSize);
    const ok = await store.updateVolume(trx, id, { status: 'extending', previous_status: v.status, admin_metadata: { ...v.admin_metadata, extend_target: String(newSize) } }, [v.status]);
    if (!ok) throw err.invalidVolume('Volume status changed; try again.');
  });
  o.manager.extend(id, newSize, ctx.requestId);
}

export async function setBootable(deps: VolumeDeps, auth: AuthContext, id: string, bootable: boolean): Promise<void> {
  await visibleVolume(deps, auth, id, 'volume:set_bootable');
  await store.updateVolume(deps.db, id, { bootable });
}

export async function setReadonly(deps: VolumeDeps, auth: AuthContext, id: string, readonly: boolean): Promise<void> {
  const v = await visibleVolume(deps, auth, id, 'volume:update_readonly_flag');
  if (v.status !== 'available') throw err.invalidVolume(`Volume status must be available to update readonly flag.`);
  await store.updateVolume(deps.db, id, { admin_metadata: { ...v.admin_metadata, readonly: readonly ? 'True' : 'False' } });
}

export const VOLUME_STATUSES = ['creating', 'available', 'reserved', 'attaching', 'in-use', 'detaching', 'maintenance', 'extending', 'deleting', 'error',
  'error_deleting', 'error_extending', 'error_restoring', 'error_managing', 'backing-up', 'restoring-backup', 'downloading', 'uploading', 'retyping', 'awaiting-transfer'];

export async function resetStatus(deps: VolumeDeps, auth: AuthContext, id: string, f: { status?: string; attachStatus?: string; migrationStatus?: string }): Promise<void> {
  const v = await store.getVolume(deps.db, id);
  if (!v) throw err.volumeNotFound(id);
  authorize(auth, 'volume_extension:volume_admin_actions:reset_status', { project_id: v.project_id });
  if (f.status !== undefined && !VOLUME_STATUSES.includes(f.status)) throw err.invalidInput(`Invalid input received: Must specify a valid status`);
  if (f.attachStatus !== undefined && !['attached', 'detached'].includes(f.attachStatus)) throw err.invalidInput(`Must specify a valid attach status`);
  if (f.status === undefined && f.attachStatus === undefined && f.migrationStatus === undefined) throw err.invalidInput('Must specify \'status\', \'attach_status\' or \'migration_status\' for update.');
  await store.updateVolume(deps.db, id, {
    ...(f.status !== undefined ? { status: f.status } : {}), ...(f.attachStatus !== undefined ? { attach_status: f.attachStatus } : {}),
    ...(f.migrationStatus !== undefined ? { migration_status: f.migrationStatus === 'none' ? null : f.migrationStatus } : {}),
  });
}

export async function forceDelete(o: VolumeOps, ctx: Ctx, id: string): Promise<void> {
  const v = await store.getVolume(o.deps.db, id);
  if (!v) throw err.volumeNotFound(id);
  authorize(ctx.auth, 'volume_extension:volume_admin_actions:force_delete', { project_id: v.project_id });
  await deleteVolume(o, ctx, id, { cascade: true, force: true });
}

export async function retype(deps: VolumeDeps, auth: AuthContext, id: string, newType: string): Promise<void> {
  const v = await visibleVolume(deps, auth, id, 'volume:retype');
  if (!['available', 'in-use'].includes(v.status)) throw err.invalidVolume(`Volume status must be available or in-use, but current status is: ${v.status}.`);
  const t = await findType(deps, auth, newType);
  if (t.id === v.volume_type_id) throw err.invalidInput('Invalid input received: New volume_type same as original: ' + t.name + '.');
  // One backend: a retype changes the type (and so its QoS at the next attach); no data moves.
  await store.updateVolume(deps.db, id, { volume_type_id: t.id }, [v.status]);
}

// ---- metadata ----

export async function setMetadata(deps: VolumeDeps, auth: AuthContext, id: string, meta: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
  const v = await visibleVolume(deps, auth, id, 'volume:update_volume_metadata');
  if (v.status === 'maintenance') throw err.invalidVolume('Volume is in maintenance.');
  const next = mergeMetadata(v.metadata, meta, replace);
  await store.updateVolume(deps.db, id, { metadata: next });
  return next;
}

export async function deleteMetadataKey(deps: VolumeDeps, auth: AuthContext, id: string, key: string): Promise<void> {
  const v = await visibleVolume(deps, auth, id, 'volume:delete_volume_metadata');
  await store.updateVolume(deps.db, id, { metadata: withoutKey(v.metadata, key, () => err.metadataNotFound(id, key)) });
}

export async function setImageMetadata(deps: VolumeDeps, auth: AuthContext, id: string, meta: Record<string, string>): Promise<Record<string, string>> {
  const v = await visibleVolume(deps, auth, id, 'volume:set_image_metadata');
  const next = mergeMetadata(v.image_metadata, meta, false);
  await store.updateVolume(deps.db, id, { image_metadata: next });
  return next;
}

export async function unsetImageMetadata(deps: VolumeDeps, auth: AuthContext, id: string, key: string): Promise<void> {
  const v = await visibleVolume(deps, auth, id, 'volume:remove_image_metadata');
  await store.updateVolume(deps.db, id, { image_metadata: withoutKey(v.image_metadata, key, () => err.metadataNotFound(id, key)) });
}

// ---- upload to image ----

export async function uploadToImage(o: VolumeOps, ctx: Ctx, id: string, f: { imageName: string; force: boolean; diskFormat: string; containerFormat: string; visibility: string; protected: boolean }): Promise<{ v: VolumeRecord; imageId: string }> {
  const { deps } = o;
  const v = await visibleVolume(deps, ctx.auth, id, 'volume:upload_image');
  const ok = f.force ? ['available', 'in-use'] : ['available'];
  if (!ok.includes(v.status)) throw err.invalidVolume(`Volume ${id} status must be ${ok.join(' or ')}, but current status is: ${v.status}.`);
  if (f.diskFormat !== 'raw' && f.diskFormat !== 'qcow2') throw err.invalidInput(`Invalid disk-format '${f.diskFormat}' specified. Allowed disk-formats are raw, qcow2.`);
  const visibility = f.visibility;
  if (visibility !== 'private' && visibility !== 'public' && visibility !== 'shared' && visibility !== 'community') throw err.invalidInput(`Invalid visibility '${visibility}'.`);
  const props = Object.fromEntries(Object.entries(v.image_metadata).filter(([k]) => !['image_id', 'image_name', 'container_format', 'disk_format', 'min_disk', 'min_ram', 'size', 'checksum'].includes(k)));
  const imageId = await deps.images.create(ctx.auth, {
    name: f.imageName, diskFormat: f.diskFormat, containerFormat: f.containerFormat, visibility, protected: f.protected, properties: props, minDisk: v.size,
  });
  if (!(await store.updateVolume(deps.db, id, { status: 'uploading', previous_status: v.status }, [v.status]))) {
    await deps.images.discard(ctx.auth, imageId).catch(() => undefined);
    throw err.invalidVolume('Volume status changed; try again.');
  }
  o.manager.uploadImage(id, imageId, f.diskFormat, ctx.auth.token, ctx.requestId, () => deps.images.discard(ctx.auth, imageId));
  return { v: { ...v, status: 'uploading' }, imageId };
}
