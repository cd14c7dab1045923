import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import type { AuthContext } from '../../../api/context.ts';
import { createBodies, ifMatch, rawQuery, requestUrl, send, stripJson, updateBody, withJson, type BodySpec } from '../http.ts';
import { checkTags } from '../common.ts';
import { caller } from '../policy.ts';
import { applyListQuery, parseFields, parseListQuery, project, type ListQuery, type ResourceSpec } from '../query.ts';
import type { Json, View } from '../types.ts';

/**
 * One collection of the networking API, the way Neutron's base controller serves every
 * resource: GET list (filters, fields, sorting, paging), POST (one or a bulk list),
 * GET/PUT/DELETE on a member (If-Match on PUT and DELETE), `.json` suffixes accepted.
 */
export type Body = { [k: string]: Json };

export interface Collection<C extends TSchema, U extends TSchema> {
  /** URL segment ('security-groups') and body keys ('security_groups' / 'security_group'). */
  path: string;
  key: string;
  spec: ResourceSpec;
  create: BodySpec<C>;
  update: BodySpec<U>;
  list(auth: AuthContext, q: ListQuery): Promise<View[]>;
  createMany(auth: AuthContext, bodies: Body[]): Promise<View[]>;
  show(auth: AuthContext, id: string): Promise<View>;
  change(auth: AuthContext, id: string, body: Body, revision: number | undefined): Promise<View>;
  remove(auth: AuthContext, id: string, revision: number | undefined): Promise<void>;
}

const idOf = (req: FastifyRequest): string => stripJson((req.params as { id: string }).id);

export function collectionRoutes<C extends TSchema, U extends TSchema>(app: FastifyInstance, c: Collection<C, U>): void {
  const member = c.spec.member;
  for (const path of withJson(`/v2.0/${c.path}`)) {
    app.get(path, async (req, reply) => {
      const auth = caller(req.ctx.auth);
      const query = rawQuery(req);
      const q = parseListQuery(query, c.spec);
      const page = applyListQuery(await c.list(auth, q), q, c.spec, requestUrl(req), query);
      return send(reply, 200, { [c.key]: page.items, ...(page.links.length ? { [`${c.key}_links`]: page.links } : {}) });
    });
    app.post(path, async (req, reply) => {
      const auth = caller(req.ctx.auth);
      const { items, bulk } = createBodies(c.create, c.key, req.body);
      const views = await c.createMany(auth, items);
      return send(reply, 201, bulk ? { [c.key]: views } : { [member]: views[0] });
    });
  }
  app.get(`/v2.0/${c.path}/:id`, async (req, reply) => {
    const auth = caller(req.ctx.auth);
    return send(reply, 200, { [member]: project(await c.show(auth, idOf(req)), parseFields(rawQuery(req))) });
  });
  app.put(`/v2.0/${c.path}/:id`, async (req, reply) => {
    const auth = caller(req.ctx.auth);
    const body = updateBody(c.update, req.body);
    return send(reply, 200, { [member]: await c.change(auth, idOf(req), body, ifMatch(req)) });
  });
  app.delete(`/v2.0/${c.path}/:id`, async (req, reply) => {
    const auth = caller(req.ctx.auth);
    await c.remove(auth, idOf(req), ifMatch(req));
    return reply.code(204).send();
  });
}

/** Values of a filter that can narrow the SQL query (ids, network ids, device ids). */
export function filterValues(q: ListQuery, key: string): string[] | undefined {
  return q.filters.get(key);
}

export const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
export const bool = (v: Json | undefined): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
export const int = (v: Json | undefined): number | undefined => (typeof v === 'number' ? v : undefined);
export const strOrNull = (v: Json | undefined): string | null | undefined => (v === null ? null : typeof v === 'string' ? v : undefined);
export const strList = (v: Json | undefined): string[] | undefined => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);
/** The project a create names (project_id or tenant_id, which must agree). */
export { requestedProject } from '../http.ts';
/** Tags given with a create (tag-ports-during-bulk-creation and friends), checked. */
export const tagsOf = (b: Body): string[] | undefined => (b.tags === undefined ? undefined : checkTags(b.tags));
