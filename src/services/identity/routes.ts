import type { FastifyInstance, FastifyRequest } from 'fastify';
import { keystoneError } from '../../api/errors.ts';
import type { ServiceMount } from '../../api/server.ts';
import './policy.ts';
import type { IdentityService } from './service.ts';
import { authRoutes } from './routes/auth.ts';
import { catalogRoutes } from './routes/catalog.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { endpointFilterRoutes } from './routes/endpoint-filter.ts';
import { policyRoutes } from './routes/policies.ts';
import { resourceRoutes } from './routes/resources.ts';
import { roleRoutes } from './routes/roles.ts';

/** Keystone v3, mounted under /identity (the catalog publishes <base>/identity/v3). */
export const IDENTITY_API_VERSION = 'v3.14';

function versionDoc(req: FastifyRequest) {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol;
  return {
    id: IDENTITY_API_VERSION, status: 'stable', updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${proto}://${req.headers.host ?? 'localhost'}/identity/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

export function identityMount(identity: IdentityService): ServiceMount {
  return {
    prefix: '/identity',
    formatError: keystoneError,
    routes: (app: FastifyInstance) => {
      app.get('/', { config: { auth: false } }, async (req, reply) => reply.code(300).send({ versions: { values: [versionDoc(req)] } }));
      app.get('/v3', { config: { auth: false } }, async (req) => ({ version: versionDoc(req) }));
      authRoutes(app, identity);
      resourceRoutes(app, identity);
      roleRoutes(app, identity);
      catalogRoutes(app, identity);
      credentialRoutes(app, identity);
      policyRoutes(app, identity);
      endpointFilterRoutes(app, identity);
    },
  };
}
