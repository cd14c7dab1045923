import type { Db } from '../../db/index.ts';
import type { Logger } from '../../common/logger.ts';

/** A JSON value, as resource views are made of. */
export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
/** Any resource view (what the API returns for one resource), before `fields` projection. */
export type View = { [k: string]: Json | undefined };

/**
 * Resource views, shaped as Neutron returns them (attribute names included). Admin-only
 * attributes (provider:*, binding:*) are optional: they are absent from a non-admin's view.
 */
export type NetworkView = {
  id: string; name: string; project_id: string; tenant_id: string; status: string; admin_state_up: boolean;
  shared: boolean; 'router:external': boolean; is_default: boolean; mtu: number; port_security_enabled: boolean;
  availability_zone_hints: string[]; availability_zones: string[]; dns_domain: string; subnets: string[];
  description: string; tags: string[]; created_at: string; updated_at: string; revision_number: number;
  'provider:network_type'?: string; 'provider:physical_network'?: string | null; 'provider:segmentation_id'?: number | null;
};

export type AllocationPool = { start: string; end: string };
export type HostRoute = { destination: string; nexthop: string };
export type SubnetView = {
  id: string; name: string; network_id: string; project_id: string; tenant_id: string; ip_version: number; cidr: string;
  gateway_ip: string | null; allocation_pools: AllocationPool[]; dns_nameservers: string[]; host_routes: HostRoute[];
  enable_dhcp: boolean; ipv6_ra_mode: string | null; ipv6_address_mode: string | null; subnetpool_id: string | null;
  description: string; tags: string[]; created_at: string; updated_at: string; revision_number: number;
};

export type FixedIp = { subnet_id: string; ip_address: string };
export type AddressPair = { ip_address: string; mac_address: string };
export type ExtraDhcpOpt = { opt_name: string; opt_value: string; ip_version: number };
export type DnsAssignment = { hostname: string; ip_address: string; fqdn: string };
export type PortView = {
  id: string; name: string; network_id: string; project_id: string; tenant_id: string; mac_address: string;
  admin_state_up: boolean; status: string; device_id: string; device_owner: string; fixed_ips: FixedIp[];
  security_groups: string[]; port_security_enabled: boolean; allowed_address_pairs: AddressPair[];
  extra_dhcp_opts: ExtraDhcpOpt[]; dns_name: string; dns_assignment: DnsAssignment[];
  description: string; tags: string[]; created_at: string; updated_at: string; revision_number: number;
  'binding:host_id'?: string; 'binding:vif_type'?: string; 'binding:vif_details'?: { [k: string]: Json };
  'binding:vnic_type'?: string; 'binding:profile'?: { [k: string]: Json };
};

export type SecurityGroupRuleView = {
  id: string; security_group_id: string; direction: string; ethertype: string; protocol: string | null;
  port_range_min: number | null; port_range_max: number | null; remote_ip_prefix: string | null;
  normalized_cidr: string | null; remote_group_id: string | null; description: string; project_id: string;
  tenant_id: string; created_at: string; updated_at: string; revision_number: number;
};
export type SecurityGroupView = {
  id: string; name: string; description: string; project_id: string; tenant_id: string; stateful: boolean;
  security_group_rules: SecurityGroupRuleView[]; tags: string[]; created_at: string; updated_at: string; revision_number: number;
};

/** Records as the store returns them (booleans as booleans, JSON parsed, related rows attached). */
export interface NetworkRecord {
  id: string; project_id: string; name: string; status: string; admin_state_up: boolean; shared: boolean;
  router_external: boolean; is_default: boolean; mtu: number; port_security_enabled: boolean;
  availability_zone_hints: string[]; dns_domain: string; description: string; created_at: string; updated_at: string;
  revision_number: number; network_type: string; physical_network: string | null; segmentation_id: number | null;
  subnets: string[]; tags: string[];
}
export interface SubnetRecord {
  id: string; project_id: string; network_id: string; name: string; ip_version: 4 | 6; cidr: string; gateway_ip: string | null;
  enable_dhcp: boolean; ipv6_ra_mode: string | null; ipv6_address_mode: string | null; subnetpool_id: string | null;
  description: string; created_at: string; updated_at: string; revision_number: number;
  allocation_pools: AllocationPool[]; dns_nameservers: string[]; host_routes: HostRoute[]; tags: string[];
}
export interface PortBinding { host: string; vif_type: string; vnic_type: string; profile: { [k: string]: Json }; vif_details: { [k: string]: Json } }
export interface PortRecord {
  id: string; project_id: string; network_id: string; name: string; mac_address: string; admin_state_up: boolean;
  status: string; device_id: string; device_owner: string; port_security_enabled: boolean; dns_name: string;
  description: string; created_at: string; updated_at: string; revision_number: number;
  fixed_ips: FixedIp[]; security_groups: string[]; allowed_address_pairs: AddressPair[]; extra_dhcp_opts: ExtraDhcpOpt[];
  binding: PortBinding; tags: string[];
}
export interface SecurityGroupRuleRecord {
  id: string; project_id: string; security_group_id: string; remote_group_id: string | null; direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6'; protocol: string | null; port_range_min: number | null; port_range_max: number | null;
  remote_ip_prefix: string | null; description: string; created_at: string; updated_at: string; revision_number: number;
}
export interface SecurityGroupRecord {
  id: string; project_id: string; name: string; stateful: boolean; description: string; created_at: string;
  updated_at: string; revision_number: number; rules: SecurityGroupRuleRecord[]; tags: string[];
}

/** Settings of the network service (gureum.yaml `network:` section). */
export interface NetworkConfig {
  /** VXLAN network identifiers handed to new tenant networks, lowest free first. */
  vniMin: number;
  vniMax: number;
  /** Physical networks a flat network may be put on (the agent maps each to a host bridge). */
  physicalNetworks: string[];
  /** MTUs of each network type (VXLAN's 50 bytes of encapsulation come off 1500). */
  vxlanMtu: number;
  flatMtu: number;
  /** The DNS domain of ports' dns_assignment (Neutron's dns_domain option). */
  dnsDomain: string;
  availabilityZones: string[];
  maxDnsNameservers: number;
  maxHostRoutes: number;
  maxAllowedAddressPairs: number;
  /** The first three octets of generated MAC addresses. */
  macPrefix: string;
  quotas: Record<string, number>;
}

export const DEFAULT_QUOTAS: Record<string, number> = {
  network: 100, subnet: 100, port: 500, router: 10, floatingip: 50, security_group: 10, security_group_rule: 100,
  rbac_policy: 10, subnetpool: -1,
};

export const DEFAULT_NETWORK_CONFIG: NetworkConfig = {
  vniMin: 1, vniMax: 16777215, physicalNetworks: ['public'], vxlanMtu: 1450, flatMtu: 1500, dnsDomain: 'openstacklocal.',
  availabilityZones: ['nova'], maxDnsNameservers: 5, maxHostRoutes: 20, maxAllowedAddressPairs: 10, macPrefix: 'fa:16:3e',
  quotas: DEFAULT_QUOTAS,
};

export interface NetworkDeps {
  db: Db;
  log: Logger;
  cfg: NetworkConfig;
  /**
   * Called after every committed change that may matter to a host (networks, subnets,
   * ports, security groups and rules): the controller nudges the agents (AgentSync).
   */
  changed?: (what: string) => void;
}

/** Device owners Neutron treats as the network's own (DHCP, router ports): no security groups, no port security. */
export const DEVICE_OWNER_DHCP = 'network:dhcp';
export const DEVICE_OWNER_ROUTER_INTF = 'network:router_interface';
export const DEVICE_OWNER_ROUTER_GW = 'network:router_gateway';
export const DEVICE_OWNER_FLOATINGIP = 'network:floatingip';
/** Ports deleted along with their network (Neutron's AUTO_DELETE_PORT_OWNERS). */
export const AUTO_DELETE_PORT_OWNERS = [DEVICE_OWNER_DHCP, 'network:distributed', 'network:agent_gateway'];
export const isTrustedOwner = (owner: string): boolean => owner.startsWith('network:');
