import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as backups from '../backups.ts';
import { err } from '../errors.ts';
import { isObj, listQuery, member, nextLink, optBool, optText, page, parseMetadata, send, v3, who, type Obj } from '../http.ts';
import { authorize } from '../policy.ts';
import { backupView } from '../render.ts';
import type { VolumeService } from '../service.ts';
import * as store from '../store.ts';
import type { BackupRecord } from '../types.ts';

/** /v3/backups: create, list/detail, show, update (3.9), delete, restore, os-reset_status, os-force_delete. */

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

export function backupRoutes(app: FastifyInstance, svc: VolumeService): void {
  const r = v3(app);
  const deps = svc.deps;
  const view = async (req: FastifyRequest, b: BackupRecord, detail = true) =>
    backupView(req, who(req), b, (await store.listBackups(deps.db, { parentId: b.id })).length > 0, detail);
  r.post('/backups', async (req, reply) => {
    const b = member(req.body, 'backup');
    if (typeof b.volume_id !== 'string') throw err.badField('backup', b, `'volume_id' is a required property`);
    const rec = await backups.createBackup(svc.ops, { auth: who(req), requestId: req.id }, {
      volumeId: b.volume_id, name: optText(b.name, 'name'), description: optText(b.description, 'description'),
      incremental: optBool(b.incremental, 'incremental') ?? false, force: optBool(b.force, 'force') ?? false,
      snapshotId: optText(b.snapshot_id, 'snapshot_id'), metadata: b.metadata ? parseMetadata(b.metadata) : undefined,
      container: optText(b.container, 'container'),
    });
    return send(reply, 202, { backup: { id: rec.id, name: rec.name || null, links: (await view(req, rec, false)).links } });
  });
  const list = (detail: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const q = listQuery(req, ['id', 'name', 'status', 'size', 'created_at', 'updated_at', 'volume_id']);
    const p = page(await backups.listBackups(deps, who(req), q.allTenants, q.projectFilter, q.filters), q);
    const body: Obj = { backups: await Promise.all(p.items.map((b) => view(req, b, detail))) };
    if (p.more) body.backups_links = nextLink(req, 'backups', p.items[p.items.length - 1]!.id, q);
    return send(reply, 200, body);
  };
  r.get('/backups', list(false));
  r.get('/backups/detail', list(true));
  r.get('/backups/:id', async (req, reply) => send(reply, 200, { backup: await view(req, await backups.visibleBackup(deps, who(req), idOf(req))) }));
  r.put('/backups/:id', async (req, reply) => {
    const b = member(req.body, 'backup');
    const rec = await backups.updateBackup(deps, who(req), idOf(req), {
      name: optText(b.name, 'name'), description: optText(b.description, 'description'), metadata: b.metadata ? parseMetadata(b.metadata) : undefined,
    });
    return send(reply, 200, { backup: await view(req, rec, false) });
  });
  r.delete('/backups/:id', async (req, reply) => {
    await backups.deleteBackup(svc.ops, { auth: who(req), requestId: req.id }, idOf(req), optBool((req.query as Obj).force, 'force') ?? false);
    return send(reply, 202);
  });
  r.post('/backups/:id/restore', async (req, reply) => {
    const b = isObj(req.body) && isObj(req.body.restore) ? req.body.restore : isObj(req.body) && 'restore' in req.body ? {} : undefined;
    if (!b) throw err.missingBody('restore');
    const out = await backups.restoreBackup(svc.ops, { auth: who(req), requestId: req.id }, idOf(req), {
      volumeId: optText(b.volume_id, 'volume_id'), name: optText(b.name, 'name'),
    });
    return send(reply, 202, { restore: out });
  });
  r.post('/backups/:id/action', async (req, reply) => {
    const body = isObj(req.body) ? req.body : {};
    if ('os-reset_status' in body) {
      const a = body['os-reset_status'];
      if (!isObj(a) || typeof a.status !== 'string') throw err.badRequest('Must specify \'status\'');
      await backups.resetBackupStatus(deps, who(req), idOf(req), a.status.toLowerCase());
      return send(reply, 202);
    }
    if ('os-force_delete' in body) {
      const auth = who(req);
      const rec = await backups.visibleBackup(deps, auth, idOf(req));
      authorize(auth, 'volume_extension:backup_admin_actions:force_delete', { project_id: rec.project_id });
      await backups.deleteBackup(svc.ops, { auth, requestId: req.id }, rec.id, true);
      return send(reply, 202);
    }
    throw err.badRequest('There is no such action');
  });
}
