import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { enforce } from '../../../api/policy.ts';
import { listBdms, type BlockDeviceMapping } from '../bdm.ts';
import type { ComputeImage } from '../images.ts';
import type { ComputeService } from '../service.ts';
import * as store from '../store.ts';
import type { Instance } from '../types.ts';
import { inheritedProperties } from './shelve.ts';

/**
 * createImage of a volume-backed server (Nova's snapshot_volume_backed): each of its
 * volumes is snapshotted, and the image holds no data, only the `block_device_mapping`
 * property listing the snapshots (bdm_v2, root_device_name), so booting from it makes new
 * volumes from those snapshots.
 */

/** One mapping of the image's block_device_mapping property (Nova's image BDM fields). */
export interface ImageBdm {
  source_type: 'snapshot'; destination_type: 'volume'; snapshot_id: string; volume_size: number; boot_index: number | null;
  device_name: string | null; delete_on_termination: boolean; tag: string | null; volume_type: string | null; disk_bus: null; device_type: 'disk';
}

export async function snapshotVolumeBacked(
  svc: ComputeService, ctx: RequestContext, auth: AuthContext, inst: Instance, name: string, metadata: Record<string, string>,
): Promise<string> {
  enforce(auth, 'os_compute_api:servers:create_image:allow_volume_backed', { project_id: inst.projectId });
  const api = svc.deps.volumes!;
  const actionId = await store.startAction(svc.db, { requestId: ctx.requestId, uuid: inst.uuid, action: 'createImage', projectId: inst.projectId, userId: auth.userId });
  await store.startEvent(svc.db, actionId, 'api_snapshot_instance', inst.host);
  try {
    const mappings: ImageBdm[] = [];
    const bdms = (await listBdms(svc.db, inst.uuid)).filter((b): b is BlockDeviceMapping & { volumeId: string } => !!b.volumeId && b.attachStatus === 'attached');
    for (const b of bdms) {
      const snap = await api.snapshot(b.volumeId, `snapshot for ${name}`, ctx.log);
      mappings.push({
        source_type: 'snapshot', destination_type: 'volume', snapshot_id: snap.snapshotId, volume_size: snap.size, boot_index: b.bootIndex,
        device_name: b.deviceName, delete_on_termination: b.deleteOnTermination, tag: b.tag, volume_type: b.volumeType, disk_bus: null, device_type: 'disk',
      });
    }
    const sys = await store.systemMetadata(svc.db, inst.uuid);
    const base = JSON.parse(sys.image ?? 'null') as ComputeImage | null;
    const root = mappings.find((m) => m.boot_index === 0);
    const imageId = await svc.images.createSnapshot(auth, {
      name, diskFormat: 'raw', minDisk: root?.volume_size ?? 0, minRam: base?.minRam ?? 0,
      properties: {
        ...inheritedProperties(base), image_type: 'snapshot', instance_uuid: inst.uuid, user_id: auth.userId,
        ...(inst.imageRef ? { base_image_ref: inst.imageRef } : {}),
        bdm_v2: 'True', root_device_name: '/dev/vda', block_device_mapping: JSON.stringify(mappings), ...metadata,
      },
    });
    // No data: an empty upload makes the image active, as Nova's data-less image of a volume-backed server is.
    const res = await fetch(svc.images.fileUrl(imageId), {
      method: 'PUT', headers: { 'x-auth-token': auth.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(0),
    });
    if (!res.ok) throw new Error(`activating the snapshot image ${imageId} failed: HTTP ${res.status}`);
    await store.finishEvent(svc.db, actionId, 'api_snapshot_instance', true);
    ctx.log.info({ instance: inst.uuid, image: imageId, snapshots: mappings.map((m) => m.snapshot_id) }, 'volume-backed snapshot image created');
    return imageId;
  } catch (err) {
    await store.finishEvent(svc.db, actionId, 'api_snapshot_instance', false, err instanceof Error ? err.message : String(err));
    throw err;
  }
}

/** The block device mappings an image defines (a volume-backed server's snapshot), as create's block_device_mapping_v2 entries. */
export function imageDefinedBdms(image: ComputeImage): { source_type: string; destination_type: string; uuid: string; boot_index: number | null; volume_size: number; delete_on_termination: boolean; volume_type: string | null }[] {
  const raw = image.properties.block_device_mapping;
  if (!raw || image.properties.bdm_v2 !== 'True') return [];
  let list: ImageBdm[];
  try { list = JSON.parse(raw) as ImageBdm[]; } catch { return []; }
  return list.filter((m) => m.snapshot_id).map((m) => ({
    source_type: 'snapshot', destination_type: 'volume', uuid: m.snapshot_id, boot_index: m.boot_index, volume_size: m.volume_size,
    delete_on_termination: m.delete_on_termination, volume_type: m.volume_type,
  }));
}
