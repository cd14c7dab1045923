import { admin, anyOf, definePolicies, owner, ownDomain, ownProject, systemReader, type Rule } from '../../api/policy.ts';

/**
 * Identity's rules, Keystone's defaults in spirit: the admin role manages everything;
 * system readers read everything; users see themselves, their projects and domain, and
 * own their application and EC2 credentials; tokens may be checked by their owner.
 */
const adminOrReader: Rule = anyOf(admin, systemReader);
const self: Rule = owner('user_id');

definePolicies({
  'identity:get_domain': anyOf(adminOrReader, ownDomain('domain_id'), (c, t) => c.projectDomainId === t.domain_id),
  'identity:list_domains': adminOrReader,
  'identity:create_domain': admin,
  'identity:update_domain': admin,
  'identity:delete_domain': admin,

  'identity:get_project': anyOf(adminOrReader, ownProject('project_id')),
  'identity:list_projects': adminOrReader,
  'identity:list_user_projects': anyOf(adminOrReader, self),
  'identity:create_project': admin,
  'identity:update_project': admin,
  'identity:delete_project': admin,
  'identity:list_project_tags': anyOf(adminOrReader, ownProject('project_id')),
  'identity:update_project_tags': admin,

  'identity:get_user': anyOf(adminOrReader, self),
  'identity:list_users': adminOrReader,
  'identity:create_user': admin,
  'identity:update_user': admin,
  'identity:delete_user': admin,
  'identity:change_password': self,
  'identity:list_groups_for_user': anyOf(adminOrReader, self),

  'identity:get_group': adminOrReader,
  'identity:list_groups': adminOrReader,
  'identity:list_users_in_group': adminOrReader,
  'identity:create_group': admin,
  'identity:update_group': admin,
  'identity:delete_group': admin,
  'identity:add_user_to_group': admin,
  'identity:remove_user_from_group': admin,
  'identity:check_user_in_group': adminOrReader,

  'identity:get_role': adminOrReader,
  'identity:list_roles': adminOrReader,
  'identity:create_role': admin,
  'identity:update_role': admin,
  'identity:delete_role': admin,
  'identity:list_implied_roles': adminOrReader,
  'identity:create_implied_role': admin,
  'identity:delete_implied_role': admin,
  'identity:list_role_inference_rules': adminOrReader,

  'identity:check_grant': adminOrReader,
  'identity:list_grants': adminOrReader,
  'identity:create_grant': admin,
  'identity:revoke_grant': admin,
  'identity:list_role_assignments': anyOf(adminOrReader, self),

  'identity:get_region': () => true,
  'identity:list_regions': () => true,
  'identity:create_region': admin,
  'identity:update_region': admin,
  'identity:delete_region': admin,
  'identity:get_service': adminOrReader,
  'identity:list_services': adminOrReader,
  'identity:create_service': admin,
  'identity:update_service': admin,
  'identity:delete_service': admin,
  'identity:get_endpoint': adminOrReader,
  'identity:list_endpoints': adminOrReader,
  'identity:create_endpoint': admin,
  'identity:update_endpoint': admin,
  'identity:delete_endpoint': admin,

  'identity:get_application_credential': anyOf(adminOrReader, self),
  'identity:list_application_credentials': anyOf(adminOrReader, self),
  'identity:create_application_credential': self,
  'identity:delete_application_credential': anyOf(admin, self),

  'identity:get_credential': anyOf(adminOrReader, self),
  'identity:list_credentials': anyOf(adminOrReader, self),
  'identity:create_credential': anyOf(admin, self),
  'identity:update_credential': anyOf(admin, self),
  'identity:delete_credential': anyOf(admin, self),
  'identity:ec2_get_credential': anyOf(adminOrReader, self),
  'identity:ec2_list_credentials': anyOf(adminOrReader, self),
  'identity:ec2_create_credential': anyOf(admin, self),
  'identity:ec2_delete_credential': anyOf(admin, self),

  'identity:get_policy': adminOrReader,
  'identity:list_policies': adminOrReader,
  'identity:create_policy': admin,
  'identity:update_policy': admin,
  'identity:delete_policy': admin,

  'identity:create_endpoint_group': admin,
  'identity:list_endpoint_groups': adminOrReader,
  'identity:get_endpoint_group': adminOrReader,
  'identity:update_endpoint_group': admin,
  'identity:delete_endpoint_group': admin,
  'identity:list_endpoints_associated_with_endpoint_group': adminOrReader,
  'identity:list_projects_associated_with_endpoint_group': adminOrReader,
  'identity:add_endpoint_group_to_project': admin,
  'identity:get_endpoint_group_in_project': adminOrReader,
  'identity:remove_endpoint_group_from_project': admin,
  'identity:list_endpoint_groups_for_project': adminOrReader,
  'identity:add_endpoint_to_project': admin,
  'identity:check_endpoint_in_project': adminOrReader,
  'identity:remove_endpoint_from_project': admin,
  'identity:list_endpoints_for_project': adminOrReader,
  'identity:list_projects_for_endpoint': adminOrReader,

  'identity:validate_token': anyOf(admin, systemReader, (c, t) => c.userId === t.token_user_id, (c) => c.roles.includes('service')),
  'identity:revoke_token': anyOf(admin, (c, t) => c.userId === t.token_user_id),
});
