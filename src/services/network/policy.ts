import type { AuthContext } from '../../api/context.ts';
import { admin, allOf, always, anyOf, definePolicies, isAllowed, member, ownProject, reader, type Rule, type Target } from '../../api/policy.ts';
import { Unauthorized } from '../../common/errors.ts';
import { err } from './errors.ts';

/**
 * Neutron's default policies (secure RBAC): admins do anything; members create, change
 * and delete in their own project; readers read; the owner of a network may also manage
 * the ports others put on it; shared networks (and their subnets) are visible to every
 * project and take ports from any member; external networks are visible to all.
 * Provider, binding and external/shared switches are admin-only. Rule names are
 * Neutron's, so a refusal reads like Neutron's ("(rule:create_network:shared) is
 * disallowed by policy").
 *
 * Targets carry: project_id (the resource's project), network_project_id (the owner of
 * the network a subnet/port is on), network_shared / network_external (booleans), and
 * for rules security_group_project_id.
 */
const projectMember: Rule = anyOf(admin, allOf(member, ownProject()));
const projectReader: Rule = anyOf(admin, allOf(reader, ownProject()));
const netOwnerMember: Rule = anyOf(admin, allOf(member, ownProject('network_project_id')));
const netOwnerReader: Rule = anyOf(admin, allOf(reader, ownProject('network_project_id')));
const shared: Rule = (_c, t) => t.network_shared === true;
const external: Rule = (_c, t) => t.network_external === true;

definePolicies({
  create_network: projectMember,
  'create_network:shared': admin,
  'create_network:router:external': admin,
  'create_network:is_default': admin,
  'create_network:provider:network_type': admin,
  'create_network:provider:physical_network': admin,
  'create_network:provider:segmentation_id': admin,
  'create_network:mtu': projectMember,
  get_network: anyOf(projectReader, allOf(reader, shared), allOf(reader, external)),
  'get_network:provider:network_type': admin,
  'get_network:provider:physical_network': admin,
  'get_network:provider:segmentation_id': admin,
  update_network: projectMember,
  'update_network:shared': admin,
  'update_network:router:external': admin,
  'update_network:is_default': admin,
  'update_network:provider:network_type': admin,
  'update_network:provider:physical_network': admin,
  'update_network:provider:segmentation_id': admin,
  delete_network: projectMember,

  create_subnet: netOwnerMember,
  // the subnets of a non-shared external network stay hidden from other projects (Neutron's)
  get_subnet: anyOf(projectReader, netOwnerReader, allOf(reader, shared)),
  update_subnet: netOwnerMember,
  delete_subnet: netOwnerMember,

  create_port: anyOf(projectMember, netOwnerMember),
  'create_port:device_owner': (c, t) => typeof t.device_owner !== 'string' || !t.device_owner.startsWith('network:') || netOwnerMember(c, t),
  'create_port:mac_address': netOwnerMember,
  'create_port:fixed_ips:ip_address': netOwnerMember,
  'create_port:fixed_ips:subnet_id': anyOf(netOwnerMember, shared),
  'create_port:port_security_enabled': netOwnerMember,
  'create_port:binding:host_id': admin,
  'create_port:binding:profile': admin,
  'create_port:binding:vnic_type': anyOf(projectMember, netOwnerMember),
  'create_port:allowed_address_pairs': netOwnerMember,
  get_port: anyOf(projectReader, netOwnerReader),
  'get_port:binding:vif_type': admin,
  'get_port:binding:vif_details': admin,
  'get_port:binding:host_id': admin,
  'get_port:binding:profile': admin,
  'get_port:binding:vnic_type': anyOf(projectReader, netOwnerReader),
  update_port: anyOf(projectMember, netOwnerMember),
  'update_port:device_owner': (c, t) => typeof t.device_owner !== 'string' || !t.device_owner.startsWith('network:') || netOwnerMember(c, t),
  'update_port:mac_address': admin,
  'update_port:fixed_ips:ip_address': netOwnerMember,
  'update_port:fixed_ips:subnet_id': anyOf(netOwnerMember, shared),
  'update_port:port_security_enabled': netOwnerMember,
  'update_port:binding:host_id': admin,
  'update_port:binding:profile': admin,
  'update_port:binding:vnic_type': anyOf(projectMember, netOwnerMember),
  'update_port:allowed_address_pairs': netOwnerMember,
  delete_port: anyOf(projectMember, netOwnerMember),

  create_security_group: projectMember,
  get_security_group: projectReader,
  update_security_group: projectMember,
  delete_security_group: projectMember,
  create_security_group_rule: anyOf(projectMember, allOf(member, ownProject('security_group_project_id'))),
  get_security_group_rule: anyOf(projectReader, allOf(reader, ownProject('security_group_project_id'))),
  delete_security_group_rule: anyOf(projectMember, allOf(member, ownProject('security_group_project_id'))),

  // L3 (Neutron's router and floatingip policies): members of the router's / floating IP's
  // project; the gateway's SNAT switch, fixed external addresses, DVR/HA and a chosen
  // floating IP address are admin-only.
  create_router: projectMember,
  'create_router:external_gateway_info': projectMember,
  'create_router:external_gateway_info:network_id': projectMember,
  'create_router:external_gateway_info:enable_snat': admin,
  'create_router:external_gateway_info:external_fixed_ips': admin,
  'create_router:distributed': admin,
  'create_router:ha': admin,
  get_router: projectReader,
  'get_router:distributed': admin,
  'get_router:ha': admin,
  update_router: projectMember,
  'update_router:external_gateway_info': projectMember,
  'update_router:external_gateway_info:network_id': projectMember,
  'update_router:external_gateway_info:enable_snat': admin,
  'update_router:external_gateway_info:external_fixed_ips': admin,
  'update_router:distributed': admin,
  'update_router:ha': admin,
  delete_router: projectMember,
  add_router_interface: projectMember,
  remove_router_interface: projectMember,
  add_extraroutes: projectMember,
  remove_extraroutes: projectMember,
  create_floatingip: projectMember,
  'create_floatingip:floating_ip_address': admin,
  get_floatingip: projectReader,
  update_floatingip: projectMember,
  delete_floatingip: projectMember,

  get_quota: projectReader,
  get_quotas: admin,
  update_quota: admin,
  delete_quota: admin,

  get_extension: always,
  get_availability_zone: always,
});

// Tags follow the resource: readers see them with the resource, members of its project change them.
for (const r of ['network', 'subnet', 'port', 'security_group', 'router', 'floatingip']) {
  definePolicies({
    [`create_${r}:tags`]: r === 'subnet' || r === 'port' ? anyOf(projectMember, netOwnerMember) : projectMember,
    [`update_${r}:tags`]: r === 'subnet' || r === 'port' ? anyOf(projectMember, netOwnerMember) : projectMember,
    [`delete_${r}:tags`]: r === 'subnet' || r === 'port' ? anyOf(projectMember, netOwnerMember) : projectMember,
  });
}

/** The caller, or 401 when the request carried no (valid) token. */
export function caller(auth: AuthContext | undefined): AuthContext {
  if (!auth) throw new Unauthorized();
  return auth;
}

export function allowed(auth: AuthContext, action: string, target: Target): boolean {
  return isAllowed(auth, action, target);
}

/** Throw Neutron's PolicyNotAuthorized (403) unless the rule allows the action. */
export function authorize(auth: AuthContext, action: string, target: Target): void {
  if (!isAllowed(auth, action, target)) throw err.policy(action);
}

export const isAdmin = (auth: AuthContext): boolean => auth.roles.includes('admin');
