import type { AuthContext } from '../../api/context.ts';
import type { VolumeQos } from '../../bus/compute.ts';
import type { VolumeConnection } from '../../bus/volume.ts';
import type { Logger } from '../../common/logger.ts';

/**
 * What compute needs from the volume service (Cinder), declared here so compute never
 * imports it; cli/compute-volume.ts adapts the volume service to this interface — the way
 * Nova drives Cinder through its volume API class with the attachments API (3.27+):
 * reserve (attachment create without a connector), connect (attachment update with the
 * host's connector: the volume is exported for it), complete, and delete.
 *
 * Errors are thrown worded for Nova's API: NotFound (VolumeNotFound), BadRequest
 * (InvalidVolume: wrong status, already attached, ...), Conflict.
 */

export interface ComputeVolume {
  id: string;
  projectId: string;
  name: string;
  status: string;
  /** GiB */
  size: number;
  bootable: boolean;
  multiattach: boolean;
  availabilityZone: string;
  /** volume_image_metadata: the source image's properties (kernel_id, ramdisk_id, hw_*, ...) and image_id. */
  imageMetadata: Record<string, string>;
  /** Instances the volume is attached to. */
  attachments: { attachmentId: string; instanceUuid: string; device: string | null }[];
}

export interface VolumeApi {
  /** In the caller's scope: 404 VolumeNotFound when missing or not visible. */
  get(auth: AuthContext, volumeId: string): Promise<ComputeVolume>;
  /** A volume by id regardless of scope (work the conductor does after the API accepted the request). */
  getInternal(volumeId: string): Promise<ComputeVolume | undefined>;
  /**
   * Attachment create without a connector: checks the volume may be attached to this
   * instance (available, or in-use and multiattach; not already attached to it; same
   * project unless admin) and reserves it (status reserved). Returns the attachment id.
   */
  reserve(auth: AuthContext, volumeId: string, instance: { uuid: string; projectId: string }): Promise<string>;
  /**
   * Attachment update with the instance host's connector: the pool exports the volume for
   * that host (a file on the same host, NBD otherwise); the volume is attaching. Returns how
   * the hypervisor reaches it and the front-end QoS of its type.
   */
  connect(attachmentId: string, instanceHost: string, mountpoint: string, log: Logger): Promise<{ connection: VolumeConnection; qos?: VolumeQos; readonly: boolean }>;
  /** Attachment complete: the volume is in-use, attached at the mountpoint. */
  complete(attachmentId: string): Promise<void>;
  /** Detach starts (volume detaching); refused when the volume is not attached there. */
  beginDetach(attachmentId: string): Promise<void>;
  /** Detach failed: back to in-use. */
  rollDetach(attachmentId: string): Promise<void>;
  /**
   * Attachment delete: remove the export and the attachment; the volume becomes available
   * when no attachment is left. Idempotent (also the rollback of a failed attach).
   */
  deleteAttachment(attachmentId: string, log: Logger): Promise<void>;
  /** The instance's attachments (for server views and delete). */
  attachmentsOf(instanceUuid: string): Promise<{ attachmentId: string; volumeId: string; device: string | null; status: string }[]>;
  /**
   * Boot from volume: create a volume in the instance's project (from an image, a
   * snapshot, another volume, or blank) and wait until it is available; errors (quota,
   * image too large) are thrown as BadRequest/Forbidden, worded as Nova does.
   */
  createForInstance(req: {
    projectId: string; userId: string; sizeGb: number; name: string; availabilityZone?: string; volumeType?: string;
    imageId?: string; snapshotId?: string; sourceVolumeId?: string; log: Logger; timeoutMs?: number;
  }): Promise<string>;
  /** delete_on_termination: delete the (detached) volume. Idempotent. */
  delete(volumeId: string, log: Logger): Promise<void>;
  /** A volume-backed snapshot: a snapshot of the (attached) volume; returns its id once available. */
  snapshot(volumeId: string, name: string, log: Logger): Promise<{ snapshotId: string; size: number }>;
}
