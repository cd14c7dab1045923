import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { err } from '../errors.ts';
import { atLeast, isObj, listQuery, member, metadataRoutes, nextLink, optBool, optText, page, parseMetadata, send, v3, who, type Obj } from '../http.ts';
import { snapshotView } from '../render.ts';
import type { VolumeService } from '../service.ts';
import * as snaps from '../snapshots.ts';

/** /v3/snapshots: CRUD, metadata, os-reset_status, os-force_delete. */

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;
const text = (b: Obj, k: string, alias: string): string | undefined => optText(b[k] ?? b[alias], k);

export function snapshotRoutes(app: FastifyInstance, svc: VolumeService): void {
  const r = v3(app);
  const deps = svc.deps;
  r.post('/snapshots', async (req, reply) => {
    const b = member(req.body, 'snapshot');
    // Cinder looks a null volume_id up (404); a missing one fails the schema (400).
    if (b.volume_id === null) throw err.volumeNotFound('None');
    if (typeof b.volume_id !== 'string') throw err.badField('snapshot', b, `'volume_id' is a required property`);
    const s = await snaps.createSnapshot(svc.ops, { auth: who(req), requestId: req.id }, {
      volumeId: b.volume_id, name: text(b, 'name', 'display_name'), description: text(b, 'description', 'display_description'),
      force: optBool(b.force, 'force') ?? false, metadata: b.metadata ? parseMetadata(b.metadata) : undefined,
    }, atLeast(req, '3.66'));
    return send(reply, 202, { snapshot: snapshotView(req, who(req), s, false) });
  });
  const list = (detail: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = who(req);
    const q = listQuery(req, ['id', 'name', 'status', 'size', 'created_at', 'updated_at', 'volume_id']);
    const p = page(await snaps.listSnapshots(deps, auth, q.allTenants, q.projectFilter, q.filters), q);
    const body: Obj = { snapshots: p.items.map((s) => snapshotView(req, auth, s, detail)) };
    if (p.more) body.snapshots_links = nextLink(req, 'snapshots', p.items[p.items.length - 1]!.id, q);
    return send(reply, 200, body);
  };
  r.get('/snapshots', list(false));
  r.get('/snapshots/detail', list(true));
  r.get('/snapshots/:id', async (req, reply) => send(reply, 200, { snapshot: snapshotView(req, who(req), await snaps.visibleSnapshot(deps, who(req), idOf(req))) }));
  r.put('/snapshots/:id', async (req, reply) => {
    const b = member(req.body, 'snapshot');
    const s = await snaps.updateSnapshot(deps, who(req), idOf(req), { name: text(b, 'name', 'display_name'), description: text(b, 'description', 'display_description') });
    return send(reply, 200, { snapshot: snapshotView(req, who(req), s, false) });
  });
  r.delete('/snapshots/:id', async (req, reply) => { await snaps.deleteSnapshot(svc.ops, { auth: who(req), requestId: req.id }, idOf(req)); return send(reply, 202); });

  metadataRoutes(app, '/snapshots', {
    get: async (req, id) => (await snaps.visibleSnapshot(deps, who(req), id)).metadata,
    set: (req, id, meta, replace) => snaps.setSnapshotMetadata(deps, who(req), id, meta, replace),
    remove: (req, id, key) => snaps.deleteSnapshotMetadataKey(deps, who(req), id, key),
    notFound: (id, key) => err.snapshotMetadataNotFound(id, key),
  });
  r.post('/snapshots/:id/action', async (req, reply) => {
    const body = isObj(req.body) ? req.body : {};
    if ('os-reset_status' in body) {
      const a = body['os-reset_status'];
      if (!isObj(a) || typeof a.status !== 'string') throw err.badRequest('Must specify \'status\'');
      await snaps.resetSnapshotStatus(deps, who(req), idOf(req), a.status.toLowerCase());
      return send(reply, 202);
    }
    if ('os-force_delete' in body) { await snaps.forceDeleteSnapshot(svc.ops, { auth: who(req), requestId: req.id }, idOf(req)); return send(reply, 202); }
    if ('os-update_snapshot_status' in body) {
      const a = body['os-update_snapshot_status'];
      if (!isObj(a) || typeof a.status !== 'string') throw err.badRequest('\'status\' must be specified.');
      await snaps.updateSnapshotStatus(deps, who(req), idOf(req), a.status, typeof a.progress === 'string' ? a.progress : undefined);
      return send(reply, 202);
    }
    throw err.badRequest('There is no such action');
  });
}
