import type { FastifyRequest } from 'fastify';
import type { AuthContext } from '../../api/context.ts';
import { atLeast, links } from './http.ts';
import { userMetadataOf } from './backups.ts';
import { allowed } from './policy.ts';
import type { AttachmentRecord, BackupRecord, Json, SnapshotRecord, TransferRecord, VolumeRecord } from './types.ts';

/** Cinder's JSON views of volumes, attachments, snapshots, backups and transfers, per microversion. */

/** Cinder's time format: 2024-01-02T03:04:05.000000 (UTC, no zone). */
export const time = (iso: string | null): string | null => (iso ? `${iso.slice(0, 23)}000` : null);

export interface VolumeExtras { typeName: string; attachments: AttachmentRecord[] }

export function volumeSummary(req: FastifyRequest, v: VolumeRecord) {
  return { id: v.id, name: v.name || null, links: links(req, v.project_id, 'volumes', v.id) };
}

/**
 * A volume. `show` (show, detail lists) adds what Cinder's API extensions add to those
 * (tenant, host and migration attributes, volume_image_metadata); create and update
 * answers are the view builder's alone, as in Cinder.
 */
export function volumeView(req: FastifyRequest, auth: AuthContext, v: VolumeRecord, x: VolumeExtras, show = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: v.id, name: v.name || null, description: v.description || null, status: v.status, size: v.size,
    availability_zone: v.availability_zone, created_at: time(v.created_at), updated_at: time(v.updated_at),
    attachments: x.attachments.filter((a) => a.attach_status === 'attached').map((a) => ({
      id: v.id, attachment_id: a.id, volume_id: v.id, server_id: a.instance_uuid, host_name: a.attached_host, device: a.mountpoint, attached_at: time(a.attach_time),
    })),
    bootable: v.bootable ? 'true' : 'false', encrypted: v.encrypted, multiattach: v.multiattach,
    // Cinder shows the readonly admin flag among the metadata.
    metadata: v.admin_metadata.readonly ? { ...v.metadata, readonly: v.admin_metadata.readonly } : v.metadata,
    snapshot_id: v.snapshot_id, source_volid: v.source_volid, user_id: v.user_id, volume_type: x.typeName, replication_status: 'disabled',
    consistencygroup_id: null, links: links(req, v.project_id, 'volumes', v.id),
  };
  if (allowed(auth, 'volume_extension:volume_mig_status_attribute')) out.migration_status = v.migration_status;
  if (show) {
    if (Object.keys(v.image_metadata).length) out.volume_image_metadata = v.image_metadata;
    if (allowed(auth, 'volume_extension:volume_tenant_attribute', { project_id: v.project_id })) out['os-vol-tenant-attr:tenant_id'] = v.project_id;
    if (allowed(auth, 'volume_extension:volume_host_attribute')) out['os-vol-host-attr:host'] = v.host ? `${v.host}@local#pool` : null;
    if (allowed(auth, 'volume_extension:volume_mig_status_attribute')) {
      out['os-vol-mig-status-attr:migstat'] = v.migration_status;
      out['os-vol-mig-status-attr:name_id'] = null;
    }
  }
  if (atLeast(req, '3.13')) out.group_id = v.group_id;
  if (atLeast(req, '3.21') && allowed(auth, 'volume_extension:volume_host_attribute')) out.provider_id = null;
  if (atLeast(req, '3.48')) { out.shared_targets = false; out.service_uuid = v.host ? `local-${v.host}` : null; }
  if (atLeast(req, '3.61') && allowed(auth, 'volume_extension:volume_host_attribute')) out.cluster_name = null;
  if (atLeast(req, '3.63')) out.volume_type_id = v.volume_type_id;
  if (atLeast(req, '3.64')) out.encryption_key_id = null;
  if (atLeast(req, '3.65')) out.consumes_quota = true;
  return out;
}

/** connection_info without the NBD pre-shared key unless admin. */
function safeConnection(auth: AuthContext, info: Record<string, Json> | null): Record<string, Json> | null {
  if (!info || auth.roles.includes('admin')) return info;
  const data = info.data as Record<string, Json> | undefined;
  if (!data || typeof data !== 'object' || !('tls' in data)) return info;
  return { ...info, data: { ...data, tls: { identity: (data.tls as Record<string, Json>).identity ?? null } } };
}

export function attachmentView(auth: AuthContext, a: AttachmentRecord, detail: boolean): Record<string, unknown> {
  const base: Record<string, unknown> = { id: a.id, status: a.attach_status, instance: a.instance_uuid, volume_id: a.volume_id };
  if (!detail) return base;
  return { ...base, attached_at: time(a.attach_time), detached_at: time(a.detach_time), attach_mode: a.attach_mode, connection_info: safeConnection(auth, a.connection_info) ?? {} };
}

/** A snapshot; `show` (show, detail lists) adds the os-extended-snapshot-attributes Cinder's extension adds there. */
export function snapshotView(req: FastifyRequest, auth: AuthContext, s: SnapshotRecord, show = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: s.id, name: s.name || null, description: s.description || null, status: s.status, size: s.size, volume_id: s.volume_id,
    created_at: time(s.created_at), updated_at: time(s.updated_at), metadata: s.metadata,
  };
  if (show) {
    out['os-extended-snapshot-attributes:progress'] = s.progress;
    out['os-extended-snapshot-attributes:project_id'] = s.project_id;
  }
  if (atLeast(req, '3.41')) out.user_id = s.user_id;
  if (atLeast(req, '3.65')) out.consumes_quota = true;
  void auth;
  return out;
}

export function backupView(req: FastifyRequest, auth: AuthContext, b: BackupRecord, hasDependents: boolean, detail: boolean): Record<string, unknown> {
  const summary = { id: b.id, name: b.name || null, links: links(req, b.project_id, 'backups', b.id) };
  if (!detail) return summary;
  const out: Record<string, unknown> = {
    ...summary, description: b.description || null, status: b.status, size: b.size, object_count: b.object_count, volume_id: b.volume_id,
    snapshot_id: b.snapshot_id, availability_zone: b.availability_zone, container: b.container, created_at: time(b.created_at),
    updated_at: time(b.updated_at), data_timestamp: time(b.data_timestamp), fail_reason: b.fail_reason, is_incremental: b.is_incremental,
    has_dependent_backups: hasDependents,
  };
  if (atLeast(req, '3.18') && allowed(auth, 'backup:backup_project_attribute')) out['os-backup-project-attr:project_id'] = b.project_id;
  if (atLeast(req, '3.43')) out.metadata = userMetadataOf(b);
  if (atLeast(req, '3.56')) out.user_id = b.user_id;
  if (atLeast(req, '3.64')) out.encryption_key_id = null;
  return out;
}

export function transferView(req: FastifyRequest, t: TransferRecord, detail: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { id: t.id, name: t.name || null, volume_id: t.volume_id, links: links(req, t.source_project_id, 'os-volume-transfer', t.id) };
  if (!detail) return out;
  out.created_at = time(t.created_at);
  if (atLeast(req, '3.55')) out.no_snapshots = t.no_snapshots;
  if (atLeast(req, '3.57')) { out.source_project_id = t.source_project_id; out.destination_project_id = null; out.accepted = false; }
  return out;
}
