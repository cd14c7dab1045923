import type { CreateTableBuilder, Kysely, Migration } from 'kysely';

/**
 * Neutron (networking v2.0) tables: networks and segments, subnets with their pools,
 * nameservers and host routes, ports with IP allocations, security group bindings,
 * allowed address pairs, bindings and extra DHCP options, security groups and rules,
 * routers, router ports and routes, floating IPs, port forwardings, tags and quotas.
 *
 * Foreign keys restrict where deleting a parent must be an explicit decision of the
 * API (a network with ports or subnets, a subnet with allocations, a security group a
 * port uses), and cascade where children have no life of their own.
 */
const standard = <N extends string, C extends string>(t: CreateTableBuilder<N, C>) => t
  .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
  .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
  .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
  .addColumn('revision_number', 'integer', (c) => c.notNull().defaultTo(0));

export const m008_network: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await standard(db.schema.createTable('networks')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('admin_state_up', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('shared', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('router_external', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('mtu', 'integer', (c) => c.notNull())
      .addColumn('port_security_enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('availability_zone_hints', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('dns_domain', 'varchar(255)', (c) => c.notNull().defaultTo(''))).execute();
    await db.schema.createIndex('networks_project_idx').on('networks').column('project_id').execute();

    await db.schema.createTable('network_segments')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id').onDelete('cascade'))
      .addColumn('network_type', 'varchar(32)', (c) => c.notNull())
      .addColumn('physical_network', 'varchar(64)', (c) => c.notNull().defaultTo(''))
      .addColumn('segmentation_id', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('segment_index', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addUniqueConstraint('network_segments_allocation_uq', ['network_type', 'physical_network', 'segmentation_id'])
      .execute();
    await db.schema.createIndex('network_segments_network_idx').on('network_segments').column('network_id').execute();

    await standard(db.schema.createTable('subnets')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id'))
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('ip_version', 'integer', (c) => c.notNull())
      .addColumn('cidr', 'varchar(64)', (c) => c.notNull())
      .addColumn('gateway_ip', 'varchar(64)')
      .addColumn('enable_dhcp', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('ipv6_ra_mode', 'varchar(32)')
      .addColumn('ipv6_address_mode', 'varchar(32)')
      .addColumn('subnetpool_id', 'varchar(36)')
      .addColumn('segment_id', 'varchar(36)')).execute();
    await db.schema.createIndex('subnets_network_idx').on('subnets').column('network_id').execute();

    await db.schema.createTable('subnet_allocation_pools')
      .addColumn('subnet_id', 'varchar(36)', (c) => c.notNull().references('subnets.id').onDelete('cascade'))
      .addColumn('first_ip', 'varchar(64)', (c) => c.notNull())
      .addColumn('last_ip', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('subnet_allocation_pools_pk', ['subnet_id', 'first_ip'])
      .execute();
    await db.schema.createTable('subnet_dns_nameservers')
      .addColumn('subnet_id', 'varchar(36)', (c) => c.notNull().references('subnets.id').onDelete('cascade'))
      .addColumn('address', 'varchar(128)', (c) => c.notNull())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('subnet_dns_nameservers_pk', ['subnet_id', 'address'])
      .execute();
    await db.schema.createTable('subnet_routes')
      .addColumn('subnet_id', 'varchar(36)', (c) => c.notNull().references('subnets.id').onDelete('cascade'))
      .addColumn('destination', 'varchar(64)', (c) => c.notNull())
      .addColumn('nexthop', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('subnet_routes_pk', ['subnet_id', 'destination', 'nexthop'])
      .execute();

    await standard(db.schema.createTable('ports')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id'))
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('mac_address', 'varchar(32)', (c) => c.notNull())
      .addColumn('admin_state_up', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('device_id', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('device_owner', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('port_security_enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('dns_name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addUniqueConstraint('ports_network_mac_uq', ['network_id', 'mac_address'])).execute();
    await db.schema.createIndex('ports_project_idx').on('ports').column('project_id').execute();
    await db.schema.createIndex('ports_device_idx').on('ports').column('device_id').execute();

    await db.schema.createTable('ip_allocations')
      .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id'))
      .addColumn('ip_address', 'varchar(64)', (c) => c.notNull())
      .addColumn('subnet_id', 'varchar(36)', (c) => c.notNull().references('subnets.id'))
      .addColumn('port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
      .addPrimaryKeyConstraint('ip_allocations_pk', ['network_id', 'ip_address'])
      .execute();
    await db.schema.createIndex('ip_allocations_port_idx').on('ip_allocations').column('port_id').execute();
    await db.schema.createIndex('ip_allocations_subnet_idx').on('ip_allocations').column('subnet_id').execute();

    await standard(db.schema.createTable('security_groups')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('stateful', 'integer', (c) => c.notNull().defaultTo(1))).execute();
    await db.schema.createIndex('security_groups_project_idx').on('security_groups').column('project_id').execute();
    await db.schema.createTable('default_security_groups')
      .addColumn('project_id', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('security_group_id', 'varchar(36)', (c) => c.notNull().unique().references('security_groups.id').onDelete('cascade'))
      .execute();
    await standard(db.schema.createTable('security_group_rules')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('security_group_id', 'varchar(36)', (c) => c.notNull().references('security_groups.id').onDelete('cascade'))
      .addColumn('remote_group_id', 'varchar(36)', (c) => c.references('security_groups.id').onDelete('cascade'))
      .addColumn('direction', 'varchar(16)', (c) => c.notNull())
      .addColumn('ethertype', 'varchar(8)', (c) => c.notNull())
      .addColumn('protocol', 'varchar(40)')
      .addColumn('port_range_min', 'integer')
      .addColumn('port_range_max', 'integer')
      .addColumn('remote_ip_prefix', 'varchar(64)')).execute();
    await db.schema.createIndex('security_group_rules_group_idx').on('security_group_rules').column('security_group_id').execute();
    await db.schema.createIndex('security_group_rules_remote_idx').on('security_group_rules').column('remote_group_id').execute();

    await db.schema.createTable('port_security_group_bindings')
      .addColumn('port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
      .addColumn('security_group_id', 'varchar(36)', (c) => c.notNull().references('security_groups.id'))
      .addPrimaryKeyConstraint('port_security_group_bindings_pk', ['port_id', 'security_group_id'])
      .execute();
    await db.schema.createIndex('port_sg_bindings_group_idx').on('port_security_group_bindings').column('security_group_id').execute();
    await db.schema.createTable('port_allowed_address_pairs')
      .addColumn('port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
      .addColumn('mac_address', 'varchar(32)', (c) => c.notNull())
      .addColumn('ip_address', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('port_allowed_address_pairs_pk', ['port_id', 'mac_address', 'ip_address'])
      .execute();
    await db.schema.createTable('port_bindings')
      .addColumn('port_id', 'varchar(36)', (c) => c.primaryKey().references('ports.id').onDelete('cascade'))
      .addColumn('host', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('vif_type', 'varchar(64)', (c) => c.notNull())
      .addColumn('vnic_type', 'varchar(64)', (c) => c.notNull())
      .addColumn('profile', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('vif_details', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('port_bindings_host_idx').on('port_bindings').column('host').execute();
    await db.schema.createTable('port_extra_dhcp_opts')
      .addColumn('port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
      .addColumn('opt_name', 'varchar(64)', (c) => c.notNull())
      .addColumn('opt_value', 'varchar(255)', (c) => c.notNull())
      .addColumn('ip_version', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('port_extra_dhcp_opts_pk', ['port_id', 'opt_name', 'ip_version'])
      .execute();

    await standard(db.schema.createTable('routers')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('admin_state_up', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('gw_network_id', 'varchar(36)', (c) => c.references('networks.id'))
      .addColumn('gw_port_id', 'varchar(36)', (c) => c.references('ports.id').onDelete('set null'))
      .addColumn('enable_snat', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('distributed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('ha', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('flavor_id', 'varchar(36)')
      .addColumn('availability_zone_hints', 'text', (c) => c.notNull().defaultTo('[]'))).execute();
    await db.schema.createIndex('routers_project_idx').on('routers').column('project_id').execute();
    await db.schema.createTable('router_ports')
      .addColumn('router_id', 'varchar(36)', (c) => c.notNull().references('routers.id').onDelete('cascade'))
      .addColumn('port_id', 'varchar(36)', (c) => c.primaryKey().references('ports.id').onDelete('cascade'))
      .addColumn('port_type', 'varchar(255)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('router_ports_router_idx').on('router_ports').column('router_id').execute();
    await db.schema.createTable('router_routes')
      .addColumn('router_id', 'varchar(36)', (c) => c.notNull().references('routers.id').onDelete('cascade'))
      .addColumn('destination', 'varchar(64)', (c) => c.notNull())
      .addColumn('nexthop', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('router_routes_pk', ['router_id', 'destination', 'nexthop'])
      .execute();

    await standard(db.schema.createTable('floatingips')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('floating_network_id', 'varchar(36)', (c) => c.notNull().references('networks.id'))
      .addColumn('floating_port_id', 'varchar(36)', (c) => c.notNull().unique().references('ports.id').onDelete('cascade'))
      .addColumn('floating_ip_address', 'varchar(64)', (c) => c.notNull())
      .addColumn('fixed_port_id', 'varchar(36)', (c) => c.references('ports.id').onDelete('set null'))
      .addColumn('fixed_ip_address', 'varchar(64)')
      .addColumn('router_id', 'varchar(36)', (c) => c.references('routers.id'))
      .addColumn('last_known_router_id', 'varchar(36)')
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('dns_name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('dns_domain', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addUniqueConstraint('floatingips_address_uq', ['floating_network_id', 'floating_ip_address'])
      .addUniqueConstraint('floatingips_fixed_uq', ['floating_network_id', 'fixed_port_id', 'fixed_ip_address'])).execute();
    await db.schema.createIndex('floatingips_project_idx').on('floatingips').column('project_id').execute();
    await db.schema.createIndex('floatingips_fixed_port_idx').on('floatingips').column('fixed_port_id').execute();
    await db.schema.createIndex('floatingips_router_idx').on('floatingips').column('router_id').execute();
    await standard(db.schema.createTable('port_forwardings')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('floatingip_id', 'varchar(36)', (c) => c.notNull().references('floatingips.id').onDelete('cascade'))
      .addColumn('internal_port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
      .addColumn('internal_ip_address', 'varchar(64)', (c) => c.notNull())
      .addColumn('internal_port', 'integer', (c) => c.notNull())
      .addColumn('external_port', 'integer', (c) => c.notNull())
      .addColumn('protocol', 'varchar(16)', (c) => c.notNull())
      .addUniqueConstraint('port_forwardings_external_uq', ['floatingip_id', 'external_port', 'protocol'])
      .addUniqueConstraint('port_forwardings_internal_uq', ['internal_port_id', 'internal_ip_address', 'internal_port', 'protocol'])).execute();

    await db.schema.createTable('network_tags')
      .addColumn('resource_type', 'varchar(64)', (c) => c.notNull())
      .addColumn('resource_id', 'varchar(36)', (c) => c.notNull())
      .addColumn('tag', 'varchar(255)', (c) => c.notNull())
      .addPrimaryKeyConstraint('network_tags_pk', ['resource_type', 'resource_id', 'tag'])
      .execute();
    await db.schema.createTable('network_quotas')
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('resource', 'varchar(64)', (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('network_quotas_pk', ['project_id', 'resource'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['network_quotas', 'network_tags', 'port_forwardings', 'floatingips', 'router_routes', 'router_ports', 'routers',
      'port_extra_dhcp_opts', 'port_bindings', 'port_allowed_address_pairs', 'port_security_group_bindings', 'security_group_rules',
      'default_security_groups', 'security_groups', 'ip_allocations', 'ports', 'subnet_routes', 'subnet_dns_nameservers',
      'subnet_allocation_pools', 'subnets', 'network_segments', 'networks']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
