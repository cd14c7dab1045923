/**
 * What a host's volume pool does, whatever stores the bits (Cinder's volume driver
 * interface, cut to what Gureum's volume service asks for). The first implementation is
 * LocalQcow2Pool (qcow2 files with copy-on-write backing chains); a Ceph RBD backend
 * would map the same verbs onto RBD images: create = `rbd create` / clone of a protected
 * snapshot, snapshot = `rbd snap create` + protect, export = an `rbd:` connection (no
 * NBD), backup = `rbd export-diff` between snapshots, capacity = the pool's `df`.
 *
 * Every verb is idempotent: a retry after a timeout or an agent restart finds the work
 * done and answers the same, or finishes it.
 */
import type {
  BackupReply, BackupRequest, BackupTarget, CreateVolumeReply, ExportRequest, ExtendReply, RestoreRequest,
  SnapshotReply, VolumeConnection, VolumeSource,
} from '../../../bus/volume.ts';
import type { Logger } from '../../../common/logger.ts';

export interface PoolCapacity {
  totalBytes: number;
  freeBytes: number;
  /** Sum of the volumes' virtual sizes (thin provisioning). */
  provisionedBytes: number;
  volumes: string[];
  snapshots: string[];
}

export interface UploadImageRequest { volumeId: string; uploadUrl: string; token: string; diskFormat: 'qcow2' | 'raw' }

export interface VolumeBackend {
  /** Cinder's backend name and pool name (`<host>@<backend>#<pool>`). */
  readonly backend: string;
  readonly pool: string;
  /** Finish or roll back whatever a previous run left half-done; adopt running exports. */
  start(): Promise<void>;
  /** Empty, from an image, from a snapshot, a clone of a volume, or from a backup chain. */
  create(volumeId: string, sizeGb: number, source: VolumeSource, log: Logger): Promise<CreateVolumeReply>;
  /** Refused while exported or held by a running QEMU. False when there was nothing to delete. */
  delete(volumeId: string, log: Logger): Promise<boolean>;
  /** Grow (never shrink); online through the QEMU holding the volume, if any. */
  extend(volumeId: string, sizeGb: number, log: Logger): Promise<ExtendReply>;
  snapshotCreate(volumeId: string, snapshotId: string, log: Logger): Promise<SnapshotReply>;
  snapshotDelete(volumeId: string, snapshotId: string, log: Logger): Promise<boolean>;
  export(req: ExportRequest, log: Logger): Promise<VolumeConnection>;
  unexport(volumeId: string, attachmentId: string, log: Logger): Promise<boolean>;
  backup(req: BackupRequest, log: Logger): Promise<BackupReply>;
  /** Overwrite an existing (unattached) volume with a backup chain. */
  restore(req: RestoreRequest, log: Logger): Promise<{ sizeGb: number }>;
  backupDelete(backupId: string, target: BackupTarget, log: Logger): Promise<boolean>;
  uploadImage(req: UploadImageRequest, log: Logger): Promise<{ size: number }>;
  capacity(): Promise<PoolCapacity>;
  /** Stop background work; exports keep running (they outlive the agent, like instances). */
  close(): Promise<void>;
}
