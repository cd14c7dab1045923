import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServiceMount } from '../../api/server.ts';
import { neutronError } from './errors.ts';
import { networkBase, send, withJson } from './http.ts';
import { caller } from './policy.ts';
import { agentRoutes } from './routes/agents.ts';
import { extensionRoutes } from './routes/extensions.ts';
import { floatingIpRoutes } from './routes/floating-ips.ts';
import { networkRoutes } from './routes/networks.ts';
import { portRoutes } from './routes/ports.ts';
import { quotaRoutes } from './routes/quotas.ts';
import { routerRoutes } from './routes/routers.ts';
import { securityGroupRoutes } from './routes/security-groups.ts';
import { subnetRoutes } from './routes/subnets.ts';
import { tagRoutes } from './routes/tags.ts';
import type { NetworkDeps } from './types.ts';

/**
 * Neutron's networking API v2.0, mounted under /networking (the catalog publishes
 * <base>/networking as service type `network`): the versions document at the root,
 * the resource list at /v2.0/, and the collections below it. Errors are NeutronError
 * bodies.
 */

const RESOURCES: [string, string][] = [
  ['network', 'networks'], ['subnet', 'subnets'], ['port', 'ports'], ['security_group', 'security-groups'],
  ['security_group_rule', 'security-group-rules'], ['quota', 'quotas'], ['extension', 'extensions'], ['availability_zone', 'availability_zones'],
  ['router', 'routers'], ['floatingip', 'floatingips'], ['agent', 'agents'],
];

function versionDoc(req: FastifyRequest) {
  return { id: 'v2.0', status: 'CURRENT', links: [{ href: `${networkBase(req)}/v2.0/`, rel: 'self' }] };
}

export function networkApiRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  app.get('/', { config: { auth: false } }, async (req, reply) => send(reply, 200, { versions: [versionDoc(req)] }));
  app.get('/v2.0', async (req, reply) => {
    caller(req.ctx.auth);
    const base = networkBase(req);
    return send(reply, 200, {
      resources: RESOURCES.map(([name, collection]) => ({ name, collection: collection.replaceAll('-', '_'), links: [{ href: `${base}/v2.0/${collection}`, rel: 'self' }] })),
    });
  });
  for (const path of withJson('/v2.0/availability_zones')) {
    app.get(path, async (req, reply) => {
      caller(req.ctx.auth);
      return send(reply, 200, { availability_zones: deps.cfg.availabilityZones.map((name) => ({ name, resource: 'network', state: 'available' })) });
    });
  }
  networkRoutes(app, deps);
  subnetRoutes(app, deps);
  portRoutes(app, deps);
  securityGroupRoutes(app, deps);
  routerRoutes(app, deps);
  floatingIpRoutes(app, deps);
  quotaRoutes(app, deps);
  extensionRoutes(app);
  tagRoutes(app, deps);
  agentRoutes(app, deps);
}

export function networkMount(deps: NetworkDeps): ServiceMount {
  return { prefix: '/networking', formatError: neutronError, routes: (app) => networkApiRoutes(app, deps) };
}
