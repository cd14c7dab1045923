import type { FastifyInstance, FastifyRequest } from 'fastify';
import * as att from '../attachments.ts';
import { err } from '../errors.ts';
import { isObj, listQuery, member, page, requireVersion, send, v3, who } from '../http.ts';
import { attachmentView } from '../render.ts';
import type { VolumeService } from '../service.ts';
import type { Json } from '../types.ts';

/** /v3/attachments (3.27+), os-complete at 3.44. */

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

export function attachmentRoutes(app: FastifyInstance, svc: VolumeService): void {
  const r = v3(app);
  const deps = svc.deps;
  r.post('/attachments', async (req, reply) => {
    requireVersion(req, '3.27');
    const b = member(req.body, 'attachment');
    const volumeId = b.volume_uuid;
    if (typeof volumeId !== 'string') throw err.badField('attachment', b, `'volume_uuid' is a required property`);
    if (b.connector !== undefined && b.connector !== null && !isObj(b.connector)) throw err.badField('connector', b.connector, `is not of type 'object'`);
    const a = await att.apiCreate(deps, who(req), {
      volumeId, instanceUuid: typeof b.instance_uuid === 'string' ? b.instance_uuid : undefined,
      connector: isObj(b.connector) ? b.connector as Record<string, Json> : undefined, mode: b.mode === 'ro' ? 'ro' : b.mode === undefined ? 'rw' : (b.mode as 'rw'),
    }, req.log);
    return send(reply, 200, { attachment: attachmentView(who(req), a, true) });
  });
  const list = (detail: boolean) => async (req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    requireVersion(req, '3.27');
    const q = listQuery(req, ['id', 'created_at']);
    const rows = await att.apiList(deps, who(req), q.allTenants, q.filters);
    const p = page(rows.map((x) => ({ ...x, id: x.a.id, created_at: x.a.created_at })), q);
    return send(reply, 200, { attachments: p.items.map((x) => attachmentView(who(req), x.a, detail)) });
  };
  r.get('/attachments', list(false));
  r.get('/attachments/detail', list(true));
  r.get('/attachments/:id', async (req, reply) => {
    requireVersion(req, '3.27');
    const { a } = await att.visibleAttachment(deps, who(req), idOf(req));
    return send(reply, 200, { attachment: attachmentView(who(req), a, true) });
  });
  r.put('/attachments/:id', async (req, reply) => {
    requireVersion(req, '3.27');
    const b = member(req.body, 'attachment');
    if (!isObj(b.connector)) throw err.badField('attachment', b, `'connector' is a required property`);
    const a = await att.apiUpdate(deps, who(req), idOf(req), b.connector as Record<string, Json>, req.log);
    return send(reply, 200, { attachment: attachmentView(who(req), a, true) });
  });
  r.delete('/attachments/:id', async (req, reply) => {
    requireVersion(req, '3.27');
    await att.apiDelete(deps, who(req), idOf(req), req.log);
    return send(reply, 200, { attachments: [] });
  });
  r.post('/attachments/:id/action', async (req, reply) => {
    requireVersion(req, '3.44');
    if (!isObj(req.body) || !('os-complete' in req.body)) throw err.badRequest('There is no such action');
    await att.apiComplete(deps, who(req), idOf(req));
    return send(reply, 204);
  });
}
