import type { FastifyInstance } from 'fastify';
import { listAgents, showAgent } from '../agents.ts';
import { NeutronError } from '../errors.ts';
import { rawQuery, requestUrl, send, stripJson, withJson } from '../http.ts';
import { caller } from '../policy.ts';
import { applyListQuery, parseFields, parseListQuery, project, type ResourceSpec } from '../query.ts';
import type { NetworkDeps } from '../types.ts';

export const agentSpec: ResourceSpec = {
  member: 'agent', collection: 'agents',
  attrs: {
    id: 'str', agent_type: 'str', binary: 'str', topic: 'str', host: 'str', admin_state_up: 'bool', alive: 'bool', availability_zone: 'str',
    created_at: 'str', started_at: 'str', heartbeat_timestamp: 'str', description: 'str', configurations: 'obj', resources_synced: 'str',
  },
  notFound: (id) => new NeutronError(404, `Agent ${id} could not be found.`, 'AgentNotFound'),
};

/** GET /v2.0/agents (filters, fields, sorting, paging) and GET /v2.0/agents/{id}; read-only (see agents.ts). */
export function agentRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  for (const path of withJson('/v2.0/agents')) {
    app.get(path, async (req, reply) => {
      const auth = caller(req.ctx.auth);
      const query = rawQuery(req);
      const q = parseListQuery(query, agentSpec);
      const page = applyListQuery(await listAgents(deps, auth), q, agentSpec, requestUrl(req), query);
      return send(reply, 200, { agents: page.items, ...(page.links.length ? { agents_links: page.links } : {}) });
    });
  }
  app.get('/v2.0/agents/:id', async (req, reply) => {
    const auth = caller(req.ctx.auth);
    const agent = await showAgent(deps, auth, stripJson((req.params as { id: string }).id));
    return send(reply, 200, { agent: project(agent, parseFields(rawQuery(req))) });
  });
}
