import type { AuthContext } from '../../api/context.ts';
import { checkQuota, checkRevision, inTransaction, networkTarget, newUuid, notify, ownerOf, scopeOf } from './common.ts';
import { err, NeutronError } from './errors.ts';
import {
  checkGatewayOutsidePools, checkPools, defaultPools, hostRange, poolsOf, poolsText, type Range,
} from './ipam.ts';
import { cidrContains, cidrsOverlap, cidrText, eui64, formatIp, parseCidr, parseIp, type Cidr, type IpVersion } from './netaddr.ts';
import { allowed, authorize } from './policy.ts';
import * as store from './store.ts';
import { visibleNetwork } from './networks.ts';
import { DEVICE_OWNER_ROUTER_INTF, AUTO_DELETE_PORT_OWNERS, type HostRoute, type NetworkDeps, type SubnetRecord, type SubnetView } from './types.ts';

/**
 * Subnets: IPv4 and IPv6 (SLAAC, DHCPv6 stateful and stateless), with Neutron's checks —
 * a well-formed CIDR of the subnet's IP version not overlapping another subnet of the
 * network, a gateway inside the subnet (not its network or broadcast address), pools
 * inside the subnet, apart from each other and from the gateway, nameservers and host
 * routes of the right form and number.
 */

export interface SubnetInput {
  network_id?: string; name?: string; description?: string; ip_version?: number; cidr?: string;
  gateway_ip?: string | null; allocation_pools?: { start?: unknown; end?: unknown }[]; dns_nameservers?: string[];
  host_routes?: { destination?: unknown; nexthop?: unknown }[]; enable_dhcp?: boolean; ipv6_ra_mode?: string | null;
  ipv6_address_mode?: string | null; subnetpool_id?: string | null; project?: string; tags?: string[];
}

const AUTO_MODES = ['slaac', 'dhcpv6-stateless'];

export function subnetView(s: SubnetRecord): SubnetView {
  return {
    id: s.id, name: s.name, network_id: s.network_id, project_id: s.project_id, tenant_id: s.project_id, ip_version: s.ip_version,
    cidr: s.cidr, gateway_ip: s.gateway_ip, allocation_pools: s.allocation_pools, dns_nameservers: s.dns_nameservers,
    host_routes: s.host_routes, enable_dhcp: s.enable_dhcp, ipv6_ra_mode: s.ipv6_ra_mode, ipv6_address_mode: s.ipv6_address_mode,
    subnetpool_id: s.subnetpool_id, description: s.description, tags: s.tags, created_at: s.created_at, updated_at: s.updated_at,
    revision_number: s.revision_number,
  };
}

async function subnetTargets(db: store.Q, subnets: SubnetRecord[]) {
  const nets = await store.loadNetworks(db, { ids: [...new Set(subnets.map((s) => s.network_id))] });
  return new Map(nets.map((n) => [n.id, n]));
}

/** A subnet the caller may see, or 404 SubnetNotFound. */
export async function visibleSubnet(db: store.Q, auth: AuthContext, id: string) {
  const s = await store.getSubnet(db, id);
  const net = s ? await store.getNetwork(db, s.network_id) : undefined;
  if (!s || !net || !allowed(auth, 'get_subnet', networkTarget(net, { project_id: s.project_id }))) throw err.subnetNotFound(id);
  return { subnet: s, network: net };
}

function versionMismatch(name: string, addr: string, v: number): NeutronError {
  return err.invalidInput(`${name} '${addr}' does not match the ip_version '${v}'`);
}

/** A gateway address as Neutron accepts it: of the subnet's version, inside it, not its network or broadcast address. */
function checkGateway(c: Cidr, gw: string): bigint {
  const ip = parseIp(gw);
  if (!ip) throw err.badAttr('gateway_ip', `'${gw}' is not a valid IP address`);
  if (ip.version !== c.version) throw versionMismatch('gateway_ip', gw, c.version);
  const hosts = hostRange(c);
  // Neutron allows an off-subnet gateway; Gureum's agents route only on-link gateways, so it must be inside.
  if (!cidrContains(c, ip) || !hosts || ip.value < hosts[0] || ip.value > hosts[1]) throw err.invalidInput('Gateway is not valid on subnet');
  return ip.value;
}

function checkNameservers(subnetId: string, list: string[], max: number): string[] {
  const out: string[] = [];
  for (const ns of list) {
    const ip = parseIp(ns);
    if (!ip) throw err.badAttr('dns_nameservers', `'${ns}' is not a valid nameserver. '${ns}' is not a valid IP address`);
    const t = formatIp(ip.version, ip.value);
    if (out.includes(t)) throw err.badAttr('dns_nameservers', `Duplicate nameserver '${ns}'`);
    out.push(t);
  }
  if (out.length > max) throw err.dnsExhausted(subnetId, max);
  return out;
}

function checkHostRoutes(subnetId: string, v: IpVersion, list: { destination?: unknown; nexthop?: unknown }[], max: number): HostRoute[] {
  const out: HostRoute[] = [];
  for (const r of list) {
    const dest = parseCidr(r.destination, { requirePrefix: true });
    if (!dest) throw err.badAttr('host_routes', `'${String(r.destination)}' is not a valid IP subnet`);
    const hop = parseIp(r.nexthop);
    if (!hop) throw err.badAttr('host_routes', `'${String(r.nexthop)}' is not a valid IP address`);
    if (hop.version !== v) throw versionMismatch('nexthop', String(r.nexthop), v);
    if (dest.version !== v) throw versionMismatch('destination', String(r.destination), v);
    const route = { destination: cidrText(dest), nexthop: formatIp(hop.version, hop.value) };
    if (out.some((x) => x.destination === route.destination && x.nexthop === route.nexthop)) {
      throw err.badAttr('host_routes', `Duplicate hostroute '${JSON.stringify(r)}'`);
    }
    out.push(route);
  }
  if (out.length > max) throw err.hostRoutesExhausted(subnetId, max);
  return out;
}

function checkIpv6Modes(v: number, enableDhcp: boolean, ra: string | null, addr: string | null, c: Cidr): void {
  if (ra === null && addr === null) return;
  if (v === 4) throw err.invalidInput('ipv6_ra_mode and ipv6_address_mode cannot be set for an IPv4 subnet');
  if (!enableDhcp) throw err.invalidInput('ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False');
  if (ra !== null && addr !== null && ra !== addr) {
    throw err.invalidInput(`ipv6_ra_mode set to '${ra}' with ipv6_address_mode set to '${addr}' is not valid. If both attributes are set, they must be the same value`);
  }
  if ((addr !== null && AUTO_MODES.includes(addr)) || (addr === null && ra !== null && AUTO_MODES.includes(ra))) {
    if (c.prefix !== 64) throw err.invalidInput(`Invalid CIDR ${cidrText(c)} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64`);
  }
}

interface SubnetPlan {
  id: string; input: SubnetInput; project: string; networkId: string; cidr: Cidr; gateway: bigint | null; pools: Range[];
  dns: string[]; routes: HostRoute[]; enableDhcp: boolean; ra: string | null; addr: string | null;
}

function planSubnet(deps: NetworkDeps, input: SubnetInput, project: string, networkId: string): SubnetPlan {
  if (input.subnetpool_id !== undefined && input.subnetpool_id !== null) {
    throw new NeutronError(404, `Subnet pool ${input.subnetpool_id} could not be found.`, 'SubnetPoolNotFound');
  }
  const v = input.ip_version;
  if (v !== 4 && v !== 6) throw err.badAttr('ip_version', `'${String(v)}' is not in [4, 6]`);
  if (input.cidr === undefined) throw err.badRequest('a cidr must be specified in the absence of a subnet pool');
  const c = parseCidr(input.cidr, { requirePrefix: true });
  if (!c) throw err.badAttr('cidr', `'${input.cidr}' is not a valid IP subnet`);
  if (c.version !== v) throw versionMismatch('cidr', input.cidr, v);
  if (c.prefix === 0) throw err.invalidInput(`0 is not allowed as CIDR prefix length`);
  let gateway: bigint | null;
  if (input.gateway_ip === undefined) {
    const hosts = hostRange(c);
    gateway = hosts && hosts[0] !== hosts[1] ? hosts[0] : null;
  } else if (input.gateway_ip === null || input.gateway_ip === '') {
    gateway = null;
  } else {
    gateway = checkGateway(c, input.gateway_ip);
  }
  const pools = input.allocation_pools !== undefined ? checkPools(c, input.allocation_pools, gateway) : defaultPools(c, gateway);
  const enableDhcp = input.enable_dhcp ?? true;
  const ra = input.ipv6_ra_mode ?? null;
  const addr = input.ipv6_address_mode ?? null;
  checkIpv6Modes(v, enableDhcp, ra, addr, c);
  const id = newUuid();
  return {
    id, input, project, networkId, cidr: c, gateway, pools, enableDhcp, ra, addr,
    dns: checkNameservers(id, input.dns_nameservers ?? [], deps.cfg.maxDnsNameservers),
    routes: checkHostRoutes(id, v, input.host_routes ?? [], deps.cfg.maxHostRoutes),
  };
}

export async function createSubnets(deps: NetworkDeps, auth: AuthContext, inputs: SubnetInput[]): Promise<SubnetView[]> {
  const plans: SubnetPlan[] = [];
  for (const input of inputs) {
    if (input.network_id === undefined) throw err.badRequest(`Failed to parse request. Required attribute 'network_id' not specified`);
    const net = await visibleNetwork(deps.db, auth, input.network_id);
    const project = ownerOf(auth, input.project);
    authorize(auth, 'create_subnet', networkTarget(net, { project_id: project }));
    plans.push(planSubnet(deps, input, project, net.id));
  }
  const ids = await inTransaction(deps, async (trx) => {
    const out: string[] = [];
    for (const p of plans) {
      // The network's row lock serialises subnet creation on it, so the overlap check holds.
      if ((await store.lockRevision(trx, 'networks', p.networkId)) === undefined) throw err.networkNotFound(p.networkId);
      for (const other of await store.loadSubnets(trx, { networkIds: [p.networkId] })) {
        if (cidrsOverlap(parseCidr(other.cidr)!, p.cidr)) {
          throw err.invalidInput(`Requested subnet with cidr: ${cidrText(p.cidr)} for network: ${p.networkId} overlaps with another subnet`);
        }
      }
      await checkQuota(deps, trx, p.project, 'subnet');
      const id = p.id;
      const at = store.now();
      const v = p.cidr.version;
      await store.insertSubnet(trx, {
        id, project_id: p.project, network_id: p.networkId, name: p.input.name ?? '', ip_version: v, cidr: cidrText(p.cidr),
        gateway_ip: p.gateway === null ? null : formatIp(v, p.gateway), enable_dhcp: p.enableDhcp ? 1 : 0, ipv6_ra_mode: p.ra,
        ipv6_address_mode: p.addr, subnetpool_id: null, segment_id: null, description: p.input.description ?? '',
        created_at: at, updated_at: at, revision_number: 1,
      });
      await store.setPools(trx, id, poolsText(v, p.pools));
      await store.setNameservers(trx, id, p.dns);
      await store.setHostRoutes(trx, id, p.routes);
      if (p.input.tags?.length) await store.setTags(trx, 'subnets', id, p.input.tags);
      // A SLAAC / DHCPv6-stateless subnet gives every port already on the network its EUI-64 address, as Neutron does.
      if (p.addr !== null && AUTO_MODES.includes(p.addr)) {
        const subnet = (await store.getSubnet(trx, id))!;
        for (const port of await store.loadPorts(trx, { networkIds: [p.networkId] })) {
          if (port.device_owner === DEVICE_OWNER_ROUTER_INTF) continue;
          const ip = formatIp(6, eui64(p.cidr, port.mac_address));
          if (!(await store.claimIp(trx, { port_id: port.id, ip_address: ip, subnet_id: subnet.id, network_id: p.networkId }))) throw err.ipAlreadyAllocated(ip, id);
          await store.bump(trx, 'ports', port.id);
        }
      }
      await store.bump(trx, 'networks', p.networkId);
      out.push(id);
    }
    return out;
  });
  notify(deps, 'subnet');
  const subnets = await store.loadSubnets(deps.db, { ids });
  return ids.map((id) => subnetView(subnets.find((s) => s.id === id)!));
}

export async function listSubnets(deps: NetworkDeps, auth: AuthContext): Promise<SubnetView[]> {
  const scope = scopeOf(auth);
  const subnets = await store.loadSubnets(deps.db, scope === undefined ? {} : { visibleTo: scope });
  const nets = await subnetTargets(deps.db, subnets);
  return subnets.filter((s) => {
    const n = nets.get(s.network_id);
    return n !== undefined && allowed(auth, 'get_subnet', networkTarget(n, { project_id: s.project_id }));
  }).map(subnetView);
}

export async function showSubnet(deps: NetworkDeps, auth: AuthContext, id: string): Promise<SubnetView> {
  return subnetView((await visibleSubnet(deps.db, auth, id)).subnet);
}

export async function updateSubnet(deps: NetworkDeps, auth: AuthContext, id: string, input: SubnetInput, expected: number | undefined): Promise<SubnetView> {
  const { subnet: s0, network } = await visibleSubnet(deps.db, auth, id);
  authorize(auth, 'update_subnet', networkTarget(network, { project_id: s0.project_id }));
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'subnets', id);
    if (rev === undefined) throw err.subnetNotFound(id);
    checkRevision(rev, expected);
    const s = (await store.getSubnet(trx, id))!;
    const c = parseCidr(s.cidr)!;
    let changed = false;
    const set: Parameters<typeof store.updateSubnetRow>[2] = {};
    if (input.name !== undefined && input.name !== s.name) set.name = input.name;
    if (input.description !== undefined && input.description !== s.description) set.description = input.description;
    const enableDhcp = input.enable_dhcp ?? s.enable_dhcp;
    if (input.enable_dhcp !== undefined && input.enable_dhcp !== s.enable_dhcp) {
      checkIpv6Modes(s.ip_version, enableDhcp, s.ipv6_ra_mode, s.ipv6_address_mode, c);
      set.enable_dhcp = enableDhcp ? 1 : 0;
    }
    let gateway = s.gateway_ip === null ? null : parseIp(s.gateway_ip)!.value;
    if (input.gateway_ip !== undefined) {
      const next = input.gateway_ip === null || input.gateway_ip === '' ? null : checkGateway(c, input.gateway_ip);
      if (next !== gateway) {
        if (s.gateway_ip !== null) {
          const user = await trx.selectFrom('ip_allocations').innerJoin('ports', 'ports.id', 'ip_allocations.port_id').select('ports.id as id')
            .where('ip_allocations.subnet_id', '=', id).where('ip_allocations.ip_address', '=', s.gateway_ip)
            .where('ports.device_owner', '=', DEVICE_OWNER_ROUTER_INTF).executeTakeFirst();
          if (user) throw new NeutronError(409, `Current gateway ip ${s.gateway_ip} already in use by port ${user.id}. Unable to update.`, 'GatewayIpInUse');
        }
        gateway = next;
        set.gateway_ip = next === null ? null : formatIp(s.ip_version, next);
      }
    }
    if (input.allocation_pools !== undefined) {
      const pools = checkPools(c, input.allocation_pools, gateway);
      await store.setPools(trx, id, poolsText(s.ip_version, pools));
      changed = true;
    } else if (set.gateway_ip !== undefined && gateway !== null) {
      checkGatewayOutsidePools(s.ip_version, poolsOf(s), gateway);
    }
    if (input.dns_nameservers !== undefined) {
      await store.setNameservers(trx, id, checkNameservers(id, input.dns_nameservers, deps.cfg.maxDnsNameservers));
      changed = true;
    }
    if (input.host_routes !== undefined) {
      await store.setHostRoutes(trx, id, checkHostRoutes(id, s.ip_version, input.host_routes, deps.cfg.maxHostRoutes));
      changed = true;
    }
    if (Object.keys(set).length) { await store.updateSubnetRow(trx, id, set); changed = true; }
    if (changed) await store.bump(trx, 'subnets', id);
  });
  notify(deps, 'subnet');
  return subnetView((await store.getSubnet(deps.db, id))!);
}

/**
 * Delete a subnet as Neutron does: addresses of the network's own ports (DHCP) and
 * automatic (SLAAC) addresses are released; an address held by any other port, or by a
 * router interface, keeps the subnet: 409 SubnetInUse.
 */
export async function deleteSubnet(deps: NetworkDeps, auth: AuthContext, id: string, expected: number | undefined): Promise<void> {
  const { subnet, network } = await visibleSubnet(deps.db, auth, id);
  authorize(auth, 'delete_subnet', networkTarget(network, { project_id: subnet.project_id }));
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'subnets', id);
    if (rev === undefined) throw err.subnetNotFound(id);
    checkRevision(rev, expected);
    const s = (await store.getSubnet(trx, id))!;
    const auto = s.ip_version === 6 && s.ipv6_address_mode !== null && AUTO_MODES.includes(s.ipv6_address_mode);
    const allocations = await trx.selectFrom('ip_allocations').innerJoin('ports', 'ports.id', 'ip_allocations.port_id')
      .select(['ports.id as port_id', 'ports.device_owner as owner', 'ip_allocations.ip_address as ip']).where('ip_allocations.subnet_id', '=', id).execute();
    for (const a of allocations) {
      const releasable = AUTO_DELETE_PORT_OWNERS.includes(a.owner) || (auto && a.owner !== DEVICE_OWNER_ROUTER_INTF);
      if (!releasable) throw err.subnetInUse(id);
    }
    for (const a of allocations) {
      await store.releaseIps(trx, a.port_id, [a.ip]);
      await store.bump(trx, 'ports', a.port_id);
    }
    await store.deleteSubnetRow(trx, id);
    await store.bump(trx, 'networks', s.network_id);
  });
  notify(deps, 'subnet');
}

