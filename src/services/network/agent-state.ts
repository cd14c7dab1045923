import { createHash } from 'node:crypto';
import type { Db } from '../../db/index.ts';
import type {
  DhcpState, FixedIp, HostNetworkState, NetworkState, PortState, RouterState, SecurityGroupState, SubnetState,
} from '../../bus/network.ts';

/**
 * What one host's agent must have, computed from the database (the controller side of the
 * agent protocol in bus/network.ts): the VM ports bound to the host, the networks they and
 * the DHCP servers and routers placed here need, with VXLAN peers and remote MACs, and the
 * security groups of those ports with the member addresses remote-group rules match.
 *
 * DHCP servers and routers are placed by rendezvous hashing over the live network hosts:
 * deterministic (every controller computes the same), and when a host goes away only what
 * it hosted moves.
 */

export interface NetworkHost { host: string; tunnelIp: string }

/** The host among `hosts` that serves the resource `id` (highest hash of id+host wins). */
export function placeOn(id: string, hosts: string[]): string | undefined {
  let best: string | undefined;
  let bestScore = '';
  for (const h of hosts) {
    const score = createHash('sha1').update(`${id}\0${h}`).digest('hex');
    if (best === undefined || score > bestScore) { best = h; bestScore = score; }
  }
  return best;
}

interface Snapshot {
  networks: Map<string, { id: string; mtu: number; type: string; vni: number; physnet: string; external: boolean; dnsDomain: string }>;
  subnets: Map<string, SubnetState & { networkId: string; prefixLen: number }>;
  ports: Map<string, {
    id: string; networkId: string; mac: string; deviceId: string; deviceOwner: string; dnsName: string; portSecurity: boolean; adminUp: boolean;
    host: string; fixedIps: FixedIp[]; groups: string[]; pairs: { ipAddress: string; mac: string }[];
  }>;
  routers: { id: string; gwNetworkId: string | null; gwPortId: string | null; snat: boolean; adminUp: boolean }[];
  routerPorts: { routerId: string; portId: string; type: string }[];
  routerRoutes: { routerId: string; destination: string; nexthop: string }[];
  floatingIps: { id: string; routerId: string | null; address: string; fixedIp: string | null; fixedPortId: string | null }[];
  rules: Map<string, SecurityGroupState>;
}

async function snapshot(db: Db): Promise<Snapshot> {
  const [nets, segs, subs, dns, routes, ports, ips, bindings, sgb, pairs, routers, rports, rroutes, fips, groups, rules] = await Promise.all([
    db.selectFrom('networks').select(['id', 'mtu', 'router_external', 'dns_domain']).execute(),
    db.selectFrom('network_segments').select(['network_id', 'network_type', 'physical_network', 'segmentation_id']).execute(),
    db.selectFrom('subnets').select(['id', 'network_id', 'cidr', 'ip_version', 'gateway_ip', 'enable_dhcp', 'ipv6_address_mode', 'ipv6_ra_mode']).execute(),
    db.selectFrom('subnet_dns_nameservers').select(['subnet_id', 'address', 'position']).orderBy('position').execute(),
    db.selectFrom('subnet_routes').select(['subnet_id', 'destination', 'nexthop']).execute(),
    db.selectFrom('ports').select(['id', 'network_id', 'mac_address', 'device_id', 'device_owner', 'dns_name', 'port_security_enabled', 'admin_state_up']).execute(),
    db.selectFrom('ip_allocations').select(['port_id', 'ip_address', 'subnet_id']).execute(),
    db.selectFrom('port_bindings').select(['port_id', 'host']).execute(),
    db.selectFrom('port_security_group_bindings').select(['port_id', 'security_group_id']).execute(),
    db.selectFrom('port_allowed_address_pairs').select(['port_id', 'ip_address', 'mac_address']).execute(),
    db.selectFrom('routers').select(['id', 'gw_network_id', 'gw_port_id', 'enable_snat', 'admin_state_up']).execute(),
    db.selectFrom('router_ports').select(['router_id', 'port_id', 'port_type']).execute(),
    db.selectFrom('router_routes').select(['router_id', 'destination', 'nexthop']).execute(),
    db.selectFrom('floatingips').select(['id', 'router_id', 'floating_ip_address', 'fixed_ip_address', 'fixed_port_id']).execute(),
    db.selectFrom('security_groups').select(['id', 'stateful']).execute(),
    db.selectFrom('security_group_rules').select(['id', 'security_group_id', 'direction', 'ethertype', 'protocol', 'port_range_min', 'port_range_max', 'remote_ip_prefix', 'remote_group_id']).execute(),
  ]);
  const seg = new Map(segs.map((s) => [s.network_id, s]));
  const networks = new Map(nets.map((n) => {
    const s = seg.get(n.id);
    return [n.id, {
      id: n.id, mtu: n.mtu, type: s?.network_type ?? 'vxlan', vni: s?.segmentation_id ?? 0, physnet: s?.physical_network ?? '',
      external: n.router_external === 1, dnsDomain: n.dns_domain,
    }];
  }));
  const subnets = new Map(subs.map((s) => [s.id, {
    id: s.id, networkId: s.network_id, cidr: s.cidr, ipVersion: s.ip_version as 4 | 6, gatewayIp: s.gateway_ip, enableDhcp: s.enable_dhcp === 1,
    dnsNameservers: dns.filter((d) => d.subnet_id === s.id).map((d) => d.address),
    hostRoutes: routes.filter((r) => r.subnet_id === s.id).map((r) => ({ destination: r.destination, nexthop: r.nexthop })),
    ipv6AddressMode: s.ipv6_address_mode, ipv6RaMode: s.ipv6_ra_mode, prefixLen: Number(s.cidr.split('/')[1]),
  }]));
  const hostOf = new Map(bindings.map((b) => [b.port_id, b.host]));
  const byPort = <T extends { port_id: string }>(rows: T[]) => {
    const m = new Map<string, T[]>();
    for (const r of rows) { const l = m.get(r.port_id); if (l) l.push(r); else m.set(r.port_id, [r]); }
    return m;
  };
  const ipsOf = byPort(ips);
  const groupsOf = byPort(sgb);
  const pairsOf = byPort(pairs);
  const portMap = new Map(ports.map((p) => [p.id, {
    id: p.id, networkId: p.network_id, mac: p.mac_address, deviceId: p.device_id, deviceOwner: p.device_owner, dnsName: p.dns_name,
    portSecurity: p.port_security_enabled === 1, adminUp: p.admin_state_up === 1, host: hostOf.get(p.id) ?? '',
    fixedIps: (ipsOf.get(p.id) ?? []).map((a) => ({ subnetId: a.subnet_id, ip: a.ip_address, prefixLen: subnets.get(a.subnet_id)?.prefixLen ?? 32 })),
    groups: (groupsOf.get(p.id) ?? []).map((g) => g.security_group_id),
    pairs: (pairsOf.get(p.id) ?? []).map((a) => ({ ipAddress: a.ip_address, mac: a.mac_address })),
  }]));
  const ruleMap = new Map<string, SecurityGroupState>(groups.map((g) => [g.id, { id: g.id, stateful: g.stateful === 1, rules: [], memberIps: [] }]));
  for (const r of rules) {
    ruleMap.get(r.security_group_id)?.rules.push({
      id: r.id, direction: r.direction as 'ingress' | 'egress', ethertype: r.ethertype as 'IPv4' | 'IPv6', protocol: r.protocol,
      portRangeMin: r.port_range_min, portRangeMax: r.port_range_max, remoteIpPrefix: r.remote_ip_prefix, remoteGroupId: r.remote_group_id,
    });
  }
  return {
    networks, subnets, ports: portMap,
    routers: routers.map((r) => ({ id: r.id, gwNetworkId: r.gw_network_id, gwPortId: r.gw_port_id, snat: r.enable_snat === 1, adminUp: r.admin_state_up === 1 })),
    routerPorts: rports.map((r) => ({ routerId: r.router_id, portId: r.port_id, type: r.port_type })),
    routerRoutes: rroutes.map((r) => ({ routerId: r.router_id, destination: r.destination, nexthop: r.nexthop })),
    floatingIps: fips.map((f) => ({ id: f.id, routerId: f.router_id, address: f.floating_ip_address, fixedIp: f.fixed_ip_address, fixedPortId: f.fixed_port_id })),
    rules: ruleMap,
  };
}

const isVmPort = (owner: string) => owner.startsWith('compute:');

/** Neutron's DHCP host name for an address without a DNS name: host-10-0-0-5. */
function dhcpHostname(dnsName: string, ip: string): string {
  return dnsName || `host-${ip.replace(/[.:]/g, '-')}`;
}

/** The desired state of every live network host at once (one database read for all of them). */
export async function hostNetworkStates(db: Db, hosts: NetworkHost[], generation: number): Promise<Map<string, HostNetworkState>> {
  const snap = await snapshot(db);
  const names = hosts.map((h) => h.host).sort();
  const tunnel = new Map(hosts.map((h) => [h.host, h.tunnelIp]));

  // Where each thing lives: VM ports by binding, DHCP ports and routers by placement.
  const dhcpHost = new Map<string, string>();
  for (const n of snap.networks.values()) {
    const hasDhcp = [...snap.subnets.values()].some((s) => s.networkId === n.id && s.enableDhcp);
    const h = hasDhcp ? placeOn(n.id, names) : undefined;
    if (h) dhcpHost.set(n.id, h);
  }
  const routerHost = new Map<string, string>();
  for (const r of snap.routers) { const h = placeOn(r.id, names); if (h) routerHost.set(r.id, h); }
  const routerOfPort = new Map(snap.routerPorts.map((rp) => [rp.portId, rp.routerId]));
  const locationOf = (p: Snapshot['ports'] extends Map<string, infer P> ? P : never): string | undefined => {
    if (isVmPort(p.deviceOwner)) return p.host || undefined;
    if (p.deviceOwner === 'network:dhcp') return dhcpHost.get(p.networkId);
    const r = routerOfPort.get(p.id);
    return r ? routerHost.get(r) : undefined;
  };
  const location = new Map<string, string>();
  for (const p of snap.ports.values()) { const l = locationOf(p); if (l) location.set(p.id, l); }
  const hostsOfNetwork = new Map<string, Set<string>>();
  for (const p of snap.ports.values()) {
    const l = location.get(p.id);
    if (!l) continue;
    const s = hostsOfNetwork.get(p.networkId) ?? new Set<string>();
    s.add(l);
    hostsOfNetwork.set(p.networkId, s);
  }
  const groupMembers = new Map<string, string[]>();
  for (const p of snap.ports.values()) {
    for (const g of p.groups) {
      const l = groupMembers.get(g) ?? [];
      l.push(...p.fixedIps.map((f) => f.ip), ...p.pairs.map((a) => a.ipAddress));
      groupMembers.set(g, l);
    }
  }

  const out = new Map<string, HostNetworkState>();
  for (const host of names) {
    const netIds = new Set<string>();
    const ports: PortState[] = [];
    for (const p of snap.ports.values()) {
      if (!isVmPort(p.deviceOwner) || p.host !== host) continue;
      const net = snap.networks.get(p.networkId);
      if (!net) continue;
      netIds.add(p.networkId);
      ports.push({
        id: p.id, networkId: p.networkId, mac: p.mac, fixedIps: p.fixedIps, deviceId: p.deviceId, portSecurity: p.portSecurity,
        securityGroupIds: p.portSecurity ? p.groups : [], allowedAddressPairs: p.portSecurity ? p.pairs : [], mtu: net.mtu,
        adminStateUp: p.adminUp,
      });
    }

    const dhcp: DhcpState[] = [];
    for (const [netId, h] of dhcpHost) {
      if (h !== host) continue;
      const net = snap.networks.get(netId)!;
      const port = [...snap.ports.values()].find((p) => p.networkId === netId && p.deviceOwner === 'network:dhcp');
      if (!port) continue; // made by the controller's reconcile; the next state has it
      netIds.add(netId);
      const hostsList = [...snap.ports.values()]
        .filter((p) => p.networkId === netId && p.id !== port.id)
        .flatMap((p) => p.fixedIps.filter((f) => snap.subnets.get(f.subnetId)?.enableDhcp).map((f) => ({
          portId: p.id, mac: p.mac, ip: f.ip, hostname: dhcpHostname(p.dnsName, f.ip), deviceId: isVmPort(p.deviceOwner) ? p.deviceId : '',
        })));
      dhcp.push({
        networkId: netId, port: { id: port.id, mac: port.mac, fixedIps: port.fixedIps }, hosts: hostsList,
        domain: net.dnsDomain ? net.dnsDomain.replace(/\.$/, '') : 'openstacklocal', leaseSeconds: 86400, mtu: net.mtu,
      });
    }

    const routers: RouterState[] = [];
    for (const r of snap.routers) {
      if (routerHost.get(r.id) !== host || !r.adminUp) continue;
      const interfaces = snap.routerPorts.filter((rp) => rp.routerId === r.id && rp.type === 'network:router_interface').flatMap((rp) => {
        const p = snap.ports.get(rp.portId);
        if (!p) return [];
        netIds.add(p.networkId);
        const mtu = snap.networks.get(p.networkId)?.mtu ?? 1500;
        return p.fixedIps.map((f) => ({
          portId: p.id, networkId: p.networkId, subnetId: f.subnetId, mac: p.mac, ip: f.ip, prefixLen: f.prefixLen,
          cidr: snap.subnets.get(f.subnetId)?.cidr ?? '', mtu,
        }));
      });
      const gwPort = r.gwPortId ? snap.ports.get(r.gwPortId) : undefined;
      let gateway: RouterState['gateway'];
      if (gwPort) {
        netIds.add(gwPort.networkId);
        gateway = {
          portId: gwPort.id, networkId: gwPort.networkId, mac: gwPort.mac, snat: r.snat, mtu: snap.networks.get(gwPort.networkId)?.mtu ?? 1500,
          fixedIps: gwPort.fixedIps.map((f) => ({ ...f, gatewayIp: snap.subnets.get(f.subnetId)?.gatewayIp ?? null, cidr: snap.subnets.get(f.subnetId)?.cidr ?? '' })),
        };
      }
      routers.push({
        id: r.id, gateway, interfaces,
        routes: snap.routerRoutes.filter((x) => x.routerId === r.id).map((x) => ({ destination: x.destination, nexthop: x.nexthop })),
        floatingIps: snap.floatingIps.filter((f) => f.routerId === r.id && f.fixedIp && f.fixedPortId)
          .map((f) => ({ id: f.id, floatingIp: f.address, fixedIp: f.fixedIp!, portId: f.fixedPortId! })),
      });
    }

    const networks: NetworkState[] = [...netIds].map((id) => {
      const n = snap.networks.get(id)!;
      const peers = [...(hostsOfNetwork.get(id) ?? [])].filter((h) => h !== host).map((h) => tunnel.get(h)).filter((ip): ip is string => !!ip);
      const remoteMacs = [...snap.ports.values()].filter((p) => p.networkId === id && location.get(p.id) && location.get(p.id) !== host)
        .map((p) => ({ mac: p.mac, ip: tunnel.get(location.get(p.id)!) ?? '', host: location.get(p.id)! })).filter((m) => m.ip);
      return {
        id, type: n.type === 'flat' ? 'flat' as const : 'vxlan' as const, ...(n.type === 'flat' ? { physicalNetwork: n.physnet } : { vni: n.vni }),
        mtu: n.mtu, subnets: [...snap.subnets.values()].filter((s) => s.networkId === id).map(({ networkId: _n, prefixLen: _p, ...s }) => s),
        peers: [...new Set(peers)], remoteMacs,
      };
    });

    const groupIds = new Set(ports.flatMap((p) => p.securityGroupIds));
    for (const g of [...groupIds]) for (const r of snap.rules.get(g)?.rules ?? []) if (r.remoteGroupId) groupIds.add(r.remoteGroupId);
    const securityGroups = [...groupIds].map((g) => snap.rules.get(g)).filter((g): g is SecurityGroupState => !!g)
      .map((g) => ({ ...g, memberIps: [...new Set(groupMembers.get(g.id) ?? [])] }));

    out.set(host, { host, generation, networks, ports, dhcp, routers, securityGroups });
  }
  return out;
}

/** Networks that need a DHCP port (a DHCP-enabled subnet, no network:dhcp port yet). */
export async function networksMissingDhcpPort(db: Db): Promise<string[]> {
  const withDhcp = await db.selectFrom('subnets').select('network_id').where('enable_dhcp', '=', 1).distinct().execute();
  const have = new Set((await db.selectFrom('ports').select('network_id').where('device_owner', '=', 'network:dhcp').execute()).map((r) => r.network_id));
  return withDhcp.map((r) => r.network_id).filter((id) => !have.has(id));
}
