import type { AuthContext } from '../../api/context.ts';
import { admin, allOf, always, anyOf, definePolicies, isAllowed, member, ownProject, reader, type Rule, type Target } from '../../api/policy.ts';
import { Unauthorized } from '../../common/errors.ts';
import { err } from './errors.ts';

/**
 * Cinder's default policies (secure RBAC, Cinder's rule names so a refusal reads like
 * Cinder's): members create and change in their own project, readers read, admins do
 * anything, admin actions (reset/force/migration, types, QoS, quotas of others, pools,
 * services) are admin-only. Targets carry project_id (the resource's project).
 */
const projectMember: Rule = anyOf(admin, allOf(member, ownProject()));
const projectReader: Rule = anyOf(admin, allOf(reader, ownProject()));

const table: Record<string, Rule> = {};
for (const a of ['create', 'create_from_image', 'update', 'delete', 'extend', 'extend_attached_volume', 'update_readonly_flag', 'retype',
  'reserve_volume', 'unreserve_volume', 'begin_detaching', 'roll_detaching', 'initialize_connection', 'terminate_connection',
  'attach', 'detach', 'upload_image', 'update_volume_metadata', 'delete_volume_metadata', 'create_volume_metadata', 'set_image_metadata',
  'remove_image_metadata', 'create_snapshot', 'update_snapshot', 'delete_snapshot', 'update_snapshot_metadata', 'delete_snapshot_metadata',
  'multiattach', 'attachment_create', 'attachment_update', 'attachment_delete', 'attachment_complete', 'create_transfer', 'delete_transfer']) {
  table[`volume:${a}`] = projectMember;
}
for (const a of ['get', 'get_all', 'get_volume_metadata', 'get_snapshot', 'get_all_snapshots', 'get_snapshot_metadata', 'get_transfer',
  'get_all_transfers', 'attachment_get', 'attachment_get_all', 'get_volume_image_metadata']) {
  table[`volume:${a}`] = projectReader;
}
Object.assign(table, {
  'volume:set_bootable': projectMember,
  'volume:accept_transfer': member,
  'volume:force_delete': admin,
  'volume:get_all:all_tenants': admin,
  'volume_extension:volume_admin_actions:reset_status': admin,
  'volume_extension:volume_admin_actions:force_delete': admin,
  'volume_extension:volume_admin_actions:force_detach': admin,
  'volume_extension:snapshot_admin_actions:reset_status': admin,
  'volume_extension:snapshot_admin_actions:force_delete': admin,
  'volume_extension:backup_admin_actions:reset_status': admin,
  'volume_extension:backup_admin_actions:force_delete': admin,
  'volume_extension:volume_host_attribute': admin,
  'volume_extension:volume_mig_status_attribute': admin,
  'volume_extension:volume_tenant_attribute': projectReader,
  'volume_extension:types_manage': admin,
  'volume_extension:types_extra_specs:read_sensitive': admin,
  'volume_extension:type_get': always,
  'volume_extension:type_get_all': always,
  'volume_extension:volume_type_access': admin,
  'volume_extension:volume_type_access:addProjectAccess': admin,
  'volume_extension:volume_type_access:removeProjectAccess': admin,
  'volume_extension:qos_specs_manage': admin,
  'volume_extension:quotas:show': projectReader,
  'volume_extension:quotas:update': admin,
  'volume_extension:quotas:delete': admin,
  'volume_extension:quota_classes': admin,
  'volume_extension:services:index': admin,
  'volume_extension:services:update': admin,
  'volume_extension:capabilities': admin,
  'volume_extension:hosts': admin,
  'snapshot_extension:snapshot_actions:update_snapshot_status': projectMember,
  'scheduler_extension:scheduler_stats:get_pools': admin,
  'volume_extension:availability_zone_list': always,
  'limits_extension:used_limits': projectReader,
  'backup:create': projectMember,
  'backup:get': projectReader,
  'backup:get_all': projectReader,
  'backup:delete': projectMember,
  'backup:restore': projectMember,
  'backup:update': projectMember,
  'backup:backup-export': admin,
  'backup:backup-import': admin,
  'backup:backup_project_attribute': admin,
  'volume:default_type_manage': admin,
  'volume:default_type_get': admin,
});
definePolicies(Object.fromEntries(Object.entries(table).map(([k, v]) => [`cinder:${k}`, v])));

/** The caller, or 401 when the request carried no (valid) token. */
export function caller(auth: AuthContext | undefined): AuthContext {
  if (!auth) throw new Unauthorized();
  return auth;
}

export function allowed(auth: AuthContext, action: string, target: Target = {}): boolean {
  return isAllowed(auth, `cinder:${action}`, target);
}

/** Cinder's PolicyNotAuthorized (403) unless the rule allows the action. */
export function authorize(auth: AuthContext, action: string, target: Target = {}): void {
  if (!allowed(auth, action, target)) throw err.policy(action);
}

export const isAdmin = (auth: AuthContext): boolean => auth.roles.includes('admin');
