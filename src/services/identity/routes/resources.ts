import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../common/errors.ts';
import { newId } from '../../../common/ids.ts';
import { isUniqueViolation, type Db } from '../../../db/index.ts';
import type { IdentityService } from '../service.ts';
import * as store from '../store.ts';
import { collectionLinks, renderDomain, renderDomainAsProject, renderGroup, renderProject, renderUser, v3Base } from '../render.ts';
import { DEFAULT_DOMAIN_ID, type Domain, type Group, type Project, type User } from '../types.ts';

/** Domains, projects (with tags), users and groups. */

const Name64 = Type.String({ minLength: 1, maxLength: 64 });
const Name255 = Type.String({ minLength: 1, maxLength: 255 });
const Desc = Type.Union([Type.String({ maxLength: 65535 }), Type.Null()]);
const Tag = Type.String({ minLength: 1, maxLength: 255, pattern: '^[^,/]*$' });
const Tags = Type.Array(Tag, { maxItems: 80 });
const Options = Type.Optional(Type.Object({}, { additionalProperties: true }));

const DomainCreate = Type.Object({ domain: Type.Object({
  name: Name64, description: Type.Optional(Desc), enabled: Type.Optional(Type.Boolean()), tags: Type.Optional(Tags),
  explicit_domain_id: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9_-]{1,64}$' })), options: Options,
}, { additionalProperties: true }) });
const DomainUpdate = Type.Object({ domain: Type.Object({
  name: Type.Optional(Name64), description: Type.Optional(Desc), enabled: Type.Optional(Type.Boolean()), tags: Type.Optional(Tags), options: Options,
}, { additionalProperties: true, minProperties: 1 }) });

const ProjectCreate = Type.Object({ project: Type.Object({
  name: Name64, description: Type.Optional(Desc), enabled: Type.Optional(Type.Boolean()), domain_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  parent_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])), is_domain: Type.Optional(Type.Boolean()), tags: Type.Optional(Tags), options: Options,
}, { additionalProperties: true }) });
const ProjectUpdate = Type.Object({ project: Type.Object({
  name: Type.Optional(Name64), description: Type.Optional(Desc), enabled: Type.Optional(Type.Boolean()), tags: Type.Optional(Tags), options: Options,
  domain_id: Type.Optional(Type.String()), parent_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), is_domain: Type.Optional(Type.Boolean()),
}, { additionalProperties: true, minProperties: 1 }) });

const UserCreate = Type.Object({ user: Type.Object({
  name: Name255, domain_id: Type.Optional(Type.String({ maxLength: 64 })), enabled: Type.Optional(Type.Boolean()),
  password: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
  default_project_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  description: Type.Optional(Desc), email: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])), options: Options,
  federated: Type.Optional(Type.Array(Type.Unknown())),
}, { additionalProperties: true }) });
const UserUpdate = Type.Object({ user: Type.Object({
  name: Type.Optional(Name255), enabled: Type.Optional(Type.Boolean()), password: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
  default_project_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])), domain_id: Type.Optional(Type.String()),
  description: Type.Optional(Desc), email: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])), options: Options,
}, { additionalProperties: true, minProperties: 1 }) });
const PasswordChange = Type.Object({ user: Type.Object({ password: Type.String({ minLength: 1, maxLength: 4096 }), original_password: Type.String({ maxLength: 4096 }) }) });

const GroupCreate = Type.Object({ group: Type.Object({
  name: Name64, domain_id: Type.Optional(Type.String({ maxLength: 64 })), description: Type.Optional(Desc),
}, { additionalProperties: true }) });
const GroupUpdate = Type.Object({ group: Type.Object({
  name: Type.Optional(Name64), description: Type.Optional(Desc), domain_id: Type.Optional(Type.String()),
}, { additionalProperties: true, minProperties: 1 }) });

type Q = Record<string, string | undefined>;
/** Keystone's truthiness for boolean query filters. */
export function boolFilter(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  return !['0', 'false', 'False', 'FALSE', 'no'].includes(v);
}

/** Everything in `body` that is not a known column goes to `extra`, as Keystone stores it. */
function splitExtra(body: Record<string, unknown>, known: string[]): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!known.includes(k)) extra[k] = v;
  return extra;
}

async function uniq<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try { return await fn(); } catch (err) {
    if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store ${what} - Duplicate entry.`);
    throw err;
  }
}

export async function requireDomain(db: Db, id: string): Promise<Domain> {
  const d = await store.getDomain(db, id);
  if (!d) throw new NotFound(`Could not find domain: ${id}.`);
  return d;
}
export async function requireProject(db: Db, id: string): Promise<Project> {
  const p = await store.getProject(db, id);
  if (!p) throw new NotFound(`Could not find project: ${id}.`);
  return p;
}
export async function requireUser(db: Db, id: string): Promise<User> {
  const u = await store.getUser(db, id);
  if (!u) throw new NotFound(`Could not find user: ${id}.`);
  return u;
}
export async function requireGroup(db: Db, id: string): Promise<Group> {
  const g = await store.getGroup(db, id);
  if (!g) throw new NotFound(`Could not find group: ${id}.`);
  return g;
}

export function resourceRoutes(app: FastifyInstance, identity: IdentityService): void {
  const db = identity.db;
  /** The domain a new resource lands in: the body's, else the token's domain, else default. */
  const domainFor = (given: string | null | undefined, auth: { domainId?: string }): string => given ?? auth.domainId ?? DEFAULT_DOMAIN_ID;
  /** The domain with this id when the projects API is asked about a project acting as a domain. */
  const domainAsProject = async (id: string): Promise<Domain | undefined> =>
    (await store.getProject(db, id)) ? undefined : store.getDomain(db, id);

  // ---- domains ----
  app.post<{ Body: Static<typeof DomainCreate> }>('/v3/domains', { schema: { body: DomainCreate } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_domain');
    const b = req.body.domain;
    const d: Domain = {
      id: b.explicit_domain_id ?? newId(), name: b.name, description: b.description ?? '', enabled: b.enabled ?? true,
      extra: splitExtra(b, ['name', 'description', 'enabled', 'tags', 'explicit_domain_id', 'options', 'id']),
    };
    await uniq(() => store.insertDomain(db, d), 'domain');
    await identity.changed('domain');
    return reply.code(201).send({ domain: renderDomain(v3Base(req), d) });
  });
  app.get<{ Querystring: Q }>('/v3/domains', async (req) => {
    enforce(req.ctx.auth, 'identity:list_domains');
    const list = await store.listDomains(db, { name: req.query.name, enabled: boolFilter(req.query.enabled) });
    return { domains: list.map((d) => renderDomain(v3Base(req), d)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>('/v3/domains/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_domain', { domain_id: req.params.id });
    return { domain: renderDomain(v3Base(req), await requireDomain(db, req.params.id)) };
  });
  /** Update a domain (also reached through the projects API for projects acting as domains). */
  const updateDomain = async (id: string, b: Static<typeof DomainUpdate>['domain']): Promise<Domain> => {
    const d = await requireDomain(db, id);
    if (b.name !== undefined) d.name = b.name;
    if (b.description !== undefined) d.description = b.description ?? '';
    const disabling = b.enabled === false && d.enabled;
    if (b.enabled !== undefined) {
      if (d.id === DEFAULT_DOMAIN_ID && !b.enabled) throw new Forbidden('The default domain cannot be disabled.');
      d.enabled = b.enabled;
    }
    Object.assign(d.extra, splitExtra(b, ['name', 'description', 'enabled', 'tags', 'options', 'id', 'is_domain', 'domain_id', 'parent_id']));
    await db.transaction().execute(async (trx) => {
      await uniq(() => store.updateDomain(trx, d), 'domain');
      if (disabling) await identity.revoke({ domain_id: d.id }, trx);
    });
    await identity.changed('domain');
    return d;
  };
  /** Delete a disabled domain and everything in it. */
  const deleteDomain = async (id: string): Promise<void> => {
    const d = await requireDomain(db, id);
    if (d.enabled) throw new Forbidden('Cannot delete a domain that is enabled, please disable it first.');
    await db.transaction().execute(async (trx) => {
      const projects = await store.listProjects(trx, { domain_id: d.id });
      for (const p of projects) await store.deleteAssignmentsOfTarget(trx, p.id);
      // Children first so parent references never dangle.
      const depth = (p: Project): number => { let n = 0; let cur: Project | undefined = p; while (cur?.parent_id) { n++; cur = projects.find((x) => x.id === cur!.parent_id); } return n; };
      for (const p of projects.sort((a, b) => depth(b) - depth(a))) await store.deleteProject(trx, p.id);
      for (const u of await store.listUsers(trx, { domain_id: d.id })) await store.deleteUser(trx, u.id);
      for (const g of await store.listGroups(trx, { domain_id: d.id })) await store.deleteGroup(trx, g.id);
      for (const r of await store.listRoles(trx, { domain_id: d.id })) await store.deleteRole(trx, r.id);
      await store.deleteAssignmentsOfTarget(trx, d.id);
      await store.deleteDomain(trx, d.id);
      await identity.revoke({ domain_id: d.id }, trx);
    });
    await identity.changed('domain');
  };
  app.patch<{ Params: { id: string }; Body: Static<typeof DomainUpdate> }>('/v3/domains/:id', { schema: { body: DomainUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_domain', { domain_id: req.params.id });
    return { domain: renderDomain(v3Base(req), await updateDomain(req.params.id, req.body.domain)) };
  });
  app.delete<{ Params: { id: string } }>('/v3/domains/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_domain', { domain_id: req.params.id });
    await deleteDomain(req.params.id);
    return reply.code(204).send();
  });

  // ---- projects ----
  app.post<{ Body: Static<typeof ProjectCreate> }>('/v3/projects', { schema: { body: ProjectCreate } }, async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'identity:create_project');
    const b = req.body.project;
    if (b.is_domain) {
      // A project acting as a domain is a domain: it lives in the domains table.
      if (b.parent_id || b.domain_id) throw new BadRequest('A project acting as a domain cannot have a parent or a domain.');
      const d: Domain = { id: newId(), name: b.name, description: b.description ?? '', enabled: b.enabled ?? true, extra: {} };
      await uniq(() => store.insertDomain(db, d), 'domain');
      await identity.changed('domain');
      return reply.code(201).send({ project: renderDomainAsProject(v3Base(req), d) });
    }
    let domainId = domainFor(b.domain_id, auth);
    let parentId: string | null = b.parent_id ?? null;
    if (parentId !== null) {
      const parent = await store.getProject(db, parentId);
      if (!parent) {
        if (await store.getDomain(db, parentId)) { domainId = parentId; parentId = null; } else throw new NotFound(`Could not find project: ${parentId}.`);
      } else {
        if (b.domain_id && b.domain_id !== parent.domain_id) throw new BadRequest('A project must be in the same domain as its parent.');
        domainId = parent.domain_id;
        if ((await identity.ancestorIds(parent)).length >= 7) throw new Forbidden('Max hierarchy depth reached for the project tree.');
      }
    }
    const domain = await store.getDomain(db, domainId);
    if (!domain) throw new NotFound(`Could not find domain: ${domainId}.`);
    const p: Project = {
      id: newId(), name: b.name, domain_id: domainId, parent_id: parentId, description: b.description ?? '', enabled: b.enabled ?? true,
      is_domain: false, tags: b.tags ?? [], extra: splitExtra(b, ['name', 'description', 'enabled', 'domain_id', 'parent_id', 'is_domain', 'tags', 'options', 'id']),
    };
    await uniq(() => db.transaction().execute((trx) => store.insertProject(trx, p)), 'project');
    await identity.changed('project');
    return reply.code(201).send({ project: renderProject(v3Base(req), p) });
  });
  app.get<{ Querystring: Q }>('/v3/projects', async (req) => {
    enforce(req.ctx.auth, 'identity:list_projects');
    const q = req.query;
    if (q.is_domain !== undefined && boolFilter(q.is_domain)) {
      const domains = await store.listDomains(db, { name: q.name, enabled: boolFilter(q.enabled) });
      return { projects: domains.map((d) => renderDomainAsProject(v3Base(req), d)), links: collectionLinks(req) };
    }
    const csv = (v?: string) => (v === undefined ? undefined : v.split(',').filter((x) => x !== ''));
    let parentId = q.parent_id;
    let domainId = q.domain_id;
    if (parentId !== undefined && !(await store.getProject(db, parentId)) && (await store.getDomain(db, parentId))) { domainId = parentId; parentId = undefined; }
    let list = await store.listProjects(db, {
      name: q.name, domain_id: domainId, parent_id: parentId, enabled: boolFilter(q.enabled),
      tags: csv(q.tags), tagsAny: csv(q['tags-any']), notTags: csv(q['not-tags']), notTagsAny: csv(q['not-tags-any']),
    });
    if (q.parent_id !== undefined && parentId === undefined) list = list.filter((p) => p.parent_id === null);
    return { projects: list.map((p) => renderProject(v3Base(req), p)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string }; Querystring: Q }>('/v3/projects/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_project', { project_id: req.params.id });
    const asDomain = await domainAsProject(req.params.id);
    if (asDomain) return { project: renderDomainAsProject(v3Base(req), asDomain) };
    const p = await requireProject(db, req.params.id);
    const out: Record<string, unknown> = renderProject(v3Base(req), p);
    if (req.query.parents_as_ids !== undefined || req.query.parents_as_list !== undefined) {
      const ids = await identity.ancestorIds(p);
      out.parents = req.query.parents_as_list !== undefined
        ? await Promise.all(ids.map(async (id) => ({ project: renderProject(v3Base(req), (await store.getProject(db, id))!) })))
        : ids.reduceRight<Record<string, unknown> | null>((acc, id) => ({ [id]: acc }), null);
    }
    if (req.query.subtree_as_ids !== undefined || req.query.subtree_as_list !== undefined) {
      const all = await store.listProjects(db, { domain_id: p.domain_id });
      const under = (id: string): Project[] => all.filter((x) => x.parent_id === id).flatMap((c) => [c, ...under(c.id)]);
      const tree = (id: string): Record<string, unknown> | null => {
        const kids = all.filter((x) => x.parent_id === id);
        return kids.length ? Object.fromEntries(kids.map((k) => [k.id, tree(k.id)])) : null;
      };
      out.subtree = req.query.subtree_as_list !== undefined ? under(p.id).map((c) => ({ project: renderProject(v3Base(req), c) })) : tree(p.id);
    }
    return { project: out };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof ProjectUpdate> }>('/v3/projects/:id', { schema: { body: ProjectUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_project', { project_id: req.params.id });
    const b = req.body.project;
    if (await domainAsProject(req.params.id)) {
      enforce(req.ctx.auth, 'identity:update_domain', { domain_id: req.params.id });
      return { project: renderDomainAsProject(v3Base(req), await updateDomain(req.params.id, b)) };
    }
    const p = await requireProject(db, req.params.id);
    if (b.domain_id !== undefined && b.domain_id !== p.domain_id) throw new BadRequest('Cannot change the domain of a project.');
    if (b.parent_id !== undefined && (b.parent_id ?? p.domain_id) !== (p.parent_id ?? p.domain_id)) throw new Forbidden('Cannot change the parent of a project.');
    if (b.is_domain !== undefined && b.is_domain) throw new BadRequest('Cannot change is_domain of a project.');
    if (b.name !== undefined) p.name = b.name;
    if (b.description !== undefined) p.description = b.description ?? '';
    const disabling = b.enabled === false && p.enabled;
    if (b.enabled !== undefined) p.enabled = b.enabled;
    Object.assign(p.extra, splitExtra(b, ['name', 'description', 'enabled', 'domain_id', 'parent_id', 'is_domain', 'tags', 'options', 'id']));
    await db.transaction().execute(async (trx) => {
      await uniq(() => store.updateProject(trx, p), 'project');
      if (b.tags !== undefined) { p.tags = [...new Set(b.tags)]; await store.setProjectTags(trx, p.id, p.tags); }
      if (disabling) await identity.revoke({ project_id: p.id }, trx);
    });
    await identity.changed('project');
    return { project: renderProject(v3Base(req), p) };
  });
  app.delete<{ Params: { id: string } }>('/v3/projects/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_project', { project_id: req.params.id });
    if (await domainAsProject(req.params.id)) {
      enforce(req.ctx.auth, 'identity:delete_domain', { domain_id: req.params.id });
      await deleteDomain(req.params.id);
      return reply.code(204).send();
    }
    const p = await requireProject(db, req.params.id);
    if (await store.countProjectChildren(db, p.id)) throw new Forbidden(`Cannot delete project ${p.id}: it has child projects.`);
    await db.transaction().execute(async (trx) => {
      await store.deleteAssignmentsOfTarget(trx, p.id);
      await trx.deleteFrom('app_creds').where('project_id', '=', p.id).execute();
      await store.deleteProject(trx, p.id);
      await identity.revoke({ project_id: p.id }, trx);
    });
    await identity.changed('project');
    return reply.code(204).send();
  });

  // project tags
  app.get<{ Params: { id: string } }>('/v3/projects/:id/tags', async (req) => {
    enforce(req.ctx.auth, 'identity:list_project_tags', { project_id: req.params.id });
    return { tags: (await requireProject(db, req.params.id)).tags };
  });
  app.put<{ Params: { id: string }; Body: { tags: string[] } }>('/v3/projects/:id/tags', { schema: { body: Type.Object({ tags: Tags }) } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_project_tags', { project_id: req.params.id });
    const p = await requireProject(db, req.params.id);
    p.tags = [...new Set(req.body.tags)];
    await store.setProjectTags(db, p.id, p.tags);
    await identity.changed('project');
    return { tags: p.tags, links: collectionLinks(req) };
  });
  app.delete<{ Params: { id: string } }>('/v3/projects/:id/tags', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:update_project_tags', { project_id: req.params.id });
    await requireProject(db, req.params.id);
    await store.setProjectTags(db, req.params.id, []);
    await identity.changed('project');
    return reply.code(204).send();
  });
  app.get<{ Params: { id: string; tag: string } }>('/v3/projects/:id/tags/:tag', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:list_project_tags', { project_id: req.params.id });
    const p = await requireProject(db, req.params.id);
    if (!p.tags.includes(req.params.tag)) throw new NotFound(`Could not find tag: ${req.params.tag}.`);
    return reply.code(204).send();
  });
  app.put<{ Params: { id: string; tag: string } }>('/v3/projects/:id/tags/:tag', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:update_project_tags', { project_id: req.params.id });
    const p = await requireProject(db, req.params.id);
    const tag = req.params.tag;
    if (tag.length > 255 || /[,/]/.test(tag)) throw new BadRequest(`Invalid tag: ${tag}`);
    if (!p.tags.includes(tag)) {
      if (p.tags.length >= 80) throw new BadRequest('A project can have at most 80 tags.');
      p.tags.push(tag);
      await store.setProjectTags(db, p.id, p.tags);
      await identity.changed('project');
    }
    return reply.code(201).header('Location', `${v3Base(req)}/projects/${p.id}/tags/${encodeURIComponent(tag)}`).send();
  });
  app.delete<{ Params: { id: string; tag: string } }>('/v3/projects/:id/tags/:tag', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:update_project_tags', { project_id: req.params.id });
    const p = await requireProject(db, req.params.id);
    if (!p.tags.includes(req.params.tag)) throw new NotFound(`Could not find tag: ${req.params.tag}.`);
    await store.setProjectTags(db, p.id, p.tags.filter((t) => t !== req.params.tag));
    await identity.changed('project');
    return reply.code(204).send();
  });

  // ---- users ----
  app.post<{ Body: Static<typeof UserCreate> }>('/v3/users', { schema: { body: UserCreate } }, async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'identity:create_user');
    const b = req.body.user;
    const domainId = domainFor(b.domain_id, auth);
    await requireDomain(db, domainId);
    if (b.default_project_id) await requireProject(db, b.default_project_id);
    const u = await identity.createUser({
      id: newId(), name: b.name, domain_id: domainId, enabled: b.enabled ?? true, default_project_id: b.default_project_id ?? null,
      password: b.password ?? null, extra: splitExtra(b, ['name', 'domain_id', 'enabled', 'password', 'default_project_id', 'options', 'federated', 'id']),
    });
    return reply.code(201).send({ user: renderUser(v3Base(req), u) });
  });
  app.get<{ Querystring: Q }>('/v3/users', async (req) => {
    enforce(req.ctx.auth, 'identity:list_users');
    const q = req.query;
    let list = await store.listUsers(db, { name: q.name, domain_id: q.domain_id, enabled: boolFilter(q.enabled) });
    for (const [k, v] of Object.entries(q)) {
      const m = /^name__(contains|icontains|startswith|istartswith|endswith|iendswith)$/.exec(k);
      if (!m || v === undefined) continue;
      const ci = m[1]!.startsWith('i');
      const needle = ci ? v.toLowerCase() : v;
      const op = m[1]!.replace(/^i/, '');
      list = list.filter((u) => {
        const name = ci ? u.name.toLowerCase() : u.name;
        return op === 'contains' ? name.includes(needle) : op === 'startswith' ? name.startsWith(needle) : name.endsWith(needle);
      });
    }
    return { users: list.map((u) => renderUser(v3Base(req), u)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>('/v3/users/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_user', { user_id: req.params.id });
    return { user: renderUser(v3Base(req), await requireUser(db, req.params.id)) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof UserUpdate> }>('/v3/users/:id', { schema: { body: UserUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_user', { user_id: req.params.id });
    let u = await requireUser(db, req.params.id);
    const b = req.body.user;
    if (b.domain_id !== undefined && b.domain_id !== u.domain_id) throw new BadRequest('Cannot change the domain of a user.');
    if (b.name !== undefined) u.name = b.name;
    if (b.default_project_id !== undefined) {
      if (b.default_project_id) await requireProject(db, b.default_project_id);
      u.default_project_id = b.default_project_id;
    }
    const disabling = b.enabled === false && u.enabled;
    if (b.enabled !== undefined) u.enabled = b.enabled;
    Object.assign(u.extra, splitExtra(b, ['name', 'domain_id', 'enabled', 'password', 'default_project_id', 'options', 'federated', 'id']));
    await db.transaction().execute(async (trx) => {
      await uniq(() => store.updateUser(trx, u), 'user');
      if (disabling) await identity.revoke({ user_id: u.id }, trx);
    });
    if (b.password !== undefined && b.password !== null) u = await identity.setPassword(u, b.password);
    await identity.changed('user');
    return { user: renderUser(v3Base(req), u) };
  });
  app.delete<{ Params: { id: string } }>('/v3/users/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_user', { user_id: req.params.id });
    const u = await requireUser(db, req.params.id);
    await db.transaction().execute(async (trx) => {
      await store.deleteUser(trx, u.id);
      await identity.revoke({ user_id: u.id }, trx);
    });
    await identity.changed('user');
    return reply.code(204).send();
  });
  app.post<{ Params: { id: string }; Body: Static<typeof PasswordChange> }>('/v3/users/:id/password', {
    schema: { body: PasswordChange }, config: { auth: false },
  }, async (req, reply) => {
    // Keystone lets a user change a password without a token: the original password is the proof.
    await identity.changePassword(req.params.id, req.body.user.original_password, req.body.user.password);
    return reply.code(204).send();
  });
  app.get<{ Params: { id: string }; Querystring: Q }>('/v3/users/:id/projects', async (req) => {
    enforce(req.ctx.auth, 'identity:list_user_projects', { user_id: req.params.id });
    await requireUser(db, req.params.id);
    const out = [];
    for (const p of await store.listProjects(db, { name: req.query.name, enabled: boolFilter(req.query.enabled), domain_id: req.query.domain_id })) {
      const d = await store.getDomain(db, p.domain_id);
      if (d && (await identity.roleIdsFor(req.params.id, { kind: 'project', project: p, domain: d })).length) out.push(renderProject(v3Base(req), p));
    }
    return { projects: out, links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>('/v3/users/:id/groups', async (req) => {
    enforce(req.ctx.auth, 'identity:list_groups_for_user', { user_id: req.params.id });
    await requireUser(db, req.params.id);
    const groups = await store.listGroups(db, { ids: await store.groupIdsOfUser(db, req.params.id) });
    return { groups: groups.map((g) => renderGroup(v3Base(req), g)), links: collectionLinks(req) };
  });

  // ---- groups ----
  app.post<{ Body: Static<typeof GroupCreate> }>('/v3/groups', { schema: { body: GroupCreate } }, async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'identity:create_group');
    const b = req.body.group;
    const domainId = domainFor(b.domain_id, auth);
    await requireDomain(db, domainId);
    const g: Group = { id: newId(), name: b.name, domain_id: domainId, description: b.description ?? '', extra: splitExtra(b, ['name', 'domain_id', 'description', 'id']) };
    await uniq(() => store.insertGroup(db, g), 'group');
    await identity.changed('group');
    return reply.code(201).send({ group: renderGroup(v3Base(req), g) });
  });
  app.get<{ Querystring: Q }>('/v3/groups', async (req) => {
    enforce(req.ctx.auth, 'identity:list_groups');
    const list = await store.listGroups(db, { name: req.query.name, domain_id: req.query.domain_id });
    return { groups: list.map((g) => renderGroup(v3Base(req), g)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>('/v3/groups/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_group', { group_id: req.params.id });
    return { group: renderGroup(v3Base(req), await requireGroup(db, req.params.id)) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof GroupUpdate> }>('/v3/groups/:id', { schema: { body: GroupUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_group', { group_id: req.params.id });
    const g = await requireGroup(db, req.params.id);
    const b = req.body.group;
    if (b.domain_id !== undefined && b.domain_id !== g.domain_id) throw new BadRequest('Cannot change the domain of a group.');
    if (b.name !== undefined) g.name = b.name;
    if (b.description !== undefined) g.description = b.description ?? '';
    Object.assign(g.extra, splitExtra(b, ['name', 'domain_id', 'description', 'id']));
    await uniq(() => store.updateGroup(db, g), 'group');
    await identity.changed('group');
    return { group: renderGroup(v3Base(req), g) };
  });
  app.delete<{ Params: { id: string } }>('/v3/groups/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_group', { group_id: req.params.id });
    const g = await requireGroup(db, req.params.id);
    await db.transaction().execute(async (trx) => {
      for (const uid of await store.userIdsOfGroup(trx, g.id)) await identity.revoke({ user_id: uid }, trx);
      await store.deleteGroup(trx, g.id);
    });
    await identity.changed('group');
    return reply.code(204).send();
  });
  app.get<{ Params: { id: string } }>('/v3/groups/:id/users', async (req) => {
    enforce(req.ctx.auth, 'identity:list_users_in_group', { group_id: req.params.id });
    await requireGroup(db, req.params.id);
    const users = await store.listUsers(db, { ids: await store.userIdsOfGroup(db, req.params.id) });
    return { users: users.map((u) => renderUser(v3Base(req), u)), links: collectionLinks(req) };
  });
  app.put<{ Params: { gid: string; uid: string } }>('/v3/groups/:gid/users/:uid', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:add_user_to_group', { group_id: req.params.gid, user_id: req.params.uid });
    await requireGroup(db, req.params.gid);
    await requireUser(db, req.params.uid);
    await store.addUserToGroup(db, req.params.uid, req.params.gid);
    await identity.changed('group');
    return reply.code(204).send();
  });
  app.get<{ Params: { gid: string; uid: string } }>('/v3/groups/:gid/users/:uid', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:check_user_in_group', { group_id: req.params.gid, user_id: req.params.uid });
    await requireGroup(db, req.params.gid);
    await requireUser(db, req.params.uid);
    if (!(await store.isUserInGroup(db, req.params.uid, req.params.gid))) throw new NotFound(`User ${req.params.uid} is not a member of group ${req.params.gid}.`);
    return reply.code(204).send();
  });
  app.delete<{ Params: { gid: string; uid: string } }>('/v3/groups/:gid/users/:uid', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:remove_user_from_group', { group_id: req.params.gid, user_id: req.params.uid });
    await requireGroup(db, req.params.gid);
    await requireUser(db, req.params.uid);
    await db.transaction().execute(async (trx) => {
      if (!(await store.removeUserFromGroup(trx, req.params.uid, req.params.gid))) throw new NotFound(`User ${req.params.uid} is not a member of group ${req.params.gid}.`);
      await identity.revoke({ user_id: req.params.uid }, trx);
    });
    await identity.changed('group');
    return reply.code(204).send();
  });
}
