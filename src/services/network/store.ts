import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../../db/index.ts';
import type {
  NetworkTable, PortTable, SecurityGroupRuleTable, SecurityGroupTable, SubnetTable,
} from '../../db/schema/network.ts';
import { parseIp } from './netaddr.ts';
import type {
  AddressPair, AllocationPool, ExtraDhcpOpt, FixedIp, HostRoute, Json, NetworkRecord, PortBinding, PortRecord,
  SecurityGroupRecord, SecurityGroupRuleRecord, SubnetRecord,
} from './types.ts';

/**
 * SQL for the network service. Every function takes the Kysely handle or a transaction,
 * and loaders return whole records (related rows attached) in batches, so one list is a
 * handful of queries whatever its length. The agent-facing helpers at the end (ports by
 * host or network, allocations, security groups with their members) are what the
 * controller builds a host's desired network state from.
 */
export type Q = Db | Transaction<Database>;

const b = (v: number): boolean => Number(v) === 1;
export const n = (v: boolean): number => (v ? 1 : 0);
let last = '';
/**
 * The time stored in created_at/updated_at: ISO-8601 UTC with microseconds, strictly
 * increasing within the process, so rows made in one request keep their creation order
 * (Neutron's default listing order of subnets, rules, ... follows it).
 */
export function now(): string {
  const base = new Date().toISOString().replace(/Z$/, '000Z');
  if (base > last) { last = base; return base; }
  // Same microsecond (or the clock stepped back): one microsecond after the last one handed out.
  const micros = Date.parse(last.slice(0, 23) + 'Z') * 1000 + Number(last.slice(23, 26)) + 1;
  last = `${new Date(Math.floor(micros / 1000)).toISOString().slice(0, 23)}${String(micros % 1000).padStart(3, '0')}Z`;
  return last;
}
/** Neutron shows times to the second: '2026-01-02T03:04:05Z'. */
export const shownTime = (t: string): string => `${t.slice(0, 19)}Z`;

const parseJson = <T extends Json>(s: string, fallback: T): T => {
  try { return JSON.parse(s) as T; } catch { return fallback; }
};
/** Split an IN list: SQLite limits the bound parameters of one statement. */
function chunks<T>(xs: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
function groupBy<R, K>(rows: R[], key: (r: R) => K): Map<K, R[]> {
  const m = new Map<K, R[]>();
  for (const r of rows) {
    const k = key(r);
    const list = m.get(k);
    if (list) list.push(r); else m.set(k, [r]);
  }
  return m;
}
/** Addresses in numeric order (IPv4 before IPv6). */
export function ipOrder(a: string, b: string): number {
  const x = parseIp(a);
  const y = parseIp(b);
  if (!x || !y) return a < b ? -1 : a > b ? 1 : 0;
  if (x.version !== y.version) return x.version - y.version;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

// ---- tags ----

export async function tagsOf(db: Q, resourceType: string, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const c of chunks(ids)) {
    const rows = await db.selectFrom('network_tags').select(['resource_id', 'tag']).where('resource_type', '=', resourceType)
      .where('resource_id', 'in', c).orderBy('tag').execute();
    for (const r of rows) (out.get(r.resource_id) ?? out.set(r.resource_id, []).get(r.resource_id)!).push(r.tag);
  }
  return out;
}

export async function setTags(db: Q, resourceType: string, id: string, tags: string[]): Promise<void> {
  await db.deleteFrom('network_tags').where('resource_type', '=', resourceType).where('resource_id', '=', id).execute();
  const unique = [...new Set(tags)];
  if (unique.length) await db.insertInto('network_tags').values(unique.map((tag) => ({ resource_type: resourceType, resource_id: id, tag }))).execute();
}

export async function addTag(db: Q, resourceType: string, id: string, tag: string): Promise<boolean> {
  const r = await db.insertInto('network_tags').values({ resource_type: resourceType, resource_id: id, tag })
    .onConflict((oc) => oc.doNothing()).returning('tag').executeTakeFirst();
  return r !== undefined;
}

export async function removeTag(db: Q, resourceType: string, id: string, tag: string): Promise<boolean> {
  const r = await db.deleteFrom('network_tags').where('resource_type', '=', resourceType).where('resource_id', '=', id)
    .where('tag', '=', tag).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

// ---- standard attributes ----

export type StandardTable = 'networks' | 'subnets' | 'ports' | 'security_groups' | 'security_group_rules' | 'routers' | 'floatingips' | 'port_forwardings';

/**
 * Take the row's write lock for the rest of the transaction (a no-op update: PostgreSQL
 * locks the row, SQLite holds the database) and return its revision, or undefined when
 * there is no such row. Concurrent changes of one resource therefore serialise, and an
 * If-Match check made after this cannot be overtaken.
 */
export async function lockRevision(db: Q, table: StandardTable, id: string): Promise<number | undefined> {
  const r = await sql<{ revision_number: number }>`update ${sql.table(table)} set revision_number = revision_number where id = ${id} returning revision_number`.execute(db);
  const row = r.rows[0];
  return row ? Number(row.revision_number) : undefined;
}

/** A change happened: revision_number + 1 and updated_at now. */
export async function bump(db: Q, table: StandardTable, id: string): Promise<void> {
  await sql`update ${sql.table(table)} set revision_number = revision_number + 1, updated_at = ${now()} where id = ${id}`.execute(db);
}

// ---- networks ----

export interface NetworkScope {
  ids?: string[];
  /** Non-admin visibility: the project's own networks, shared ones and external ones. */
  visibleTo?: string;
  projectId?: string;
}

export async function loadNetworks(db: Q, scope: NetworkScope = {}): Promise<NetworkRecord[]> {
  const batches = scope.ids ? chunks(scope.ids) : [undefined];
  const rows: NetworkTable[] = [];
  for (const ids of batches) {
    if (ids && ids.length === 0) continue;
    let q = db.selectFrom('networks').selectAll();
    if (ids) q = q.where('id', 'in', ids);
    if (scope.projectId !== undefined) q = q.where('project_id', '=', scope.projectId);
    if (scope.visibleTo !== undefined) {
      const p = scope.visibleTo;
      q = q.where((eb) => eb.or([eb('project_id', '=', p), eb('shared', '=', 1), eb('router_external', '=', 1)]));
    }
    rows.push(...await q.execute());
  }
  const ids = rows.map((r) => r.id);
  const segments = new Map<string, { network_type: string; physical_network: string; segmentation_id: number }>();
  const subnets = new Map<string, string[]>();
  for (const c of chunks(ids)) {
    for (const s of await db.selectFrom('network_segments').select(['network_id', 'network_type', 'physical_network', 'segmentation_id'])
      .where('network_id', 'in', c).orderBy('segment_index').execute()) {
      if (!segments.has(s.network_id)) segments.set(s.network_id, s);
    }
    for (const s of await db.selectFrom('subnets').select(['id', 'network_id']).where('network_id', 'in', c).orderBy('created_at').orderBy('id').execute()) {
      (subnets.get(s.network_id) ?? subnets.set(s.network_id, []).get(s.network_id)!).push(s.id);
    }
  }
  const tags = await tagsOf(db, 'networks', ids);
  return rows.map((r) => {
    const seg = segments.get(r.id);
    return {
      id: r.id, project_id: r.project_id, name: r.name, status: r.status, admin_state_up: b(r.admin_state_up), shared: b(r.shared),
      router_external: b(r.router_external), is_default: b(r.is_default), mtu: Number(r.mtu), port_security_enabled: b(r.port_security_enabled),
      availability_zone_hints: parseJson<string[]>(r.availability_zone_hints, []), dns_domain: r.dns_domain, description: r.description,
      created_at: shownTime(r.created_at), updated_at: shownTime(r.updated_at), revision_number: Number(r.revision_number),
      network_type: seg?.network_type ?? 'local', physical_network: seg?.physical_network || null,
      segmentation_id: seg && seg.network_type !== 'flat' ? Number(seg.segmentation_id) : null,
      subnets: subnets.get(r.id) ?? [], tags: tags.get(r.id) ?? [],
    };
  });
}

export async function getNetwork(db: Q, id: string): Promise<NetworkRecord | undefined> {
  return (await loadNetworks(db, { ids: [id] }))[0];
}

export async function insertNetwork(db: Q, row: NetworkTable): Promise<void> {
  await db.insertInto('networks').values(row).execute();
}

export async function updateNetworkRow(db: Q, id: string, set: Partial<Omit<NetworkTable, 'id'>>): Promise<void> {
  if (Object.keys(set).length) await db.updateTable('networks').set(set).where('id', '=', id).execute();
}

/**
 * Claim a segment; false when (type, physnet, segmentation id) is taken — the unique
 * index decides, so two concurrent creates never share a VNI or a flat physnet.
 */
export async function insertSegment(db: Q, seg: { id: string; network_id: string; network_type: string; physical_network: string; segmentation_id: number; created_at: string }): Promise<boolean> {
  const r = await db.insertInto('network_segments').values({ ...seg, segment_index: 0 })
    .onConflict((oc) => oc.columns(['network_type', 'physical_network', 'segmentation_id']).doNothing()).returning('id').executeTakeFirst();
  return r !== undefined;
}

/** Segmentation ids in use for a type, ascending (the VNI allocator finds the lowest gap). */
export async function usedSegmentationIds(db: Q, type: string, from: number, to: number): Promise<number[]> {
  const rows = await db.selectFrom('network_segments').select('segmentation_id').where('network_type', '=', type)
    .where('segmentation_id', '>=', from).where('segmentation_id', '<=', to).orderBy('segmentation_id').execute();
  return rows.map((r) => Number(r.segmentation_id));
}

export async function deleteNetworkRow(db: Q, id: string): Promise<void> {
  await db.deleteFrom('network_tags').where('resource_type', '=', 'networks').where('resource_id', '=', id).execute();
  await db.deleteFrom('networks').where('id', '=', id).execute();
}

export async function countByProject(db: Q, table: 'networks' | 'subnets' | 'ports' | 'security_groups' | 'security_group_rules' | 'routers' | 'floatingips', projectId: string): Promise<number> {
  const r = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).executeTakeFirst();
  return Number(r?.n ?? 0);
}

// ---- subnets ----

export interface SubnetScope { ids?: string[]; networkIds?: string[]; visibleTo?: string }

export async function loadSubnets(db: Q, scope: SubnetScope = {}): Promise<SubnetRecord[]> {
  const rows: SubnetTable[] = [];
  const idBatches = scope.ids ? chunks(scope.ids) : [undefined];
  const netBatches = scope.networkIds ? chunks(scope.networkIds) : [undefined];
  for (const ids of idBatches) {
    for (const nets of netBatches) {
      if ((ids && !ids.length) || (nets && !nets.length)) continue;
      let q = db.selectFrom('subnets').selectAll();
      if (ids) q = q.where('id', 'in', ids);
      if (nets) q = q.where('network_id', 'in', nets);
      if (scope.visibleTo !== undefined) {
        const p = scope.visibleTo;
        q = q.where((eb) => eb.or([
          eb('project_id', '=', p),
          // an external network is visible to all, its subnets only when it is shared too (as Neutron's)
          eb('network_id', 'in', eb.selectFrom('networks').select('id').where((e2) => e2.or([e2('project_id', '=', p), e2('shared', '=', 1)]))),
        ]));
      }
      rows.push(...await q.orderBy('created_at').orderBy('id').execute());
    }
  }
  const ids = rows.map((r) => r.id);
  const pools = new Map<string, AllocationPool[]>();
  const dns = new Map<string, string[]>();
  const routes = new Map<string, HostRoute[]>();
  for (const c of chunks(ids)) {
    const p = await db.selectFrom('subnet_allocation_pools').selectAll().where('subnet_id', 'in', c).execute();
    for (const [k, v] of groupBy(p, (r) => r.subnet_id)) pools.set(k, v.sort((x, y) => ipOrder(x.first_ip, y.first_ip)).map((r) => ({ start: r.first_ip, end: r.last_ip })));
    const d = await db.selectFrom('subnet_dns_nameservers').selectAll().where('subnet_id', 'in', c).orderBy('position').execute();
    for (const [k, v] of groupBy(d, (r) => r.subnet_id)) dns.set(k, v.map((r) => r.address));
    const h = await db.selectFrom('subnet_routes').selectAll().where('subnet_id', 'in', c).execute();
    for (const [k, v] of groupBy(h, (r) => r.subnet_id)) routes.set(k, v.map((r) => ({ destination: r.destination, nexthop: r.nexthop })));
  }
  const tags = await tagsOf(db, 'subnets', ids);
  return rows.map((r) => ({
    id: r.id, project_id: r.project_id, network_id: r.network_id, name: r.name, ip_version: Number(r.ip_version) === 6 ? 6 : 4,
    cidr: r.cidr, gateway_ip: r.gateway_ip, enable_dhcp: b(r.enable_dhcp), ipv6_ra_mode: r.ipv6_ra_mode, ipv6_address_mode: r.ipv6_address_mode,
    subnetpool_id: r.subnetpool_id, description: r.description, created_at: shownTime(r.created_at), updated_at: shownTime(r.updated_at),
    revision_number: Number(r.revision_number), allocation_pools: pools.get(r.id) ?? [], dns_nameservers: dns.get(r.id) ?? [],
    host_routes: routes.get(r.id) ?? [], tags: tags.get(r.id) ?? [],
  }));
}

export async function getSubnet(db: Q, id: string): Promise<SubnetRecord | undefined> {
  return (await loadSubnets(db, { ids: [id] }))[0];
}

export async function insertSubnet(db: Q, row: SubnetTable): Promise<void> {
  await db.insertInto('subnets').values(row).execute();
}

export async function updateSubnetRow(db: Q, id: string, set: Partial<Omit<SubnetTable, 'id'>>): Promise<void> {
  if (Object.keys(set).length) await db.updateTable('subnets').set(set).where('id', '=', id).execute();
}

export async function setPools(db: Q, subnetId: string, pools: AllocationPool[]): Promise<void> {
  await db.deleteFrom('subnet_allocation_pools').where('subnet_id', '=', subnetId).execute();
  if (pools.length) await db.insertInto('subnet_allocation_pools').values(pools.map((p) => ({ subnet_id: subnetId, first_ip: p.start, last_ip: p.end }))).execute();
}

export async function setNameservers(db: Q, subnetId: string, addresses: string[]): Promise<void> {
  await db.deleteFrom('subnet_dns_nameservers').where('subnet_id', '=', subnetId).execute();
  if (addresses.length) await db.insertInto('subnet_dns_nameservers').values(addresses.map((address, position) => ({ subnet_id: subnetId, address, position }))).execute();
}

export async function setHostRoutes(db: Q, subnetId: string, routes: HostRoute[]): Promise<void> {
  await db.deleteFrom('subnet_routes').where('subnet_id', '=', subnetId).execute();
  if (routes.length) await db.insertInto('subnet_routes').values(routes.map((r) => ({ subnet_id: subnetId, destination: r.destination, nexthop: r.nexthop }))).execute();
}

export async function deleteSubnetRow(db: Q, id: string): Promise<void> {
  await db.deleteFrom('network_tags').where('resource_type', '=', 'subnets').where('resource_id', '=', id).execute();
  await db.deleteFrom('subnets').where('id', '=', id).execute();
}

// ---- IP allocations ----

export interface Allocation { port_id: string; ip_address: string; subnet_id: string; network_id: string }

/**
 * Claim an address; false when the network already has it (the primary key on
 * (network_id, ip_address) decides, so concurrent claims of one address cannot both win).
 */
export async function claimIp(db: Q, a: Allocation): Promise<boolean> {
  const r = await db.insertInto('ip_allocations').values(a)
    .onConflict((oc) => oc.columns(['network_id', 'ip_address']).doNothing()).returning('ip_address').executeTakeFirst();
  return r !== undefined;
}

export async function releaseIps(db: Q, portId: string, ips?: string[]): Promise<void> {
  let q = db.deleteFrom('ip_allocations').where('port_id', '=', portId);
  if (ips) {
    if (!ips.length) return;
    q = q.where('ip_address', 'in', ips);
  }
  await q.execute();
}

/** The addresses taken in a subnet, as text (the allocator sorts them numerically). */
export async function allocatedIps(db: Q, subnetId: string): Promise<string[]> {
  return (await db.selectFrom('ip_allocations').select('ip_address').where('subnet_id', '=', subnetId).execute()).map((r) => r.ip_address);
}

// ---- ports ----

export interface PortScope {
  ids?: string[];
  networkIds?: string[];
  deviceIds?: string[];
  /** Non-admin visibility: the project's ports and every port on the project's networks. */
  visibleTo?: string;
}

export async function loadPorts(db: Q, scope: PortScope = {}): Promise<PortRecord[]> {
  const rows: PortTable[] = [];
  if ([scope.ids, scope.networkIds, scope.deviceIds].some((l) => l !== undefined && l.length === 0)) return [];
  const key = scope.ids ? 'id' : scope.networkIds ? 'network_id' : scope.deviceIds ? 'device_id' : undefined;
  const primary = scope.ids ?? scope.networkIds ?? scope.deviceIds;
  for (const batch of primary ? chunks(primary) : [undefined]) {
    let q = db.selectFrom('ports').selectAll();
    if (key && batch) q = q.where(key, 'in', batch);
    if (scope.networkIds && key !== 'network_id') q = q.where('network_id', 'in', scope.networkIds);
    if (scope.deviceIds && key !== 'device_id') q = q.where('device_id', 'in', scope.deviceIds);
    if (scope.visibleTo !== undefined) {
      const p = scope.visibleTo;
      q = q.where((eb) => eb.or([eb('project_id', '=', p), eb('network_id', 'in', eb.selectFrom('networks').select('id').where('project_id', '=', p))]));
    }
    rows.push(...await q.execute());
  }
  const ids = rows.map((r) => r.id);
  const ips = new Map<string, FixedIp[]>();
  const sgs = new Map<string, string[]>();
  const pairs = new Map<string, AddressPair[]>();
  const opts = new Map<string, ExtraDhcpOpt[]>();
  const bindings = new Map<string, PortBinding>();
  for (const c of chunks(ids)) {
    const a = await db.selectFrom('ip_allocations').select(['port_id', 'ip_address', 'subnet_id']).where('port_id', 'in', c).execute();
    for (const [k, v] of groupBy(a, (r) => r.port_id)) ips.set(k, v.sort((x, y) => ipOrder(x.ip_address, y.ip_address)).map((r) => ({ subnet_id: r.subnet_id, ip_address: r.ip_address })));
    const s = await db.selectFrom('port_security_group_bindings').selectAll().where('port_id', 'in', c).orderBy('security_group_id').execute();
    for (const [k, v] of groupBy(s, (r) => r.port_id)) sgs.set(k, v.map((r) => r.security_group_id));
    const p = await db.selectFrom('port_allowed_address_pairs').selectAll().where('port_id', 'in', c).orderBy('ip_address').orderBy('mac_address').execute();
    for (const [k, v] of groupBy(p, (r) => r.port_id)) pairs.set(k, v.map((r) => ({ ip_address: r.ip_address, mac_address: r.mac_address })));
    const o = await db.selectFrom('port_extra_dhcp_opts').selectAll().where('port_id', 'in', c).orderBy('opt_name').execute();
    for (const [k, v] of groupBy(o, (r) => r.port_id)) opts.set(k, v.map((r) => ({ opt_name: r.opt_name, opt_value: r.opt_value, ip_version: Number(r.ip_version) })));
    for (const r of await db.selectFrom('port_bindings').selectAll().where('port_id', 'in', c).execute()) {
      bindings.set(r.port_id, {
        host: r.host, vif_type: r.vif_type, vnic_type: r.vnic_type,
        profile: parseJson<{ [k: string]: Json }>(r.profile, {}), vif_details: parseJson<{ [k: string]: Json }>(r.vif_details, {}),
      });
    }
  }
  const tags = await tagsOf(db, 'ports', ids);
  return rows.map((r) => ({
    id: r.id, project_id: r.project_id, network_id: r.network_id, name: r.name, mac_address: r.mac_address,
    admin_state_up: b(r.admin_state_up), status: r.status, device_id: r.device_id, device_owner: r.device_owner,
    port_security_enabled: b(r.port_security_enabled), dns_name: r.dns_name, description: r.description,
    created_at: shownTime(r.created_at), updated_at: shownTime(r.updated_at), revision_number: Number(r.revision_number),
    fixed_ips: ips.get(r.id) ?? [], security_groups: sgs.get(r.id) ?? [], allowed_address_pairs: pairs.get(r.id) ?? [],
    extra_dhcp_opts: opts.get(r.id) ?? [],
    binding: bindings.get(r.id) ?? { host: '', vif_type: 'unbound', vnic_type: 'normal', profile: {}, vif_details: {} },
    tags: tags.get(r.id) ?? [],
  }));
}

export async function getPort(db: Q, id: string): Promise<PortRecord | undefined> {
  return (await loadPorts(db, { ids: [id] }))[0];
}

/** Insert a port row; false when its MAC address is already used on the network. */
export async function insertPort(db: Q, row: PortTable): Promise<boolean> {
  const r = await db.insertInto('ports').values(row)
    .onConflict((oc) => oc.columns(['network_id', 'mac_address']).doNothing()).returning('id').executeTakeFirst();
  return r !== undefined;
}

/** Update a port row; false when a new MAC address is already used on the network. */
export async function updatePortRow(db: Q, id: string, set: Partial<Omit<PortTable, 'id'>>): Promise<boolean> {
  if (!Object.keys(set).length) return true;
  if (set.mac_address !== undefined) {
    const row = await db.selectFrom('ports').select('network_id').where('id', '=', id).executeTakeFirstOrThrow();
    const clash = await db.selectFrom('ports').select('id').where('network_id', '=', row.network_id).where('mac_address', '=', set.mac_address)
      .where('id', '!=', id).executeTakeFirst();
    if (clash) return false;
  }
  await db.updateTable('ports').set(set).where('id', '=', id).execute();
  return true;
}

export async function macInUse(db: Q, networkId: string, mac: string): Promise<boolean> {
  return (await db.selectFrom('ports').select('id').where('network_id', '=', networkId).where('mac_address', '=', mac).executeTakeFirst()) !== undefined;
}

export async function setPortSecurityGroups(db: Q, portId: string, groups: string[]): Promise<void> {
  await db.deleteFrom('port_security_group_bindings').where('port_id', '=', portId).execute();
  const unique = [...new Set(groups)];
  if (unique.length) await db.insertInto('port_security_group_bindings').values(unique.map((g) => ({ port_id: portId, security_group_id: g }))).execute();
}

export async function setAddressPairs(db: Q, portId: string, pairs: AddressPair[]): Promise<void> {
  await db.deleteFrom('port_allowed_address_pairs').where('port_id', '=', portId).execute();
  if (pairs.length) await db.insertInto('port_allowed_address_pairs').values(pairs.map((p) => ({ port_id: portId, ...p }))).execute();
}

export async function setExtraDhcpOpts(db: Q, portId: string, opts: ExtraDhcpOpt[]): Promise<void> {
  await db.deleteFrom('port_extra_dhcp_opts').where('port_id', '=', portId).execute();
  if (opts.length) await db.insertInto('port_extra_dhcp_opts').values(opts.map((o) => ({ port_id: portId, ...o }))).execute();
}

export async function setBinding(db: Q, portId: string, bnd: PortBinding): Promise<void> {
  const row = { host: bnd.host, vif_type: bnd.vif_type, vnic_type: bnd.vnic_type, profile: JSON.stringify(bnd.profile), vif_details: JSON.stringify(bnd.vif_details) };
  await db.insertInto('port_bindings').values({ port_id: portId, ...row }).onConflict((oc) => oc.column('port_id').doUpdateSet(row)).execute();
}

export async function deletePortRow(db: Q, id: string): Promise<void> {
  await db.deleteFrom('network_tags').where('resource_type', '=', 'ports').where('resource_id', '=', id).execute();
  await db.deleteFrom('ports').where('id', '=', id).execute();
}

/** Ports on a network with their owners (network delete decides which block it). */
export async function portOwnersOnNetwork(db: Q, networkId: string): Promise<{ id: string; device_owner: string }[]> {
  return db.selectFrom('ports').select(['id', 'device_owner']).where('network_id', '=', networkId).orderBy('id').execute();
}

// ---- security groups ----

export interface GroupScope { ids?: string[]; projectId?: string }

export function ruleFrom(r: SecurityGroupRuleTable): SecurityGroupRuleRecord {
  return {
    id: r.id, project_id: r.project_id, security_group_id: r.security_group_id, remote_group_id: r.remote_group_id,
    direction: r.direction === 'egress' ? 'egress' : 'ingress', ethertype: r.ethertype === 'IPv6' ? 'IPv6' : 'IPv4',
    protocol: r.protocol, port_range_min: r.port_range_min === null ? null : Number(r.port_range_min),
    port_range_max: r.port_range_max === null ? null : Number(r.port_range_max), remote_ip_prefix: r.remote_ip_prefix,
    description: r.description, created_at: shownTime(r.created_at), updated_at: shownTime(r.updated_at), revision_number: Number(r.revision_number),
  };
}

export async function loadSecurityGroups(db: Q, scope: GroupScope = {}): Promise<SecurityGroupRecord[]> {
  const rows: SecurityGroupTable[] = [];
  for (const ids of scope.ids ? chunks(scope.ids) : [undefined]) {
    if (ids && !ids.length) continue;
    let q = db.selectFrom('security_groups').selectAll();
    if (ids) q = q.where('id', 'in', ids);
    if (scope.projectId !== undefined) q = q.where('project_id', '=', scope.projectId);
    rows.push(...await q.execute());
  }
  const ids = rows.map((r) => r.id);
  const rules = new Map<string, SecurityGroupRuleRecord[]>();
  for (const c of chunks(ids)) {
    const rs = await db.selectFrom('security_group_rules').selectAll().where('security_group_id', 'in', c).orderBy('created_at').orderBy('id').execute();
    for (const [k, v] of groupBy(rs, (r) => r.security_group_id)) rules.set(k, v.map(ruleFrom));
  }
  const tags = await tagsOf(db, 'security-groups', ids);
  return rows.map((r) => ({
    id: r.id, project_id: r.project_id, name: r.name, stateful: b(r.stateful), description: r.description, created_at: shownTime(r.created_at),
    updated_at: shownTime(r.updated_at), revision_number: Number(r.revision_number), rules: rules.get(r.id) ?? [], tags: tags.get(r.id) ?? [],
  }));
}

export async function getSecurityGroup(db: Q, id: string): Promise<SecurityGroupRecord | undefined> {
  return (await loadSecurityGroups(db, { ids: [id] }))[0];
}

export async function insertSecurityGroup(db: Q, row: SecurityGroupTable): Promise<void> {
  await db.insertInto('security_groups').values(row).execute();
}

export async function updateSecurityGroupRow(db: Q, id: string, set: Partial<Omit<SecurityGroupTable, 'id'>>): Promise<void> {
  if (Object.keys(set).length) await db.updateTable('security_groups').set(set).where('id', '=', id).execute();
}

export async function deleteSecurityGroupRow(db: Q, id: string): Promise<void> {
  await db.deleteFrom('network_tags').where('resource_type', '=', 'security-groups').where('resource_id', '=', id).execute();
  await db.deleteFrom('security_groups').where('id', '=', id).execute();
}

export async function defaultGroupOf(db: Q, projectId: string): Promise<string | undefined> {
  return (await db.selectFrom('default_security_groups').select('security_group_id').where('project_id', '=', projectId).executeTakeFirst())?.security_group_id;
}

/** Mark a group as the project's default; false when another one already is (the primary key decides). */
export async function claimDefaultGroup(db: Q, projectId: string, groupId: string): Promise<boolean> {
  const r = await db.insertInto('default_security_groups').values({ project_id: projectId, security_group_id: groupId })
    .onConflict((oc) => oc.column('project_id').doNothing()).returning('project_id').executeTakeFirst();
  return r !== undefined;
}

export async function isDefaultGroup(db: Q, groupId: string): Promise<boolean> {
  return (await db.selectFrom('default_security_groups').select('project_id').where('security_group_id', '=', groupId).executeTakeFirst()) !== undefined;
}

export async function portsUsingGroup(db: Q, groupId: string): Promise<string[]> {
  return (await db.selectFrom('port_security_group_bindings').select('port_id').where('security_group_id', '=', groupId).execute()).map((r) => r.port_id);
}

export interface RuleScope { ids?: string[]; groupIds?: string[]; visibleTo?: string }

export async function loadRules(db: Q, scope: RuleScope = {}): Promise<SecurityGroupRuleRecord[]> {
  const out: SecurityGroupRuleRecord[] = [];
  const batches = scope.ids ? chunks(scope.ids) : scope.groupIds ? chunks(scope.groupIds) : [undefined];
  for (const batch of batches) {
    if (batch && !batch.length) continue;
    let q = db.selectFrom('security_group_rules').selectAll();
    if (scope.ids) q = q.where('id', 'in', batch!);
    else if (scope.groupIds) q = q.where('security_group_id', 'in', batch!);
    if (scope.visibleTo !== undefined) {
      const p = scope.visibleTo;
      q = q.where((eb) => eb.or([eb('project_id', '=', p), eb('security_group_id', 'in', eb.selectFrom('security_groups').select('id').where('project_id', '=', p))]));
    }
    out.push(...(await q.orderBy('created_at').orderBy('id').execute()).map(ruleFrom));
  }
  return out;
}

export async function insertRule(db: Q, row: SecurityGroupRuleTable): Promise<void> {
  await db.insertInto('security_group_rules').values(row).execute();
}

export async function deleteRuleRow(db: Q, id: string): Promise<void> {
  await db.deleteFrom('security_group_rules').where('id', '=', id).execute();
}

/** Project of each group (rules inherit their group's project for policy). */
export async function groupProjects(db: Q, ids: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const c of chunks([...new Set(ids)])) {
    for (const r of await db.selectFrom('security_groups').select(['id', 'project_id']).where('id', 'in', c).execute()) out.set(r.id, r.project_id);
  }
  return out;
}

// ---- quotas ----

export async function quotaOverrides(db: Q, projectId?: string): Promise<{ project_id: string; resource: string; hard_limit: number }[]> {
  let q = db.selectFrom('network_quotas').selectAll();
  if (projectId !== undefined) q = q.where('project_id', '=', projectId);
  return (await q.orderBy('project_id').execute()).map((r) => ({ ...r, hard_limit: Number(r.hard_limit) }));
}

export async function setQuota(db: Q, projectId: string, resource: string, limit: number): Promise<void> {
  await db.insertInto('network_quotas').values({ project_id: projectId, resource, hard_limit: limit })
    .onConflict((oc) => oc.columns(['project_id', 'resource']).doUpdateSet({ hard_limit: limit })).execute();
}

export async function clearQuotas(db: Q, projectId: string): Promise<number> {
  const r = await db.deleteFrom('network_quotas').where('project_id', '=', projectId).executeTakeFirst();
  return Number(r.numDeletedRows);
}
