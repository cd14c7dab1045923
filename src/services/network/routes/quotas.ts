import type { FastifyInstance, FastifyRequest } from 'fastify';
import { err } from '../errors.ts';
import { send, stripJson, withJson } from '../http.ts';
import { caller } from '../policy.ts';
import { defaultQuota, listQuotas, quotaDetails, resetQuota, showQuota, updateQuota } from '../quotas.ts';
import type { NetworkDeps } from '../types.ts';

/** /v2.0/quotas (quotas and quota_details extensions). */

const projectOf = (req: FastifyRequest): string => stripJson((req.params as { project_id: string }).project_id);

export function quotaRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  for (const path of withJson('/v2.0/quotas')) {
    app.get(path, async (req, reply) => send(reply, 200, { quotas: await listQuotas(deps, caller(req.ctx.auth)) }));
  }
  // The caller's own project (Neutron's GET /quotas/tenant).
  for (const path of withJson('/v2.0/quotas/tenant')) {
    app.get(path, async (req, reply) => send(reply, 200, { tenant: { tenant_id: caller(req.ctx.auth).projectId ?? '' } }));
  }
  app.get('/v2.0/quotas/:project_id', async (req, reply) => send(reply, 200, { quota: await showQuota(deps, caller(req.ctx.auth), projectOf(req)) }));
  for (const path of withJson('/v2.0/quotas/:project_id/default')) {
    app.get(path, async (req, reply) => send(reply, 200, { quota: defaultQuota(deps, caller(req.ctx.auth), projectOf(req)) }));
  }
  for (const path of withJson('/v2.0/quotas/:project_id/details')) {
    app.get(path, async (req, reply) => send(reply, 200, { quota: await quotaDetails(deps, caller(req.ctx.auth), projectOf(req)) }));
  }
  app.put('/v2.0/quotas/:project_id', async (req, reply) => {
    const auth = caller(req.ctx.auth);
    const body = req.body as { quota?: unknown } | undefined;
    if (!body || typeof body.quota !== 'object' || body.quota === null || Array.isArray(body.quota)) throw err.badRequest(`Unable to find 'quota' in request body`);
    return send(reply, 200, { quota: await updateQuota(deps, auth, projectOf(req), body.quota as Record<string, unknown>) });
  });
  app.delete('/v2.0/quotas/:project_id', async (req, reply) => {
    await resetQuota(deps, caller(req.ctx.auth), projectOf(req));
    return reply.code(204).send();
  });
}
