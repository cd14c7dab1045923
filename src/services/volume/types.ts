import type { AuthContext } from '../../api/context.ts';
import type { Bus } from '../../bus/index.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';

/** Cinder's domain types, the volume service's settings and what it needs from Glance. */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The quota resources Cinder counts per project (-1: unlimited). */
export const QUOTA_RESOURCES = ['volumes', 'snapshots', 'gigabytes', 'backups', 'backup_gigabytes', 'per_volume_gigabytes', 'groups'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];
export const DEFAULT_QUOTAS: Record<QuotaResource, number> = {
  volumes: 10, snapshots: 10, gigabytes: 1000, backups: 10, backup_gigabytes: 1000, per_volume_gigabytes: -1, groups: 10,
};

export interface VolumeConfig {
  /** The one availability zone the pools form (Cinder's storage_availability_zone). */
  availabilityZone: string;
  /** The type a volume gets when none is named (Cinder's default_volume_type). */
  defaultType: string;
  /** Thin provisioning: how far the provisioned sizes may exceed a pool's capacity (max_over_subscription_ratio). */
  overSubscriptionRatio: number;
  /** Percent of a pool's capacity kept free (reserved_percentage). */
  reservedPercentage: number;
  /** A pool not heard from for this long is down (service_down_time). */
  serviceDownTimeSec: number;
  /** Default quotas (the `default` quota class until an admin changes it). */
  quotas: Record<QuotaResource, number>;
  /** How long a pool may take for one command (image download, backup, restore); short ones use 60 s. */
  longOperationTimeoutMs: number;
}

export const DEFAULT_VOLUME_CONFIG: VolumeConfig = {
  availabilityZone: 'nova', defaultType: '__DEFAULT__', overSubscriptionRatio: 20, reservedPercentage: 0,
  serviceDownTimeSec: 60, quotas: { ...DEFAULT_QUOTAS }, longOperationTimeoutMs: 30 * 60_000,
};

export type ImageVisibility = 'private' | 'public' | 'shared' | 'community';

/** A Glance image as the volume service sees it (cli/controller.ts adapts the image service). */
export interface VolumeImage {
  id: string; name: string; status: string; diskFormat: string | null; containerFormat: string | null;
  size: number | null; virtualSize: number | null; minDisk: number; minRam: number; sha512: string | null;
  properties: Record<string, string>; checksum?: string | null;
}

export interface VolumeImageApi {
  /** The image as the caller may see it; rejects (404) when missing or invisible. */
  get(auth: AuthContext, id: string): Promise<VolumeImage>;
  /** Where a pool downloads the image's data. */
  fileUrl(id: string): string;
  /** A path on this machine holding the data, when the store is local. */
  localPath(id: string): string | null;
  /** Register a queued image for os-volume_upload_image; returns its id. */
  create(auth: AuthContext, fields: { name: string; diskFormat: 'qcow2' | 'raw'; containerFormat: string; visibility: ImageVisibility; protected: boolean; properties: Record<string, string>; minDisk: number }): Promise<string>;
  /** Mark an image whose upload failed as killed (deleted). */
  discard(auth: AuthContext, id: string): Promise<void>;
}

export interface VolumeDeps {
  db: Db;
  bus: Bus;
  log: Logger;
  cfg: VolumeConfig;
  images: VolumeImageApi;
}

export interface VolumeRecord {
  id: string; project_id: string; user_id: string; name: string; description: string; size: number;
  status: string; previous_status: string | null; attach_status: string; migration_status: string | null;
  availability_zone: string; volume_type_id: string; host: string | null; bootable: boolean; multiattach: boolean; encrypted: boolean;
  metadata: Record<string, string>; admin_metadata: Record<string, string>; image_metadata: Record<string, string>;
  source_volid: string | null; snapshot_id: string | null; image_id: string | null; backup_id: string | null; group_id: string | null;
  fail_reason: string | null; created_at: string; updated_at: string; launched_at: string | null;
}

export interface AttachmentRecord {
  id: string; volume_id: string; instance_uuid: string | null; attached_host: string | null; mountpoint: string | null;
  attach_mode: string; attach_status: string; connector: Record<string, Json> | null; connection_info: Record<string, Json> | null;
  attach_time: string | null; detach_time: string | null; created_at: string; updated_at: string;
}

export interface SnapshotRecord {
  id: string; volume_id: string; project_id: string; user_id: string; name: string; description: string; status: string;
  progress: string; size: number; metadata: Record<string, string>; fail_reason: string | null; created_at: string; updated_at: string;
}

export interface BackupRecord {
  id: string; project_id: string; user_id: string; volume_id: string; snapshot_id: string | null; name: string; description: string;
  status: string; size: number; object_count: number; container: string | null; parent_id: string | null; is_incremental: boolean;
  availability_zone: string; host: string | null; restore_volume_id: string | null; metadata: Record<string, string>;
  fail_reason: string | null; data_timestamp: string; created_at: string; updated_at: string;
}

export interface VolumeTypeRecord {
  id: string; name: string; description: string; is_public: boolean; extra_specs: Record<string, string>; qos_specs_id: string | null;
  created_at: string; updated_at: string;
}

export interface QosSpecRecord { id: string; name: string; consumer: string; specs: Record<string, string>; created_at: string }

export interface TransferRecord {
  id: string; volume_id: string; name: string; salt: string; crypt_hash: string; source_project_id: string; no_snapshots: boolean;
  created_at: string; expires_at: string | null;
}
