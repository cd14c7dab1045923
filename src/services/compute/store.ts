import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../../db/index.ts';
import { isoNow } from '../../db/index.ts';
import type { ComputeHostTable, FlavorTable, InstanceTable as InstanceTableShape } from '../../db/schema/compute.ts';
import type { Selectable } from 'kysely';
type InstanceTable = Selectable<InstanceTableShape>;
import type { ComputeHost, Fault, Flavor, Instance, Keypair, ServerGroup, TaskState, VmState } from './types.ts';
import type { VifInfo } from './networks.ts';

/** SQL for compute. Every function takes the Kysely handle (or a transaction). */
export type Q = Db | Transaction<Database>;

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
  ratios: { cpu: number; ram: number; disk: number }, newInstance = true): Promise<boolean> {
  const res = await db.updateTable('compute_hosts').set({
    vcpus_used: sql`vcpus_used + ${r.vcpus}`, memory_mb_used: sql`memory_mb_used + ${r.memoryMb}`,
    local_gb_used: sql`local_gb_used + ${r.diskGb}`, running_vms: sql`running_vms + ${newInstance ? 1 : 0}`,
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

export function instanceFrom(r: InstanceTable, metadata: Record<string, string>, tags: string[], volumes: Instance['volumes'] = []): Instance {
  return {
    uuid: r.uuid, id: r.id, name: r.display_name, description: r.display_description, hostname: r.hostname,
    projectId: r.project_id, userId: r.user_id, imageRef: r.image_ref, flavor: JSON.parse(r.flavor) as Flavor,
    host: r.host, availabilityZone: r.availability_zone, vmState: r.vm_state as VmState, taskState: r.task_state as TaskState | null,
    powerState: r.power_state, keyName: r.key_name, keyData: r.key_data, userData: r.user_data, configDrive: r.config_drive,
    accessIPv4: r.access_ip_v4, accessIPv6: r.access_ip_v6, networks: JSON.parse(r.networks) as Instance['networks'], vifs: JSON.parse(r.network_info) as VifInfo[], sshPort: r.ssh_port,
    locked: r.locked === 1, lockedBy: r.locked_by as 'owner' | 'admin' | null, lockedReason: r.locked_reason,
    serverGroupId: r.server_group_id, reservationId: r.reservation_id, launchIndex: r.launch_index, progress: r.progress,
    fault: r.fault ? (JSON.parse(r.fault) as Fault) : null, metadata, tags, volumes, createdAt: r.created_at, updatedAt: r.updated_at,
    launchedAt: r.launched_at, terminatedAt: r.terminated_at, deleted: r.deleted === 1,
  };
}

export async function hydrate(db: Q, rows: InstanceTable[]): Promise<Instance[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.uuid);
  const meta = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
  const tags = new Map<string, string[]>(ids.map((id) => [id, []]));
  const volumes = new Map<string, Instance['volumes']>(ids.map((id) => [id, []]));
  // Chunk to stay under SQLite's bound-parameter limit on large listings.
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    for (const m of await db.selectFrom('instance_metadata').selectAll().where('instance_uuid', 'in', chunk).execute()) meta.get(m.instance_uuid)![m.key] = m.value;
    for (const t of await db.selectFrom('instance_tags').selectAll().where('instance_uuid', 'in', chunk).orderBy('tag').execute()) tags.get(t.instance_uuid)!.push(t.tag);
    const bdms = await db.selectFrom('block_device_mappings').select(['instance_uuid', 'volume_id', 'delete_on_termination', 'boot_index'])
      .where('instance_uuid', 'in', chunk).where('deleted', '=', 0).where('volume_id', 'is not', null).orderBy('id').execute();
    for (const b of bdms) volumes.get(b.instance_uuid)!.push({ volumeId: b.volume_id!, deleteOnTermination: b.delete_on_termination === 1, bootIndex: b.boot_index });
  }
  return rows.map((r) => instanceFrom(r, meta.get(r.uuid)!, tags.get(r.uuid)!, volumes.get(r.uuid)!));
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
  deleted?: number; deleted_at?: string | null; ssh_port?: number | null; network_info?: string;
  flavor?: string; vcpus?: number; memory_mb?: number; root_gb?: number; ephemeral_gb?: number; swap_mb?: number;
  key_name?: string | null; key_data?: string | null; user_data?: string | null; system_metadata?: string;
}

/** The instance's system metadata (image facts, pending resize, shelved image...): a string map kept as JSON. */
export async function systemMetadata(db: Q, uuid: string): Promise<Record<string, string>> {
  const row = await db.selectFrom('instances').select('system_metadata').where('uuid', '=', uuid).executeTakeFirst();
  return row ? JSON.parse(row.system_metadata) as Record<string, string> : {};
}

/** The instance columns that follow from a flavor. */
export function flavorColumns(f: Flavor): Pick<InstancePatch, 'flavor' | 'vcpus' | 'memory_mb' | 'root_gb' | 'ephemeral_gb' | 'swap_mb'> {
  return { flavor: JSON.stringify(f), vcpus: f.vcpus, memory_mb: f.ram, root_gb: f.disk, ephemeral_gb: f.ephemeral, swap_mb: f.swap };
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

// ---- satellite routes ----
// SQL for the other Nova resources (routes/flavors, keypairs, quotas, hosts, server-groups).
// (Imports are hoisted; this one sits here to keep the section self-contained.)
import type { AggregateTable, KeypairTable, ServerGroupTable } from '../../db/schema/compute.ts';

export async function countFlavors(db: Q): Promise<number> {
  const r = await db.selectFrom('flavors').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function insertFlavor(db: Q, f: FlavorTable): Promise<void> {
  await db.insertInto('flavors').values(f).execute();
}

export async function flavorNameTaken(db: Q, name: string): Promise<boolean> {
  return (await db.selectFrom('flavors').select('id').where('name', '=', name).executeTakeFirst()) !== undefined;
}

export async function deleteFlavor(db: Q, id: string): Promise<boolean> {
  await db.deleteFrom('flavor_extra_specs').where('flavor_id', '=', id).execute();
  await db.deleteFrom('flavor_projects').where('flavor_id', '=', id).execute();
  const r = await db.deleteFrom('flavors').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

export async function setFlavorDescription(db: Q, id: string, description: string | null): Promise<void> {
  await db.updateTable('flavors').set({ description }).where('id', '=', id).execute();
}

export async function upsertExtraSpecs(db: Q, flavorId: string, specs: Record<string, string>): Promise<void> {
  for (const [key, value] of Object.entries(specs)) {
    await db.insertInto('flavor_extra_specs').values({ flavor_id: flavorId, key, value })
      .onConflict((oc) => oc.columns(['flavor_id', 'key']).doUpdateSet({ value })).execute();
  }
}

export async function deleteExtraSpec(db: Q, flavorId: string, key: string): Promise<boolean> {
  const r = await db.deleteFrom('flavor_extra_specs').where('flavor_id', '=', flavorId).where('key', '=', key).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

/** Grant a project a private flavor; false when the grant already existed. */
export async function addFlavorProject(db: Q, flavorId: string, projectId: string): Promise<boolean> {
  const r = await db.insertInto('flavor_projects').values({ flavor_id: flavorId, project_id: projectId })
    .onConflict((oc) => oc.columns(['flavor_id', 'project_id']).doNothing()).returning('flavor_id').execute();
  return r.length === 1;
}

export async function removeFlavorProject(db: Q, flavorId: string, projectId: string): Promise<boolean> {
  const r = await db.deleteFrom('flavor_projects').where('flavor_id', '=', flavorId).where('project_id', '=', projectId).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

export async function insertKeypair(db: Q, k: KeypairTable): Promise<void> {
  await db.insertInto('keypairs').values(k).execute();
}

export async function deleteKeypair(db: Q, userId: string, name: string): Promise<boolean> {
  const r = await db.deleteFrom('keypairs').where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

export async function countKeypairs(db: Q, userId: string): Promise<number> {
  const r = await db.selectFrom('keypairs').select(sql<number>`count(*)`.as('n')).where('user_id', '=', userId).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Quota rows of one project (or '__default__') exactly as stored, without defaults. */
export async function quotaRows(db: Q, projectId: string): Promise<Record<string, number>> {
  const rows = await db.selectFrom('quotas').selectAll().where('project_id', '=', projectId).execute();
  return Object.fromEntries(rows.map((r) => [r.resource, r.hard_limit]));
}

export async function setQuotas(db: Q, projectId: string, limits: Record<string, number>): Promise<void> {
  for (const [resource, hard_limit] of Object.entries(limits)) {
    await db.insertInto('quotas').values({ project_id: projectId, resource, hard_limit })
      .onConflict((oc) => oc.columns(['project_id', 'resource']).doUpdateSet({ hard_limit })).execute();
  }
}

export async function deleteQuotas(db: Q, projectId: string): Promise<void> {
  await db.deleteFrom('quotas').where('project_id', '=', projectId).execute();
}

export async function countServerGroups(db: Q, projectId: string): Promise<number> {
  const r = await db.selectFrom('server_groups').select(sql<number>`count(*)`.as('n')).where('project_id', '=', projectId).executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function insertServerGroup(db: Q, g: ServerGroupTable): Promise<void> {
  await db.insertInto('server_groups').values(g).execute();
}

export async function deleteServerGroup(db: Q, id: string): Promise<boolean> {
  await db.deleteFrom('server_group_members').where('group_id', '=', id).execute();
  const r = await db.deleteFrom('server_groups').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

export type HostPatch = Partial<Pick<ComputeHostTable, 'enabled' | 'disabled_reason' | 'forced_down' | 'availability_zone'>>;

export async function updateHost(db: Q, host: string, patch: HostPatch): Promise<void> {
  await db.updateTable('compute_hosts').set(patch).where('host', '=', host).execute();
}

/** Remove a compute host and its aggregate memberships (its service is deleted). */
export async function deleteHost(db: Q, host: string): Promise<void> {
  await db.deleteFrom('aggregate_hosts').where('host', '=', host).execute();
  await db.deleteFrom('compute_hosts').where('host', '=', host).execute();
}

/** Live instances on the given hosts, for hypervisor `servers` and service deletion. */
export async function instancesOnHosts(db: Q, hosts: string[]): Promise<{ uuid: string; name: string; host: string }[]> {
  if (hosts.length === 0) return [];
  const rows = await db.selectFrom('instances').select(['uuid', 'display_name', 'host']).where('host', 'in', hosts).where('deleted', '=', 0)
    .orderBy('created_at').execute();
  return rows.map((r) => ({ uuid: r.uuid, name: r.display_name, host: r.host ?? '' }));
}

export interface Aggregate {
  id: number; uuid: string; name: string; availabilityZone: string | null; metadata: Record<string, string>;
  hosts: string[]; createdAt: string; updatedAt: string | null;
}

export async function listAggregates(db: Q): Promise<Aggregate[]> {
  const rows = await db.selectFrom('aggregates').selectAll().orderBy('id').execute();
  const hosts = rows.length ? await db.selectFrom('aggregate_hosts').selectAll().orderBy('host').execute() : [];
  return rows.map((r) => ({
    id: r.id, uuid: r.uuid, name: r.name, availabilityZone: r.availability_zone, metadata: JSON.parse(r.metadata) as Record<string, string>,
    hosts: hosts.filter((h) => h.aggregate_id === r.id).map((h) => h.host), createdAt: r.created_at, updatedAt: r.updated_at,
  }));
}

export async function getAggregate(db: Q, id: number): Promise<Aggregate | undefined> {
  const r = await db.selectFrom('aggregates').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return undefined;
  const hosts = await db.selectFrom('aggregate_hosts').select('host').where('aggregate_id', '=', id).orderBy('host').execute();
  return {
    id: r.id, uuid: r.uuid, name: r.name, availabilityZone: r.availability_zone, metadata: JSON.parse(r.metadata) as Record<string, string>,
    hosts: hosts.map((h) => h.host), createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export async function insertAggregate(db: Q, a: AggregateTable): Promise<void> {
  await db.insertInto('aggregates').values(a).execute();
}

export async function updateAggregate(db: Q, id: number, patch: Partial<Pick<AggregateTable, 'name' | 'availability_zone' | 'metadata' | 'updated_at'>>): Promise<void> {
  await db.updateTable('aggregates').set(patch).where('id', '=', id).execute();
}

export async function deleteAggregate(db: Q, id: number): Promise<void> {
  await db.deleteFrom('aggregate_hosts').where('aggregate_id', '=', id).execute();
  await db.deleteFrom('aggregates').where('id', '=', id).execute();
}

export async function addAggregateHost(db: Q, id: number, host: string): Promise<void> {
  await db.insertInto('aggregate_hosts').values({ aggregate_id: id, host }).execute();
}

export async function removeAggregateHost(db: Q, id: number, host: string): Promise<boolean> {
  const r = await db.deleteFrom('aggregate_hosts').where('aggregate_id', '=', id).where('host', '=', host).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

/**
 * Recompute the availability zone of each host from the aggregates it belongs to: the
 * zone of an aggregate that names one, else `defaultZone` — so removing a host from a
 * zone's aggregate (or the zone from the aggregate) puts it back in the default zone.
 */
export async function refreshHostZones(db: Q, hosts: string[], defaultZone = 'nova'): Promise<void> {
  if (hosts.length === 0) return;
  const rows = await db.selectFrom('aggregate_hosts').innerJoin('aggregates', 'aggregates.id', 'aggregate_hosts.aggregate_id')
    .select(['aggregate_hosts.host as host', 'aggregates.availability_zone as az']).where('aggregate_hosts.host', 'in', hosts)
    .where('aggregates.availability_zone', 'is not', null).orderBy('aggregates.id').execute();
  for (const h of hosts) {
    const az = rows.find((r) => r.host === h)?.az ?? defaultZone;
    await db.updateTable('compute_hosts').set({ availability_zone: az }).where('host', '=', h).execute();
  }
}
