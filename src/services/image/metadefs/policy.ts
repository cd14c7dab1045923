import { admin, allOf, always, anyOf, definePolicies, member, ownProject, type Rule } from '../../../api/policy.ts';

/**
 * Metadefs rules. Reading is open to anyone authenticated; which namespaces a caller sees
 * is decided by the service (a private namespace of another project is a 404). Writing
 * follows the namespace: admins change anything; members of the owning project manage
 * the project's private namespaces and everything in them. Making a namespace public,
 * changing a public one, giving a namespace to another project and creating a new
 * (global) resource type are admin-only. The target is the namespace: {owner, visibility}.
 */
const privateOfOwnProject: Rule = allOf(member, ownProject('owner'), (_c, t) => t.visibility !== 'public');
const manage: Rule = anyOf(admin, privateOfOwnProject);

definePolicies({
  'image:get_metadef_namespace': always,
  'image:get_metadef_namespaces': always,
  'image:add_metadef_namespace': member,
  'image:modify_metadef_namespace': manage,
  'image:delete_metadef_namespace': manage,
  /** Creating a public namespace or making one public. */
  'image:publicize_metadef_namespace': admin,
  /** Creating a namespace for, or moving it to, another project. */
  'image:set_metadef_namespace_owner': admin,

  'image:list_metadef_resource_types': always,
  'image:get_metadef_resource_type': always,
  /** Associating a resource type nobody has defined yet creates it, for every project. */
  'image:add_metadef_resource_type': admin,
  'image:add_metadef_resource_type_association': manage,
  'image:remove_metadef_resource_type_association': manage,

  'image:get_metadef_objects': always,
  'image:get_metadef_object': always,
  'image:add_metadef_object': manage,
  'image:modify_metadef_object': manage,
  'image:delete_metadef_object': manage,
  'image:delete_metadef_objects': manage,

  'image:get_metadef_properties': always,
  'image:get_metadef_property': always,
  'image:add_metadef_property': manage,
  'image:modify_metadef_property': manage,
  'image:remove_metadef_property': manage,
  'image:remove_metadef_properties': manage,

  'image:get_metadef_tags': always,
  'image:get_metadef_tag': always,
  'image:add_metadef_tag': manage,
  'image:add_metadef_tags': manage,
  'image:modify_metadef_tag': manage,
  'image:delete_metadef_tag': manage,
  'image:delete_metadef_tags': manage,
});
