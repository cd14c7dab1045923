import type { AuthContext } from '../../api/context.ts';
import { checkQuota, checkRevision, inTransaction, networkTarget, newUuid, notify, ownerOf, randomMac, scopeOf } from './common.ts';
import { err, NeutronError } from './errors.ts';
import { allocate, resolveFixedIps } from './ipam.ts';
import { cidrContains, cidrsOverlap, cidrText, formatIp, parseCidr, parseIp } from './netaddr.ts';
import { visibleNetwork } from './networks.ts';
import { allowed, authorize, isAdmin } from './policy.ts';
import { visiblePort } from './ports.ts';
import * as store from './store.ts';
import { visibleSubnet } from './subnets.ts';
import {
  DEVICE_OWNER_ROUTER_GW, DEVICE_OWNER_ROUTER_INTF,
  type FixedIp, type HostRoute, type NetworkDeps, type NetworkRecord, type SubnetRecord,
} from './types.ts';

/**
 * Neutron's L3 routers (the `router`, `ext-gw-mode`, `extraroute`, `extraroute-atomic`
 * and `router_availability_zone` extensions), producing exactly what the controller
 * turns into the agents' routers (agent-state.ts):
 *
 * - the gateway is routers.gw_network_id / gw_port_id: a port device_owner
 *   network:router_gateway, device_id the router, project '' (hidden from the tenant,
 *   as Neutron's), on the router:external network, also listed in router_ports with
 *   port_type network:router_gateway;
 * - each interface is a port device_owner network:router_interface, device_id the
 *   router, in router_ports with port_type network:router_interface; adding one by
 *   subnet claims the subnet's gateway_ip;
 * - extra routes are router_routes rows whose nexthop is on one of the router's subnets.
 *
 * Every change is one transaction holding the router's row lock (so interfaces, gateway,
 * routes and floating IP associations on one router serialise), then notify(). A refusal
 * leaves nothing behind.
 */

export type RouterView = {
  id: string; name: string; description: string; project_id: string; tenant_id: string; status: string; admin_state_up: boolean;
  external_gateway_info: { network_id: string; enable_snat: boolean; external_fixed_ips: FixedIp[] } | null;
  routes: HostRoute[]; availability_zone_hints: string[]; availability_zones: string[]; flavor_id: string | null;
  tags: string[]; created_at: string; updated_at: string; revision_number: number;
  distributed?: boolean; ha?: boolean;
};

export type InterfaceInfo = {
  id: string; tenant_id: string; project_id: string; port_id: string; network_id: string; subnet_id: string; subnet_ids: string[];
};

export interface RouterRecord {
  id: string; project_id: string; name: string; status: string; admin_state_up: boolean; gw_network_id: string | null;
  gw_port_id: string | null; enable_snat: boolean; distributed: boolean; ha: boolean; flavor_id: string | null;
  availability_zone_hints: string[]; description: string; created_at: string; updated_at: string; revision_number: number;
  routes: HostRoute[]; gw_fixed_ips: FixedIp[]; tags: string[];
}

export interface GatewayInput { network_id?: string; enable_snat?: boolean; external_fixed_ips?: { subnet_id?: string; ip_address?: string }[] }
export interface RouteInput { destination?: unknown; nexthop?: unknown }
export interface RouterInput {
  name?: string; description?: string; admin_state_up?: boolean;
  /** undefined: not given; null (or {}): no gateway. */
  external_gateway_info?: GatewayInput | null;
  distributed?: boolean; ha?: boolean; availability_zone_hints?: string[]; flavor_id?: string | null;
  routes?: RouteInput[]; project?: string; tags?: string[];
}

/** Neutron's max_routes. */
export const MAX_ROUTES = 30;

/** Python's repr of a list of string dicts, as Neutron's messages print routes. */
function pyRepr(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`;
  if (typeof v === 'string') return `'${v}'`;
  return v === null || v === undefined ? 'None' : String(v);
}

/** neutron_lib's BadRequest: "Bad router request: <msg>." */
export const badRequest = (resource: string, msg: string): NeutronError => new NeutronError(400, `Bad ${resource} request: ${msg}.`, 'BadRequest');

/** The L3 exceptions of neutron_lib (exceptions/l3.py, extraroute, ...), with their wording. */
export const l3err = {
  routerNotFound: (id: string) => new NeutronError(404, `Router ${id} could not be found`, 'RouterNotFound'),
  routerInUse: (id: string, reason = 'still has ports') => new NeutronError(409, `Router ${id} ${reason}`, 'RouterInUse'),
  interfaceNotFound: (routerId: string, portId: string) =>
    new NeutronError(404, `Router ${routerId} does not have an interface with id ${portId}`, 'RouterInterfaceNotFound'),
  interfaceNotFoundForSubnet: (routerId: string, subnetId: string) =>
    new NeutronError(404, `Router ${routerId} has no interface on subnet ${subnetId}`, 'RouterInterfaceNotFoundForSubnet'),
  interfaceInUseByFip: (routerId: string, subnetId: string) => new NeutronError(409,
    `Router interface for subnet ${subnetId} on router ${routerId} cannot be deleted, as it is required by one or more floating IPs.`, 'RouterInterfaceInUseByFloatingIP'),
  interfaceInUseByRoute: (routerId: string, subnetId: string) => new NeutronError(409,
    `Router interface for subnet ${subnetId} on router ${routerId} cannot be deleted, as it is required by one or more routes.`, 'RouterInterfaceInUseByRoute'),
  gatewayInUseByFip: (routerId: string, netId: string) => new NeutronError(409,
    `Gateway cannot be updated for router ${routerId}, since a gateway to external network ${netId} is required by one or more floating IPs.`, 'RouterExternalGatewayInUseByFloatingIp'),
  invalidRoutes: (routes: unknown, reason: string) => new NeutronError(400, `Invalid format for routes: ${pyRepr(routes)}, ${reason}`, 'InvalidRoutes'),
  routesExhausted: (routerId: string, max: number) =>
    new NeutronError(400, `Unable to complete operation for ${routerId}. The number of routes exceeds the maximum ${max}.`, 'RoutesExhausted'),
  portInUse: (netId: string, portId: string, deviceId: string) => new NeutronError(409,
    `Unable to complete operation on port ${portId} for network ${netId}. Port already has an attached device ${deviceId}.`, 'PortInUse'),
  subnetMismatch: (portId: string, subnetId: string) =>
    new NeutronError(400, `Subnet on port ${portId} does not match the requested subnet ${subnetId}.`, 'SubnetMismatchForPort'),
};

// ---- storage ----

const isOne = (v: number): boolean => Number(v) === 1;

export async function loadRouters(db: store.Q, scope: { ids?: string[]; projectId?: string } = {}): Promise<RouterRecord[]> {
  if (scope.ids && scope.ids.length === 0) return [];
  let q = db.selectFrom('routers').selectAll();
  if (scope.ids) q = q.where('id', 'in', scope.ids);
  if (scope.projectId !== undefined) q = q.where('project_id', '=', scope.projectId);
  const rows = await q.execute();
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const routes = await db.selectFrom('router_routes').selectAll().where('router_id', 'in', ids).execute();
  const gwPorts = rows.map((r) => r.gw_port_id).filter((x): x is string => x !== null);
  const gwIps = gwPorts.length
    ? await db.selectFrom('ip_allocations').select(['port_id', 'subnet_id', 'ip_address']).where('port_id', 'in', gwPorts).execute()
    : [];
  const tags = await store.tagsOf(db, 'routers', ids);
  return rows.map((r) => ({
    id: r.id, project_id: r.project_id, name: r.name, status: r.status, admin_state_up: isOne(r.admin_state_up),
    gw_network_id: r.gw_network_id, gw_port_id: r.gw_port_id, enable_snat: isOne(r.enable_snat), distributed: isOne(r.distributed),
    ha: isOne(r.ha), flavor_id: r.flavor_id, availability_zone_hints: parseList(r.availability_zone_hints), description: r.description,
    created_at: store.shownTime(r.created_at), updated_at: store.shownTime(r.updated_at), revision_number: Number(r.revision_number),
    routes: routes.filter((x) => x.router_id === r.id).map((x) => ({ destination: x.destination, nexthop: x.nexthop }))
      .sort((a, b) => store.ipOrder(a.nexthop, b.nexthop) || (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0)),
    gw_fixed_ips: gwIps.filter((a) => a.port_id === r.gw_port_id).sort((a, b) => store.ipOrder(a.ip_address, b.ip_address))
      .map((a) => ({ subnet_id: a.subnet_id, ip_address: a.ip_address })),
    tags: tags.get(r.id) ?? [],
  }));
}

function parseList(s: string): string[] {
  try { const v: unknown = JSON.parse(s); return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []; } catch { return []; }
}

export async function getRouter(db: store.Q, id: string): Promise<RouterRecord | undefined> {
  return (await loadRouters(db, { ids: [id] }))[0];
}

/** The router's ports from router_ports, with their type (interface or gateway). */
async function routerPorts(db: store.Q, routerId: string): Promise<{ port_id: string; port_type: string }[]> {
  return db.selectFrom('router_ports').select(['port_id', 'port_type']).where('router_id', '=', routerId).orderBy('port_id').execute();
}

/**
 * A port the network itself owns (router gateway/interface, floating IP): no security
 * groups, unbound, a fresh MAC, addresses from IPAM (the requested ones, or Neutron's
 * defaults over `subnets`). No port quota: Neutron's L3 plugin makes these internally.
 */
export async function createServicePort(deps: NetworkDeps, trx: store.Q, p: {
  id?: string; network: NetworkRecord; project: string; deviceId: string; owner: string; status: string;
  fixedIps?: { subnet_id?: string; ip_address?: string }[]; subnets?: (s: SubnetRecord) => boolean;
}): Promise<{ id: string; mac: string; fixedIps: FixedIp[] }> {
  const id = p.id ?? newUuid();
  const at = store.now();
  const row = {
    id, project_id: p.project, network_id: p.network.id, name: '', mac_address: '', admin_state_up: 1, status: p.status,
    device_id: p.deviceId, device_owner: p.owner, port_security_enabled: p.network.port_security_enabled ? 1 : 0, dns_name: '',
    description: '', created_at: at, updated_at: at, revision_number: 1,
  };
  let mac: string | undefined;
  for (let i = 0; i < 16 && mac === undefined; i++) {
    const candidate = randomMac(deps.cfg.macPrefix);
    if (await store.insertPort(trx, { ...row, mac_address: candidate })) mac = candidate;
  }
  if (mac === undefined) throw err.macGenerationFailure(p.network.id);
  await store.setBinding(trx, id, { host: '', vif_type: 'unbound', vnic_type: 'normal', profile: {}, vif_details: {} });
  const all = await store.loadSubnets(trx, { networkIds: [p.network.id] });
  const requested = p.fixedIps === undefined ? undefined : resolveFixedIps(p.network.id, all, p.fixedIps, undefined, p.owner);
  const fixedIps = await allocate(trx, { id, network_id: p.network.id, mac_address: mac, device_owner: p.owner }, p.subnets ? all.filter(p.subnets) : all, requested);
  return { id, mac, fixedIps };
}

// ---- views and visibility ----

export function routerView(r: RouterRecord, auth: AuthContext, cfg: NetworkDeps['cfg']): RouterView {
  const v: RouterView = {
    id: r.id, name: r.name, description: r.description, project_id: r.project_id, tenant_id: r.project_id, status: r.status,
    admin_state_up: r.admin_state_up,
    external_gateway_info: r.gw_network_id === null ? null : { network_id: r.gw_network_id, enable_snat: r.enable_snat, external_fixed_ips: r.gw_fixed_ips },
    routes: r.routes, availability_zone_hints: r.availability_zone_hints,
    availability_zones: r.availability_zone_hints.length ? [...r.availability_zone_hints] : [...cfg.availabilityZones],
    flavor_id: r.flavor_id, tags: r.tags, created_at: r.created_at, updated_at: r.updated_at, revision_number: r.revision_number,
  };
  if (allowed(auth, 'get_router:distributed', { project_id: r.project_id })) v.distributed = r.distributed;
  if (allowed(auth, 'get_router:ha', { project_id: r.project_id })) v.ha = r.ha;
  return v;
}

/** A router the caller may see, or 404 RouterNotFound (never saying another project's exists). */
export async function visibleRouter(db: store.Q, auth: AuthContext, id: string): Promise<RouterRecord> {
  const r = await getRouter(db, id);
  if (!r || !allowed(auth, 'get_router', { project_id: r.project_id })) throw l3err.routerNotFound(id);
  return r;
}

// ---- checks ----

function checkZones(cfg: NetworkDeps['cfg'], hints: string[]): void {
  for (const z of hints) {
    if (!cfg.availabilityZones.includes(z)) throw new NeutronError(404, `AvailabilityZone ${z} could not be found.`, 'AvailabilityZoneNotFound');
  }
}

/** Attribute validation of routes (neutron_lib's type:hostroutes), normalised as subnets' host routes are. */
export function checkRouteFormat(list: RouteInput[]): HostRoute[] {
  const out: HostRoute[] = [];
  for (const r of list) {
    const keys = Object.keys(r).sort();
    if (keys.length !== 2 || keys[0] !== 'destination' || keys[1] !== 'nexthop') {
      throw err.badAttr('routes', `Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} Provided keys: {${keys.map((k) => `'${k}'`).join(', ')}}`);
    }
    const dest = typeof r.destination === 'string' ? parseCidr(r.destination, { requirePrefix: true }) : null;
    if (!dest) throw err.badAttr('routes', `'${String(r.destination)}' is not a valid IP subnet`);
    const hop = parseIp(r.nexthop);
    if (!hop) throw err.badAttr('routes', `'${String(r.nexthop)}' is not a valid IP address`);
    if (hop.version !== dest.version) throw err.badAttr('routes', `nexthop '${String(r.nexthop)}' does not match the ip_version of destination '${String(r.destination)}'`);
    const route = { destination: cidrText(dest), nexthop: formatIp(hop.version, hop.value) };
    if (out.some((x) => x.destination === route.destination && x.nexthop === route.nexthop)) {
      throw err.badAttr('routes', `Duplicate hostroute '${pyRepr(r)}'`);
    }
    out.push(route);
  }
  return out;
}

/** The subnets (with the router's address on each) of every port of the router: interfaces and gateway. */
async function routerSubnets(db: store.Q, routerId: string): Promise<{ subnet: SubnetRecord; ip: string; portId: string; type: string }[]> {
  const rps = await routerPorts(db, routerId);
  if (!rps.length) return [];
  const ports = await store.loadPorts(db, { ids: rps.map((p) => p.port_id) });
  const subnets = await store.loadSubnets(db, { ids: [...new Set(ports.flatMap((p) => p.fixed_ips.map((f) => f.subnet_id)))] });
  return ports.flatMap((p) => p.fixed_ips.map((f) => ({
    subnet: subnets.find((s) => s.id === f.subnet_id)!, ip: f.ip_address, portId: p.id, type: rps.find((x) => x.port_id === p.id)!.port_type,
  })).filter((x) => x.subnet !== undefined));
}

/** extraroute's checks: at most MAX_ROUTES, each nexthop on one of the router's subnets and not the router's own address. */
async function checkRoutes(db: store.Q, routerId: string, routes: HostRoute[], shown: unknown): Promise<void> {
  if (routes.length > MAX_ROUTES) throw l3err.routesExhausted(routerId, MAX_ROUTES);
  const connected = await routerSubnets(db, routerId);
  for (const r of routes) {
    const hop = parseIp(r.nexthop)!;
    if (!connected.some((c) => cidrContains(parseCidr(c.subnet.cidr)!, hop))) throw l3err.invalidRoutes(shown, 'the nexthop is not connected with router');
    if (connected.some((c) => c.ip === r.nexthop)) throw l3err.invalidRoutes(shown, 'the nexthop is used by router');
  }
}

async function replaceRoutes(db: store.Q, routerId: string, routes: HostRoute[]): Promise<void> {
  await db.deleteFrom('router_routes').where('router_id', '=', routerId).execute();
  if (routes.length) await db.insertInto('router_routes').values(routes.map((r) => ({ router_id: routerId, ...r }))).execute();
}

const sameRoutes = (a: HostRoute[], b: HostRoute[]): boolean => {
  const key = (x: HostRoute[]) => x.map((r) => `${r.destination} ${r.nexthop}`).sort().join('\n');
  return key(a) === key(b);
};

async function fipsOfRouter(db: store.Q, routerId: string): Promise<{ id: string; fixed_ip_address: string | null }[]> {
  return db.selectFrom('floatingips').select(['id', 'fixed_ip_address']).where('router_id', '=', routerId).execute();
}

// ---- gateway ----

/** Policy checks of an external_gateway_info in a create or update. */
function authorizeGateway(auth: AuthContext, action: 'create' | 'update', project: string, info: GatewayInput | null | undefined): void {
  if (info === undefined) return;
  const t = { project_id: project };
  authorize(auth, `${action}_router:external_gateway_info`, t);
  if (info === null) return;
  if (info.network_id !== undefined) authorize(auth, `${action}_router:external_gateway_info:network_id`, t);
  // SNAT on is the default: only turning it off is an admin's call (Neutron: enable_snat is admin-only).
  if (info.enable_snat === false) authorize(auth, `${action}_router:external_gateway_info:enable_snat`, t);
  if (info.external_fixed_ips !== undefined) authorize(auth, `${action}_router:external_gateway_info:external_fixed_ips`, t);
}

function checkGatewayShape(info: GatewayInput | null | undefined): GatewayInput | null | undefined {
  if (info === undefined || info === null) return info;
  const keys = Object.keys(info);
  if (keys.length === 0) return null; // {} clears the gateway, as Neutron's dict_or_nodata
  if (info.network_id === undefined) {
    throw err.badAttr('external_gateway_info', `Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: {${keys.sort().map((k) => `'${k}'`).join(', ')}}`);
  }
  return info;
}

/**
 * Set, move, change or clear the router's gateway inside the caller's transaction (the
 * router's row is locked). Neutron's rules: the network must be router:external; moving
 * or clearing a gateway that floating IPs use is refused; enable_snat goes back to its
 * default (true) whenever the gateway is set without it.
 */
async function applyGateway(deps: NetworkDeps, trx: store.Q, auth: AuthContext, router: RouterRecord, info: GatewayInput | null): Promise<boolean> {
  const cur = router.gw_port_id ? await store.getPort(trx, router.gw_port_id) : undefined;
  const dropCurrent = async () => {
    if (!cur) return;
    if ((await fipsOfRouter(trx, router.id)).length) throw l3err.gatewayInUseByFip(router.id, cur.network_id);
    await store.deletePortRow(trx, cur.id);
  };
  if (info === null) {
    if (!cur && router.gw_network_id === null) return false;
    await dropCurrent();
    await trx.updateTable('routers').set({ gw_network_id: null, gw_port_id: null, enable_snat: 1 }).where('id', '=', router.id).execute();
    return true;
  }
  const net = await visibleNetwork(trx, auth, info.network_id!);
  if (!net.router_external) throw badRequest('router', `Network ${net.id} is not an external network`);
  const subnets = await store.loadSubnets(trx, { networkIds: [net.id] });
  for (const e of info.external_fixed_ips ?? []) {
    const ip = e.ip_address === undefined ? null : parseIp(e.ip_address);
    if (ip && subnets.some((s) => s.gateway_ip === formatIp(ip.version, ip.value))) {
      throw badRequest('router', `External IP ${e.ip_address!} is the same as the gateway IP`);
    }
  }
  const snat = info.enable_snat ?? true;
  let changed = snat !== router.enable_snat;
  if (cur && cur.network_id === net.id) {
    if (info.external_fixed_ips !== undefined && externalIpsDiffer(cur.fixed_ips, info.external_fixed_ips)) {
      await store.releaseIps(trx, cur.id);
      const requested = resolveFixedIps(net.id, subnets, info.external_fixed_ips, undefined, DEVICE_OWNER_ROUTER_GW);
      await allocate(trx, { id: cur.id, network_id: net.id, mac_address: cur.mac_address, device_owner: cur.device_owner }, subnets, requested);
      await store.bump(trx, 'ports', cur.id);
      changed = true;
    }
    if (changed) await trx.updateTable('routers').set({ enable_snat: snat ? 1 : 0 }).where('id', '=', router.id).execute();
    return changed;
  }
  await dropCurrent();
  const port = await createServicePort(deps, trx, {
    network: net, project: '', deviceId: router.id, owner: DEVICE_OWNER_ROUTER_GW, status: 'DOWN', fixedIps: info.external_fixed_ips,
  });
  await trx.insertInto('router_ports').values({ router_id: router.id, port_id: port.id, port_type: DEVICE_OWNER_ROUTER_GW }).execute();
  await trx.updateTable('routers').set({ gw_network_id: net.id, gw_port_id: port.id, enable_snat: snat ? 1 : 0 }).where('id', '=', router.id).execute();
  return true;
}

/** Neutron's _check_for_external_ip_change: do the requested external IPs differ from the port's? */
function externalIpsDiffer(have: FixedIp[], wanted: { subnet_id?: string; ip_address?: string }[]): boolean {
  if (wanted.length === 0) return false;
  const set = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => x !== undefined))].sort().join(',');
  if (set(wanted.map((w) => w.subnet_id)) !== set(have.map((h) => h.subnet_id)) && wanted.some((w) => w.subnet_id !== undefined)) return true;
  const ips = wanted.map((w) => {
    const ip = w.ip_address === undefined ? null : parseIp(w.ip_address);
    return ip ? formatIp(ip.version, ip.value) : w.ip_address;
  });
  return ips.some((x) => x !== undefined) && set(ips) !== set(have.map((h) => h.ip_address));
}

// ---- CRUD ----

function checkUnsupported(input: RouterInput): void {
  if (input.distributed === true) throw badRequest('router', 'Distributed (DVR) routers are not supported; every router is centralized');
  if (input.ha === true) throw badRequest('router', 'HA routers are not supported');
  if (input.flavor_id !== undefined && input.flavor_id !== null) {
    throw new NeutronError(404, `Flavor ${input.flavor_id} could not be found.`, 'FlavorNotFound');
  }
}

export async function createRouters(deps: NetworkDeps, auth: AuthContext, inputs: RouterInput[]): Promise<RouterView[]> {
  const plans = inputs.map((input) => {
    const project = ownerOf(auth, input.project);
    authorize(auth, 'create_router', { project_id: project });
    const gw = checkGatewayShape(input.external_gateway_info);
    authorizeGateway(auth, 'create', project, gw);
    if (input.distributed !== undefined) authorize(auth, 'create_router:distributed', { project_id: project });
    if (input.ha !== undefined) authorize(auth, 'create_router:ha', { project_id: project });
    checkUnsupported(input);
    checkZones(deps.cfg, input.availability_zone_hints ?? []);
    return { input, project, gw };
  });
  const ids = await inTransaction(deps, async (trx) => {
    const out: string[] = [];
    for (const p of plans) {
      await checkQuota(deps, trx, p.project, 'router');
      const id = newUuid();
      const at = store.now();
      await trx.insertInto('routers').values({
        id, project_id: p.project, name: p.input.name ?? '', status: 'ACTIVE', admin_state_up: p.input.admin_state_up === false ? 0 : 1,
        gw_network_id: null, gw_port_id: null, enable_snat: 1, distributed: 0, ha: 0, flavor_id: null,
        availability_zone_hints: JSON.stringify(p.input.availability_zone_hints ?? []), description: p.input.description ?? '',
        created_at: at, updated_at: at, revision_number: 1,
      }).execute();
      if (p.input.tags?.length) await store.setTags(trx, 'routers', id, p.input.tags);
      if (p.gw) await applyGateway(deps, trx, auth, (await getRouter(trx, id))!, p.gw);
      out.push(id);
    }
    return out;
  });
  notify(deps, 'router');
  const routers = await loadRouters(deps.db, { ids });
  return ids.map((id) => routerView(routers.find((r) => r.id === id)!, auth, deps.cfg));
}

export async function listRouters(deps: NetworkDeps, auth: AuthContext): Promise<RouterView[]> {
  const scope = scopeOf(auth);
  const routers = await loadRouters(deps.db, scope === undefined ? {} : { projectId: scope });
  return routers.filter((r) => allowed(auth, 'get_router', { project_id: r.project_id })).map((r) => routerView(r, auth, deps.cfg));
}

export async function showRouter(deps: NetworkDeps, auth: AuthContext, id: string): Promise<RouterView> {
  return routerView(await visibleRouter(deps.db, auth, id), auth, deps.cfg);
}

/** Lock the router's row for the rest of the transaction and check If-Match; 404 when it went away. */
async function lockRouter(trx: store.Q, id: string, expected?: number): Promise<RouterRecord> {
  const rev = await store.lockRevision(trx, 'routers', id);
  if (rev === undefined) throw l3err.routerNotFound(id);
  checkRevision(rev, expected);
  return (await getRouter(trx, id))!;
}

export async function updateRouter(deps: NetworkDeps, auth: AuthContext, id: string, input: RouterInput, expected: number | undefined): Promise<RouterView> {
  const r0 = await visibleRouter(deps.db, auth, id);
  const target = { project_id: r0.project_id };
  authorize(auth, 'update_router', target);
  const gw = checkGatewayShape(input.external_gateway_info);
  authorizeGateway(auth, 'update', r0.project_id, gw);
  if (input.distributed !== undefined) authorize(auth, 'update_router:distributed', target);
  if (input.ha !== undefined) authorize(auth, 'update_router:ha', target);
  checkUnsupported(input);
  const routes = input.routes === undefined ? undefined : checkRouteFormat(input.routes);
  await inTransaction(deps, async (trx) => {
    let r = await lockRouter(trx, id, expected);
    let changed = false;
    const set: { name?: string; description?: string; admin_state_up?: number } = {};
    if (input.name !== undefined && input.name !== r.name) set.name = input.name;
    if (input.description !== undefined && input.description !== r.description) set.description = input.description;
    if (input.admin_state_up !== undefined && input.admin_state_up !== r.admin_state_up) set.admin_state_up = input.admin_state_up ? 1 : 0;
    if (Object.keys(set).length) { await trx.updateTable('routers').set(set).where('id', '=', id).execute(); changed = true; }
    if (gw !== undefined) {
      if (await applyGateway(deps, trx, auth, r, gw)) changed = true;
      r = (await getRouter(trx, id))!;
    }
    if (routes !== undefined && !sameRoutes(routes, r.routes)) {
      await checkRoutes(trx, id, routes, input.routes);
      await replaceRoutes(trx, id, routes);
      changed = true;
    }
    if (changed) await store.bump(trx, 'routers', id);
  });
  notify(deps, 'router');
  return routerView((await getRouter(deps.db, id))!, auth, deps.cfg);
}

/**
 * Delete a router as Neutron does: refused (409 RouterInUse) while it has interfaces;
 * its gateway port goes with it.
 */
export async function deleteRouter(deps: NetworkDeps, auth: AuthContext, id: string, expected: number | undefined): Promise<void> {
  const r0 = await visibleRouter(deps.db, auth, id);
  authorize(auth, 'delete_router', { project_id: r0.project_id });
  await inTransaction(deps, async (trx) => {
    const r = await lockRouter(trx, id, expected);
    if ((await routerPorts(trx, id)).some((p) => p.port_type === DEVICE_OWNER_ROUTER_INTF)) throw l3err.routerInUse(id);
    if ((await fipsOfRouter(trx, id)).length) throw l3err.routerInUse(id, 'still has floating IPs');
    for (const p of await routerPorts(trx, id)) await store.deletePortRow(trx, p.port_id);
    if (r.gw_port_id) await store.deletePortRow(trx, r.gw_port_id);
    await trx.deleteFrom('network_tags').where('resource_type', '=', 'routers').where('resource_id', '=', id).execute();
    await trx.deleteFrom('routers').where('id', '=', id).execute();
  });
  notify(deps, 'router');
}

// ---- interfaces ----

export interface InterfaceRequest { subnet_id?: unknown; port_id?: unknown }

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Neutron's _validate_interface_info: which of port_id / subnet_id the body names. */
function interfaceInfo(body: InterfaceRequest | undefined, forRemoval: boolean): { portId?: string; subnetId?: string } {
  const b = body ?? {};
  const byPort = 'port_id' in b && b.port_id !== undefined;
  const bySubnet = 'subnet_id' in b && b.subnet_id !== undefined;
  if (!byPort && !bySubnet) throw badRequest('router', 'Either subnet_id or port_id must be specified');
  for (const key of ['port_id', 'subnet_id'] as const) {
    const v = b[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !UUID.test(v)) throw badRequest('router', `'${typeof v === 'string' ? v : JSON.stringify(v)}' is not a valid UUID`);
  }
  if (!forRemoval && byPort && bySubnet) throw badRequest('router', 'Cannot specify both subnet-id and port-id');
  return { portId: byPort ? String(b.port_id) : undefined, subnetId: bySubnet ? String(b.subnet_id) : undefined };
}

/** Neutron's _check_for_dup_router_subnets over the router's interfaces: same subnet, or overlapping CIDRs. */
async function checkDupSubnets(trx: store.Q, routerId: string, added: SubnetRecord[]): Promise<void> {
  const existing = (await routerSubnets(trx, routerId)).filter((x) => x.type === DEVICE_OWNER_ROUTER_INTF);
  for (const e of existing) {
    const dup = added.find((s) => s.id === e.subnet.id);
    if (dup) throw badRequest('router', `Router already has a port on subnet ${dup.id}`);
  }
  for (const e of existing) {
    for (const s of added) {
      if (cidrsOverlap(parseCidr(s.cidr)!, parseCidr(e.subnet.cidr)!)) {
        throw badRequest('router', `Cidr ${s.cidr} of subnet ${s.id} overlaps with cidr ${e.subnet.cidr} of subnet ${e.subnet.id}`);
      }
    }
  }
}

/** May the caller put the router's interface on this network? Its own or a shared one (admins: any). */
function authorizeInterfaceNetwork(auth: AuthContext, net: NetworkRecord, routerProject: string): void {
  if (isAdmin(auth) || net.shared || net.project_id === routerProject) return;
  authorize(auth, 'create_port:device_owner', networkTarget(net, { project_id: routerProject, device_owner: DEVICE_OWNER_ROUTER_INTF }));
}

export async function addRouterInterface(deps: NetworkDeps, auth: AuthContext, id: string, body: InterfaceRequest | undefined): Promise<InterfaceInfo> {
  const r0 = await visibleRouter(deps.db, auth, id);
  authorize(auth, 'add_router_interface', { project_id: r0.project_id });
  const { portId, subnetId } = interfaceInfo(body, false);
  let planned: { kind: 'subnet'; subnet: SubnetRecord; network: NetworkRecord } | { kind: 'port'; portId: string };
  if (subnetId !== undefined) {
    const { subnet, network } = await visibleSubnet(deps.db, auth, subnetId);
    authorizeInterfaceNetwork(auth, network, r0.project_id);
    if (subnet.gateway_ip === null) throw badRequest('router', 'Subnet for router interface must have a gateway IP');
    if (subnet.ip_version === 6 && subnet.ipv6_ra_mode === null && subnet.ipv6_address_mode !== null) {
      throw badRequest('router', `IPv6 subnet ${subnet.id} configured to receive RAs from an external router cannot be added to Neutron Router`);
    }
    planned = { kind: 'subnet', subnet, network };
  } else {
    const { port, network } = await visiblePort(deps.db, auth, portId!);
    authorize(auth, 'update_port', networkTarget(network, { project_id: port.project_id }));
    planned = { kind: 'port', portId: port.id };
  }
  const result = await inTransaction(deps, async (trx) => {
    const router = await lockRouter(trx, id);
    if (planned.kind === 'subnet') {
      const { subnet, network } = planned;
      await checkDupSubnets(trx, id, [subnet]);
      const port = await createServicePort(deps, trx, {
        network, project: router.project_id, deviceId: id, owner: DEVICE_OWNER_ROUTER_INTF, status: 'DOWN',
        fixedIps: [{ subnet_id: subnet.id, ip_address: subnet.gateway_ip! }],
      });
      await trx.insertInto('router_ports').values({ router_id: id, port_id: port.id, port_type: DEVICE_OWNER_ROUTER_INTF }).execute();
      await store.bump(trx, 'routers', id);
      return { id, tenant_id: router.project_id, project_id: router.project_id, port_id: port.id, network_id: network.id, subnet_id: subnet.id, subnet_ids: [subnet.id] };
    }
    if ((await store.lockRevision(trx, 'ports', planned.portId)) === undefined) throw err.portNotFound(planned.portId);
    const port = (await store.getPort(trx, planned.portId))!;
    if (port.device_id !== '') throw l3err.portInUse(port.network_id, port.id, port.device_id);
    if (port.fixed_ips.length === 0) throw badRequest('router', 'Router port must have at least one fixed IP');
    const subnets = await store.loadSubnets(trx, { ids: [...new Set(port.fixed_ips.map((f) => f.subnet_id))] });
    if (port.fixed_ips.some((f) => parseIp(f.ip_address)?.version === 6)) {
      for (const e of await routerSubnets(trx, id)) {
        if (e.type === DEVICE_OWNER_ROUTER_INTF && e.subnet.network_id === port.network_id && e.subnet.ip_version === 6) {
          throw badRequest('router', `Cannot have multiple router ports with the same network id if both contain IPv6 subnets. Existing port ${e.portId} has IPv6 subnet(s) and network id ${port.network_id}`);
        }
      }
    }
    await checkDupSubnets(trx, id, subnets);
    if (subnets.filter((s) => s.ip_version === 4).length > 1) throw badRequest('router', 'Cannot have multiple IPv4 subnets on router port');
    await trx.updateTable('ports').set({ device_id: id, device_owner: DEVICE_OWNER_ROUTER_INTF, status: 'DOWN' }).where('id', '=', port.id).execute();
    await store.bump(trx, 'ports', port.id);
    await trx.insertInto('router_ports').values({ router_id: id, port_id: port.id, port_type: DEVICE_OWNER_ROUTER_INTF }).execute();
    await store.bump(trx, 'routers', id);
    const ids = subnets.map((s) => s.id);
    return { id, tenant_id: port.project_id, project_id: port.project_id, port_id: port.id, network_id: port.network_id, subnet_id: ids.at(-1)!, subnet_ids: ids };
  });
  notify(deps, 'router');
  return result;
}

/** Neutron's _confirm_router_interface_not_in_use: no floating IP behind it, no route through it. */
async function confirmInterfaceNotInUse(trx: store.Q, router: RouterRecord, subnet: SubnetRecord): Promise<void> {
  const c = parseCidr(subnet.cidr)!;
  for (const f of await fipsOfRouter(trx, router.id)) {
    const ip = parseIp(f.fixed_ip_address);
    if (ip && cidrContains(c, ip)) throw l3err.interfaceInUseByFip(router.id, subnet.id);
  }
  for (const r of router.routes) {
    if (cidrContains(c, parseIp(r.nexthop)!)) throw l3err.interfaceInUseByRoute(router.id, subnet.id);
  }
}

export async function removeRouterInterface(deps: NetworkDeps, auth: AuthContext, id: string, body: InterfaceRequest | undefined): Promise<InterfaceInfo> {
  const r0 = await visibleRouter(deps.db, auth, id);
  authorize(auth, 'remove_router_interface', { project_id: r0.project_id });
  const { portId, subnetId } = interfaceInfo(body, true);
  const result = await inTransaction(deps, async (trx) => {
    const router = await lockRouter(trx, id);
    const intfs = (await routerPorts(trx, id)).filter((p) => p.port_type === DEVICE_OWNER_ROUTER_INTF);
    if (portId !== undefined) {
      const port = intfs.some((p) => p.port_id === portId) ? await store.getPort(trx, portId) : undefined;
      if (!port) throw l3err.interfaceNotFound(id, portId);
      const subnetIds = port.fixed_ips.map((f) => f.subnet_id);
      if (subnetId !== undefined && !subnetIds.includes(subnetId)) throw l3err.subnetMismatch(portId, subnetId);
      const subnets = await store.loadSubnets(trx, { ids: subnetIds });
      for (const s of subnets) await confirmInterfaceNotInUse(trx, router, s);
      await store.deletePortRow(trx, port.id);
      await store.bump(trx, 'routers', id);
      return { id, tenant_id: port.project_id, project_id: port.project_id, port_id: port.id, network_id: port.network_id, subnet_id: subnetIds[0] ?? '', subnet_ids: subnetIds };
    }
    const subnet = await store.getSubnet(trx, subnetId!);
    if (!subnet) throw err.subnetNotFound(subnetId!);
    await confirmInterfaceNotInUse(trx, router, subnet);
    const ports = await store.loadPorts(trx, { ids: intfs.map((p) => p.port_id) });
    const port = ports.find((p) => p.fixed_ips.some((f) => f.subnet_id === subnet.id));
    if (!port) throw l3err.interfaceNotFoundForSubnet(id, subnet.id);
    if (port.fixed_ips.length > 1) {
      // A port with several (IPv6) prefixes keeps the others.
      await store.releaseIps(trx, port.id, port.fixed_ips.filter((f) => f.subnet_id === subnet.id).map((f) => f.ip_address));
      await store.bump(trx, 'ports', port.id);
    } else {
      await store.deletePortRow(trx, port.id);
    }
    await store.bump(trx, 'routers', id);
    return { id, tenant_id: port.project_id, project_id: port.project_id, port_id: port.id, network_id: port.network_id, subnet_id: subnet.id, subnet_ids: [subnet.id] };
  });
  notify(deps, 'router');
  return result;
}

// ---- extraroute-atomic ----

/** PUT add_extraroutes / remove_extraroutes: {"router": {"routes": [...]}}, answered with the whole router. */
export async function changeExtraRoutes(deps: NetworkDeps, auth: AuthContext, id: string, action: 'add' | 'remove', list: RouteInput[]): Promise<RouterView> {
  const r0 = await visibleRouter(deps.db, auth, id);
  authorize(auth, `${action}_extraroutes`, { project_id: r0.project_id });
  const given = checkRouteFormat(list);
  await inTransaction(deps, async (trx) => {
    const r = await lockRouter(trx, id);
    const has = (set: HostRoute[], x: HostRoute) => set.some((y) => y.destination === x.destination && y.nexthop === x.nexthop);
    const next = action === 'add'
      ? [...r.routes, ...given.filter((x) => !has(r.routes, x))]
      : r.routes.filter((x) => !has(given, x));
    if (sameRoutes(next, r.routes)) return;
    if (action === 'add') await checkRoutes(trx, id, next, list);
    await replaceRoutes(trx, id, next);
    await store.bump(trx, 'routers', id);
  });
  notify(deps, 'router');
  return routerView((await getRouter(deps.db, id))!, auth, deps.cfg);
}
