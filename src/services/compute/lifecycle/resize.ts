import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { isAllowed } from '../../../api/policy.ts';
import { agentSubjects } from '../../../bus/compute.ts';
import { BadRequest, Forbidden } from '../../../common/errors.ts';
import { isoNow } from '../../../db/index.ts';
import { ephemeralFormat } from '../conductor.ts';
import type { ComputeImage } from '../images.ts';
import type { ComputeService } from '../service.ts';
import * as store from '../store.ts';
import type { Flavor, VmState } from '../types.ts';
import { askAgent, begin, fault, patchSystemMetadata, runEvent, SHUTDOWN_TIMEOUT_MS, workContext } from './common.ts';
import './policy.ts';

const NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.';

/** Migration statuses a resize goes through (Nova's names). */
type MigrationStatus = 'pre-migrating' | 'migrating' | 'finished' | 'confirming' | 'confirmed' | 'reverting' | 'reverted' | 'error';

async function setMigration(svc: ComputeService, id: number | undefined, status: MigrationStatus): Promise<void> {
  if (id === undefined) return;
  await svc.db.updateTable('migrations').set({ status, updated_at: isoNow() }).where('id', '=', id).execute();
}

async function pendingMigration(svc: ComputeService, uuid: string, status: MigrationStatus[]) {
  return svc.db.selectFrom('migrations').selectAll().where('instance_uuid', '=', uuid).where('status', 'in', status)
    .orderBy('id', 'desc').executeTakeFirst();
}

/**
 * Resize to another flavor on the same host (allow_resize_to_same_host): checked against
 * the image, the project's quota and the host's capacity before anything happens (400/403
 * at once, as Nova's API answers NoValidHost and quota errors), then the guest is shut
 * down and started again with the new flavor and the server waits in VERIFY_RESIZE.
 */
export async function resize(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, flavorRef: string): Promise<void> {
  const db = svc.db;
  const inst = await svc.get(auth, uuid, 'os_compute_api:servers:resize');
  svc.checkLock(auth, inst);
  const flavor = await store.getFlavor(db, flavorRef);
  const visible = flavor && (flavor.is_public || isAllowed(auth, 'os_compute_api:os-flavor-access') ||
    (await store.flavorProjects(db, flavor.id)).includes(inst.projectId));
  if (!flavor || !visible) throw new BadRequest(`Flavor ${flavorRef} could not be found.`);
  if (flavor.disabled) throw new BadRequest('Flavor is disabled.');
  const old = inst.flavor;
  if (flavor.id === old.id) throw new BadRequest('When resizing, instances must change flavor!');
  if (flavor.disk === 0 && old.disk > 0) throw new BadRequest('Resize to zero disk flavor is not allowed.');
  if (flavor.disk < old.disk) throw new BadRequest('Resizing to a smaller disk is not supported: the server\'s disk cannot shrink.');
  const sys = await store.systemMetadata(db, uuid);
  const image = JSON.parse(sys.image ?? 'null') as ComputeImage | null;
  if (image && image.minRam > flavor.ram) throw new BadRequest("Flavor's memory is too small for requested image.");
  if (image && flavor.disk > 0 && image.minDisk > flavor.disk) throw new BadRequest("Flavor's disk is too small for requested image.");

  const delta = { vcpus: flavor.vcpus - old.vcpus, memoryMb: flavor.ram - old.ram, diskGb: flavor.disk + flavor.ephemeral - old.disk - old.ephemeral };
  const quotas = await svc.quotas(inst.projectId);
  const vm: VmState[] = ['active', 'stopped'];
  const sysNext = await patchSystemMetadata(svc, uuid, { old_flavor: JSON.stringify(old), old_vm_state: inst.vmState });
  const cfg = svc.deps.cfg;

  const { actionId } = await begin(svc, ctx, auth, uuid, { action: 'resize', rule: 'os_compute_api:servers:resize', vm, task: 'resize_prep' });
  let migrationId: number;
  try {
    // Quota, the host's room and the new flavor in one transaction: concurrent requests cannot both take the last slot.
    migrationId = await db.transaction().execute(async (tx) => {
      const used = await store.usage(tx, inst.projectId);
      for (const [res, d, inUse] of [['cores', delta.vcpus, used.cores], ['ram', delta.memoryMb, used.ram]] as const) {
        const limit = quotas[res];
        if (d > 0 && limit !== undefined && limit >= 0 && inUse + d > limit) {
          throw new Forbidden(`Quota exceeded for ${res}: Requested ${d}, but already used ${inUse} of ${limit} ${res}`);
        }
      }
      if (inst.host && (delta.vcpus > 0 || delta.memoryMb > 0 || delta.diskGb > 0)) {
        const grow = { vcpus: Math.max(delta.vcpus, 0), memoryMb: Math.max(delta.memoryMb, 0), diskGb: Math.max(delta.diskGb, 0) };
        if (!(await store.claim(tx, inst.host, grow, { cpu: cfg.cpuAllocationRatio, ram: cfg.ramAllocationRatio, disk: cfg.diskAllocationRatio }, false))) {
          throw new BadRequest(`${NO_VALID_HOST} Host ${inst.host} does not have room for flavor ${flavor.name}.`);
        }
      }
      await store.updateInstance(tx, uuid, { ...store.flavorColumns(flavor), system_metadata: JSON.stringify(sysNext) }, ['resize_prep']);
      const id = await store.nextId(tx, 'migrations');
      await tx.insertInto('migrations').values({
        id, uuid: crypto.randomUUID(), instance_uuid: uuid, migration_type: 'resize', status: 'pre-migrating',
        source_compute: inst.host, dest_compute: inst.host, source_node: inst.host, dest_node: inst.host, dest_host: '127.0.0.1',
        old_flavor_id: old.id, new_flavor_id: flavor.id, project_id: inst.projectId, user_id: auth.userId, hidden: 0, created_at: isoNow(), updated_at: null,
      }).execute();
      return id;
    });
  } catch (err) {
    await store.updateInstance(db, uuid, { task_state: null }, ['resize_prep']);
    await store.startEvent(db, actionId, 'compute_resize_instance', inst.host);
    await store.finishEvent(db, actionId, 'compute_resize_instance', false, (err as Error).message);
    throw err;
  }

  const host = inst.host!;
  const wc = workContext(ctx, auth);
  const powerOn = inst.vmState === 'active';
  runEvent(svc, wc, uuid, actionId, 'compute_resize_instance', host, async () => {
    await store.updateInstance(db, uuid, { task_state: 'resize_migrating' }, ['resize_prep']);
    await setMigration(svc, migrationId, 'migrating');
    const reply = await askAgent(svc, agentSubjects(host).resize, {
      uuid, vcpus: flavor.vcpus, memoryMb: flavor.ram, rootGb: flavor.disk, ephemeralGb: flavor.ephemeral, swapMb: flavor.swap, ephemeralFormat: ephemeralFormat(image),
      powerOn, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    }, wc);
    await store.updateInstance(db, uuid, { vm_state: 'resized', task_state: null, power_state: reply.power }, ['resize_migrating', 'resize_prep']);
    await setMigration(svc, migrationId, 'finished');
    wc.log.info({ instance: uuid, from: old.name, to: flavor.name }, 'resized; waiting for confirm or revert');
  }, async (msg) => {
    // Roll back to the old flavor where the guest was: the agent restores the old disks if it got that far.
    await askAgent(svc, agentSubjects(host).resizeRevert, { uuid, powerOn }, wc).catch(() => undefined);
    const back = await patchSystemMetadata(svc, uuid, { old_flavor: undefined, old_vm_state: undefined });
    await store.updateInstance(db, uuid, {
      ...store.flavorColumns(old), system_metadata: JSON.stringify(back), task_state: null, vm_state: inst.vmState, fault: fault(`Resize failed: ${msg}`),
    }, ['resize_prep', 'resize_migrating']);
    await setMigration(svc, migrationId, 'error');
    await svc.conductor.recomputeUsage(host);
  });
}

/** The old flavor and vm_state a pending resize recorded. */
async function resizeRecord(svc: ComputeService, uuid: string): Promise<{ old: Flavor | null; oldVm: VmState }> {
  const sys = await store.systemMetadata(svc.db, uuid);
  return { old: JSON.parse(sys.old_flavor ?? 'null') as Flavor | null, oldVm: (sys.old_vm_state as VmState | undefined) ?? 'active' };
}

/**
 * The start of confirmResize/revertResize: the server is in VERIFY_RESIZE (409 otherwise)
 * with a finished resize on record (400 "not resized" otherwise, as Nova answers).
 */
async function beginPending(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string,
  o: { action: string; rule: string; task: 'resize_confirming' | 'resize_reverting'; status: MigrationStatus }) {
  const current = await svc.get(auth, uuid, o.rule);
  const mig = await pendingMigration(svc, uuid, ['finished']);
  if (current.vmState === 'resized' && !mig) throw new BadRequest('Instance has not been resized.');
  const started = await begin(svc, ctx, auth, uuid, { action: o.action, rule: o.rule, vm: ['resized'], task: o.task });
  await setMigration(svc, mig?.id, o.status);
  return { ...started, migrationId: mig?.id };
}

/** confirmResize: keep the new flavor; the old disks are dropped. */
export async function confirmResize(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const { inst, actionId, migrationId } = await beginPending(svc, ctx, auth, uuid, {
    action: 'confirmResize', rule: 'os_compute_api:servers:confirm_resize', task: 'resize_confirming', status: 'confirming',
  });
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  runEvent(svc, wc, uuid, actionId, 'compute_confirm_resize', host, async () => {
    await askAgent(svc, agentSubjects(host).resizeConfirm, { uuid }, wc, 60_000);
    const st = await askAgent(svc, agentSubjects(host).state, { uuid }, wc, 10_000);
    const sys = await patchSystemMetadata(svc, uuid, { old_flavor: undefined, old_vm_state: undefined });
    await store.updateInstance(svc.db, uuid, {
      vm_state: st.power === 4 || st.power === 0 ? 'stopped' : 'active', task_state: null, power_state: st.power, system_metadata: JSON.stringify(sys),
    }, ['resize_confirming']);
    await setMigration(svc, migrationId, 'confirmed');
  }, async (msg) => {
    await store.updateInstance(svc.db, uuid, { task_state: null, fault: fault(`Confirming the resize failed: ${msg}`) }, ['resize_confirming']);
    await setMigration(svc, migrationId, 'error');
  });
}

/** revertResize: back to the old flavor, disks and power state. */
export async function revertResize(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
  const { inst, actionId, migrationId } = await beginPending(svc, ctx, auth, uuid, {
    action: 'revertResize', rule: 'os_compute_api:servers:revert_resize', task: 'resize_reverting', status: 'reverting',
  });
  const { old, oldVm } = await resizeRecord(svc, uuid);
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  runEvent(svc, wc, uuid, actionId, 'compute_revert_resize', host, async () => {
    const reply = await askAgent(svc, agentSubjects(host).resizeRevert, { uuid, powerOn: oldVm === 'active' }, wc);
    const sys = await patchSystemMetadata(svc, uuid, { old_flavor: undefined, old_vm_state: undefined });
    await store.updateInstance(svc.db, uuid, {
      ...(old ? store.flavorColumns(old) : {}), system_metadata: JSON.stringify(sys), vm_state: oldVm, task_state: null, power_state: reply.power,
    }, ['resize_reverting']);
    await setMigration(svc, migrationId, 'reverted');
    await svc.conductor.recomputeUsage(host);
  }, async (msg) => {
    await svc.conductor.fail(uuid, ['resize_reverting'], new Error(`Reverting the resize failed: ${msg}`));
    await setMigration(svc, migrationId, 'error');
  });
}
