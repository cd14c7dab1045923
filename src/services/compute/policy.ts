import { admin, always, anyOf, allOf, definePolicies, member, ownProject, reader, type Rule } from '../../api/policy.ts';

/**
 * Compute's policy defaults, after Nova's secure-RBAC defaults: project readers read,
 * project members act, admins act anywhere; host and flavor management is admin-only.
 */
const projectReader: Rule = anyOf(admin, allOf(reader, ownProject()));
const projectMember: Rule = anyOf(admin, allOf(member, ownProject()));
const anyMember: Rule = anyOf(admin, member);

definePolicies({
  'os_compute_api:servers:index': anyOf(admin, reader),
  'os_compute_api:servers:index:get_all_tenants': admin,
  'os_compute_api:servers:show': projectReader,
  'os_compute_api:servers:show:host_status': admin,
  'os_compute_api:os-extended-server-attributes': admin,
  'os_compute_api:servers:create': anyMember,
  'os_compute_api:servers:create:forced_host': admin,
  'os_compute_api:servers:update': projectMember,
  'os_compute_api:servers:delete': projectMember,
  'os_compute_api:servers:action': projectMember,
  'os_compute_api:os-lock-server:unlock:unlock_override': admin,
  'os_compute_api:os-console-output': projectMember,
  'os_compute_api:os-instance-actions:list': projectReader,
  'os_compute_api:os-instance-actions:events:details': admin,
  'os_compute_api:server-metadata:index': projectReader,
  'os_compute_api:server-metadata:update': projectMember,
  'os_compute_api:os-server-tags:index': projectReader,
  'os_compute_api:os-server-tags:update': projectMember,
  'os_compute_api:os-flavor-manage': admin,
  'os_compute_api:os-flavor-access': admin,
  'os_compute_api:flavors:list': always,
  'os_compute_api:os-keypairs': always,
  'os_compute_api:os-keypairs:other-user': admin,
  'os_compute_api:os-quota-sets:show': projectReader,
  'os_compute_api:os-quota-sets:update': admin,
  'os_compute_api:limits': always,
  'os_compute_api:limits:other_project': admin,
  'os_compute_api:os-availability-zone:list': always,
  'os_compute_api:os-availability-zone:detail': admin,
  'os_compute_api:os-hypervisors': admin,
  'os_compute_api:os-services': admin,
  'os_compute_api:os-aggregates': admin,
  'os_compute_api:os-server-groups:index': anyOf(admin, reader),
  'os_compute_api:os-server-groups:index:all_projects': admin,
  'os_compute_api:os-server-groups:show': projectReader,
  'os_compute_api:os-server-groups:create': anyMember,
  'os_compute_api:os-server-groups:delete': projectMember,
  'os_compute_api:os-attach-interfaces:list': projectReader,
  'os_compute_api:os-attach-interfaces:show': projectReader,
  'os_compute_api:os-attach-interfaces:create': projectMember,
  'os_compute_api:os-attach-interfaces:delete': projectMember,
  'os_compute_api:os-multinic:add': projectMember,
  'os_compute_api:os-multinic:remove': projectMember,
  'os_compute_api:os-volumes-attachments:index': projectReader,
  'os_compute_api:os-volumes-attachments:show': projectReader,
  'os_compute_api:os-volumes-attachments:create': projectMember,
  'os_compute_api:os-volumes-attachments:update': projectMember,
  'os_compute_api:os-volumes-attachments:swap': admin,
  'os_compute_api:os-volumes-attachments:delete': projectMember,
});

// Rules the satellite routes (flavors, keypairs, quotas, hosts, server groups) need beyond the above.
definePolicies({
  'os_compute_api:os-flavor-extra-specs:index': anyOf(admin, reader),
  'os_compute_api:os-flavor-extra-specs:show': anyOf(admin, reader),
  'os_compute_api:os-flavor-extra-specs:create': admin,
  'os_compute_api:os-flavor-extra-specs:update': admin,
  'os_compute_api:os-flavor-extra-specs:delete': admin,
  'os_compute_api:os-flavor-access:add_tenant_access': admin,
  'os_compute_api:os-flavor-access:remove_tenant_access': admin,
  'os_compute_api:os-quota-sets:detail': projectReader,
  'os_compute_api:os-quota-sets:defaults': always,
  'os_compute_api:os-quota-sets:delete': admin,
});

// Sub-APIs: server ips/password/diagnostics, external events, usage, os-hosts, quota classes, extensions.
definePolicies({
  'os_compute_api:ips:index': projectReader,
  'os_compute_api:ips:show': projectReader,
  'os_compute_api:os-server-password:show': projectReader,
  'os_compute_api:os-server-password:clear': projectMember,
  'os_compute_api:os-server-diagnostics': admin,
  'os_compute_api:os-server-external-events:create': admin,
  'os_compute_api:os-simple-tenant-usage:list': admin,
  'os_compute_api:os-simple-tenant-usage:show': projectReader,
  'os_compute_api:os-instance-usage-audit-log:list': admin,
  'os_compute_api:os-instance-usage-audit-log:show': admin,
  'os_compute_api:os-hosts:list': admin,
  'os_compute_api:os-hosts:show': admin,
  'os_compute_api:os-hosts:update': admin,
  'os_compute_api:os-hosts:reboot': admin,
  'os_compute_api:os-hosts:shutdown': admin,
  'os_compute_api:os-hosts:start': admin,
  'os_compute_api:os-quota-class-sets:show': admin,
  'os_compute_api:os-quota-class-sets:update': admin,
  'os_compute_api:extensions': always,
});
