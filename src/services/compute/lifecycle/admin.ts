import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { enforce } from '../../../api/policy.ts';
import { agentSubjects } from '../../../bus/compute.ts';
import type { ComputeService } from '../service.ts';
import { invalidState } from '../service.ts';
import * as store from '../store.ts';
import type { VmState } from '../types.ts';
import { askAgent, begin, fault, runEvent, SHUTDOWN_TIMEOUT_MS, workContext } from './common.ts';
import './policy.ts';

/** os-resetState (admin): force vm_state to active or error and clear the task, nothing else. */
export async function resetState(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, state: 'active' | 'error'): Promise<void> {
  const inst = await svc.get(auth, uuid);
  enforce(auth, 'os_compute_api:os-admin-actions:reset_state', { project_id: inst.projectId });
  await store.updateInstance(svc.db, uuid, { vm_state: state as VmState, task_state: null });
  await store.startAction(svc.db, { requestId: ctx.requestId, uuid, action: 'resetState', projectId: inst.projectId, userId: auth.userId });
  ctx.log.info({ instance: uuid, from: inst.vmState, to: state, task: inst.taskState }, 'state reset by an admin');
}

/**
 * Deferred delete (reclaim_instance_interval > 0): a deleted server is shut down and kept
 * SOFT_DELETED until the interval passes; restore brings it back, forceDelete deletes now.
 */
export async function softDelete(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'delete', rule: 'os_compute_api:servers:delete', vm: ['active', 'stopped', 'paused', 'suspended', 'error', 'rescued', 'resized'], task: 'soft-deleting',
  });
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  runEvent(svc, wc, uuid, actionId, 'compute_soft_delete_instance', host, async () => {
    const reply = await askAgent(svc, agentSubjects(host).action, { uuid, verb: 'stop', timeoutMs: SHUTDOWN_TIMEOUT_MS }, wc, SHUTDOWN_TIMEOUT_MS + 30_000);
    await store.updateInstance(svc.db, uuid, { vm_state: 'soft-delete', task_state: null, power_state: reply.power }, ['soft-deleting']);
  }, async (msg) => {
    await store.updateInstance(svc.db, uuid, { task_state: null, fault: fault(`Soft delete failed: ${msg}`) }, ['soft-deleting']);
  });
}

/** restore: a SOFT_DELETED server runs again. */
export async function restore(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'restore', rule: 'os_compute_api:os-deferred-delete:restore', vm: ['soft-delete'], task: 'restoring',
  });
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  runEvent(svc, wc, uuid, actionId, 'compute_restore_instance', host, async () => {
    const reply = await askAgent(svc, agentSubjects(host).action, { uuid, verb: 'start' }, wc);
    await store.updateInstance(svc.db, uuid, { vm_state: 'active', task_state: null, power_state: reply.power }, ['restoring']);
  }, async (msg) => {
    await store.updateInstance(svc.db, uuid, { task_state: null, fault: fault(`Restore failed: ${msg}`) }, ['restoring']);
  });
}

/** forceDelete: delete a SOFT_DELETED server now. */
export async function forceDelete(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const inst = await svc.get(auth, uuid, 'os_compute_api:os-deferred-delete:force');
  if (inst.vmState !== 'soft-delete') throw invalidState('forceDelete', uuid, 'vm_state', inst.vmState);
  await svc.hardDelete(ctx, auth, inst);
}

/** Reclaim SOFT_DELETED servers older than the interval; called from the reconcile loop. */
export async function reclaimExpired(svc: ComputeService, ctx: RequestContext): Promise<void> {
  const after = svc.deps.cfg.reclaimInstanceIntervalSec;
  if (!(after > 0)) return;
  const rows = await svc.db.selectFrom('instances').select(['uuid']).where('deleted', '=', 0).where('vm_state', '=', 'soft-delete')
    .where('task_state', 'is', null).where('updated_at', '<', new Date(Date.now() - after * 1000).toISOString()).execute();
  for (const r of rows) {
    if (!(await store.updateInstance(svc.db, r.uuid, { task_state: 'deleting' }, [null], ['soft-delete']))) continue;
    ctx.log.info({ instance: r.uuid }, 'reclaiming a soft-deleted server');
    svc.conductor.delete(r.uuid, undefined, { requestId: ctx.requestId, token: '', log: ctx.log });
  }
}
