import type { AuthContext } from '../../api/context.ts';
import { BadRequest, GureumError } from '../../common/errors.ts';
import type { NewBdm, SourceType } from './bdm.ts';
import type { ComputeImage } from './images.ts';
import type { VolumeApi } from './volumes.ts';

/**
 * block_device_mapping_v2 of a server create, checked as Nova's API does
 * (block_device.BlockDeviceDict.from_api and compute API _validate_bdm): sources image,
 * volume, snapshot, blank to destination volume; the image-backed root (image → local,
 * boot index 0); one boot sequence starting at 0; sizes where a volume must be made.
 */

/** One entry as the API accepts it (strings for numbers and booleans, as the clients send them). */
export interface BdmInput {
  source_type?: string; destination_type?: string; uuid?: string | null; boot_index?: number | string | null;
  volume_size?: number | string | null; delete_on_termination?: boolean | string; device_name?: string | null;
  guest_format?: string | null; disk_bus?: string; device_type?: string; volume_type?: string | null; tag?: string;
}

/** The legacy block_device_mapping (v1) entry: a volume or snapshot at a device name. */
export interface LegacyBdmInput {
  device_name?: string; volume_id?: string; snapshot_id?: string; volume_size?: number | string | null;
  delete_on_termination?: boolean | string; no_device?: boolean | string | null; virtual_name?: string;
}

export type PlannedBdm = Omit<NewBdm, 'instanceUuid' | 'attachmentId' | 'attachStatus'>;

export interface BootPlan {
  /** Mappings to record with destination volume, boot volume first. */
  volumes: PlannedBdm[];
  /** The root is a volume (no local root disk; image_ref may be ''). */
  volumeBacked: boolean;
  /** The image the root volume is made from, when the root is an image → volume mapping. */
  rootImageId?: string;
  /** A root volume the user brought (source volume). */
  rootVolumeId?: string;
}

const invalid = (why: string) => new BadRequest(`Block Device Mapping is Invalid: ${why}`);

function truthy(v: boolean | string | undefined | null): boolean {
  if (typeof v === 'boolean') return v;
  return typeof v === 'string' && ['1', 't', 'true', 'on', 'y', 'yes'].includes(v.toLowerCase());
}

function bootIndex(v: BdmInput['boot_index']): number | null {
  if (v === undefined || v === null || v === 'none' || v === 'None') return null;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n)) throw invalid(`Boot index ${String(v)} is invalid.`);
  return n < 0 ? null : n;
}

function size(v: BdmInput['volume_size']): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new BadRequest(`Invalid input for field/attribute volume_size. Value: ${String(v)}.`);
  return n === 0 ? null : n;
}

/** v1 entries as v2 ones: the device named vda (or /dev/vda) is the boot volume. */
export function fromLegacy(list: LegacyBdmInput[]): BdmInput[] {
  return list.filter((l) => !truthy(l.no_device ?? undefined) && (l.volume_id || l.snapshot_id)).map((l) => ({
    source_type: l.snapshot_id ? 'snapshot' : 'volume', destination_type: 'volume', uuid: l.snapshot_id ?? l.volume_id,
    boot_index: /^(\/dev\/)?[a-z]?d?a$/.test(l.device_name ?? '') ? 0 : null, volume_size: l.volume_size,
    delete_on_termination: l.delete_on_termination, device_name: l.device_name,
  }));
}

/** Check the mappings (no service calls) and plan the volumes; `imageRef` is the request's image ('' for none). */
export function planBoot(list: BdmInput[], imageRef: string): BootPlan {
  const volumes: PlannedBdm[] = [];
  const indexes: number[] = [];
  let plan: BootPlan = { volumes, volumeBacked: false };
  for (const b of list) {
    const source = (b.source_type ?? (b.uuid ? undefined : 'blank')) as SourceType | undefined;
    if (!source || !['image', 'volume', 'snapshot', 'blank'].includes(source)) throw invalid(`source_type ${String(b.source_type)} is not one of image, volume, snapshot, blank.`);
    const dest = b.destination_type ?? (source === 'volume' || source === 'snapshot' ? 'volume' : 'local');
    if (dest !== 'volume' && dest !== 'local') throw invalid(`destination_type ${dest} is not one of local, volume.`);
    const idx = bootIndex(b.boot_index);
    if (idx !== null) indexes.push(idx);
    if (dest === 'local') {
      if (source === 'image' && idx === 0) {
        if (imageRef && b.uuid && b.uuid !== imageRef) throw invalid('the image of the boot device differs from imageRef.');
        continue;
      }
      if (source === 'blank') throw invalid('local blank disks (ephemeral and swap) come from the flavor in this cloud.');
      throw invalid(`${source} → local mappings are not supported.`);
    }
    if (source !== 'blank' && !b.uuid) throw invalid(`a ${source} mapping needs the uuid of its ${source}.`);
    const volumeSize = size(b.volume_size);
    if (source === 'image' && volumeSize === null) throw invalid("Images with destination_type 'volume' need to have a non-zero size specified");
    if (source === 'blank' && volumeSize === null) throw invalid("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size");
    const entry: PlannedBdm = {
      sourceType: source, destinationType: 'volume', bootIndex: idx, deviceName: idx === 0 ? '/dev/vda' : null,
      volumeId: source === 'volume' ? b.uuid! : null, snapshotId: source === 'snapshot' ? b.uuid! : null,
      imageId: source === 'image' ? b.uuid! : null, volumeSize, volumeType: b.volume_type ?? null,
      // Nova: volumes the user brought default to kept, volumes it makes too unless asked.
      deleteOnTermination: truthy(b.delete_on_termination), tag: b.tag ?? null,
    };
    if (idx === 0) {
      volumes.unshift(entry);
      plan = { volumes, volumeBacked: true, rootImageId: entry.imageId ?? undefined, rootVolumeId: entry.volumeId ?? undefined };
    } else volumes.push(entry);
  }
  const sorted = [...indexes].sort((a, c) => a - c);
  if (sorted.some((v, i) => v !== i) || (!imageRef && !plan.volumeBacked)) {
    throw invalid('Boot sequence for the instance and image/block device mapping combination is not valid.');
  }
  if (new Set(volumes.filter((v) => v.volumeId).map((v) => v.volumeId)).size !== volumes.filter((v) => v.volumeId).length) {
    throw invalid('a volume is mapped twice.');
  }
  return plan;
}

/**
 * The volumes the user brought must exist in their scope and be available (Nova reserves
 * them; the conductor reserves them for the chosen host). Returns the root volume's image
 * metadata when it is one of them.
 */
export async function checkBroughtVolumes(api: VolumeApi | undefined, auth: AuthContext, plan: BootPlan, count: number): Promise<Record<string, string> | undefined> {
  if (plan.volumes.length === 0) return undefined;
  if (!api) throw invalid('volumes need the volume service, which this cloud does not run.');
  let rootMeta: Record<string, string> | undefined;
  const brought = plan.volumes.filter((v) => v.volumeId);
  if (brought.length && count > 1) throw new BadRequest('Unable to launch multiple instances with a volume of their own in the block device mapping.');
  for (const b of brought) {
    let vol;
    try { vol = await api.get(auth, b.volumeId!); } catch (err) {
      if (err instanceof GureumError && err.status === 404) throw invalid(`failed to get volume ${b.volumeId!}.`);
      throw err;
    }
    if (vol.status !== 'available' && !(vol.status === 'in-use' && vol.multiattach)) {
      throw new BadRequest(`Invalid volume: volume ${vol.id} status must be 'available', but it is '${vol.status}'.`);
    }
    b.volumeSize = vol.size;
    if (b.bootIndex === 0) rootMeta = vol.imageMetadata;
  }
  return rootMeta;
}

/** The image facts of a volume's volume_image_metadata (what Nova boots a volume-backed server with). */
export function imageFromVolumeMetadata(md: Record<string, string>): ComputeImage {
  const skip = new Set(['image_id', 'image_name', 'checksum', 'container_format', 'disk_format', 'min_disk', 'min_ram', 'size']);
  return {
    id: md.image_id ?? '', name: md.image_name ?? null, status: 'active', diskFormat: md.disk_format ?? null, containerFormat: md.container_format ?? null,
    size: md.size ? Number(md.size) : null, virtualSize: null, minDisk: Number(md.min_disk ?? 0), minRam: Number(md.min_ram ?? 0), sha512: null,
    properties: Object.fromEntries(Object.entries(md).filter(([k]) => !skip.has(k))),
  };
}

/** An image known only by id (kernel/ramdisk named by a volume's metadata): enough for the agent to fetch it. */
export function imageById(id: string, diskFormat: string): ComputeImage {
  return { id, name: null, status: 'active', diskFormat, containerFormat: diskFormat, size: null, virtualSize: null, minDisk: 0, minRam: 0, sha512: null, properties: {} };
}

/** The image must fit the root volume (Nova: "Volume is smaller than the minimum size specified in image metadata"). */
export function checkImageFits(image: ComputeImage, volumeSizeGb: number): void {
  const bytes = volumeSizeGb * 1024 ** 3;
  const need = Math.max(image.minDisk * 1024 ** 3, image.virtualSize ?? image.size ?? 0);
  if (need > bytes) {
    throw new BadRequest(`Volume is smaller than the minimum size specified in image metadata. Volume size is ${bytes} bytes, minimum size is ${need} bytes.`);
  }
}
