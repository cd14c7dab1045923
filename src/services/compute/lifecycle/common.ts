import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { BusTimeout } from '../../../bus/index.ts';
import type { Subject } from '../../../bus/index.ts';
import { faultOf, type WorkContext } from '../conductor.ts';
import type { ComputeService } from '../service.ts';
import { invalidState } from '../service.ts';
import * as store from '../store.ts';
import type { Instance, TaskState, VmState } from '../types.ts';

/** How long an agent may take for an operation that boots a guest (rebuild, resize, rescue). */
export const AGENT_BOOT_TIMEOUT_MS = 180_000;
/** How long a guest gets to shut down cleanly before a rebuild, resize, rescue or shelve (Nova's shutdown_timeout). */
export const SHUTDOWN_TIMEOUT_MS = 60_000;

export function workContext(ctx: RequestContext, auth: AuthContext): WorkContext {
  return { requestId: ctx.requestId, token: auth.token, log: ctx.log };
}

/**
 * The common start of a lifecycle action: the caller may act on the server (policy, lock),
 * it is in one of `vm` with no task running, and the guarded update to `task` (plus any
 * patch) wins against concurrent requests. Returns the instance as it was and the id of
 * the instance action recorded for it.
 */
export async function begin(
  svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string,
  o: { action: string; rule: string; vm: VmState[]; task: TaskState; patch?: store.InstancePatch; needsHost?: boolean; lockExempt?: boolean },
  db: store.Q = svc.db,
): Promise<{ inst: Instance; actionId: number }> {
  const inst = await svc.get(auth, uuid, o.rule);
  if (!o.lockExempt) svc.checkLock(auth, inst);
  if (inst.taskState !== null) throw invalidState(o.action, uuid, 'task_state', inst.taskState);
  if (!o.vm.includes(inst.vmState)) throw invalidState(o.action, uuid, 'vm_state', inst.vmState);
  if (o.needsHost !== false && !inst.host) throw invalidState(o.action, uuid, 'vm_state', inst.vmState);
  if (!(await store.updateInstance(db, uuid, { ...o.patch, task_state: o.task }, [null], o.vm))) {
    const now = await store.getInstance(db, uuid);
    throw invalidState(o.action, uuid, now?.taskState ? 'task_state' : 'vm_state', now?.taskState ?? now?.vmState ?? 'deleted');
  }
  const actionId = await store.startAction(db, { requestId: ctx.requestId, uuid, action: o.action, projectId: inst.projectId, userId: auth.userId });
  return { inst, actionId };
}

/** Ask the instance's agent, with the request id carried through. */
export function askAgent<Req, Res>(svc: ComputeService, subject: Subject<Req, Res>, req: Req, wc: WorkContext, timeoutMs = AGENT_BOOT_TIMEOUT_MS): Promise<Res> {
  return svc.conductor.bus.request(subject, req, { timeoutMs, requestId: wc.requestId });
}

export function errorMessage(err: unknown, host: string | null): string {
  if (err instanceof BusTimeout) return `The compute agent on ${host ?? 'the host'} did not answer in time.`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Run the asynchronous part of an action as one instance-action event: the API call has
 * returned 202 already; success and failure land in the event and the instance row.
 */
export function runEvent(
  svc: ComputeService, wc: WorkContext, uuid: string, actionId: number, event: string, host: string | null,
  work: () => Promise<void>, onError: (message: string, err: unknown) => Promise<void>,
): void {
  const db = svc.db;
  void (async () => {
    await store.startEvent(db, actionId, event, host);
    try {
      await work();
      await store.finishEvent(db, actionId, event, true);
    } catch (err) {
      const msg = errorMessage(err, host);
      wc.log.warn({ instance: uuid, event, err: msg }, 'action failed');
      await store.finishEvent(db, actionId, event, false, msg);
      await onError(msg, err);
    }
  })().catch((err: unknown) => wc.log.error({ err, instance: uuid, event }, 'action crashed'));
}

/** The instance's fault column for a failure message. */
export function fault(message: string, code = 500): string {
  return JSON.stringify(faultOf(new Error(message), code));
}

/** Merge into the instance's system metadata (undefined deletes a key). */
export async function patchSystemMetadata(svc: ComputeService, uuid: string, patch: Record<string, string | undefined>): Promise<Record<string, string>> {
  const sys = await store.systemMetadata(svc.db, uuid);
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete sys[k];
    else sys[k] = v;
  }
  return sys;
}
