import { admin, allOf, anyOf, definePolicies, member, ownProject, type Rule } from '../../../api/policy.ts';

/** Policy defaults of the lifecycle actions (Nova's secure-RBAC defaults). */
const projectMember: Rule = anyOf(admin, allOf(member, ownProject()));

definePolicies({
  'os_compute_api:servers:rebuild': projectMember,
  'os_compute_api:servers:resize': projectMember,
  'os_compute_api:servers:confirm_resize': projectMember,
  'os_compute_api:servers:revert_resize': projectMember,
  'os_compute_api:servers:create_image:allow_volume_backed': projectMember,
  'os_compute_api:os-create-backup': projectMember,
  'os_compute_api:os-shelve:shelve': projectMember,
  'os_compute_api:os-shelve:shelve_offload': admin,
  'os_compute_api:os-shelve:unshelve': projectMember,
  'os_compute_api:os-rescue': projectMember,
  'os_compute_api:os-unrescue': projectMember,
  'os_compute_api:os-admin-actions:reset_state': admin,
  'os_compute_api:os-deferred-delete:restore': projectMember,
  'os_compute_api:os-deferred-delete:force': projectMember,
  'os_compute_api:os-migrations:index': admin,
  'os_compute_api:servers:migrations:index': admin,
});
