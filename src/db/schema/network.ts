/**
 * Neutron's tables (migration 008_network): the L2 core (networks and their segment,
 * subnets, ports, IP allocations, port bindings), security groups, and the L3 tables
 * (routers, router ports and routes, floating IPs, port forwardings) that the L3 API
 * builds on. Booleans are 0/1, times ISO-8601 UTC text ('2026-01-02T03:04:05Z'), JSON
 * documents text, IP addresses their canonical text form (lower-case, IPv6 compressed),
 * so equal addresses are equal strings and the unique indexes mean what they say.
 *
 * Every resource table carries Neutron's standard attributes: description, created_at,
 * updated_at and revision_number (bumped on every change; If-Match checks it).
 */
interface StandardAttributes { description: string; created_at: string; updated_at: string; revision_number: number }

export interface NetworkTable extends StandardAttributes {
  id: string; project_id: string; name: string; status: string; admin_state_up: number; shared: number;
  /** router:external */
  router_external: number;
  /** The default external network (auto-allocated topology); only meaningful with router_external. */
  is_default: number; mtu: number; port_security_enabled: number;
  /** JSON array of availability zone names. */
  availability_zone_hints: string;
  dns_domain: string;
}

/**
 * The network's segment (one per network). UNIQUE (network_type, physical_network,
 * segmentation_id): a VXLAN network identifier is used once (physical_network ''), and a
 * flat physical network carries one network (segmentation_id 0). No NULLs, so the index
 * really is unique in both SQLite and PostgreSQL.
 */
export interface NetworkSegmentTable {
  id: string; network_id: string; network_type: string; physical_network: string; segmentation_id: number;
  segment_index: number; created_at: string;
}

export interface SubnetTable extends StandardAttributes {
  id: string; project_id: string; network_id: string; name: string; ip_version: number;
  /** Normalised network address and prefix ('10.0.0.0/24', '2001:db8::/64'). */
  cidr: string; gateway_ip: string | null; enable_dhcp: number;
  ipv6_ra_mode: string | null; ipv6_address_mode: string | null; subnetpool_id: string | null; segment_id: string | null;
}
export interface SubnetAllocationPoolTable { subnet_id: string; first_ip: string; last_ip: string }
/** position keeps the order the caller gave (DHCP hands them out in that order). */
export interface SubnetDnsNameserverTable { subnet_id: string; address: string; position: number }
export interface SubnetRouteTable { subnet_id: string; destination: string; nexthop: string }

export interface PortTable extends StandardAttributes {
  id: string; project_id: string; network_id: string; name: string; mac_address: string; admin_state_up: number;
  status: string; device_id: string; device_owner: string; port_security_enabled: number; dns_name: string;
}
/**
 * One address of a port. UNIQUE (network_id, ip_address) is what makes a duplicate
 * address impossible, whatever the concurrency (IPAM retries on a conflict).
 */
export interface IpAllocationTable { port_id: string; ip_address: string; subnet_id: string; network_id: string }
export interface PortSecurityGroupBindingTable { port_id: string; security_group_id: string }
export interface PortAllowedAddressPairTable { port_id: string; mac_address: string; ip_address: string }
/**
 * Where and how a port is plugged (binding:*). vif_type 'unbound' until host is set;
 * profile and vif_details are JSON objects.
 */
export interface PortBindingTable { port_id: string; host: string; vif_type: string; vnic_type: string; profile: string; vif_details: string }
export interface PortExtraDhcpOptTable { port_id: string; opt_name: string; opt_value: string; ip_version: number }

export interface SecurityGroupTable extends StandardAttributes { id: string; project_id: string; name: string; stateful: number }
/** The project's `default` group: one row per project (the primary key settles concurrent creation). */
export interface DefaultSecurityGroupTable { project_id: string; security_group_id: string }
export interface SecurityGroupRuleTable extends StandardAttributes {
  id: string; project_id: string; security_group_id: string; remote_group_id: string | null; direction: string;
  ethertype: string; protocol: string | null; port_range_min: number | null; port_range_max: number | null;
  remote_ip_prefix: string | null;
}

export interface RouterTable extends StandardAttributes {
  id: string; project_id: string; name: string; status: string; admin_state_up: number;
  /** The external network of the gateway (external_gateway_info.network_id), and the gateway port on it. */
  gw_network_id: string | null; gw_port_id: string | null; enable_snat: number;
  distributed: number; ha: number; flavor_id: string | null; availability_zone_hints: string;
}
/** port_type: the port's device_owner (network:router_interface, network:router_gateway). */
export interface RouterPortTable { router_id: string; port_id: string; port_type: string }
export interface RouterRouteTable { router_id: string; destination: string; nexthop: string }
export interface FloatingIpTable extends StandardAttributes {
  id: string; project_id: string; floating_network_id: string; floating_port_id: string; floating_ip_address: string;
  fixed_port_id: string | null; fixed_ip_address: string | null; router_id: string | null; last_known_router_id: string | null;
  status: string; dns_name: string; dns_domain: string;
}
export interface PortForwardingTable extends StandardAttributes {
  id: string; floatingip_id: string; internal_port_id: string; internal_ip_address: string; internal_port: number;
  external_port: number; protocol: string;
}

/** Tags of any taggable resource: resource_type is the collection name ('networks', 'ports', ...). */
export interface NetworkTagTable { resource_type: string; resource_id: string; tag: string }
/** Per-project overrides of the default quotas ('network', 'port', ...); -1 is unlimited. */
export interface NetworkQuotaTable { project_id: string; resource: string; hard_limit: number }

export interface NetworkTables {
  networks: NetworkTable;
  network_segments: NetworkSegmentTable;
  subnets: SubnetTable;
  subnet_allocation_pools: SubnetAllocationPoolTable;
  subnet_dns_nameservers: SubnetDnsNameserverTable;
  subnet_routes: SubnetRouteTable;
  ports: PortTable;
  ip_allocations: IpAllocationTable;
  port_security_group_bindings: PortSecurityGroupBindingTable;
  port_allowed_address_pairs: PortAllowedAddressPairTable;
  port_bindings: PortBindingTable;
  port_extra_dhcp_opts: PortExtraDhcpOptTable;
  security_groups: SecurityGroupTable;
  default_security_groups: DefaultSecurityGroupTable;
  security_group_rules: SecurityGroupRuleTable;
  routers: RouterTable;
  router_ports: RouterPortTable;
  router_routes: RouterRouteTable;
  floatingips: FloatingIpTable;
  port_forwardings: PortForwardingTable;
  network_tags: NetworkTagTable;
  network_quotas: NetworkQuotaTable;
}
