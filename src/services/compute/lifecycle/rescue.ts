import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { agentSubjects } from '../../../bus/compute.ts';
import type { ComputeImage } from '../images.ts';
import type { ComputeService } from '../service.ts';
import * as store from '../store.ts';
import { askAgent, begin, fault, runEvent, SHUTDOWN_TIMEOUT_MS, workContext } from './common.ts';
import './policy.ts';

/**
 * rescue: the guest is shut down and a rescue system boots instead — the image named by
 * rescue_image_ref, else the server's own image — with the server's disks attached after
 * it (its root disk becomes the second disk, vdb), so a broken system can be repaired.
 */
export async function rescue(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, rescueImageRef?: string): Promise<void> {
  const db = svc.db;
  const current = await svc.get(auth, uuid, 'os_compute_api:os-rescue');
  let image: ComputeImage;
  let kernel: ComputeImage | undefined;
  let ramdisk: ComputeImage | undefined;
  if (rescueImageRef) {
    ({ image, kernel, ramdisk } = await svc.resolveImage(auth, rescueImageRef, current.flavor));
  } else {
    const sys = await store.systemMetadata(db, uuid);
    image = JSON.parse(sys.image ?? 'null') as ComputeImage;
    if (sys.kernel) kernel = JSON.parse(sys.kernel) as ComputeImage;
    if (sys.ramdisk) ramdisk = JSON.parse(sys.ramdisk) as ComputeImage;
  }
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'rescue', rule: 'os_compute_api:os-rescue', vm: ['active', 'stopped', 'error'], task: 'rescuing',
  });
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  const ref = (i: ComputeImage) => svc.conductor.imageRef(i);
  runEvent(svc, wc, uuid, actionId, 'compute_rescue_instance', host, async () => {
    const reply = await askAgent(svc, agentSubjects(host).rescue, {
      uuid, image: ref(image), kernel: kernel && ref(kernel), ramdisk: ramdisk && ref(ramdisk), cmdline: image.properties.os_command_line,
      token: auth.token, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    }, wc);
    await store.updateInstance(db, uuid, { vm_state: 'rescued', task_state: null, power_state: reply.power }, ['rescuing']);
  }, async (msg) => { await svc.conductor.fail(uuid, ['rescuing'], new Error(`Instance failed to rescue: ${msg}`)); });
}

/** unrescue: the rescue system goes away and the server boots its own disk again. */
export async function unrescue(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'unrescue', rule: 'os_compute_api:os-unrescue', vm: ['rescued'], task: 'unrescuing',
  });
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  runEvent(svc, wc, uuid, actionId, 'compute_unrescue_instance', host, async () => {
    const reply = await askAgent(svc, agentSubjects(host).unrescue, { uuid }, wc);
    await store.updateInstance(svc.db, uuid, { vm_state: 'active', task_state: null, power_state: reply.power }, ['unrescuing']);
  }, async (msg) => {
    await store.updateInstance(svc.db, uuid, { task_state: null, fault: fault(`Unrescue failed: ${msg}`) }, ['unrescuing']);
  });
}
