import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { err } from '../errors.ts';
import { isObj, links, listQuery, member, optBool, page, requireVersion, send, v3, who } from '../http.ts';
import { transferView } from '../render.ts';
import type { VolumeService } from '../service.ts';
import * as tr from '../transfers.ts';

/** /v3/os-volume-transfer and (3.55+) /v3/volume-transfers. */

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

export function transferRoutes(app: FastifyInstance, svc: VolumeService): void {
  const r = v3(app);
  const deps = svc.deps;
  for (const base of ['/os-volume-transfer', '/volume-transfers']) {
    const gate = (req: FastifyRequest) => { if (base === '/volume-transfers') requireVersion(req, '3.55'); };
    r.post(base, async (req, reply) => {
      gate(req);
      const b = member(req.body, 'transfer');
      if (typeof b.volume_id !== 'string') throw err.badField('transfer', b, `'volume_id' is a required property`);
      if (b.name !== undefined && b.name !== null && typeof b.name !== 'string') throw err.badField('name', b.name, `is not of type 'string'`);
      const { t, authKey } = await tr.createTransfer(deps, { auth: who(req), requestId: req.id }, {
        volumeId: b.volume_id, name: typeof b.name === 'string' ? b.name : undefined,
        noSnapshots: base === '/volume-transfers' ? optBool(b.no_snapshots, 'no_snapshots') ?? false : false,
      });
      return send(reply, 202, { transfer: { ...transferView(req, t, true), auth_key: authKey } });
    });
    const list = (detail: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
      gate(req);
      const q = listQuery(req, ['id', 'name', 'created_at', 'volume_id']);
      const p = page(await tr.listTransfers(deps, who(req), q.allTenants), q);
      return send(reply, 200, { transfers: p.items.map((t) => transferView(req, t, detail)) });
    };
    r.get(base, list(false));
    r.get(`${base}/detail`, list(true));
    r.get(`${base}/:id`, async (req, reply) => { gate(req); return send(reply, 200, { transfer: transferView(req, await tr.visibleTransfer(deps, who(req), idOf(req)), true) }); });
    r.delete(`${base}/:id`, async (req, reply) => { gate(req); await tr.deleteTransfer(deps, who(req), idOf(req)); return send(reply, 202); });
    r.post(`${base}/:id/accept`, async (req, reply) => {
      gate(req);
      const a = isObj(req.body) ? req.body.accept : undefined;
      if (!isObj(a) || typeof a.auth_key !== 'string') throw err.badRequest('Missing required element \'accept\' in request body.');
      const out = await tr.acceptTransfer(deps, { auth: who(req), requestId: req.id }, idOf(req), a.auth_key);
      return send(reply, 202, { transfer: { ...out, links: links(req, who(req).projectId ?? '', 'os-volume-transfer', out.id) } });
    });
  }
}
