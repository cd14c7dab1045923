import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../common/errors.ts';
import { newId } from '../../../common/ids.ts';
import { isUniqueViolation } from '../../../db/index.ts';
import type { IdentityService } from '../service.ts';
import * as store from '../store.ts';
import { collectionLinks, renderRole, roleRef, v3Base } from '../render.ts';
import type { AssignmentType } from '../../../db/schema.ts';
import { SYSTEM_TARGET, type ActorType, type Assignment, type Role, type TargetType } from '../types.ts';
import { requireDomain, requireGroup, requireProject, requireUser } from './resources.ts';

/** Roles, implied roles, grants and the role assignment query. */

const RoleCreate = Type.Object({ role: Type.Object({
  name: Type.String({ minLength: 1, maxLength: 255 }), domain_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])), options: Type.Optional(Type.Object({}, { additionalProperties: true })),
}, { additionalProperties: true }) });
const RoleUpdate = Type.Object({ role: Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
  options: Type.Optional(Type.Object({}, { additionalProperties: true })), domain_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
}, { additionalProperties: true, minProperties: 1 }) });

async function requireRole(identity: IdentityService, id: string): Promise<Role> {
  const r = await store.getRole(identity.db, id);
  if (!r) throw new NotFound(`Could not find role: ${id}.`);
  return r;
}

export function roleRoutes(app: FastifyInstance, identity: IdentityService): void {
  const db = identity.db;

  app.post<{ Body: Static<typeof RoleCreate> }>('/v3/roles', { schema: { body: RoleCreate } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_role');
    const b = req.body.role;
    if (b.domain_id) await requireDomain(db, b.domain_id);
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(b)) if (!['name', 'domain_id', 'description', 'options', 'id'].includes(k)) extra[k] = v;
    const r: Role = { id: newId(), name: b.name, domain_id: b.domain_id ?? null, description: b.description ?? '', extra };
    try { await store.insertRole(db, r); } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Duplicate entry found with name ${b.name}.`);
      throw err;
    }
    await identity.changed('role');
    return reply.code(201).send({ role: renderRole(v3Base(req), r) });
  });
  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/roles', async (req) => {
    enforce(req.ctx.auth, 'identity:list_roles');
    const list = await store.listRoles(db, { name: req.query.name, domain_id: req.query.domain_id ?? null });
    return { roles: list.map((r) => renderRole(v3Base(req), r)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>('/v3/roles/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_role');
    return { role: renderRole(v3Base(req), await requireRole(identity, req.params.id)) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof RoleUpdate> }>('/v3/roles/:id', { schema: { body: RoleUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_role');
    const r = await requireRole(identity, req.params.id);
    const b = req.body.role;
    if (b.domain_id !== undefined && b.domain_id !== r.domain_id) throw new BadRequest('Cannot change the domain of a role.');
    if (b.name !== undefined) r.name = b.name;
    if (b.description !== undefined) r.description = b.description ?? '';
    try { await store.updateRole(db, r); } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Duplicate entry found with name ${r.name}.`);
      throw err;
    }
    await identity.changed('role');
    return { role: renderRole(v3Base(req), r) };
  });
  app.delete<{ Params: { id: string } }>('/v3/roles/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_role');
    const r = await requireRole(identity, req.params.id);
    await db.transaction().execute(async (trx) => {
      await identity.revoke({ role_id: r.id }, trx);
      await store.deleteRole(trx, r.id);
    });
    await identity.changed('role');
    return reply.code(204).send();
  });

  // ---- implied roles ----
  const inference = (req: FastifyRequest, prior: Role, implied: Role[] | Role) => ({
    prior_role: roleRef(v3Base(req), prior),
    implies: Array.isArray(implied) ? implied.map((r) => roleRef(v3Base(req), r)) : roleRef(v3Base(req), implied),
  });
  app.put<{ Params: { prior: string; implied: string } }>('/v3/roles/:prior/implies/:implied', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_implied_role');
    const prior = await requireRole(identity, req.params.prior);
    const implied = await requireRole(identity, req.params.implied);
    if (prior.id === implied.id || (await identity.expandImplied([implied.id])).includes(prior.id)) {
      throw new Forbidden('Implied roles cannot form a loop.');
    }
    if (implied.name === 'admin') throw new Forbidden('The admin role cannot be implied.');
    await store.insertImplied(db, prior.id, implied.id);
    await identity.changed('role');
    return reply.code(201).send({ role_inference: inference(req, prior, implied), links: { self: `${v3Base(req)}/roles/${prior.id}/implies/${implied.id}` } });
  });
  app.get<{ Params: { prior: string; implied: string } }>('/v3/roles/:prior/implies/:implied', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:list_implied_roles');
    const prior = await requireRole(identity, req.params.prior);
    const implied = await requireRole(identity, req.params.implied);
    if (!(await store.listImplied(db, prior.id)).some((r) => r.implied_role_id === implied.id)) throw new NotFound(`${prior.id} does not imply ${implied.id}.`);
    if (req.method === 'HEAD') return reply.code(204).send();
    return { role_inference: inference(req, prior, implied), links: { self: `${v3Base(req)}/roles/${prior.id}/implies/${implied.id}` } };
  });
  app.delete<{ Params: { prior: string; implied: string } }>('/v3/roles/:prior/implies/:implied', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_implied_role');
    await requireRole(identity, req.params.prior);
    await requireRole(identity, req.params.implied);
    if (!(await store.deleteImplied(db, req.params.prior, req.params.implied))) throw new NotFound(`${req.params.prior} does not imply ${req.params.implied}.`);
    await identity.changed('role');
    return reply.code(204).send();
  });
  app.get<{ Params: { prior: string } }>('/v3/roles/:prior/implies', async (req) => {
    enforce(req.ctx.auth, 'identity:list_implied_roles');
    const prior = await requireRole(identity, req.params.prior);
    const all = new Map((await store.allRoles(db)).map((r) => [r.id, r]));
    const implied = (await store.listImplied(db, prior.id)).map((r) => all.get(r.implied_role_id)!);
    return { role_inference: inference(req, prior, implied), links: { self: `${v3Base(req)}/roles/${prior.id}/implies` } };
  });
  app.get('/v3/role_inferences', async (req) => {
    enforce(req.ctx.auth, 'identity:list_role_inference_rules');
    const all = new Map((await store.allRoles(db)).map((r) => [r.id, r]));
    const by = new Map<string, Role[]>();
    for (const r of await store.listImplied(db)) (by.get(r.prior_role_id) ?? by.set(r.prior_role_id, []).get(r.prior_role_id)!).push(all.get(r.implied_role_id)!);
    return { role_inferences: [...by].map(([p, imp]) => inference(req, all.get(p)!, imp)), links: collectionLinks(req) };
  });

  // ---- grants ----
  interface GrantParams { target: string; actor: string; role: string; tid?: string; aid: string }
  /** The actor and target named by a grant URL, checked to exist (404 otherwise). */
  const grantSubject = async (p: Omit<GrantParams, 'role'>): Promise<{ actorType: ActorType; targetType: TargetType; targetId: string }> => {
    const targetType = ({ projects: 'Project', domains: 'Domain', system: 'System' } as const)[p.target as 'projects'] as TargetType | undefined;
    const actorType = ({ users: 'User', groups: 'Group' } as const)[p.actor as 'users'] as ActorType | undefined;
    if (!targetType || !actorType) throw new NotFound('The resource could not be found.');
    if (targetType === 'Project') await requireProject(db, p.tid!);
    else if (targetType === 'Domain') await requireDomain(db, p.tid!);
    if (actorType === 'User') await requireUser(db, p.aid); else await requireGroup(db, p.aid);
    return { actorType, targetType, targetId: targetType === 'System' ? SYSTEM_TARGET : p.tid! };
  };
  const parseGrant = async (req: FastifyRequest, inherited: boolean): Promise<Assignment> => {
    const p = req.params as GrantParams;
    const { actorType, targetType, targetId } = await grantSubject(p);
    const role = await requireRole(identity, p.role);
    if (role.domain_id !== null) {
      const targetDomain = targetType === 'Project' ? (await store.getProject(db, targetId))!.domain_id : targetType === 'Domain' ? targetId : undefined;
      if (targetDomain !== role.domain_id) throw new Forbidden('A domain-specific role can only be granted within its domain.');
    }
    return { actorType, actorId: p.aid, targetType, targetId, roleId: role.id, inherited };
  };
  const grantTarget = (a: Assignment) => ({ project_id: a.targetType === 'Project' ? a.targetId : undefined, domain_id: a.targetType === 'Domain' ? a.targetId : undefined });

  const grantRoutes = (path: string, inherited: boolean) => {
    app.put(path, async (req, reply) => {
      const a = await parseGrant(req, inherited);
      enforce(req.ctx.auth, 'identity:create_grant', grantTarget(a));
      await store.insertAssignment(db, a);
      await identity.changed('grant');
      return reply.code(204).send();
    });
    app.get(path, async (req, reply) => {
      const a = await parseGrant(req, inherited);
      enforce(req.ctx.auth, 'identity:check_grant', grantTarget(a));
      if (!(await store.hasAssignment(db, a))) throw new NotFound(`Could not find role assignment with role: ${a.roleId}.`);
      return reply.code(204).send();
    });
    app.delete(path, async (req, reply) => {
      const a = await parseGrant(req, inherited);
      enforce(req.ctx.auth, 'identity:revoke_grant', grantTarget(a));
      await db.transaction().execute(async (trx) => {
        if (!(await store.deleteAssignment(trx, a))) throw new NotFound(`Could not find role assignment with role: ${a.roleId}.`);
        const users = a.actorType === 'User' ? [a.actorId] : await store.userIdsOfGroup(trx, a.actorId);
        for (const u of users) {
          await identity.revoke({ user_id: u, project_id: a.targetType === 'Project' && !inherited ? a.targetId : null, domain_id: a.targetType === 'Domain' && !inherited ? a.targetId : null }, trx);
        }
      });
      await identity.changed('grant');
      return reply.code(204).send();
    });
  };
  grantRoutes('/v3/:target/:tid/:actor/:aid/roles/:role', false);
  grantRoutes('/v3/:target/:actor/:aid/roles/:role', false);
  grantRoutes('/v3/OS-INHERIT/:target/:tid/:actor/:aid/roles/:role/inherited_to_projects', true);

  const listGrants = (inherited: boolean) => async (req: FastifyRequest) => {
    const p = req.params as Omit<GrantParams, 'role'>;
    const { actorType, targetType, targetId } = await grantSubject(p);
    enforce(req.ctx.auth, 'identity:list_grants', { project_id: targetType === 'Project' ? targetId : undefined, domain_id: targetType === 'Domain' ? targetId : undefined });
    const rows = await store.listAssignments(db, { actorIds: [p.aid], targetIds: [targetId], types: [`${actorType}${targetType}` as AssignmentType] });
    const all = new Map((await store.allRoles(db)).map((r) => [r.id, r]));
    return { roles: rows.filter((a) => a.inherited === inherited).map((a) => renderRole(v3Base(req), all.get(a.roleId)!)), links: collectionLinks(req) };
  };
  app.get('/v3/:target/:tid/:actor/:aid/roles', listGrants(false));
  app.get('/v3/:target/:actor/:aid/roles', listGrants(false));
  app.get('/v3/OS-INHERIT/:target/:tid/:actor/:aid/roles/inherited_to_projects', listGrants(true));

  // ---- role assignments ----
  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/role_assignments', async (req) => {
    const q = req.query;
    const has = (k: string) => q[k] !== undefined;
    enforce(req.ctx.auth, 'identity:list_role_assignments', { user_id: q['user.id'] });
    if (has('user.id') && has('group.id')) throw new BadRequest('Specify either user.id or group.id, not both.');
    const scopes = ['scope.project.id', 'scope.domain.id', 'scope.system'].filter(has);
    if (scopes.length > 1) throw new BadRequest('Specify at most one of scope.project.id, scope.domain.id and scope.system.');
    const effective = has('effective') && q.effective !== 'false' && q.effective !== '0';
    const includeNames = has('include_names') && q.include_names !== 'false' && q.include_names !== '0';
    const includeSubtree = has('include_subtree') && q.include_subtree !== 'false' && q.include_subtree !== '0';
    if (effective && has('group.id')) throw new BadRequest('Effective assignments cannot be filtered by group.');
    if (includeSubtree && !has('scope.project.id')) throw new BadRequest('include_subtree needs scope.project.id.');
    const inheritedOnly = q['scope.OS-INHERIT:inherited_to'] === 'projects';

    const projects = await store.listProjects(db, {});
    const projectById = new Map(projects.map((p) => [p.id, p]));
    let rows = await store.listAssignments(db, {});

    interface Row { a: Assignment; via?: string; viaAssignment?: Assignment }
    let out: Row[] = rows.map((a) => ({ a }));
    if (effective) {
      const expanded: Row[] = [];
      for (const r of out) {
        // Group assignments become one per member.
        const users = r.a.actorType === 'Group' ? (await store.userIdsOfGroup(db, r.a.actorId)).map((u) => ({ u, via: r.a.actorId })) : [{ u: r.a.actorId, via: undefined }];
        for (const { u, via } of users) {
          const base: Assignment = { ...r.a, actorType: 'User', actorId: u };
          if (!r.a.inherited) { expanded.push({ a: base, via }); continue; }
          // Inherited assignments become one per project below the target.
          const below = r.a.targetType === 'Domain'
            ? projects.filter((p) => p.domain_id === r.a.targetId)
            : projects.filter((p) => { let cur = p.parent_id; while (cur) { if (cur === r.a.targetId) return true; cur = projectById.get(cur)?.parent_id ?? null; } return false; });
          for (const p of below) expanded.push({ a: { ...base, targetType: 'Project', targetId: p.id, inherited: false }, via, viaAssignment: r.a });
        }
      }
      // Implied roles.
      const withImplied: Row[] = [];
      for (const r of expanded) {
        for (const rid of await identity.expandImplied([r.a.roleId])) withImplied.push({ ...r, a: { ...r.a, roleId: rid } });
      }
      // Domain-specific roles only serve to imply others; they never reach a token.
      const globalRoles = new Set((await store.allRoles(db)).filter((r) => r.domain_id === null).map((r) => r.id));
      const seen = new Set<string>();
      out = withImplied.filter((r) => globalRoles.has(r.a.roleId)).filter((r) => { const k = `${r.a.actorId}|${r.a.targetType}|${r.a.targetId}|${r.a.roleId}|${r.via ?? ''}`; if (seen.has(k)) return false; seen.add(k); return true; });
    }
    if (has('user.id')) out = out.filter((r) => r.a.actorType === 'User' && r.a.actorId === q['user.id']);
    if (has('group.id')) out = out.filter((r) => r.a.actorType === 'Group' && r.a.actorId === q['group.id']);
    if (has('role.id')) out = out.filter((r) => r.a.roleId === q['role.id']);
    if (has('scope.project.id')) {
      const ids = new Set([q['scope.project.id']!]);
      if (includeSubtree) for (const p of projects) { let cur = p.parent_id; while (cur) { if (ids.has(cur) || cur === q['scope.project.id']) { ids.add(p.id); break; } cur = projectById.get(cur)?.parent_id ?? null; } }
      out = out.filter((r) => r.a.targetType === 'Project' && ids.has(r.a.targetId));
    }
    if (has('scope.domain.id')) out = out.filter((r) => r.a.targetType === 'Domain' && r.a.targetId === q['scope.domain.id']);
    if (has('scope.system')) out = out.filter((r) => r.a.targetType === 'System');
    if (inheritedOnly) out = out.filter((r) => r.a.inherited);

    const base = v3Base(req);
    const roles = new Map((await store.allRoles(db)).map((r) => [r.id, r]));
    const domains = new Map((await store.listDomains(db, {})).map((d) => [d.id, d]));
    const users = new Map((await store.listUsers(db, {})).map((u) => [u.id, u]));
    const groups = new Map((await store.listGroups(db, {})).map((g) => [g.id, g]));
    const dom = (id: string) => ({ id, name: domains.get(id)?.name });
    const assignments = out.map(({ a, via, viaAssignment }) => {
      const role = roles.get(a.roleId);
      const item: Record<string, unknown> = {};
      item.role = includeNames && role ? { id: a.roleId, name: role.name, ...(role.domain_id ? { domain: dom(role.domain_id) } : {}) } : { id: a.roleId };
      if (a.actorType === 'User') {
        const u = users.get(a.actorId);
        item.user = includeNames && u ? { id: u.id, name: u.name, domain: dom(u.domain_id) } : { id: a.actorId };
      } else {
        const g = groups.get(a.actorId);
        item.group = includeNames && g ? { id: g.id, name: g.name, domain: dom(g.domain_id) } : { id: a.actorId };
      }
      let scope: Record<string, unknown>;
      let path: string;
      if (a.targetType === 'Project') {
        const p = projectById.get(a.targetId);
        scope = { project: includeNames && p ? { id: p.id, name: p.name, domain: dom(p.domain_id) } : { id: a.targetId } };
        path = `/projects/${a.targetId}`;
      } else if (a.targetType === 'Domain') {
        const d = domains.get(a.targetId);
        scope = { domain: includeNames && d ? { id: d.id, name: d.name } : { id: a.targetId } };
        path = `/domains/${a.targetId}`;
      } else {
        scope = { system: { all: true } };
        path = '/system';
      }
      if (a.inherited) scope['OS-INHERIT:inherited_to'] = 'projects';
      item.scope = scope;
      const src = viaAssignment ?? a;
      const srcPath = viaAssignment ? (src.targetType === 'Domain' ? `/domains/${src.targetId}` : `/projects/${src.targetId}`) : path;
      const actorPath = via ? `/groups/${via}` : `/${a.actorType === 'User' ? 'users' : 'groups'}/${a.actorId}`;
      const links: Record<string, string> = {
        assignment: `${base}${src.inherited ? '/OS-INHERIT' : ''}${srcPath}${actorPath}/roles/${src.roleId}${src.inherited ? '/inherited_to_projects' : ''}`,
      };
      if (via) links.membership = `${base}/groups/${via}/users/${a.actorId}`;
      item.links = links;
      return item;
    });
    return { role_assignments: assignments, links: collectionLinks(req) };
  });
}
