import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { NotFound } from '../../../common/errors.ts';
import { newId } from '../../../common/ids.ts';
import type { IdentityService } from '../service.ts';
import * as store from '../store.ts';
import { collectionLinks, v3Base } from '../render.ts';
import type { Policy } from '../types.ts';

/**
 * /v3/policies: policy documents stored for other services to fetch, as Keystone keeps
 * them (opaque blobs with a MIME type; Keystone itself does not enforce them either).
 */
const PolicyCreate = Type.Object({ policy: Type.Object({ type: Type.String({ minLength: 1, maxLength: 255 }), blob: Type.String({ minLength: 1, maxLength: 65535 }) }, { additionalProperties: true }) });
const PolicyUpdate = Type.Object({ policy: Type.Object({ type: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), blob: Type.Optional(Type.String({ minLength: 1, maxLength: 65535 })) }, { additionalProperties: true, minProperties: 1 }) });

const render = (base: string, p: Policy) => ({ ...p.extra, id: p.id, type: p.type, blob: p.blob, links: { self: `${base}/policies/${p.id}` } });
const extraOf = (b: Record<string, unknown>) => Object.fromEntries(Object.entries(b).filter(([k]) => !['id', 'type', 'blob'].includes(k)));

export function policyRoutes(app: FastifyInstance, identity: IdentityService): void {
  const db = identity.db;
  const requirePolicy = async (id: string) => {
    const p = await store.getPolicy(db, id);
    if (!p) throw new NotFound(`Could not find policy: ${id}.`);
    return p;
  };
  app.post<{ Body: Static<typeof PolicyCreate> }>('/v3/policies', { schema: { body: PolicyCreate } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_policy');
    const p: Policy = { id: newId(), type: req.body.policy.type, blob: req.body.policy.blob, extra: extraOf(req.body.policy) };
    await store.insertPolicy(db, p);
    return reply.code(201).send({ policy: render(v3Base(req), p) });
  });
  app.get<{ Querystring: { type?: string } }>('/v3/policies', async (req) => {
    enforce(req.ctx.auth, 'identity:list_policies');
    return { policies: (await store.listPolicies(db, req.query.type)).map((p) => render(v3Base(req), p)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>('/v3/policies/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_policy');
    return { policy: render(v3Base(req), await requirePolicy(req.params.id)) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof PolicyUpdate> }>('/v3/policies/:id', { schema: { body: PolicyUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_policy');
    const p = await requirePolicy(req.params.id);
    if (req.body.policy.type !== undefined) p.type = req.body.policy.type;
    if (req.body.policy.blob !== undefined) p.blob = req.body.policy.blob;
    Object.assign(p.extra, extraOf(req.body.policy));
    await store.updatePolicy(db, p);
    return { policy: render(v3Base(req), p) };
  });
  app.delete<{ Params: { id: string } }>('/v3/policies/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_policy');
    await requirePolicy(req.params.id);
    await store.deletePolicy(db, req.params.id);
    return reply.code(204).send();
  });
}
