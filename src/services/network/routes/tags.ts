import type { FastifyInstance, FastifyRequest } from 'fastify';
import { err } from '../errors.ts';
import { send, stripJson } from '../http.ts';
import { caller } from '../policy.ts';
import { addTag, getTags, hasTag, removeAllTags, removeTag, replaceTags, TAGGABLE } from '../tags.ts';
import type { NetworkDeps } from '../types.ts';

/** /v2.0/{networks,subnets,ports,security-groups}/{id}/tags[/{tag}] (standard-attr-tag). */

function params(req: FastifyRequest): { id: string; tag: string } {
  const p = req.params as { id: string; tag?: string };
  return { id: stripJson(p.id), tag: p.tag ?? '' };
}

export function tagRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  for (const collection of Object.keys(TAGGABLE)) {
    const base = `/v2.0/${collection}/:id/tags`;
    app.get(base, async (req, reply) => send(reply, 200, { tags: await getTags(deps, caller(req.ctx.auth), collection, params(req).id) }));
    app.put(base, async (req, reply) => {
      const body = req.body as { tags?: unknown } | undefined;
      if (!body || !('tags' in body)) throw err.badRequest('Invalid tags body');
      return send(reply, 200, { tags: await replaceTags(deps, caller(req.ctx.auth), collection, params(req).id, body.tags) });
    });
    app.delete(base, async (req, reply) => {
      await removeAllTags(deps, caller(req.ctx.auth), collection, params(req).id);
      return reply.code(204).send();
    });
    app.get(`${base}/:tag`, async (req, reply) => {
      const { id, tag } = params(req);
      await hasTag(deps, caller(req.ctx.auth), collection, id, tag);
      return reply.code(204).send();
    });
    app.put(`${base}/:tag`, async (req, reply) => {
      const { id, tag } = params(req);
      await addTag(deps, caller(req.ctx.auth), collection, id, tag);
      return reply.code(201).send();
    });
    app.delete(`${base}/:tag`, async (req, reply) => {
      const { id, tag } = params(req);
      await removeTag(deps, caller(req.ctx.auth), collection, id, tag);
      return reply.code(204).send();
    });
  }
}
