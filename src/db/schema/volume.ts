/**
 * Cinder's tables (migration 010_volume). Booleans 0/1, times ISO-8601 UTC text, JSON
 * documents text (metadata, extra specs, QoS specs, connector, connection info).
 */
export interface QosSpecsTable { id: string; name: string; consumer: string; specs: string; created_at: string }
export interface VolumeTypeTable {
  id: string; name: string; description: string; is_public: number; extra_specs: string; qos_specs_id: string | null;
  created_at: string; updated_at: string;
}
export interface VolumeTypeProjectTable { volume_type_id: string; project_id: string }
export interface VolumeTable {
  id: string; project_id: string; user_id: string; name: string; description: string;
  /** GiB */
  size: number;
  /** creating, available, reserved, attaching, in-use, detaching, maintenance, extending, deleting, error, error_deleting, error_extending, backing-up, restoring-backup, downloading, uploading, retyping, awaiting-transfer */
  status: string;
  /** The status to return to after backing-up (available or in-use). */
  previous_status: string | null;
  attach_status: string; migration_status: string | null; availability_zone: string; volume_type_id: string;
  /** The pool host holding the data (null until scheduled). */
  host: string | null;
  bootable: number; multiattach: number; encrypted: number;
  metadata: string;
  /** Admin metadata (readonly, attached_mode, ...). */
  admin_metadata: string;
  /** volume_image_metadata: the source image's properties and a few of its fields. */
  image_metadata: string;
  source_volid: string | null; snapshot_id: string | null; image_id: string | null; backup_id: string | null; group_id: string | null;
  fail_reason: string | null;
  created_at: string; updated_at: string; launched_at: string | null;
}
export interface VolumeAttachmentTable {
  id: string; volume_id: string; instance_uuid: string | null; attached_host: string | null; mountpoint: string | null;
  attach_mode: string;
  /** reserved, attaching, attached, detaching, detached, error_attaching, error_detaching */
  attach_status: string;
  connector: string | null; connection_info: string | null; attach_time: string | null; detach_time: string | null;
  created_at: string; updated_at: string;
}
export interface VolumeSnapshotTable {
  id: string; volume_id: string; project_id: string; user_id: string; name: string; description: string;
  /** creating, available, deleting, error, error_deleting, backing-up, restoring */
  status: string;
  progress: string; size: number; metadata: string; fail_reason: string | null; created_at: string; updated_at: string;
}
export interface VolumeBackupTable {
  id: string; project_id: string; user_id: string; volume_id: string; snapshot_id: string | null; name: string; description: string;
  /** creating, available, deleting, error, error_deleting, restoring */
  status: string;
  size: number; object_count: number; container: string | null; parent_id: string | null; is_incremental: number;
  availability_zone: string; host: string | null; restore_volume_id: string | null; metadata: string; fail_reason: string | null;
  data_timestamp: string; created_at: string; updated_at: string;
}
export interface VolumeTransferTable {
  id: string; volume_id: string; name: string; salt: string; crypt_hash: string; source_project_id: string; no_snapshots: number;
  created_at: string; expires_at: string | null;
}
export interface VolumeQuotaTable { project_id: string; resource: string; hard_limit: number }
export interface VolumePoolTable {
  host: string; backend: string; pool: string; host_ip: string; total_gb: number; free_gb: number; provisioned_gb: number;
  enabled: number; disabled_reason: string | null; last_seen: string;
}

export interface VolumeTables {
  qos_specs: QosSpecsTable;
  volume_types: VolumeTypeTable;
  volume_type_projects: VolumeTypeProjectTable;
  volumes: VolumeTable;
  volume_attachments: VolumeAttachmentTable;
  volume_snapshots: VolumeSnapshotTable;
  volume_backups: VolumeBackupTable;
  volume_transfers: VolumeTransferTable;
  volume_quotas: VolumeQuotaTable;
  volume_pools: VolumePoolTable;
}
