import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../../db/index.ts';
import { isoNow } from '../../db/index.ts';
import type { ComputeHostTable, FlavorTable, InstanceTable } from '../../db/schema/compute.ts';
import type { ComputeHost, Fault, Flavor, Instance, Keypair, ServerGroup, TaskState, VmState } from './types.ts';

/** SQL for compute. Every function takes the Kysely handle (or a transaction). */
type Q = Db | Transaction<Database>;

/** Next value of a named integer sequence (instance ids, action ids, host ids), in both dialects. */
export async function nextId(db: Q, name: string): Promise<number> {
  const run = async (tx: Q) => {
    const row = await tx.updateTable('id_sequences').set({ next: sql`next + 1` }).where('name', '=', name)
      .returning('next').executeTakeFirst();
    if (row) return row.next - 1;
    await tx.insertInto('id_sequences').values({ name, next: 2 }).onConflict((oc) => oc.column('name').doUpdateSet({ next: sql`id_sequences.next + 1` })).execute();
    const again = await tx.selectFrom('id_sequences').select('next').where('name', '=', name).executeTakeFirstOrThrow();
    return again.next - 1;
  };
  return run(db);
}

// ---- flavors ----

export function flavorFrom(r: FlavorTable, specs: Record<string, string>): Flavor {
  return {
    id: r.id, name: r.name, vcpus: r.vcpus, ram: r.ram, disk: r.disk, ephemeral: r.ephemeral, swap: r.swap,
    rxtx_factor: r.rxtx_factor, is_public: r.is_public === 1, disabled: r.disabled === 1, description: r.description, extra_specs: specs,
  };
}

export async function extraSpecs(db: Q, flavorIds: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>(flavorIds.map((id) => [id, {}]));
  if (flavorIds.length === 0) return out;
  const rows = await db.selectFrom('flavor_extra_specs').selectAll().where('flavor_id', 'in', flavorIds).execute();
  for (const r of rows) out.get(r.flavor_id)![r.key] = r.value;
  return out;
}

export async function getFlavor(db: Q, id: string): Promise<Flavor | undefined> {
  const r = await db.selectFrom('flavors').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return undefined;
  return flavorFrom(r, (await extraSpecs(db, [id])).get(id)!);
}

export async function listFlavors(db: Q, opts: { projectId?: string; all: boolean; isPublic?: boolean }): Promise<Flavor[]> {
  let q = db.selectFrom('flavors').selectAll();
  if (opts.isPublic !== undefined) q = q.where('is_public', '=', opts.isPublic ? 1 : 0);
  if (!opts.all) {
    const pid = opts.projectId ?? '';
    q = q.where((eb) => eb.or([
      eb('is_public', '=', 1),
      eb('id', 'in', eb.selectFrom('flavor_projects').select('flavor_id').where('project_id', '=', pid)),
    ]));
  }
  const rows = await q.execute();
  const specs = await extraSpecs(db, rows.map((r) => r.id));
  return rows.map((r) => flavorFrom(r, specs.get(r.id)!));
}

export async function flavorProjects(db: Q, id: string): Promise<string[]> {
  return (await db.selectFrom('flavor_projects').select('project_id').where('flavor_id', '=', id).execute()).map((r) => r.project_id);
}

// ---- keypairs ----

export async function getKeypair(db: Q, userId: string, name: string): Promise<Keypair | undefined> {
  const r = await db.selectFrom('keypairs').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
  return r && { userId: r.user_id, name: r.name, type: r.type as Keypair['type'], publicKey: r.public_key, fingerprint: r.fingerprint, createdAt: r.created_at };
}

export async function listKeypairs(db: Q, userId: string): Promise<Keypair[]> {
  const rows = await db.selectFrom('keypairs').selectAll().where('user_id', '=', userId).orderBy('name').execute();
  return rows.map((r) => ({ userId: r.user_id, name: r.name, type: r.type as Keypair['type'], publicKey: r.public_key, fingerprint: r.fingerprint, createdAt: r.created_at }));
}

// ---- hosts ----

export function hostFrom(r: ComputeHostTable): ComputeHost {
  return {
    host: r.host, id: r.id, uuid: r.uuid, serviceUuid: r.service_uuid, hostIp: r.host_ip, hypervisorType: r.hypervisor_type,
    hypervisorVersion: r.hypervisor_version, accel: r.accel, cpuModel: r.cpu_model, arch: r.arch, vcpus: r.vcpus,
    memoryMb: r.memory_mb, localGb: r.local_gb, vcpusUsed: r.vcpus_used, memoryMbUsed: r.memory_mb_used,
    localGbUsed: r.local_gb_used, runningVms: r.running_vms, availabilityZone: r.availability_zone, enabled: r.enabled === 1,
    disabledReason: r.disabled_reason, forcedDown: r.forced_down === 1, agentVersion: r.agent_version, lastSeen: r.last_seen, createdAt: r.created_at,
  };
}

export async function listHosts(db: Q): Promise<ComputeHost[]> {
  return (await db.selectFrom('compute_hosts').selectAll().orderBy('id').execute()).map(hostFrom);
}

export async function getHost(db: Q, host: string): Promise<ComputeHost | undefined> {
  const r = await db.selectFrom('compute_hosts').selectAll().where('host', '=', host).executeTakeFirst();
  return r && hostFrom(r);
}

/**
 * Claim resources on a host atomically: succeeds only while the host still has room
 * under its allocation ratios, so two schedulers racing for the last slot cannot both win.
 */
export async function claim(db: Q, host: string, r: { vcpus: number; memoryMb: number; diskGb: number },
  ratios: { cpu: number; ram: number; disk: number }): Promise<boolean> {
  const res = await db.updateTable('compute_hosts').set({
    vcpus_used: sql`vcpus_used + ${r.vcpus}`, memory_mb_used: sql`memory_mb_used + ${r.memoryMb}`,
    local_gb_used: sql`local_gb_used + ${r.diskGb}`, running_vms: sql`running_vms + 1`,
  }).where('host', '=', host)
    .where(sql<boolean>`vcpus_used + ${r.vcpus} <= vcpus * ${ratios.cpu}`)
    .where(sql<boolean>`memory_mb_used + ${r.memoryMb} <= memory_mb * ${ratios.ram}`)
    .where(sql<boolean>`local_gb_used + ${r.diskGb} <= local_gb * ${ratios.disk}`)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function release(db: Q, host: string, r: { vcpus: number; memoryMb: number; diskGb: number }): Promise<void> {
  const dec = (col: string, by: number) => sql<number>`case when ${sql.ref(col)} > ${by} then ${sql.ref(col)} - ${by} else 0 end`;
  await db.updateTable('compute_hosts').set({
    vcpus_used: dec('vcpus_used', r.vcpus), memory_mb_used: dec('memory_mb_used', r.memoryMb),
    local_gb_used: dec('local_gb_used', r.diskGb), running_vms: dec('running_vms', 1),
  }).where('host', '=', host).execute();
}

// ---- instances ----

export function instanceFrom(r: InstanceTable, metadata: Record<string, string>, tags: string[]): Instance {
  return {
    uuid: r.uuid, id: r.id, name: r.display_name, description: r.display_description, hostname: r.hostname,
    projectId: r.project_id, userId: r.user_id, imageRef: r.image_ref, flavor: JSON.parse(r.flavor) as Flavor,
    host: r.host, availabilityZone: r.availability_zone, vmState: r.vm_state as VmState, taskState: r.task_state as TaskState | null,
    powerState: r.power_state, keyName: r.key_name, keyData: r.key_data, userData: r.user_data, configDrive: r.config_drive,
    accessIPv4: r.access_ip_v4, accessIPv6: r.access_ip_v6, networks: JSON.parse(r.networks) as 'none' | 'auto', sshPort: r.ssh_port,
    locked: r.locked === 1, lockedBy: r.locked_by as 'owner' | 'admin' | null, lockedReason: r.locked_reason,
    serverGroupId: r.server_group_id, reservationId: r.reservation_id, launchIndex: r.launch_index, progress: r.progress,
    fault: r.fault ? (JSON.parse(r.fault) as Fault) : null, metadata, tags, createdAt: r.created_at, updatedAt: r.updated_at,
    launchedAt: r.launched_at, terminatedAt: r.terminated_at, deleted: r.deleted === 1,
  };
}

export async function hydrate(db: Q, rows: InstanceTable[]): Promise<Instance[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.uuid);
  const meta = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
  const tags = new Map<string, string[]>(ids.map((id) => [id, []]));
  // Chunk to stay under SQLite's bound-parameter limit on large listings.
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    for (const m of await db.selectFrom('instance_metadata').selectAll().where('instance_uuid', 'in', chunk).execute()) meta.get(m.instance_uuid)![m.key] = m.value;
    for (const t of await db.selectFrom('instance_tags').selectAll().where('instance_uuid', 'in', chunk).orderBy('tag').execute()) tags.get(t.instance_uuid)!.push(t.tag);
  }
  return rows.map((r) => instanceFrom(r, meta.get(r.uuid)!, tags.get(r.uuid)!));
}

export async function getInstance(db: Q, uuid: string, withDeleted = false): Promise<Instance | undefined> {
  let q = db.selectFrom('instances').selectAll().where('uuid', '=', uuid);
  if (!withDeleted) q = q.where('deleted', '=', 0);
  const r = await q.executeTakeFirst();
  return r ? (await hydrate(db, [r]))[0] : undefined;
}

export interface InstancePatch {
  vm_state?: VmState; task_state?: TaskState | null; power_state?: number; host?: string | null;
  availability_zone?: string | null; launched_at?: string | null; terminated_at?: string | null; fault?: string | null;
  display_name?: string; display_description?: string | null; hostname?: string; locked?: number; locked_by?: string | null;
  locked_reason?: string | null; access_ip_v4?: string; access_ip_v6?: string; progress?: number; image_ref?: string;
  deleted?: number; deleted_at?: string | null; ssh_port?: number | null;
}

/**
 * Update an instance, optionally only when its task_state is one of `expectTask` (Nova's
 * expected_task_state) — the guard that makes two concurrent actions on one server safe.
 * Returns false when the guard did not match.
 */
export async function updateInstance(db: Q, uuid: string, patch: InstancePatch, expectTask?: (TaskState | null)[], expectVm?: VmState[]): Promise<boolean> {
  let q = db.updateTable('instances').set({ ...patch, updated_at: isoNow() }).where('uuid', '=', uuid).where('deleted', '=', 0);
  if (expectTask) {
    const vals = expectTask.filter((t): t is TaskState => t !== null);
    const allowNull = expectTask.includes(null);
    q = q.where((eb) => {
      const ors = [];
      if (vals.length) ors.push(eb('task_state', 'in', vals));
      if (allowNull) ors.push(eb('task_state', 'is', null));
      return eb.or(ors);
    });
  }
  if (expectVm) q = q.where('vm_state', 'in', expectVm);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function setFault(db: Q, uuid: string, fault: Fault): Promise<void> {
  await db.updateTable('instances').set({ fault: JSON.stringify(fault), updated_at: isoNow() }).where('uuid', '=', uuid).execute();
}

export async function listServerGroups(db: Q, projectId?: string): Promise<ServerGroup[]> {
  let q = db.selectFrom('server_groups').selectAll();
  if (projectId) q = q.where('project_id', '=', projectId);
  const rows = await q.orderBy('created_at').execute();
  const members = rows.length ? await db.selectFrom('server_group_members').selectAll().where('group_id', 'in', rows.map((r) => r.id)).execute() : [];
  return rows.map((r) => ({
    id: r.id, name: r.name, projectId: r.project_id, userId: r.user_id, policy: r.policy,
    rules: JSON.parse(r.rules) as Record<string, number>, members: members.filter((m) => m.group_id === r.id).map((m) => m.instance_uuid), createdAt: r.created_at,
  }));
}

export async function getServerGroup(db: Q, id: string): Promise<ServerGroup | undefined> {
  const r = await db.selectFrom('server_groups').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return undefined;
  const members = await db.selectFrom('server_group_members').select('instance_uuid').where('group_id', '=', id).execute();
  return { id: r.id, name: r.name, projectId: r.project_id, userId: r.user_id, policy: r.policy, rules: JSON.parse(r.rules) as Record<string, number>, members: members.map((m) => m.instance_uuid), createdAt: r.created_at };
}

// ---- instance actions ----

export async function startAction(db: Q, a: { requestId: string; uuid: string; action: string; projectId: string; userId: string }): Promise<number> {
  const id = await nextId(db, 'instance_actions');
  const now = isoNow();
  await db.insertInto('instance_actions').values({
    id, request_id: a.requestId, instance_uuid: a.uuid, action: a.action, project_id: a.projectId, user_id: a.userId,
    message: null, start_time: now, updated_at: now,
  }).execute();
  return id;
}

export async function startEvent(db: Q, actionId: number, event: string, host: string | null): Promise<void> {
  await db.insertInto('instance_action_events').values({ action_id: actionId, event, start_time: isoNow(), finish_time: null, result: null, traceback: null, details: null, host }).execute();
}

export async function finishEvent(db: Q, actionId: number, event: string, ok: boolean, details?: string): Promise<void> {
  const now = isoNow();
  await db.updateTable('instance_action_events').set({ finish_time: now, result: ok ? 'Success' : 'Error', traceback: ok ? null : (details ?? null), details: ok ? null : (details ?? null) })
    .where('action_id', '=', actionId).where('event', '=', event).where('finish_time', 'is', null).execute();
  await db.updateTable('instance_actions').set({ updated_at: now, ...(ok ? {} : { message: 'Error' }) }).where('id', '=', actionId).execute();
}

export async function quotaLimits(db: Q, projectId: string): Promise<Record<string, number>> {
  const rows = await db.selectFrom('quotas').selectAll().where('project_id', 'in', [projectId, '__default__']).execute();
  const out: Record<string, number> = {};
  for (const r of rows.filter((x) => x.project_id === '__default__')) out[r.resource] = r.hard_limit;
  for (const r of rows.filter((x) => x.project_id === projectId)) out[r.resource] = r.hard_limit;
  return out;
}

export async function usage(db: Q, projectId: string): Promise<{ instances: number; cores: number; ram: number }> {
  const r = await db.selectFrom('instances').select([
    sql<number>`count(*)`.as('n'), sql<number>`coalesce(sum(vcpus), 0)`.as('cores'), sql<number>`coalesce(sum(memory_mb), 0)`.as('ram'),
  ]).where('project_id', '=', projectId).where('deleted', '=', 0).executeTakeFirstOrThrow();
  return { instances: Number(r.n), cores: Number(r.cores), ram: Number(r.ram) };
}
