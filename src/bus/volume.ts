import { subject, type Subject } from './index.ts';
import type { ImageRef } from './compute.ts';

/**
 * The protocol between the volume service (Cinder's API + scheduler + volume manager, on
 * the controller) and the volume pool on each host (the agent; Cinder's volume driver).
 * The controller owns the records and the state machine; a pool owns files. Commands go
 * to the host that holds the volume (`gureum.volume.<host>.<verb>`, request/reply) and
 * are idempotent: a retry after a timeout or a restart finds the work done and answers
 * the same.
 *
 * Storage model of the first backend (local qcow2 pool, agent/storage/volumes/): a volume
 * is a qcow2 file whose backing chain is immutable layers; a snapshot freezes the
 * volume's current top as a layer (the volume continues on a new top), so snapshots and
 * volumes cloned from snapshots, other volumes or images are copy-on-write and O(1).
 */

/** What a host's pool reports on start and every heartbeat (Cinder's get_volume_stats). */
export interface VolumePoolReport {
  /** The compute/agent host name; Cinder's `os-vol-host-attr:host` is `<host>@<backend>#<pool>`. */
  host: string;
  backend: string;
  pool: string;
  /** The host's underlay address: where its NBD exports listen. */
  hostIp: string;
  totalGb: number;
  freeGb: number;
  /** Sum of the virtual sizes of the volumes in the pool (thin provisioning). */
  provisionedGb: number;
  /** Ids of every volume with a file in the pool (the controller reconciles against it). */
  volumes: string[];
  /** Ids of every snapshot held in the pool. */
  snapshots: string[];
  /** The directory backups go to on this host (BackupTarget kind 'directory'), when the pool keeps them. */
  backupDir?: string;
}
export const VolumePoolReported = subject<VolumePoolReport, void>('gureum.volume.report');

export type VolumeSource =
  | { kind: 'empty' }
  /** From a Glance image: the image's data (any disk format) becomes the volume's content. */
  | { kind: 'image'; image: ImageRef; token: string }
  /** From a snapshot held by this pool. */
  | { kind: 'snapshot'; snapshotId: string }
  /** A clone of another volume in this pool (its current content). */
  | { kind: 'volume'; volumeId: string }
  /** From a backup: the chain full → ... → this backup, restored in order. */
  | { kind: 'backup'; chain: BackupPiece[]; target: BackupTarget };

export interface CreateVolumeRequest { volumeId: string; sizeGb: number; source: VolumeSource }
export interface CreateVolumeReply {
  /** The image's virtual size when created from an image (for Cinder's image-too-large check the pool refuses with an error). */
  sizeGb: number;
}

/**
 * How a hypervisor reaches an attached volume (Cinder's connection_info): the file when
 * the instance runs on the pool's host, else an NBD export of it (qemu-storage-daemon on
 * the pool's host, TLS with a pre-shared key per export).
 */
export type VolumeConnection =
  | {
    type: 'file'; path: string; format: 'qcow2' | 'raw';
    /**
     * 'none': open with O_DIRECT (QEMU cache.direct=on, native AIO), what Nova's libvirt
     * driver picks where the filesystem supports it: no second copy of the data in the host's
     * page cache, guest flushes reach the disk. 'writeback' (the default): through the page
     * cache, for filesystems without O_DIRECT (tmpfs).
     */
    cache?: 'none' | 'writeback';
  }
  | { type: 'nbd'; host: string; port: number; exportName: string; tls?: { identity: string; psk: string } };

export interface ExportRequest {
  volumeId: string;
  attachmentId: string;
  /** The host the instance runs on: the pool's own host → a file connection, otherwise NBD. */
  instanceHost: string;
}

export interface ExtendRequest { volumeId: string; sizeGb: number }
/** `online`: a running QEMU holding the volume was resized too (the guest sees the new size). */
export interface ExtendReply { sizeGb: number; online: boolean }

export interface SnapshotRequest { volumeId: string; snapshotId: string }
/** `online`: taken through a running QEMU (blockdev-snapshot), crash-consistent at one instant. */
export interface SnapshotReply { sizeGb: number; online: boolean }

/**
 * Backups are stored in chunks (Cinder's chunked backup driver): the volume is read in
 * fixed-size blocks, each block's sha256 kept; an incremental backup stores only blocks
 * whose hash differs from its parent's. Targets: a directory on the host (until object
 * storage exists) or the object store.
 */
export type BackupTarget = { kind: 'directory'; path: string } | { kind: 'swift'; url: string; container: string; token: string };
export interface BackupPiece { backupId: string }
export interface BackupRequest {
  volumeId: string;
  backupId: string;
  /** Back up this snapshot's content instead of the volume's current content. */
  snapshotId?: string;
  /** Incremental on top of this backup (which must be in `target`). */
  parentId?: string;
  target: BackupTarget;
}
export interface BackupReply { sizeBytes: number; objectCount: number }
export interface RestoreRequest { volumeId: string; chain: BackupPiece[]; target: BackupTarget }

export function volumeSubjects(host: string) {
  const s = <Req, Res>(verb: string): Subject<Req, Res> => subject<Req, Res>(`gureum.volume.${host}.${verb}`);
  return {
    create: s<CreateVolumeRequest, CreateVolumeReply>('create'),
    /** Remove the volume's file; layers still backing snapshots or clones stay until unused. */
    delete: s<{ volumeId: string }, { deleted: boolean }>('delete'),
    extend: s<ExtendRequest, ExtendReply>('extend'),
    snapshotCreate: s<SnapshotRequest, SnapshotReply>('snapshot-create'),
    snapshotDelete: s<SnapshotRequest, { deleted: boolean }>('snapshot-delete'),
    /** Make the volume reachable from `instanceHost`; the same attachment asking again gets the same connection. */
    export: s<ExportRequest, VolumeConnection>('export'),
    unexport: s<{ volumeId: string; attachmentId: string }, { removed: boolean }>('unexport'),
    backup: s<BackupRequest, BackupReply>('backup'),
    /** Overwrite an existing volume with a backup chain (restore to an existing volume). */
    restore: s<RestoreRequest, { sizeGb: number }>('restore'),
    backupDelete: s<{ backupId: string; target: BackupTarget }, { deleted: boolean }>('backup-delete'),
    /** Copy the volume's content to a Glance image (os-volume_upload_image). */
    uploadImage: s<{ volumeId: string; uploadUrl: string; token: string; diskFormat: 'qcow2' | 'raw' }, { size: number }>('upload-image'),
  };
}
