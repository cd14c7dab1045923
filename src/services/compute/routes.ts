import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServiceMount } from '../../api/server.ts';
import { computeBase, installMicroversions, MAX_VERSION, MIN_VERSION, novaError } from './http.ts';
import { actionRoutes } from './routes/actions.ts';
import { interfaceRoutes } from './routes/interfaces.ts';
import { serverRoutes } from './routes/servers.ts';
import { volumeAttachmentRoutes } from './routes/volume-attachments.ts';
import type { ComputeService } from './service.ts';

/** Nova v2.1, mounted under /compute (the catalog publishes <base>/compute/v2.1). */

function versionDoc(req: FastifyRequest) {
  const base = computeBase(req);
  return {
    id: 'v2.1', status: 'CURRENT', version: `${MAX_VERSION.major}.${MAX_VERSION.minor}`, min_version: `${MIN_VERSION.major}.${MIN_VERSION.minor}`,
    updated: '2013-07-23T11:33:21Z', links: [{ rel: 'self', href: `${base}/v2.1/` }, { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

/** The v2.0 API Nova still lists (served by the same code as v2.1 there). */
function legacyVersionDoc(req: FastifyRequest) {
  return {
    id: 'v2.0', status: 'SUPPORTED', version: '', min_version: '', updated: '2011-01-21T11:33:21Z',
    links: [{ rel: 'self', href: `${computeBase(req)}/v2/` }, { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2' }],
  };
}

export interface ComputeMountOptions {
  compute: ComputeService;
  /** Host status for `host_status` (UP, DOWN, MAINTENANCE, UNKNOWN). */
  hostStatus: (host: string | null) => string;
  /** Further route modules (flavors, keypairs, quotas, hosts, server groups). */
  extra: ((app: FastifyInstance) => void)[];
}

export function computeMount(o: ComputeMountOptions): ServiceMount {
  return {
    prefix: '/compute',
    formatError: novaError,
    routes: (app) => {
      installMicroversions(app);
      app.addHook('onRequest', async (req, reply) => { void reply.header('x-compute-request-id', req.id); });
      app.get('/', { config: { auth: false } }, async (req) => ({ versions: [legacyVersionDoc(req), versionDoc(req)] }));
      app.get('/v2.1', { config: { auth: false } }, async (req) => ({ version: versionDoc(req) }));
      app.get('/v2', { config: { auth: false } }, async (req) => ({ version: legacyVersionDoc(req) }));
      serverRoutes(app, o.compute, o.hostStatus);
      actionRoutes(app, o.compute);
      interfaceRoutes(app, o.compute);
      volumeAttachmentRoutes(app, o.compute);
      for (const r of o.extra) r(app);
    },
  };
}
