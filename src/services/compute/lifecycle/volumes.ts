import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, NotFound } from '../../../common/errors.ts';
import { insertBdm, listBdms, nextDeviceName, updateBdm, validDevicePath, type BlockDeviceMapping } from '../bdm.ts';
import type { ComputeService } from '../service.ts';
import { invalidState } from '../service.ts';
import * as store from '../store.ts';
import type { Instance, VmState } from '../types.ts';
import type { VolumeApi } from '../volumes.ts';
import { fault, runEvent, workContext } from './common.ts';

/**
 * Volume attachments of a server (Nova's os-volume_attachments): the API checks the server
 * and the volume, reserves the volume (a Cinder attachment), picks the device name and
 * records the block device mapping 'attaching'; the conductor connects, the agent
 * hot-plugs, the attachment completes. Detach is the reverse. Each server's volume
 * requests are serialized, so two cannot race for the same volume or device name.
 */

/** Where Nova allows attach and detach (check_instance_state of attach_volume/detach_volume). */
const VOLUME_VM_STATES: VmState[] = ['active', 'paused', 'stopped', 'resized', 'soft-delete', 'shelved', 'shelved_offloaded'];

export interface AttachmentView {
  id?: string; serverId: string; volumeId: string; device?: string; tag?: string | null;
  delete_on_termination?: boolean; attachment_id?: string | null; bdm_uuid?: string;
}

/** What the microversion shows: tag (2.70), delete_on_termination (2.79), attachment_id and bdm_uuid instead of id (2.89). */
export interface ViewOptions { tag: boolean; deleteOnTermination: boolean; attachmentIds: boolean }

export function attachmentView(b: BlockDeviceMapping, o: ViewOptions): AttachmentView {
  const v: AttachmentView = { ...(o.attachmentIds ? {} : { id: b.volumeId! }), serverId: b.instanceUuid, volumeId: b.volumeId! };
  if (b.deviceName) v.device = b.deviceName;
  if (o.tag) v.tag = b.tag;
  if (o.deleteOnTermination) v.delete_on_termination = b.deleteOnTermination;
  if (o.attachmentIds) { v.attachment_id = b.attachmentId; v.bdm_uuid = b.uuid; }
  return v;
}

function volumeApi(svc: ComputeService): VolumeApi {
  const api = svc.deps.volumes;
  if (!api) throw new BadRequest('Volumes need the volume service, which this cloud does not run.');
  return api;
}

async function volumeBdms(svc: ComputeService, uuid: string): Promise<BlockDeviceMapping[]> {
  return (await listBdms(svc.db, uuid)).filter((b) => b.volumeId && b.destinationType === 'volume');
}

export async function listAttachments(svc: ComputeService, auth: AuthContext, uuid: string, page: { limit?: number; offset?: number }): Promise<BlockDeviceMapping[]> {
  await svc.get(auth, uuid, 'os_compute_api:os-volumes-attachments:index');
  const all = await volumeBdms(svc, uuid);
  const start = page.offset ?? 0;
  return all.slice(start, page.limit === undefined ? undefined : start + page.limit);
}

export async function showAttachment(svc: ComputeService, auth: AuthContext, uuid: string, volumeId: string): Promise<BlockDeviceMapping> {
  await svc.get(auth, uuid, 'os_compute_api:os-volumes-attachments:show');
  const b = (await volumeBdms(svc, uuid)).find((x) => x.volumeId === volumeId);
  if (!b) throw new NotFound(`Volume ${volumeId} is not attached to instance ${uuid}.`);
  return b;
}

/**
 * The checks every attachment change makes: policy, the shelved states only from 2.20
 * (`shelvedOk`), the lock, no task running, a state Nova allows.
 */
async function checked(svc: ComputeService, auth: AuthContext, uuid: string, rule: string, action: string, shelvedOk: boolean): Promise<Instance> {
  const inst = await svc.get(auth, uuid, rule);
  if (!shelvedOk && inst.vmState.startsWith('shelved')) throw invalidState(action, uuid, 'vm_state', inst.vmState);
  svc.checkLock(auth, inst);
  if (inst.taskState !== null) throw invalidState(action, uuid, 'task_state', inst.taskState);
  if (!VOLUME_VM_STATES.includes(inst.vmState)) throw invalidState(action, uuid, 'vm_state', inst.vmState);
  if (!inst.host && inst.vmState !== 'shelved_offloaded') throw invalidState(action, uuid, 'vm_state', inst.vmState);
  return inst;
}

export interface AttachRequest {
  volumeId: string; device?: string | null; tag?: string; deleteOnTermination?: boolean;
  /** 2.20+: shelved servers take attachments. */ shelvedOk: boolean;
  /** 2.60+: multiattach volumes may be attached. */ multiattachOk: boolean;
}

/**
 * Attach (POST os-volume_attachments): answers with the device once the volume is reserved
 * and the mapping recorded; the hot-plug happens afterwards (Nova's API is asynchronous
 * here too). A failure later deletes the attachment and the mapping and is recorded as
 * the attach_volume action's error and the server's fault.
 */
export async function attachVolume(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, req: AttachRequest): Promise<BlockDeviceMapping> {
  const api = volumeApi(svc);
  if (req.device && !validDevicePath(req.device)) throw new BadRequest(`The supplied device path (${req.device}) is invalid.`);
  const work = svc.conductor.volumes;
  const { inst, bdm } = await work.locks.run(`api:${uuid}`, async () => {
    const inst = await checked(svc, auth, uuid, 'os_compute_api:os-volumes-attachments:create', 'attach_volume', req.shelvedOk);
    const volume = await api.get(auth, req.volumeId);
    const bdms = await listBdms(svc.db, uuid);
    if (bdms.some((b) => b.volumeId === volume.id)) throw new BadRequest(`Invalid volume: volume ${volume.id} already attached`);
    if (volume.multiattach && !req.multiattachOk) {
      throw new BadRequest('Multiattach volumes are only supported starting with compute API version 2.60.');
    }
    const device = nextDeviceName(inst, bdms, svc.deps.cfg.forceConfigDrive);
    const attachmentId = await api.reserve(auth, volume.id, { uuid, projectId: inst.projectId });
    try {
      const bdm = await insertBdm(svc.db, {
        instanceUuid: uuid, sourceType: 'volume', destinationType: 'volume', bootIndex: null, deviceName: device, volumeId: volume.id,
        snapshotId: null, imageId: null, volumeSize: volume.size, volumeType: null, deleteOnTermination: req.deleteOnTermination ?? false,
        attachmentId, tag: req.tag ?? null, attachStatus: 'attaching',
      });
      work.markOwned(bdm.uuid);
      return { inst, bdm };
    } catch (err) {
      await api.deleteAttachment(attachmentId, ctx.log).catch(() => undefined);
      throw err;
    }
  });
  const actionId = await store.startAction(svc.db, { requestId: ctx.requestId, uuid, action: 'attach_volume', projectId: inst.projectId, userId: auth.userId });
  ctx.log.info({ instance: uuid, volume: req.volumeId, device: bdm.deviceName, attachment: bdm.attachmentId }, 'volume reserved for attach');
  runEvent(svc, workContext(ctx, auth), uuid, actionId, 'compute_attach_volume', inst.host,
    () => work.attach(inst, bdm, ctx.requestId, ctx.log),
    async (msg) => { await store.updateInstance(svc.db, uuid, { fault: fault(msg) }); });
  return bdm;
}

/** The server's mapping of a volume it holds, or Nova's 404. */
async function mappingOf(svc: ComputeService, auth: AuthContext, uuid: string, volumeId: string): Promise<BlockDeviceMapping> {
  await volumeApi(svc).get(auth, volumeId);
  const b = (await volumeBdms(svc, uuid)).find((x) => x.volumeId === volumeId);
  if (!b) throw new NotFound(`volume_id not found: ${volumeId}`);
  return b;
}

/** Detach (DELETE os-volume_attachments/{volume}): 202; the agent unplugs, then the attachment is deleted. */
export async function detachVolume(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, volumeId: string, shelvedOk: boolean): Promise<void> {
  const api = volumeApi(svc);
  const work = svc.conductor.volumes;
  const { inst, bdm } = await work.locks.run(`api:${uuid}`, async () => {
    const inst = await checked(svc, auth, uuid, 'os_compute_api:os-volumes-attachments:delete', 'detach_volume', shelvedOk);
    const bdm = await mappingOf(svc, auth, uuid, volumeId);
    if (bdm.bootIndex === 0) throw new BadRequest('Cannot detach a root device volume');
    if (bdm.attachStatus !== 'attached') {
      throw new BadRequest(`Invalid volume: Unable to detach volume ${volumeId}: it is ${bdm.attachStatus ?? 'not attached'}.`);
    }
    await api.beginDetach(bdm.attachmentId!);
    work.markOwned(bdm.uuid);
    await updateBdm(svc.db, bdm.uuid, { attach_status: 'detaching' }, ['attached']);
    return { inst, bdm };
  });
  const actionId = await store.startAction(svc.db, { requestId: ctx.requestId, uuid, action: 'detach_volume', projectId: inst.projectId, userId: auth.userId });
  runEvent(svc, workContext(ctx, auth), uuid, actionId, 'compute_detach_volume', inst.host,
    () => work.detach(inst, { ...bdm, attachStatus: 'detaching' }, ctx.requestId, ctx.log),
    async (msg) => { await store.updateInstance(svc.db, uuid, { fault: fault(msg) }); });
}

/**
 * PUT os-volume_attachments/{volume}: a new volumeId is a swap (admin only; this cloud's
 * hypervisor driver cannot swap a disk under a running guest: refused); from 2.85 the same
 * volumeId with delete_on_termination updates the mapping.
 */
export async function updateAttachment(
  svc: ComputeService, auth: AuthContext, uuid: string, volumeId: string,
  body: { volumeId: string; delete_on_termination?: boolean; id?: string; serverId?: string; device?: string | null; tag?: string | null },
  canUpdate: boolean,
): Promise<void> {
  const api = volumeApi(svc);
  if (body.volumeId !== volumeId || !canUpdate) {
    enforce(auth, 'os_compute_api:os-volumes-attachments:swap', {});
    await api.get(auth, volumeId);
    try { await api.get(auth, body.volumeId); } catch (err) {
      if (err instanceof NotFound) throw new BadRequest(err.message);
      throw err;
    }
    const inst = await svc.get(auth, uuid, 'os_compute_api:os-volumes-attachments:update');
    svc.checkLock(auth, inst);
    if (!(await volumeBdms(svc, uuid)).some((b) => b.volumeId === volumeId)) throw new NotFound('The volume was either invalid or not attached to the instance.');
    throw new BadRequest('Swapping volumes is not supported by this cloud\'s hypervisor driver.');
  }
  const inst = await svc.get(auth, uuid, 'os_compute_api:os-volumes-attachments:update');
  svc.checkLock(auth, inst);
  const b = await mappingOf(svc, auth, uuid, volumeId);
  const fixed: [keyof typeof body, unknown][] = [['id', b.volumeId], ['serverId', uuid], ['device', b.deviceName], ['tag', b.tag]];
  for (const [k, cur] of fixed) {
    if (body[k] !== undefined && body[k] !== cur) throw new BadRequest(`Invalid input for field/attribute volumeAttachment. The ${k} of a volume attachment cannot be updated.`);
  }
  if (body.delete_on_termination !== undefined) {
    await updateBdm(svc.db, b.uuid, { delete_on_termination: body.delete_on_termination ? 1 : 0 });
  }
}
