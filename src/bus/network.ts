import { Type, type Static } from 'typebox';
import { subject } from './index.ts';

/**
 * The protocol between the controller (Neutron's server side) and the network half of
 * the agent on each host. The controller computes, from the database, everything one
 * host must have — its HostNetworkState — and the agent converges the host to it:
 * creates what is missing, fixes what differs, removes what is no longer listed. The
 * agent pulls it at start and every so often (so a hand-deleted bridge comes back), and
 * the controller pushes a `changed` nudge whenever something that host cares about
 * changes, upon which the agent pulls again.
 *
 * Names of host devices and namespaces are derived from ids the way Neutron does
 * (the first 11 characters of the port or network id), see `deviceNames`.
 */

export interface FixedIp {
  subnetId: string;
  ip: string;
  /** Prefix length of the subnet the address is in. */
  prefixLen: number;
}

export interface SubnetState {
  id: string;
  cidr: string;
  ipVersion: 4 | 6;
  gatewayIp: string | null;
  enableDhcp: boolean;
  dnsNameservers: string[];
  hostRoutes: { destination: string; nexthop: string }[];
  /** IPv6 only: slaac | dhcpv6-stateful | dhcpv6-stateless, else null. */
  ipv6AddressMode: string | null;
  ipv6RaMode: string | null;
}

export interface NetworkState {
  id: string;
  type: 'vxlan' | 'flat';
  /** VXLAN network identifier (type vxlan). */
  vni?: number;
  /** The physical network a flat network is on; the agent maps it to a host bridge. */
  physicalNetwork?: string;
  mtu: number;
  subnets: SubnetState[];
  /**
   * Underlay (tunnel) addresses of the other hosts that have this network, for VXLAN
   * head-end replication (flood entries) — no multicast needed.
   */
  peers: string[];
  /** Known addresses on other hosts (l2population): MAC → tunnel address, to pre-fill the FDB. */
  remoteMacs: { mac: string; ip: string; host: string }[];
}

export interface AddressPair {
  /** An address or CIDR the port may also send from. */
  ipAddress: string;
  mac: string;
}

/** A VM's port bound to this host: a tap device on the network's bridge. */
export interface PortState {
  id: string;
  networkId: string;
  mac: string;
  fixedIps: FixedIp[];
  /** The instance the port belongs to (device_id), for the metadata service. */
  deviceId: string;
  portSecurity: boolean;
  securityGroupIds: string[];
  allowedAddressPairs: AddressPair[];
  mtu: number;
  /** admin_state_up: false keeps the port's device down (no traffic; the port reports DOWN). Absent: up. */
  adminStateUp?: boolean;
}

/** A host served by a network's DHCP server. */
export interface DhcpHost {
  portId: string;
  mac: string;
  ip: string;
  hostname: string;
  /** The instance behind the address, when the port belongs to one (metadata lookups). */
  deviceId: string;
}

/** A network whose DHCP server (and metadata proxy) runs on this host. */
export interface DhcpState {
  networkId: string;
  /** The network:dhcp port: its addresses are the DHCP server's (and the metadata route's next hop). */
  port: { id: string; mac: string; fixedIps: FixedIp[] };
  hosts: DhcpHost[];
  /** The DNS domain handed to guests (Neutron's dns_domain, default `openstacklocal`). */
  domain: string;
  leaseSeconds: number;
  mtu: number;
}

export interface RouterInterfaceState {
  portId: string;
  networkId: string;
  subnetId: string;
  mac: string;
  ip: string;
  prefixLen: number;
  cidr: string;
  mtu: number;
}

export interface FloatingIpState {
  id: string;
  floatingIp: string;
  fixedIp: string;
  portId: string;
}

/** A router hosted on this host: a namespace with interfaces on tenant networks and a gateway. */
export interface RouterState {
  id: string;
  gateway?: {
    portId: string;
    networkId: string;
    mac: string;
    fixedIps: (FixedIp & { gatewayIp: string | null; cidr: string })[];
    snat: boolean;
    mtu: number;
  };
  interfaces: RouterInterfaceState[];
  routes: { destination: string; nexthop: string }[];
  floatingIps: FloatingIpState[];
}

export interface SecurityGroupRuleState {
  id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  /** Protocol number as text ('6', '17', '1', '58', ...) or null for any. */
  protocol: string | null;
  portRangeMin: number | null;
  portRangeMax: number | null;
  remoteIpPrefix: string | null;
  remoteGroupId: string | null;
}

export interface SecurityGroupState {
  id: string;
  stateful: boolean;
  rules: SecurityGroupRuleState[];
  /** Addresses of every port in the group (on any host), for remote-group rules. */
  memberIps: string[];
}

export interface HostNetworkState {
  host: string;
  /** Increases with every change the controller makes; the agent logs what it applied. */
  generation: number;
  networks: NetworkState[];
  ports: PortState[];
  dhcp: DhcpState[];
  routers: RouterState[];
  securityGroups: SecurityGroupState[];
}

/** The agent asks for its host's state (at start, on a nudge, and periodically). */
export function networkSubjects(host: string) {
  return {
    /** Controller → agent: something this host has changed; pull again. */
    changed: subject<{ generation: number }>(`gureum.network.${host}.changed`),
  };
}
export const HostNetworkStateRequest = subject<{ host: string }, HostNetworkState>('gureum.network.state');

/**
 * Agent → controller: the ports of this host whose status changed (Neutron's
 * update_device_up/update_device_down, batched). `up`: plugged and working — a VM port's
 * tap is on its bridge, up, held by its instance (carrier), and its filter is loaded; a
 * DHCP or router port's namespace is converged. `down`: no longer so (the instance
 * stopped, the tap went, admin_state_up false). The agent sends only what changed since
 * its last acknowledged report (all of its ports after a start); the controller applies
 * only ports that the host's current state lists, so a late report from a host that lost
 * a router or DHCP server changes nothing.
 */
export const PortStatusReportSchema = Type.Object({
  host: Type.String({ minLength: 1, maxLength: 255 }),
  up: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000 }),
  down: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000 }),
}, { additionalProperties: false });
export type PortStatusReport = Static<typeof PortStatusReportSchema>;
export interface PortStatusResult {
  /** Ports whose status the report changed. */
  changed: number;
  /** Ports the host reported that its state does not list (ignored). */
  ignored: string[];
}
export const PortStatusRequest = subject<PortStatusReport, PortStatusResult>('gureum.network.port-status');

/** Host device and namespace names, derived from ids (Linux names are at most 15 characters). */
export const deviceNames = {
  tap: (portId: string) => `tap${portId.slice(0, 11)}`,
  bridge: (networkId: string) => `brq${networkId.slice(0, 11)}`,
  vxlan: (vni: number) => `vxlan-${vni}`,
  dhcpNamespace: (networkId: string) => `qdhcp-${networkId}`,
  routerNamespace: (routerId: string) => `qrouter-${routerId}`,
  /** Router interface on a tenant network (inside the router namespace) and its host end. */
  routerInterface: (portId: string) => `qr-${portId.slice(0, 11)}`,
  routerGateway: (portId: string) => `qg-${portId.slice(0, 11)}`,
  dhcpInterface: (portId: string) => `ns-${portId.slice(0, 11)}`,
  /** The bridge end of a veth pair whose other end is `name` in a namespace. */
  hostEnd: (name: string) => `v${name}`.slice(0, 15),
};
