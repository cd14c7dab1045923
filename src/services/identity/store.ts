import type { Db } from '../../db/index.ts';
import type { AssignmentType, Database } from '../../db/schema.ts';
import type {
  AppCred, Assignment, CatalogService, Credential, Domain, Endpoint, EndpointFilters, EndpointGroup, Group, Policy, Project, Region,
  RevocationEvent, Role, User,
} from './types.ts';

/** SQL for identity. Every function takes the Kysely handle, so it runs inside a transaction too. */

const json = (s: string): Record<string, unknown> => {
  try { const v: unknown = JSON.parse(s); return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}; } catch { return {}; }
};
const b = (n: number): boolean => Number(n) === 1;
const n = (v: boolean): number => (v ? 1 : 0);

// Domains
type DomainRow = Database['domains'];
const toDomain = (r: DomainRow): Domain => ({ id: r.id, name: r.name, description: r.description, enabled: b(r.enabled), extra: json(r.extra) });
export async function insertDomain(db: Db, d: Domain): Promise<void> {
  await db.insertInto('domains').values({ id: d.id, name: d.name, description: d.description, enabled: n(d.enabled), extra: JSON.stringify(d.extra) }).execute();
}
export async function updateDomain(db: Db, d: Domain): Promise<void> {
  await db.updateTable('domains').set({ name: d.name, description: d.description, enabled: n(d.enabled), extra: JSON.stringify(d.extra) }).where('id', '=', d.id).execute();
}
export async function getDomain(db: Db, id: string): Promise<Domain | undefined> {
  const r = await db.selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toDomain(r);
}
export async function getDomainByName(db: Db, name: string): Promise<Domain | undefined> {
  const r = await db.selectFrom('domains').selectAll().where('name', '=', name).executeTakeFirst();
  return r && toDomain(r);
}
export async function listDomains(db: Db, f: { name?: string; enabled?: boolean; ids?: string[] }): Promise<Domain[]> {
  let q = db.selectFrom('domains').selectAll().orderBy('id');
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.enabled !== undefined) q = q.where('enabled', '=', n(f.enabled));
  if (f.ids !== undefined) { if (f.ids.length === 0) return []; q = q.where('id', 'in', f.ids); }
  return (await q.execute()).map(toDomain);
}
export async function deleteDomain(db: Db, id: string): Promise<void> {
  await db.deleteFrom('domains').where('id', '=', id).execute();
}

// Projects
type ProjectRow = Database['projects'];
const toProject = (r: ProjectRow, tags: string[]): Project => ({
  id: r.id, name: r.name, domain_id: r.domain_id, parent_id: r.parent_id, description: r.description,
  enabled: b(r.enabled), is_domain: false, tags, extra: json(r.extra),
});
async function withTags(db: Db, rows: ProjectRow[]): Promise<Project[]> {
  if (rows.length === 0) return [];
  const tags = await db.selectFrom('project_tags').selectAll().where('project_id', 'in', rows.map((r) => r.id)).orderBy('name').execute();
  const by = new Map<string, string[]>();
  for (const t of tags) (by.get(t.project_id) ?? by.set(t.project_id, []).get(t.project_id)!).push(t.name);
  return rows.map((r) => toProject(r, by.get(r.id) ?? []));
}
export async function insertProject(db: Db, p: Project): Promise<void> {
  await db.insertInto('projects').values({ id: p.id, name: p.name, domain_id: p.domain_id, parent_id: p.parent_id, description: p.description, enabled: n(p.enabled), extra: JSON.stringify(p.extra) }).execute();
  await setProjectTags(db, p.id, p.tags);
}
export async function updateProject(db: Db, p: Project): Promise<void> {
  await db.updateTable('projects').set({ name: p.name, description: p.description, enabled: n(p.enabled), extra: JSON.stringify(p.extra) }).where('id', '=', p.id).execute();
}
export async function setProjectTags(db: Db, projectId: string, tags: string[]): Promise<void> {
  await db.deleteFrom('project_tags').where('project_id', '=', projectId).execute();
  if (tags.length) await db.insertInto('project_tags').values([...new Set(tags)].map((name) => ({ project_id: projectId, name }))).execute();
}
export async function getProject(db: Db, id: string): Promise<Project | undefined> {
  const r = await db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? (await withTags(db, [r]))[0] : undefined;
}
export async function getProjectByName(db: Db, domainId: string, name: string): Promise<Project | undefined> {
  const r = await db.selectFrom('projects').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
  return r ? (await withTags(db, [r]))[0] : undefined;
}
export interface ProjectFilter { name?: string; domain_id?: string; parent_id?: string; enabled?: boolean; ids?: string[]; tags?: string[]; tagsAny?: string[]; notTags?: string[]; notTagsAny?: string[] }
export async function listProjects(db: Db, f: ProjectFilter): Promise<Project[]> {
  let q = db.selectFrom('projects').selectAll().orderBy('id');
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.domain_id !== undefined) q = q.where('domain_id', '=', f.domain_id);
  if (f.parent_id !== undefined) q = q.where('parent_id', '=', f.parent_id);
  if (f.enabled !== undefined) q = q.where('enabled', '=', n(f.enabled));
  if (f.ids !== undefined) { if (f.ids.length === 0) return []; q = q.where('id', 'in', f.ids); }
  let out = await withTags(db, await q.execute());
  if (f.tags) out = out.filter((p) => f.tags!.every((t) => p.tags.includes(t)));
  if (f.tagsAny) out = out.filter((p) => f.tagsAny!.some((t) => p.tags.includes(t)));
  if (f.notTags) out = out.filter((p) => !f.notTags!.every((t) => p.tags.includes(t)));
  if (f.notTagsAny) out = out.filter((p) => !f.notTagsAny!.some((t) => p.tags.includes(t)));
  return out;
}
export async function deleteProject(db: Db, id: string): Promise<void> {
  await db.deleteFrom('projects').where('id', '=', id).execute();
}
export async function countProjectChildren(db: Db, id: string): Promise<number> {
  const r = await db.selectFrom('projects').select((e) => e.fn.countAll<number>().as('c')).where('parent_id', '=', id).executeTakeFirst();
  return Number(r?.c ?? 0);
}

// Users
type UserRow = Database['users'];
const toUser = (r: UserRow): User => ({
  id: r.id, name: r.name, domain_id: r.domain_id, enabled: b(r.enabled), default_project_id: r.default_project_id,
  password_hash: r.password_hash, password_created_at: r.password_created_at, extra: json(r.extra),
});
export async function insertUser(db: Db, u: User, createdAt: string): Promise<void> {
  await db.insertInto('users').values({
    id: u.id, name: u.name, domain_id: u.domain_id, enabled: n(u.enabled), password_hash: u.password_hash,
    password_created_at: u.password_created_at, default_project_id: u.default_project_id, extra: JSON.stringify(u.extra), created_at: createdAt,
  }).execute();
}
export async function updateUser(db: Db, u: User): Promise<void> {
  await db.updateTable('users').set({
    name: u.name, enabled: n(u.enabled), password_hash: u.password_hash, password_created_at: u.password_created_at,
    default_project_id: u.default_project_id, extra: JSON.stringify(u.extra),
  }).where('id', '=', u.id).execute();
}
export async function getUser(db: Db, id: string): Promise<User | undefined> {
  const r = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toUser(r);
}
export async function getUserByName(db: Db, domainId: string, name: string): Promise<User | undefined> {
  const r = await db.selectFrom('users').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
  return r && toUser(r);
}
export async function listUsers(db: Db, f: { name?: string; domain_id?: string; enabled?: boolean; ids?: string[] }): Promise<User[]> {
  let q = db.selectFrom('users').selectAll().orderBy('id');
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.domain_id !== undefined) q = q.where('domain_id', '=', f.domain_id);
  if (f.enabled !== undefined) q = q.where('enabled', '=', n(f.enabled));
  if (f.ids !== undefined) { if (f.ids.length === 0) return []; q = q.where('id', 'in', f.ids); }
  return (await q.execute()).map(toUser);
}
export async function deleteUser(db: Db, id: string): Promise<void> {
  await db.deleteFrom('assignments').where('actor_id', '=', id).where('type', 'in', ['UserProject', 'UserDomain', 'UserSystem']).execute();
  await db.deleteFrom('users').where('id', '=', id).execute();
}

// Groups
type GroupRow = Database['groups'];
const toGroup = (r: GroupRow): Group => ({ id: r.id, name: r.name, domain_id: r.domain_id, description: r.description, extra: json(r.extra) });
export async function insertGroup(db: Db, g: Group): Promise<void> {
  await db.insertInto('groups').values({ id: g.id, name: g.name, domain_id: g.domain_id, description: g.description, extra: JSON.stringify(g.extra) }).execute();
}
export async function updateGroup(db: Db, g: Group): Promise<void> {
  await db.updateTable('groups').set({ name: g.name, description: g.description, extra: JSON.stringify(g.extra) }).where('id', '=', g.id).execute();
}
export async function getGroup(db: Db, id: string): Promise<Group | undefined> {
  const r = await db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toGroup(r);
}
export async function getGroupByName(db: Db, domainId: string, name: string): Promise<Group | undefined> {
  const r = await db.selectFrom('groups').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
  return r && toGroup(r);
}
export async function listGroups(db: Db, f: { name?: string; domain_id?: string; ids?: string[] }): Promise<Group[]> {
  let q = db.selectFrom('groups').selectAll().orderBy('id');
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.domain_id !== undefined) q = q.where('domain_id', '=', f.domain_id);
  if (f.ids !== undefined) { if (f.ids.length === 0) return []; q = q.where('id', 'in', f.ids); }
  return (await q.execute()).map(toGroup);
}
export async function deleteGroup(db: Db, id: string): Promise<void> {
  await db.deleteFrom('assignments').where('actor_id', '=', id).where('type', 'in', ['GroupProject', 'GroupDomain', 'GroupSystem']).execute();
  await db.deleteFrom('groups').where('id', '=', id).execute();
}
export async function addUserToGroup(db: Db, userId: string, groupId: string): Promise<void> {
  await db.insertInto('user_groups').values({ user_id: userId, group_id: groupId }).onConflict((oc) => oc.doNothing()).execute();
}
export async function removeUserFromGroup(db: Db, userId: string, groupId: string): Promise<number> {
  const r = await db.deleteFrom('user_groups').where('user_id', '=', userId).where('group_id', '=', groupId).executeTakeFirst();
  return Number(r.numDeletedRows);
}
export async function isUserInGroup(db: Db, userId: string, groupId: string): Promise<boolean> {
  return (await db.selectFrom('user_groups').select('user_id').where('user_id', '=', userId).where('group_id', '=', groupId).executeTakeFirst()) !== undefined;
}
export async function groupIdsOfUser(db: Db, userId: string): Promise<string[]> {
  return (await db.selectFrom('user_groups').select('group_id').where('user_id', '=', userId).execute()).map((r) => r.group_id);
}
export async function userIdsOfGroup(db: Db, groupId: string): Promise<string[]> {
  return (await db.selectFrom('user_groups').select('user_id').where('group_id', '=', groupId).execute()).map((r) => r.user_id);
}

// Roles
type RoleRow = Database['roles'];
const toRole = (r: RoleRow): Role => ({ id: r.id, name: r.name, domain_id: r.domain_id === '' ? null : r.domain_id, description: r.description, extra: json(r.extra) });
export async function insertRole(db: Db, r: Role): Promise<void> {
  await db.insertInto('roles').values({ id: r.id, name: r.name, domain_id: r.domain_id ?? '', description: r.description, extra: JSON.stringify(r.extra) }).execute();
}
export async function updateRole(db: Db, r: Role): Promise<void> {
  await db.updateTable('roles').set({ name: r.name, description: r.description, extra: JSON.stringify(r.extra) }).where('id', '=', r.id).execute();
}
export async function getRole(db: Db, id: string): Promise<Role | undefined> {
  const r = await db.selectFrom('roles').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toRole(r);
}
export async function listRoles(db: Db, f: { name?: string; domain_id?: string | null }): Promise<Role[]> {
  let q = db.selectFrom('roles').selectAll().orderBy('id');
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.domain_id !== undefined) q = q.where('domain_id', '=', f.domain_id ?? '');
  return (await q.execute()).map(toRole);
}
export async function allRoles(db: Db): Promise<Role[]> {
  return (await db.selectFrom('roles').selectAll().execute()).map(toRole);
}
export async function deleteRole(db: Db, id: string): Promise<void> {
  await db.deleteFrom('roles').where('id', '=', id).execute();
}
export async function listImplied(db: Db, priorId?: string): Promise<{ prior_role_id: string; implied_role_id: string }[]> {
  let q = db.selectFrom('implied_roles').selectAll().orderBy('prior_role_id').orderBy('implied_role_id');
  if (priorId !== undefined) q = q.where('prior_role_id', '=', priorId);
  return q.execute();
}
export async function insertImplied(db: Db, prior: string, implied: string): Promise<void> {
  await db.insertInto('implied_roles').values({ prior_role_id: prior, implied_role_id: implied }).onConflict((oc) => oc.doNothing()).execute();
}
export async function deleteImplied(db: Db, prior: string, implied: string): Promise<number> {
  const r = await db.deleteFrom('implied_roles').where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).executeTakeFirst();
  return Number(r.numDeletedRows);
}

// Assignments
const typeOf = (a: Pick<Assignment, 'actorType' | 'targetType'>): AssignmentType => `${a.actorType}${a.targetType}` as AssignmentType;
const toAssignment = (r: Database['assignments']): Assignment => {
  const m = /^(User|Group)(Project|Domain|System)$/.exec(r.type)!;
  return { actorType: m[1] as Assignment['actorType'], targetType: m[2] as Assignment['targetType'], actorId: r.actor_id, targetId: r.target_id, roleId: r.role_id, inherited: b(r.inherited) };
};
export async function insertAssignment(db: Db, a: Assignment): Promise<void> {
  await db.insertInto('assignments').values({ type: typeOf(a), actor_id: a.actorId, target_id: a.targetId, role_id: a.roleId, inherited: n(a.inherited) })
    .onConflict((oc) => oc.doNothing()).execute();
}
export async function deleteAssignment(db: Db, a: Assignment): Promise<number> {
  const r = await db.deleteFrom('assignments').where('type', '=', typeOf(a)).where('actor_id', '=', a.actorId)
    .where('target_id', '=', a.targetId).where('role_id', '=', a.roleId).where('inherited', '=', n(a.inherited)).executeTakeFirst();
  return Number(r.numDeletedRows);
}
export async function hasAssignment(db: Db, a: Assignment): Promise<boolean> {
  return (await db.selectFrom('assignments').select('role_id').where('type', '=', typeOf(a)).where('actor_id', '=', a.actorId)
    .where('target_id', '=', a.targetId).where('role_id', '=', a.roleId).where('inherited', '=', n(a.inherited)).executeTakeFirst()) !== undefined;
}
export async function listAssignments(db: Db, f: { actorIds?: string[]; targetIds?: string[]; roleId?: string; types?: AssignmentType[] } = {}): Promise<Assignment[]> {
  let q = db.selectFrom('assignments').selectAll();
  if (f.actorIds) { if (!f.actorIds.length) return []; q = q.where('actor_id', 'in', f.actorIds); }
  if (f.targetIds) { if (!f.targetIds.length) return []; q = q.where('target_id', 'in', f.targetIds); }
  if (f.roleId) q = q.where('role_id', '=', f.roleId);
  if (f.types) q = q.where('type', 'in', f.types);
  return (await q.orderBy('type').orderBy('actor_id').orderBy('target_id').orderBy('role_id').execute()).map(toAssignment);
}
export async function deleteAssignmentsOfTarget(db: Db, targetId: string): Promise<void> {
  await db.deleteFrom('assignments').where('target_id', '=', targetId).execute();
}

// Regions, services, endpoints
const toRegion = (r: Database['regions']): Region => ({ id: r.id, description: r.description, parent_region_id: r.parent_region_id, extra: json(r.extra) });
export async function insertRegion(db: Db, r: Region): Promise<void> {
  await db.insertInto('regions').values({ id: r.id, description: r.description, parent_region_id: r.parent_region_id, extra: JSON.stringify(r.extra) }).execute();
}
export async function updateRegion(db: Db, r: Region): Promise<void> {
  await db.updateTable('regions').set({ description: r.description, parent_region_id: r.parent_region_id, extra: JSON.stringify(r.extra) }).where('id', '=', r.id).execute();
}
export async function getRegion(db: Db, id: string): Promise<Region | undefined> {
  const r = await db.selectFrom('regions').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toRegion(r);
}
export async function listRegions(db: Db, f: { parent_region_id?: string } = {}): Promise<Region[]> {
  let q = db.selectFrom('regions').selectAll().orderBy('id');
  if (f.parent_region_id !== undefined) q = q.where('parent_region_id', '=', f.parent_region_id);
  return (await q.execute()).map(toRegion);
}
export async function deleteRegion(db: Db, id: string): Promise<void> { await db.deleteFrom('regions').where('id', '=', id).execute(); }

const toService = (r: Database['services']): CatalogService => ({ id: r.id, type: r.type, name: r.name, description: r.description, enabled: b(r.enabled), extra: json(r.extra) });
export async function insertService(db: Db, s: CatalogService): Promise<void> {
  await db.insertInto('services').values({ id: s.id, type: s.type, name: s.name, description: s.description, enabled: n(s.enabled), extra: JSON.stringify(s.extra) }).execute();
}
export async function updateService(db: Db, s: CatalogService): Promise<void> {
  await db.updateTable('services').set({ type: s.type, name: s.name, description: s.description, enabled: n(s.enabled), extra: JSON.stringify(s.extra) }).where('id', '=', s.id).execute();
}
export async function getService(db: Db, id: string): Promise<CatalogService | undefined> {
  const r = await db.selectFrom('services').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toService(r);
}
export async function listServices(db: Db, f: { type?: string; name?: string } = {}): Promise<CatalogService[]> {
  let q = db.selectFrom('services').selectAll().orderBy('id');
  if (f.type !== undefined) q = q.where('type', '=', f.type);
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  return (await q.execute()).map(toService);
}
export async function deleteService(db: Db, id: string): Promise<void> { await db.deleteFrom('services').where('id', '=', id).execute(); }

const toEndpoint = (r: Database['endpoints']): Endpoint => ({
  id: r.id, service_id: r.service_id, interface: r.interface as Endpoint['interface'], url: r.url, region_id: r.region_id, enabled: b(r.enabled), extra: json(r.extra),
});
export async function insertEndpoint(db: Db, e: Endpoint): Promise<void> {
  await db.insertInto('endpoints').values({ id: e.id, service_id: e.service_id, interface: e.interface, url: e.url, region_id: e.region_id, enabled: n(e.enabled), extra: JSON.stringify(e.extra) }).execute();
}
export async function updateEndpoint(db: Db, e: Endpoint): Promise<void> {
  await db.updateTable('endpoints').set({ service_id: e.service_id, interface: e.interface, url: e.url, region_id: e.region_id, enabled: n(e.enabled), extra: JSON.stringify(e.extra) }).where('id', '=', e.id).execute();
}
export async function getEndpoint(db: Db, id: string): Promise<Endpoint | undefined> {
  const r = await db.selectFrom('endpoints').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toEndpoint(r);
}
export async function listEndpoints(db: Db, f: { service_id?: string; interface?: string; region_id?: string } = {}): Promise<Endpoint[]> {
  let q = db.selectFrom('endpoints').selectAll().orderBy('id');
  if (f.service_id !== undefined) q = q.where('service_id', '=', f.service_id);
  if (f.interface !== undefined) q = q.where('interface', '=', f.interface);
  if (f.region_id !== undefined) q = q.where('region_id', '=', f.region_id);
  return (await q.execute()).map(toEndpoint);
}
export async function deleteEndpoint(db: Db, id: string): Promise<void> { await db.deleteFrom('endpoints').where('id', '=', id).execute(); }

// Application credentials
export async function insertAppCred(db: Db, a: AppCred, createdAt: string): Promise<void> {
  await db.insertInto('app_creds').values({
    id: a.id, name: a.name, user_id: a.user_id, project_id: a.project_id, secret_hash: a.secret_hash, description: a.description,
    expires_at: a.expires_at, unrestricted: n(a.unrestricted), created_at: createdAt,
  }).execute();
  if (a.roles.length) await db.insertInto('app_cred_roles').values(a.roles.map((r) => ({ app_cred_id: a.id, role_id: r.id }))).execute();
}
async function appCredsFrom(db: Db, rows: Database['app_creds'][]): Promise<AppCred[]> {
  if (!rows.length) return [];
  const rr = await db.selectFrom('app_cred_roles').innerJoin('roles', 'roles.id', 'app_cred_roles.role_id')
    .select(['app_cred_roles.app_cred_id', 'roles.id', 'roles.name', 'roles.domain_id'])
    .where('app_cred_roles.app_cred_id', 'in', rows.map((r) => r.id)).orderBy('roles.name').execute();
  return rows.map((r) => ({
    id: r.id, name: r.name, user_id: r.user_id, project_id: r.project_id, secret_hash: r.secret_hash, description: r.description,
    expires_at: r.expires_at, unrestricted: b(r.unrestricted),
    roles: rr.filter((x) => x.app_cred_id === r.id).map((x) => ({ id: x.id, name: x.name, domain_id: x.domain_id === '' ? null : x.domain_id })),
  }));
}
export async function getAppCred(db: Db, id: string): Promise<AppCred | undefined> {
  return (await appCredsFrom(db, await db.selectFrom('app_creds').selectAll().where('id', '=', id).execute()))[0];
}
export async function listAppCreds(db: Db, userId: string, name?: string): Promise<AppCred[]> {
  let q = db.selectFrom('app_creds').selectAll().where('user_id', '=', userId).orderBy('id');
  if (name !== undefined) q = q.where('name', '=', name);
  return appCredsFrom(db, await q.execute());
}
export async function deleteAppCred(db: Db, id: string): Promise<void> { await db.deleteFrom('app_creds').where('id', '=', id).execute(); }
export async function deleteAppCredsOf(db: Db, f: { userId: string; projectId?: string }): Promise<string[]> {
  let q = db.selectFrom('app_creds').select('id').where('user_id', '=', f.userId);
  if (f.projectId) q = q.where('project_id', '=', f.projectId);
  const ids = (await q.execute()).map((r) => r.id);
  if (ids.length) await db.deleteFrom('app_creds').where('id', 'in', ids).execute();
  return ids;
}

// Credentials (incl. EC2)
const toCredential = (r: Database['credentials']): Credential => ({ id: r.id, user_id: r.user_id, project_id: r.project_id, type: r.type, blob: r.blob, extra: json(r.extra) });
export async function insertCredential(db: Db, c: Credential, keyHash: string | null): Promise<void> {
  await db.insertInto('credentials').values({ id: c.id, user_id: c.user_id, project_id: c.project_id, type: c.type, blob: c.blob, key_hash: keyHash, extra: JSON.stringify(c.extra) }).execute();
}
export async function updateCredential(db: Db, c: Credential, keyHash: string | null): Promise<void> {
  await db.updateTable('credentials').set({ user_id: c.user_id, project_id: c.project_id, type: c.type, blob: c.blob, key_hash: keyHash, extra: JSON.stringify(c.extra) }).where('id', '=', c.id).execute();
}
export async function getCredential(db: Db, id: string): Promise<Credential | undefined> {
  const r = await db.selectFrom('credentials').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toCredential(r);
}
export async function listCredentials(db: Db, f: { user_id?: string; type?: string }): Promise<Credential[]> {
  let q = db.selectFrom('credentials').selectAll().orderBy('id');
  if (f.user_id !== undefined) q = q.where('user_id', '=', f.user_id);
  if (f.type !== undefined) q = q.where('type', '=', f.type);
  return (await q.execute()).map(toCredential);
}
export async function deleteCredential(db: Db, id: string): Promise<void> { await db.deleteFrom('credentials').where('id', '=', id).execute(); }

// Revocation events
export async function insertRevocation(db: Db, e: RevocationEvent): Promise<void> { await db.insertInto('revocation_events').values(e).execute(); }
export async function listRevocations(db: Db, since?: string): Promise<RevocationEvent[]> {
  let q = db.selectFrom('revocation_events').selectAll().orderBy('revoked_at');
  if (since) q = q.where('revoked_at', '>=', since);
  return q.execute();
}
export async function pruneRevocations(db: Db, before: string): Promise<void> {
  await db.deleteFrom('revocation_events').where('revoked_at', '<', before).execute();
}

// Policies (stored blobs, as Keystone keeps them)
const toPolicy = (r: Database['policies']): Policy => ({ id: r.id, type: r.type, blob: r.blob, extra: json(r.extra) });
export async function insertPolicy(db: Db, p: Policy): Promise<void> {
  await db.insertInto('policies').values({ id: p.id, type: p.type, blob: p.blob, extra: JSON.stringify(p.extra) }).execute();
}
export async function updatePolicy(db: Db, p: Policy): Promise<void> {
  await db.updateTable('policies').set({ type: p.type, blob: p.blob, extra: JSON.stringify(p.extra) }).where('id', '=', p.id).execute();
}
export async function getPolicy(db: Db, id: string): Promise<Policy | undefined> {
  const r = await db.selectFrom('policies').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toPolicy(r);
}
export async function listPolicies(db: Db, type?: string): Promise<Policy[]> {
  let q = db.selectFrom('policies').selectAll().orderBy('id');
  if (type !== undefined) q = q.where('type', '=', type);
  return (await q.execute()).map(toPolicy);
}
export async function deletePolicy(db: Db, id: string): Promise<void> { await db.deleteFrom('policies').where('id', '=', id).execute(); }

// Endpoint groups and project/endpoint associations (OS-EP-FILTER)
const toGroupOfEndpoints = (r: Database['endpoint_groups']): EndpointGroup => ({ id: r.id, name: r.name, description: r.description, filters: json(r.filters) as EndpointFilters });
export async function insertEndpointGroup(db: Db, g: EndpointGroup): Promise<void> {
  await db.insertInto('endpoint_groups').values({ id: g.id, name: g.name, description: g.description, filters: JSON.stringify(g.filters) }).execute();
}
export async function updateEndpointGroup(db: Db, g: EndpointGroup): Promise<void> {
  await db.updateTable('endpoint_groups').set({ name: g.name, description: g.description, filters: JSON.stringify(g.filters) }).where('id', '=', g.id).execute();
}
export async function getEndpointGroup(db: Db, id: string): Promise<EndpointGroup | undefined> {
  const r = await db.selectFrom('endpoint_groups').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toGroupOfEndpoints(r);
}
export async function listEndpointGroups(db: Db, f: { name?: string; ids?: string[] } = {}): Promise<EndpointGroup[]> {
  let q = db.selectFrom('endpoint_groups').selectAll().orderBy('id');
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.ids !== undefined) { if (!f.ids.length) return []; q = q.where('id', 'in', f.ids); }
  return (await q.execute()).map(toGroupOfEndpoints);
}
export async function deleteEndpointGroup(db: Db, id: string): Promise<void> { await db.deleteFrom('endpoint_groups').where('id', '=', id).execute(); }
export async function associateGroupProject(db: Db, groupId: string, projectId: string): Promise<void> {
  await db.insertInto('project_endpoint_groups').values({ endpoint_group_id: groupId, project_id: projectId }).onConflict((oc) => oc.doNothing()).execute();
}
export async function dissociateGroupProject(db: Db, groupId: string, projectId: string): Promise<number> {
  const r = await db.deleteFrom('project_endpoint_groups').where('endpoint_group_id', '=', groupId).where('project_id', '=', projectId).executeTakeFirst();
  return Number(r.numDeletedRows);
}
export async function groupProjectPairs(db: Db, f: { groupId?: string; projectId?: string }): Promise<{ endpoint_group_id: string; project_id: string }[]> {
  let q = db.selectFrom('project_endpoint_groups').selectAll();
  if (f.groupId !== undefined) q = q.where('endpoint_group_id', '=', f.groupId);
  if (f.projectId !== undefined) q = q.where('project_id', '=', f.projectId);
  return q.execute();
}
export async function associateEndpointProject(db: Db, endpointId: string, projectId: string): Promise<void> {
  await db.insertInto('project_endpoints').values({ endpoint_id: endpointId, project_id: projectId }).onConflict((oc) => oc.doNothing()).execute();
}
export async function dissociateEndpointProject(db: Db, endpointId: string, projectId: string): Promise<number> {
  const r = await db.deleteFrom('project_endpoints').where('endpoint_id', '=', endpointId).where('project_id', '=', projectId).executeTakeFirst();
  return Number(r.numDeletedRows);
}
export async function endpointProjectPairs(db: Db, f: { endpointId?: string; projectId?: string }): Promise<{ endpoint_id: string; project_id: string }[]> {
  let q = db.selectFrom('project_endpoints').selectAll();
  if (f.endpointId !== undefined) q = q.where('endpoint_id', '=', f.endpointId);
  if (f.projectId !== undefined) q = q.where('project_id', '=', f.projectId);
  return q.execute();
}
