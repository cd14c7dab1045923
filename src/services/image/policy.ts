import { admin, always, anyOf, allOf, definePolicies, member, ownProject, type Rule } from '../../api/policy.ts';

/**
 * Glance's rules, its defaults in spirit: anyone authenticated may look (visibility is
 * decided by the service, and an image a caller may not see is a 404, not a 403);
 * members of the owning project manage its images; admins do everything; making an
 * image public is admin-only. Deactivation follows Glance's current default (admin or a
 * member of the owning project); downloading a deactivated image is admin-only.
 */
const projectMember: Rule = allOf(member, ownProject('owner'));
const adminOrOwner: Rule = anyOf(admin, projectMember);

definePolicies({
  'image:get_image': always,
  'image:get_images': always,
  'image:add_image': member,
  'image:modify_image': adminOrOwner,
  'image:delete_image': adminOrOwner,
  'image:upload_image': adminOrOwner,
  'image:download_image': always,
  'image:publicize_image': admin,
  'image:communitize_image': adminOrOwner,
  /** Creating or moving an image into a project other than the caller's. */
  'image:set_image_owner': admin,
  'image:deactivate': adminOrOwner,
  'image:reactivate': adminOrOwner,
  /** Deactivated images stay downloadable for admins only. */
  'image:download_deactivated': admin,
  'image:add_member': adminOrOwner,
  'image:delete_member': adminOrOwner,
  /** Accept or reject: the member project itself (admins too). */
  'image:modify_member': anyOf(admin, allOf(member, ownProject('member_id'))),
  'image:get_members': always,
});
