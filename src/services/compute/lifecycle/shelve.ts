import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { agentSubjects } from '../../../bus/compute.ts';
import { BadRequest } from '../../../common/errors.ts';
import { isoNow } from '../../../db/index.ts';
import type { WorkContext } from '../conductor.ts';
import type { ComputeImage } from '../images.ts';
import type { ComputeService } from '../service.ts';
import * as store from '../store.ts';
import { askAgent, begin, fault, patchSystemMetadata, runEvent, SHUTDOWN_TIMEOUT_MS, workContext } from './common.ts';
import './policy.ts';

/** The properties a server's snapshot inherits so it boots like its source (kernel/ramdisk, hw_ and os_ properties). */
export function inheritedProperties(base: ComputeImage | null): Record<string, string> {
  return Object.fromEntries(Object.entries(base?.properties ?? {}).filter(([k]) =>
    ['kernel_id', 'ramdisk_id', 'os_command_line', 'os_distro', 'os_type', 'architecture'].includes(k) || k.startsWith('hw_')));
}

/** Who may delete the shelved image once the server runs again (the unshelving user; kept in memory only). */
const unshelvers = new Map<string, AuthContext>();

/**
 * shelve: the guest is shut down cleanly, its root disk saved as the image
 * `<name>-shelved`, and (with shelved_offload_time 0, the default) removed from its host so
 * it holds no resources: SHELVED_OFFLOADED. A negative offload time keeps it SHELVED on
 * the host until shelveOffload.
 */
export async function shelve(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const db = svc.db;
  const current = await svc.get(auth, uuid, 'os_compute_api:os-shelve:shelve');
  const sys = await store.systemMetadata(db, uuid);
  const base = JSON.parse(sys.image ?? 'null') as ComputeImage | null;
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'shelve', rule: 'os_compute_api:os-shelve:shelve', vm: ['active', 'stopped', 'paused', 'suspended'], task: 'shelving',
  });
  let imageId: string;
  try {
    imageId = await svc.images.createSnapshot(auth, {
      name: `${current.name}-shelved`, diskFormat: 'qcow2', minDisk: current.flavor.disk, minRam: base?.minRam ?? 0,
      properties: { ...inheritedProperties(base), image_type: 'snapshot', instance_uuid: uuid, base_image_ref: current.imageRef, user_id: auth.userId },
    });
  } catch (err) {
    await store.updateInstance(db, uuid, { task_state: null }, ['shelving']);
    throw err;
  }
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  const offloadNow = svc.deps.cfg.shelvedOffloadTimeSec === 0;
  runEvent(svc, wc, uuid, actionId, 'compute_shelve_instance', host, async () => {
    await askAgent(svc, agentSubjects(host).action, { uuid, verb: 'stop', timeoutMs: SHUTDOWN_TIMEOUT_MS }, wc, SHUTDOWN_TIMEOUT_MS + 30_000);
    await store.updateInstance(db, uuid, { task_state: 'shelving_image_uploading', power_state: 4 }, ['shelving']);
    await askAgent(svc, agentSubjects(host).snapshot, { uuid, imageId, uploadUrl: svc.images.fileUrl(imageId), token: auth.token, diskFormat: 'qcow2' }, wc, 30 * 60_000);
    const image = await svc.images.get(auth, imageId);
    if (image.status !== 'active') throw new Error(`the shelved image ${imageId} is ${image.status}`);
    const next = await patchSystemMetadata(svc, uuid, { shelved_image_id: imageId, shelved_image: JSON.stringify(image), shelved_at: isoNow(), shelved_host: host });
    await store.updateInstance(db, uuid, {
      vm_state: 'shelved', task_state: offloadNow ? 'shelving_offloading' : null, system_metadata: JSON.stringify(next),
    }, ['shelving_image_uploading']);
    wc.log.info({ instance: uuid, image: imageId }, 'instance shelved');
    if (offloadNow) await offload(svc, uuid, host, wc);
  }, async (msg) => {
    await svc.images.discard(auth, imageId).catch(() => undefined);
    // The guest may have been shut down already; the power-state sync shows what it is now.
    await store.updateInstance(db, uuid, { task_state: null, fault: fault(`Shelving failed: ${msg}`) }, ['shelving', 'shelving_image_uploading', 'shelving_offloading']);
  });
}

/** Remove a shelved instance from its host: no disks, no QEMU, no resources held there. */
async function offload(svc: ComputeService, uuid: string, host: string, wc: WorkContext): Promise<void> {
  await askAgent(svc, agentSubjects(host).remove, { uuid }, wc, 60_000);
  await store.updateInstance(svc.db, uuid, { vm_state: 'shelved_offloaded', task_state: null, host: null, power_state: 4, ssh_port: null }, ['shelving_offloading']);
  await svc.conductor.recomputeUsage(host);
  wc.log.info({ instance: uuid, host }, 'shelved instance offloaded');
}

/** shelveOffload (admin): free the host of a SHELVED instance now. */
export async function shelveOffload(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'shelveOffload', rule: 'os_compute_api:os-shelve:shelve_offload', vm: ['shelved'], task: 'shelving_offloading',
  });
  const wc = workContext(ctx, auth);
  runEvent(svc, wc, uuid, actionId, 'compute_shelve_offload_instance', inst.host, () => offload(svc, uuid, inst.host!, wc), async (msg) => {
    await store.updateInstance(svc.db, uuid, { task_state: null, fault: fault(`Offloading failed: ${msg}`) }, ['shelving_offloading']);
  });
}

/** Offload instances shelved longer than shelved_offload_time (a positive setting); called from the reconcile loop. */
export async function offloadExpired(svc: ComputeService, wc: WorkContext): Promise<void> {
  const after = svc.deps.cfg.shelvedOffloadTimeSec;
  if (!(after > 0)) return;
  const rows = await svc.db.selectFrom('instances').select(['uuid', 'host', 'updated_at']).where('deleted', '=', 0)
    .where('vm_state', '=', 'shelved').where('task_state', 'is', null).where('updated_at', '<', new Date(Date.now() - after * 1000).toISOString()).execute();
  for (const r of rows) {
    if (!r.host || !(await store.updateInstance(svc.db, r.uuid, { task_state: 'shelving_offloading' }, [null], ['shelved']))) continue;
    await offload(svc, r.uuid, r.host, wc).catch(async (err: unknown) => {
      wc.log.warn({ instance: r.uuid, err: (err as Error).message }, 'offload failed');
      await store.updateInstance(svc.db, r.uuid, { task_state: null }, ['shelving_offloading']);
    });
  }
}

/**
 * unshelve: a SHELVED server is simply started again; a SHELVED_OFFLOADED one is placed by
 * the scheduler (optionally in another availability zone, 2.77) and booted from its
 * shelved image. Either way the shelved image is deleted once the server runs.
 */
export async function unshelve(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, availabilityZone?: string | null): Promise<void> {
  const db = svc.db;
  const current = await svc.get(auth, uuid, 'os_compute_api:os-shelve:unshelve');
  if (availabilityZone !== undefined && availabilityZone !== null) {
    if (current.vmState !== 'shelved_offloaded') throw new BadRequest(`The availability_zone parameter is only accepted for SHELVED_OFFLOADED servers; server ${uuid} is ${current.vmState === 'shelved' ? 'SHELVED' : current.vmState}.`);
    const zones = new Set((await store.listHosts(db)).map((h) => h.availabilityZone));
    if (!zones.has(availabilityZone)) throw new BadRequest(`The requested availability zone is not available`);
  }
  const offloaded = current.vmState === 'shelved_offloaded';
  const azPatch: store.InstancePatch = offloaded && availabilityZone !== undefined ? { availability_zone: availabilityZone } : {};
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'unshelve', rule: 'os_compute_api:os-shelve:unshelve', vm: offloaded ? ['shelved_offloaded'] : ['shelved'], task: 'unshelving',
    needsHost: !offloaded, patch: azPatch,
  });
  if (offloaded && availabilityZone !== undefined) {
    await db.updateTable('instances').set({ requested_az: availabilityZone }).where('uuid', '=', uuid).execute();
  }
  const wc = workContext(ctx, auth);
  unshelvers.set(uuid, auth);
  if (offloaded) {
    svc.conductor.build(uuid, wc, 'unshelving');
    return;
  }
  const host = inst.host!;
  runEvent(svc, wc, uuid, actionId, 'compute_unshelve_instance', host, async () => {
    const reply = await askAgent(svc, agentSubjects(host).action, { uuid, verb: 'start' }, wc);
    await store.updateInstance(db, uuid, { vm_state: 'active', task_state: null, power_state: reply.power }, ['unshelving']);
    await dropShelvedImage(svc, uuid, wc);
  }, async (msg) => {
    await store.updateInstance(db, uuid, { task_state: null, fault: fault(`Unshelving failed: ${msg}`) }, ['unshelving']);
  });
}

/** After an unshelve: delete the shelved image and forget it. */
export async function dropShelvedImage(svc: ComputeService, uuid: string, wc: WorkContext): Promise<void> {
  const sys = await store.systemMetadata(svc.db, uuid);
  const imageId = sys.shelved_image_id;
  const auth = unshelvers.get(uuid);
  unshelvers.delete(uuid);
  const next = await patchSystemMetadata(svc, uuid, { shelved_image_id: undefined, shelved_image: undefined, shelved_at: undefined, shelved_host: undefined });
  await store.updateInstance(svc.db, uuid, { system_metadata: JSON.stringify(next) });
  if (imageId && auth) {
    await svc.images.delete(auth, imageId).catch((err: unknown) => wc.log.warn({ instance: uuid, image: imageId, err: (err as Error).message }, 'could not delete the shelved image'));
  }
}
