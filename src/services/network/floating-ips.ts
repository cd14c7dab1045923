import type { AuthContext } from '../../api/context.ts';
import { checkDnsDomain, checkDnsName, checkQuota, checkRevision, inTransaction, newUuid, notify, ownerOf, scopeOf } from './common.ts';
import { err, NeutronError } from './errors.ts';
import { formatIp, parseIp } from './netaddr.ts';
import { visibleNetwork } from './networks.ts';
import { allowed, authorize, isAdmin } from './policy.ts';
import { visiblePort } from './ports.ts';
import { badRequest, createServicePort } from './routers.ts';
import * as store from './store.ts';
import { DEVICE_OWNER_FLOATINGIP, DEVICE_OWNER_ROUTER_GW, DEVICE_OWNER_ROUTER_INTF, type NetworkDeps, type PortRecord } from './types.ts';

/**
 * Neutron's floating IPs (the `router` extension's floatingips, with `fip-port-details`
 * and dns-integration's dns_name/dns_domain). Each floating IP holds its address through
 * a port on the external network (device_owner network:floatingip, device_id the
 * floating IP, project '' as Neutron's), so IPAM never hands the address out twice.
 * Associated with a port's fixed IPv4 address, it gets the router that connects that
 * port's subnet to the floating IP's external network (an interface on the subnet, the
 * gateway on the network) — agent-state.ts NATs floating IPs whose router_id,
 * fixed_ip_address and fixed_port_id are set, on that router.
 */

export type PortDetails = {
  name: string; network_id: string; mac_address: string; admin_state_up: boolean; status: string; device_id: string; device_owner: string;
};
export type FloatingIpView = {
  id: string; project_id: string; tenant_id: string; floating_network_id: string; floating_ip_address: string;
  fixed_ip_address: string | null; port_id: string | null; router_id: string | null; status: string; description: string;
  dns_name: string; dns_domain: string; port_details: PortDetails | null; tags: string[]; created_at: string; updated_at: string;
  revision_number: number;
};

export interface FloatingIpRecord {
  id: string; project_id: string; floating_network_id: string; floating_port_id: string; floating_ip_address: string;
  fixed_port_id: string | null; fixed_ip_address: string | null; router_id: string | null; last_known_router_id: string | null;
  status: string; dns_name: string; dns_domain: string; description: string; created_at: string; updated_at: string;
  revision_number: number; tags: string[];
}

export interface FloatingIpInput {
  floating_network_id?: string; floating_ip_address?: string; subnet_id?: string;
  /** undefined: not given; null: disassociate. */
  port_id?: string | null; fixed_ip_address?: string | null;
  description?: string; dns_name?: string; dns_domain?: string; project?: string; tags?: string[];
}

export const fiperr = {
  notFound: (id: string) => new NeutronError(404, `Floating IP ${id} could not be found`, 'FloatingIPNotFound'),
  gatewayNotFound: (netId: string, subnetId: string, portId: string) => new NeutronError(404,
    `External network ${netId} is not reachable from subnet ${subnetId}.  Therefore, cannot associate Port ${portId} with a Floating IP.`,
    'ExternalGatewayForFloatingIPNotFound'),
  alreadyAssociated: (fip: { id: string; floating_ip_address: string; floating_network_id: string }, portId: string, fixedIp: string) => new NeutronError(409,
    `Cannot associate floating IP ${fip.floating_ip_address} (${fip.id}) with port ${portId} using fixed IP ${fixedIp}, as that fixed IP already has a floating IP on external network ${fip.floating_network_id}.`,
    'FloatingIPPortAlreadyAssociated'),
  exhausted: (netId: string) => new NeutronError(400, `Unable to find any IP address on external network ${netId}.`, 'ExternalIpAddressExhausted'),
};

const isUniqueViolation = (e: unknown): boolean => {
  const code = (e as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
};

const isForeignKeyViolation = (e: unknown): boolean => {
  const code = (e as { code?: unknown }).code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
};

// ---- storage ----

export async function loadFloatingIps(db: store.Q, scope: { ids?: string[]; projectId?: string; fixedPortIds?: string[] } = {}): Promise<FloatingIpRecord[]> {
  if ((scope.ids && !scope.ids.length) || (scope.fixedPortIds && !scope.fixedPortIds.length)) return [];
  let q = db.selectFrom('floatingips').selectAll();
  if (scope.ids) q = q.where('id', 'in', scope.ids);
  if (scope.projectId !== undefined) q = q.where('project_id', '=', scope.projectId);
  if (scope.fixedPortIds) q = q.where('fixed_port_id', 'in', scope.fixedPortIds);
  const rows = await q.execute();
  const tags = await store.tagsOf(db, 'floatingips', rows.map((r) => r.id));
  return rows.map((r) => ({
    ...r, created_at: store.shownTime(r.created_at), updated_at: store.shownTime(r.updated_at), revision_number: Number(r.revision_number),
    tags: tags.get(r.id) ?? [],
  }));
}

export async function getFloatingIp(db: store.Q, id: string): Promise<FloatingIpRecord | undefined> {
  return (await loadFloatingIps(db, { ids: [id] }))[0];
}

export function floatingIpView(f: FloatingIpRecord, port: PortRecord | undefined): FloatingIpView {
  return {
    id: f.id, project_id: f.project_id, tenant_id: f.project_id, floating_network_id: f.floating_network_id,
    floating_ip_address: f.floating_ip_address, fixed_ip_address: f.fixed_ip_address, port_id: f.fixed_port_id, router_id: f.router_id,
    status: f.status, description: f.description, dns_name: f.dns_name, dns_domain: f.dns_domain,
    port_details: port ? {
      name: port.name, network_id: port.network_id, mac_address: port.mac_address, admin_state_up: port.admin_state_up,
      status: port.status, device_id: port.device_id, device_owner: port.device_owner,
    } : null,
    tags: f.tags, created_at: f.created_at, updated_at: f.updated_at, revision_number: f.revision_number,
  };
}

async function views(db: store.Q, fips: FloatingIpRecord[]): Promise<FloatingIpView[]> {
  const ports = await store.loadPorts(db, { ids: [...new Set(fips.map((f) => f.fixed_port_id).filter((x): x is string => x !== null))] });
  return fips.map((f) => floatingIpView(f, f.fixed_port_id ? ports.find((p) => p.id === f.fixed_port_id) : undefined));
}

/** A floating IP the caller may see, or 404 FloatingIPNotFound. */
export async function visibleFloatingIp(db: store.Q, auth: AuthContext, id: string): Promise<FloatingIpRecord> {
  const f = await getFloatingIp(db, id);
  if (!f || !allowed(auth, 'get_floatingip', { project_id: f.project_id })) throw fiperr.notFound(id);
  return f;
}

// ---- association ----

/**
 * Neutron's get_router_for_floatingip: a router with an interface on the subnet and its
 * gateway on the external network; the one whose interface is the subnet's gateway_ip
 * first, else any (the lowest id, for determinism).
 */
async function routerFor(db: store.Q, port: PortRecord, subnetId: string, externalNetworkId: string): Promise<string | undefined> {
  const rows = await db.selectFrom('router_ports as rp')
    .innerJoin('ports as p', 'p.id', 'rp.port_id')
    .innerJoin('ip_allocations as a', 'a.port_id', 'p.id')
    .innerJoin('routers as r', 'r.id', 'rp.router_id')
    .innerJoin('ports as gw', 'gw.id', 'r.gw_port_id')
    .select(['rp.router_id as router_id', 'a.ip_address as ip'])
    .where('p.network_id', '=', port.network_id).where('rp.port_type', '=', DEVICE_OWNER_ROUTER_INTF).where('a.subnet_id', '=', subnetId)
    .where('gw.network_id', '=', externalNetworkId).where('gw.device_owner', '=', DEVICE_OWNER_ROUTER_GW)
    .orderBy('rp.router_id').execute();
  if (!rows.length) return undefined;
  const gateway = (await store.getSubnet(db, subnetId))?.gateway_ip;
  return (rows.find((r) => r.ip === gateway) ?? rows[0]!).router_id;
}

interface Association { portId: string; fixedIp: string; routerId: string }

/**
 * Check and resolve an association (Neutron's _internal_fip_assoc_data and
 * _get_router_for_floatingip): the port visible to the caller and (unless admin) of the
 * floating IP's project, an IPv4 fixed address on it, a router connecting it to the
 * external network (its row locked for the rest of the transaction, so an interface or
 * gateway cannot go away under the association), the fixed IP not already NATed by
 * another floating IP of that network.
 */
async function resolveAssociation(db: store.Q, auth: AuthContext, fip: { id: string; project_id: string; floating_network_id: string; floating_ip_address: string },
  portId: string, fixedIp: string | undefined): Promise<Association> {
  const { port } = await visiblePort(db, auth, portId);
  if (port.project_id !== fip.project_id && !isAdmin(auth)) {
    throw badRequest('floatingip', `Cannot process floating IP association with Port ${portId}, since that port is owned by a different tenant`);
  }
  let chosen: { subnet_id: string; ip_address: string } | undefined;
  if (fixedIp !== undefined) {
    const ip = parseIp(fixedIp)!;
    if (ip.version !== 4) throw badRequest('floatingip', `Cannot process floating IP association with ${fixedIp}, since that is not an IPv4 address`);
    chosen = port.fixed_ips.find((f) => f.ip_address === formatIp(4, ip.value));
    if (!chosen) throw badRequest('floatingip', `Port ${port.id} does not have fixed ip ${fixedIp}`);
  } else {
    const v4 = port.fixed_ips.filter((f) => parseIp(f.ip_address)?.version === 4);
    if (v4.length === 0) throw badRequest('floatingip', `Cannot add floating IP to port ${port.id} that has no fixed IPv4 addresses`);
    if (v4.length > 1) {
      throw badRequest('floatingip', `Port ${port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP`);
    }
    chosen = v4[0]!;
  }
  const found = await routerFor(db, port, chosen.subnet_id, fip.floating_network_id);
  if (found === undefined) throw fiperr.gatewayNotFound(fip.floating_network_id, chosen.subnet_id, port.id);
  // Serialise with interface/gateway changes of that router, then look again under the lock.
  await store.lockRevision(db, 'routers', found);
  const routerId = await routerFor(db, port, chosen.subnet_id, fip.floating_network_id);
  if (routerId === undefined) throw fiperr.gatewayNotFound(fip.floating_network_id, chosen.subnet_id, port.id);
  const other = await db.selectFrom('floatingips').select('id').where('floating_network_id', '=', fip.floating_network_id)
    .where('fixed_port_id', '=', port.id).where('fixed_ip_address', '=', chosen.ip_address).where('id', '!=', fip.id).executeTakeFirst();
  if (other) throw fiperr.alreadyAssociated(fip, port.id, chosen.ip_address);
  return { portId: port.id, fixedIp: chosen.ip_address, routerId };
}

function checkAddress(attr: string, v: string | null | undefined): void {
  if (v !== undefined && v !== null && !parseIp(v)) throw err.badAttr(attr, `'${v}' is not a valid IP address`);
}

// ---- CRUD ----

export async function createFloatingIps(deps: NetworkDeps, auth: AuthContext, inputs: FloatingIpInput[]): Promise<FloatingIpView[]> {
  const plans: { input: FloatingIpInput; project: string; networkId: string; dnsName: string; dnsDomain: string }[] = [];
  for (const input of inputs) {
    const project = ownerOf(auth, input.project);
    authorize(auth, 'create_floatingip', { project_id: project });
    if (input.floating_ip_address !== undefined) authorize(auth, 'create_floatingip:floating_ip_address', { project_id: project });
    checkAddress('floating_ip_address', input.floating_ip_address);
    checkAddress('fixed_ip_address', input.fixed_ip_address);
    if (input.floating_network_id === undefined) throw err.badRequest(`Failed to parse request. Required attribute 'floating_network_id' not specified`);
    const net = await visibleNetwork(deps.db, auth, input.floating_network_id);
    if (!net.router_external) throw badRequest('floatingip', `Network ${net.id} is not a valid external network`);
    if (!(await store.loadSubnets(deps.db, { networkIds: [net.id] })).some((s) => s.ip_version === 4)) {
      throw badRequest('floatingip', `Network ${net.id} does not contain any IPv4 subnet`);
    }
    if (input.fixed_ip_address && !input.port_id) throw badRequest('floatingip', 'fixed_ip_address cannot be specified without a port_id');
    plans.push({ input, project, networkId: net.id, dnsName: checkDnsName('dns_name', input.dns_name ?? ''), dnsDomain: checkDnsDomain(input.dns_domain ?? '') });
  }
  let ids: string[];
  try {
    ids = await inTransaction(deps, async (trx) => {
      const out: string[] = [];
      for (const p of plans) {
        await checkQuota(deps, trx, p.project, 'floatingip');
        const net = (await store.getNetwork(trx, p.networkId))!;
        const id = newUuid();
        const want: { subnet_id?: string; ip_address?: string } = {};
        if (p.input.subnet_id !== undefined) want.subnet_id = p.input.subnet_id;
        if (p.input.floating_ip_address !== undefined) want.ip_address = p.input.floating_ip_address;
        const port = await createServicePort(deps, trx, {
          network: net, project: '', deviceId: id, owner: DEVICE_OWNER_FLOATINGIP, status: 'N/A',
          fixedIps: Object.keys(want).length ? [want] : undefined, subnets: (s) => s.ip_version === 4,
        });
        const address = port.fixedIps.find((f) => parseIp(f.ip_address)?.version === 4)?.ip_address;
        if (address === undefined) throw fiperr.exhausted(net.id);
        const fip = { id, project_id: p.project, floating_network_id: net.id, floating_ip_address: address };
        const assoc = p.input.port_id ? await resolveAssociation(trx, auth, fip, p.input.port_id, p.input.fixed_ip_address ?? undefined) : undefined;
        const at = store.now();
        await trx.insertInto('floatingips').values({
          ...fip, floating_port_id: port.id, fixed_port_id: assoc?.portId ?? null, fixed_ip_address: assoc?.fixedIp ?? null,
          router_id: assoc?.routerId ?? null, last_known_router_id: null, status: assoc ? 'ACTIVE' : 'DOWN', dns_name: p.dnsName,
          dns_domain: p.dnsDomain, description: p.input.description ?? '', created_at: at, updated_at: at, revision_number: 1,
        }).execute();
        if (p.input.tags?.length) await store.setTags(trx, 'floatingips', id, p.input.tags);
        out.push(id);
      }
      return out;
    });
  } catch (e) {
    // Two requests racing to NAT one fixed IP: the unique index lets one win.
    if (isUniqueViolation(e)) throw new NeutronError(409, 'The fixed IP already has a floating IP on this external network.', 'FloatingIPPortAlreadyAssociated');
    throw e;
  }
  notify(deps, 'floatingip');
  const fips = await loadFloatingIps(deps.db, { ids });
  const vs = await views(deps.db, fips);
  return ids.map((id) => vs.find((v) => v.id === id)!);
}

export async function listFloatingIps(deps: NetworkDeps, auth: AuthContext, narrow: { ids?: string[]; fixedPortIds?: string[] } = {}): Promise<FloatingIpView[]> {
  const scope = scopeOf(auth);
  const fips = await loadFloatingIps(deps.db, { ...narrow, ...(scope === undefined ? {} : { projectId: scope }) });
  return views(deps.db, fips.filter((f) => allowed(auth, 'get_floatingip', { project_id: f.project_id })));
}

export async function showFloatingIp(deps: NetworkDeps, auth: AuthContext, id: string): Promise<FloatingIpView> {
  return (await views(deps.db, [await visibleFloatingIp(deps.db, auth, id)]))[0]!;
}

/**
 * Associate (port_id, optionally fixed_ip_address), move to another port, or
 * disassociate (port_id null); description. Neutron's rule: fixed_ip_address only with
 * a port_id in the same request.
 */
export async function updateFloatingIp(deps: NetworkDeps, auth: AuthContext, id: string, input: FloatingIpInput, expected: number | undefined): Promise<FloatingIpView> {
  const f0 = await visibleFloatingIp(deps.db, auth, id);
  authorize(auth, 'update_floatingip', { project_id: f0.project_id });
  checkAddress('fixed_ip_address', input.fixed_ip_address);
  if (input.fixed_ip_address && !input.port_id) throw badRequest('floatingip', 'fixed_ip_address cannot be specified without a port_id');
  try {
    await inTransaction(deps, async (trx) => {
      const rev = await store.lockRevision(trx, 'floatingips', id);
      if (rev === undefined) throw fiperr.notFound(id);
      checkRevision(rev, expected);
      const f = (await getFloatingIp(trx, id))!;
      const set: {
        fixed_port_id?: string | null; fixed_ip_address?: string | null; router_id?: string | null; last_known_router_id?: string | null;
        status?: string; description?: string;
      } = {};
      if (input.port_id === null && f.fixed_port_id !== null) {
        Object.assign(set, { fixed_port_id: null, fixed_ip_address: null, router_id: null, last_known_router_id: f.router_id, status: 'DOWN' });
      } else if (typeof input.port_id === 'string') {
        const a = await resolveAssociation(trx, auth, f, input.port_id, input.fixed_ip_address ?? undefined);
        if (a.portId !== f.fixed_port_id || a.fixedIp !== f.fixed_ip_address || a.routerId !== f.router_id) {
          Object.assign(set, { fixed_port_id: a.portId, fixed_ip_address: a.fixedIp, router_id: a.routerId, last_known_router_id: f.router_id, status: 'ACTIVE' });
        }
      }
      if (input.description !== undefined && input.description !== f.description) set.description = input.description;
      if (Object.keys(set).length) {
        await trx.updateTable('floatingips').set(set).where('id', '=', id).execute();
        await store.bump(trx, 'floatingips', id);
      }
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new NeutronError(409, 'The fixed IP already has a floating IP on this external network.', 'FloatingIPPortAlreadyAssociated');
    // The port was deleted between the association's checks and its commit.
    if (isForeignKeyViolation(e) && typeof input.port_id === 'string') throw err.portNotFound(input.port_id);
    throw e;
  }
  notify(deps, 'floatingip');
  return showFloatingIp(deps, auth, id);
}

/** Delete a floating IP and its port on the external network (the address is free again). */
export async function deleteFloatingIp(deps: NetworkDeps, auth: AuthContext, id: string, expected: number | undefined): Promise<void> {
  const f0 = await visibleFloatingIp(deps.db, auth, id);
  authorize(auth, 'delete_floatingip', { project_id: f0.project_id });
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'floatingips', id);
    if (rev === undefined) throw fiperr.notFound(id);
    checkRevision(rev, expected);
    const f = (await getFloatingIp(trx, id))!;
    await trx.deleteFrom('network_tags').where('resource_type', '=', 'floatingips').where('resource_id', '=', id).execute();
    await trx.deleteFrom('floatingips').where('id', '=', id).execute();
    await store.deletePortRow(trx, f.floating_port_id);
  });
  notify(deps, 'floatingip');
}

/**
 * Neutron's disassociate_floatingips: a port going away takes its floating IPs' association
 * with it (they stay allocated, DOWN). Runs inside the port delete's transaction; returns
 * how many floating IPs changed.
 */
export async function disassociatePortFloatingIps(db: store.Q, portId: string): Promise<number> {
  const rows = await db.selectFrom('floatingips').select(['id', 'router_id']).where('fixed_port_id', '=', portId).execute();
  for (const r of rows) {
    await db.updateTable('floatingips').set({ fixed_port_id: null, fixed_ip_address: null, router_id: null, last_known_router_id: r.router_id, status: 'DOWN' })
      .where('id', '=', r.id).execute();
    await store.bump(db, 'floatingips', r.id);
  }
  return rows.length;
}

/**
 * Neutron's prevent_internal_ip_change_for_fip: a port update may not take away the fixed
 * address a floating IP is NATed to (400, Neutron's wording). Runs inside the update.
 */
export async function keepFloatingIpAddresses(db: store.Q, portId: string, dropped: string[]): Promise<void> {
  const used = await db.selectFrom('floatingips').select('fixed_ip_address').where('fixed_port_id', '=', portId).where('fixed_ip_address', 'in', dropped).executeTakeFirst();
  if (used) throw badRequest('port', `Cannot update the fixed_ips of the port ${portId}, because its original fixed_ip has been associated to a floating ip`);
}
