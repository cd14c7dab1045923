import type { FastifyRequest } from 'fastify';
import type { ServiceMount } from '../../api/server.ts';
import { CinderError, cinderError } from './errors.ts';
import { installMicroversions, MAX_VERSION, MIN_VERSION, send, volumeBase } from './http.ts';
import { adminRoutes } from './routes/admin.ts';
import { attachmentRoutes } from './routes/attachments.ts';
import { backupRoutes } from './routes/backups.ts';
import { snapshotRoutes } from './routes/snapshots.ts';
import { transferRoutes } from './routes/transfers.ts';
import { typeRoutes } from './routes/types.ts';
import { volumeRoutes } from './routes/volumes.ts';
import type { VolumeService } from './service.ts';

/**
 * Cinder's block storage API v3, mounted under /volume (the catalog publishes
 * <base>/volume/v3 as service types block-storage and volumev3): the versions document
 * at /volume/ and /volume/v3/, every collection both as /v3/{project_id}/... and /v3/...
 */

function versionDoc(req: FastifyRequest) {
  return {
    id: 'v3.0', status: 'CURRENT', version: `${MAX_VERSION.major}.${MAX_VERSION.minor}`, min_version: `${MIN_VERSION.major}.${MIN_VERSION.minor}`,
    updated: '2023-01-01T00:00:00Z', links: [{ rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' }, { rel: 'self', href: `${volumeBase(req)}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  };
}

export function volumeMount(svc: VolumeService): ServiceMount {
  return {
    prefix: '/volume',
    formatError: cinderError,
    routes: (app) => {
      installMicroversions(app);
      // `/volumes/` is a show with an empty id in Cinder (404), not the list the router's trailing-slash rule would give.
      app.addHook('onRequest', async (req) => {
        if (/\/(volumes|snapshots|backups|types|attachments)\/$/.test(req.url.split('?')[0]!)) throw new CinderError(404, 'The resource could not be found.', 'NotFound');
      });
      app.get('/', { config: { auth: false } }, async (req, reply) => send(reply, 300, { versions: [versionDoc(req)] }));
      app.get('/v3', { config: { auth: false } }, async (req, reply) => send(reply, 200, { versions: [versionDoc(req)] }));
      volumeRoutes(app, svc);
      attachmentRoutes(app, svc);
      typeRoutes(app, svc);
      snapshotRoutes(app, svc);
      backupRoutes(app, svc);
      transferRoutes(app, svc);
      adminRoutes(app, svc);
    },
  };
}
