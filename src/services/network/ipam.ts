import { err } from './errors.ts';
import {
  cidrContains, cidrText, eui64, firstIp, formatIp, lastIp, parseCidr, parseIp, type Cidr, type IpVersion,
} from './netaddr.ts';
import * as store from './store.ts';
import type { AllocationPool, FixedIp, SubnetRecord } from './types.ts';

/**
 * IP address management: allocation pools (defaults and checks) and address allocation.
 *
 * No address is ever handed out twice: every address a port holds is a row of
 * ip_allocations whose primary key is (network_id, ip_address), and claiming one is an
 * INSERT ... ON CONFLICT DO NOTHING. Whoever inserts first wins; a loser (another
 * request, another controller process on the same PostgreSQL) sees nothing inserted and
 * moves on to the next free address. Picking "the lowest free address" never scans a
 * subnet: it walks the pools against the sorted list of taken addresses, so its cost
 * grows with the number of allocations, not with the size of the subnet.
 */

export type Range = [bigint, bigint];

/** "10.0.0.2-10.0.0.9", as Neutron prints a range in its errors. */
export const rangeText = (v: IpVersion, r: Range): string => `${formatIp(v, r[0])}-${formatIp(v, r[1])}`;

/** The usable host range of a subnet: no network address, and no broadcast address for IPv4. */
export function hostRange(c: Cidr): Range | null {
  const first = firstIp(c);
  const last = lastIp(c);
  if (first === last) return [first, last];
  const lo = first + 1n;
  const hi = c.version === 4 ? last - 1n : last;
  return lo > hi ? null : [lo, hi];
}

/** Neutron's default pools: the host range minus the gateway (split around it when inside). */
export function defaultPools(c: Cidr, gateway: bigint | null): Range[] {
  const r = hostRange(c);
  if (!r) return [];
  if (gateway === null || gateway < r[0] || gateway > r[1]) return [r];
  const out: Range[] = [];
  if (gateway > r[0]) out.push([r[0], gateway - 1n]);
  if (gateway < r[1]) out.push([gateway + 1n, r[1]]);
  return out;
}

export function poolsOf(s: Pick<SubnetRecord, 'allocation_pools'>): Range[] {
  return s.allocation_pools.map((p) => [parseIp(p.start)!.value, parseIp(p.end)!.value] as Range).sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

export function poolsText(v: IpVersion, pools: Range[]): AllocationPool[] {
  return pools.map(([s, e]) => ({ start: formatIp(v, s), end: formatIp(v, e) }));
}

/**
 * Parse and check requested pools against the subnet and its gateway, with Neutron's
 * errors: malformed or reversed → InvalidAllocationPool (400), outside the subnet's host
 * range → OutOfBoundsAllocationPool (400), overlapping → OverlappingAllocationPools
 * (409), containing the gateway → GatewayConflictWithAllocationPools (409).
 */
export function checkPools(c: Cidr, requested: { start?: unknown; end?: unknown }[], gateway: bigint | null): Range[] {
  const cidr = cidrText(c);
  const hosts = hostRange(c);
  const pools: Range[] = [];
  for (const p of requested) {
    const start = parseIp(p.start);
    const end = parseIp(p.end);
    const shown = `${String(p.start)}-${String(p.end)}`;
    if (!start || !end || start.version !== c.version || end.version !== c.version || end.value < start.value) {
      throw err.invalidAllocationPool(shown);
    }
    if (!hosts || start.value < hosts[0] || end.value > hosts[1]) throw err.outOfBoundsPool(rangeText(c.version, [start.value, end.value]), cidr);
    pools.push([start.value, end.value]);
  }
  pools.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 1; i < pools.length; i++) {
    if (pools[i]![0] <= pools[i - 1]![1]) throw err.overlappingPools(rangeText(c.version, pools[i - 1]!), rangeText(c.version, pools[i]!), cidr);
  }
  if (gateway !== null) checkGatewayOutsidePools(c.version, pools, gateway);
  return pools;
}

export function checkGatewayOutsidePools(v: IpVersion, pools: Range[], gateway: bigint): void {
  const hit = pools.find(([s, e]) => gateway >= s && gateway <= e);
  if (hit) throw err.gatewayConflictsWithPool(formatIp(v, gateway), rangeText(v, hit));
}

/** Index of the first element >= x in a sorted array. */
function lowerBound(xs: bigint[], x: bigint): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/**
 * The lowest address of the (sorted, disjoint) pools not in `taken` (sorted ascending),
 * or null when the pools are full. Cost: a binary search per pool plus the taken
 * addresses inside it.
 */
export function lowestFree(pools: Range[], taken: bigint[]): bigint | null {
  for (const [start, end] of pools) {
    let candidate = start;
    for (let i = lowerBound(taken, start); i < taken.length && taken[i]! <= end; i++) {
      if (taken[i]! === candidate) candidate++;
      else if (taken[i]! > candidate) break;
    }
    if (candidate <= end) return candidate;
  }
  return null;
}

function insertSorted(xs: bigint[], x: bigint): void {
  xs.splice(lowerBound(xs, x), 0, x);
}

const isAutoAddress = (s: SubnetRecord): boolean => s.ip_version === 6 && (s.ipv6_address_mode === 'slaac' || s.ipv6_address_mode === 'dhcpv6-stateless');

interface PortRef { id: string; network_id: string; mac_address: string; device_owner: string }

/** Claim the lowest free pool address of a subnet for a port; null when the pools are full. */
export async function claimLowest(db: store.Q, subnet: SubnetRecord, port: PortRef): Promise<string | null> {
  const pools = poolsOf(subnet);
  const taken = (await store.allocatedIps(db, subnet.id)).map((t) => parseIp(t)!.value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (;;) {
    const candidate = lowestFree(pools, taken);
    if (candidate === null) return null;
    const ip = formatIp(subnet.ip_version, candidate);
    if (await store.claimIp(db, { port_id: port.id, ip_address: ip, subnet_id: subnet.id, network_id: port.network_id })) return ip;
    // Someone else (a concurrent request or another controller) took it first: next one.
    insertSorted(taken, candidate);
  }
}

/** Claim a given address; IpAddressAlreadyAllocated (409) when it is taken. */
export async function claimExact(db: store.Q, subnet: SubnetRecord, port: PortRef, ip: string): Promise<void> {
  if (!(await store.claimIp(db, { port_id: port.id, ip_address: ip, subnet_id: subnet.id, network_id: port.network_id }))) {
    throw err.ipAlreadyAllocated(ip, subnet.id);
  }
}

const ROUTER_PORT_OWNERS = ['network:router_interface', 'network:router_interface_distributed', 'network:ha_router_replicated_interface', 'network:router_gateway'];

/** A requested fixed IP, after checking it against the network's subnets. */
export type FixedIpRequest = { subnet: SubnetRecord; ip?: string };

/**
 * Resolve a port's requested fixed_ips (by subnet_id and/or ip_address) against the
 * subnets of its network: InvalidIpForSubnet when the address is not in the named subnet
 * (or is its network/broadcast address), InvalidIpForNetwork when it is in none of them,
 * a 400 for a subnet of another network or an address in an automatic-address subnet.
 */
export function resolveFixedIps(networkId: string, subnets: SubnetRecord[], requested: { subnet_id?: string; ip_address?: string }[], maxPerPort = 5, deviceOwner = ''): FixedIpRequest[] {
  // A router's ports take a chosen address even in a SLAAC/DHCPv6-stateless subnet (the gateway_ip), as Neutron's router ports do.
  const routerPort = ROUTER_PORT_OWNERS.includes(deviceOwner);
  if (requested.length > maxPerPort) throw err.badRequest('Exceeded maximum amount of fixed ips per port.');
  const out: FixedIpRequest[] = [];
  for (const r of requested) {
    let subnet: SubnetRecord | undefined;
    if (r.subnet_id !== undefined) {
      subnet = subnets.find((s) => s.id === r.subnet_id);
      if (!subnet) throw err.invalidInput(`Failed to create port on network ${networkId}, because fixed_ips included invalid subnet ${r.subnet_id}`);
    }
    if (r.ip_address === undefined) {
      if (!subnet) throw err.badAttr('fixed_ips', `'${JSON.stringify(r)}' names neither subnet_id nor ip_address`);
      out.push({ subnet });
      continue;
    }
    const ip = parseIp(r.ip_address);
    if (!ip) throw err.badAttr('fixed_ips', `'${r.ip_address}' is not a valid IP address`);
    const text = formatIp(ip.version, ip.value);
    if (!subnet) {
      subnet = subnets.find((s) => cidrContains(parseCidr(s.cidr)!, ip));
      if (!subnet) throw err.invalidIpForNetwork(text);
    }
    const c = parseCidr(subnet.cidr)!;
    const hosts = hostRange(c);
    if (!cidrContains(c, ip) || !hosts || ip.value < hosts[0] || ip.value > hosts[1]) throw err.invalidIpForSubnet(text);
    if (isAutoAddress(subnet) && !routerPort) {
      throw err.badRequest(`IPv6 address ${text} cannot be directly assigned to a port on subnet ${subnet.id} since the subnet is configured for automatic addresses`);
    }
    out.push({ subnet, ip: text });
  }
  return out;
}

/**
 * Allocate a port's addresses inside the caller's transaction. With `requested`
 * (resolved fixed_ips) exactly those; without, Neutron's defaults: one IPv4 address from
 * the first IPv4 subnet with room, one from the first stateful IPv6 subnet with room, and
 * the EUI-64 address in every SLAAC / DHCPv6-stateless subnet. Returns what was claimed.
 */
export async function allocate(db: store.Q, port: PortRef, subnets: SubnetRecord[], requested: FixedIpRequest[] | undefined): Promise<FixedIp[]> {
  const out: FixedIp[] = [];
  if (requested) {
    for (const r of requested) {
      if (r.ip) {
        await claimExact(db, r.subnet, port, r.ip);
        out.push({ subnet_id: r.subnet.id, ip_address: r.ip });
      } else if (isAutoAddress(r.subnet)) {
        const ip = formatIp(6, eui64(parseCidr(r.subnet.cidr)!, port.mac_address));
        await claimExact(db, r.subnet, port, ip);
        out.push({ subnet_id: r.subnet.id, ip_address: ip });
      } else {
        const ip = await claimLowest(db, r.subnet, port);
        if (ip === null) throw err.ipGenerationFailure(port.network_id);
        out.push({ subnet_id: r.subnet.id, ip_address: ip });
      }
    }
    return out;
  }
  const v4 = subnets.filter((s) => s.ip_version === 4);
  const v6Stateful = subnets.filter((s) => s.ip_version === 6 && !isAutoAddress(s));
  const v6Auto = subnets.filter(isAutoAddress);
  for (const group of [v4, v6Stateful]) {
    if (!group.length) continue;
    let got: FixedIp | undefined;
    for (const s of group) {
      const ip = await claimLowest(db, s, port);
      if (ip !== null) { got = { subnet_id: s.id, ip_address: ip }; break; }
    }
    if (!got) throw err.ipGenerationFailure(port.network_id);
    out.push(got);
  }
  if (port.device_owner !== 'network:router_interface') {
    for (const s of v6Auto) {
      const ip = formatIp(6, eui64(parseCidr(s.cidr)!, port.mac_address));
      await claimExact(db, s, port, ip);
      out.push({ subnet_id: s.id, ip_address: ip });
    }
  }
  return out;
}
