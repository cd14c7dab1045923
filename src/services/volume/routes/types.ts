import type { FastifyInstance, FastifyRequest } from 'fastify';
import { err } from '../errors.ts';
import { isObj, links, member, optBool, parseMetadata, send, v3, who, type Obj } from '../http.ts';
import type { VolumeService } from '../service.ts';
import * as vt from '../volume-types.ts';
import type { QosSpecRecord } from '../types.ts';

/** /v3/types (extra specs, os-volume-type-access, actions) and /v3/qos-specs. */

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;
const qosView = (q: QosSpecRecord) => ({ id: q.id, name: q.name, consumer: q.consumer, specs: q.specs });

export function typeRoutes(app: FastifyInstance, svc: VolumeService): void {
  const r = v3(app);
  const deps = svc.deps;
  r.get('/types', async (req, reply) => {
    const auth = who(req);
    const p = (req.query as Obj).is_public;
    const isPublic = p === undefined ? undefined : String(p).toLowerCase() === 'none' ? 'all' as const : optBool(p, 'is_public');
    return send(reply, 200, { volume_types: (await vt.listTypes(deps, auth, isPublic)).map((t) => vt.typeView(auth, t)) });
  });
  r.get('/types/default', async (req, reply) => send(reply, 200, { volume_type: vt.typeView(who(req), await vt.defaultType(deps)) }));
  r.get('/types/:id', async (req, reply) => {
    const auth = who(req);
    return send(reply, 200, { volume_type: vt.typeView(auth, await vt.findType(deps, auth, idOf(req))) });
  });
  r.post('/types', async (req, reply) => {
    const auth = who(req);
    const b = member(req.body, 'volume_type');
    if (typeof b.name !== 'string') throw err.badField('volume_type', b, `'name' is a required property`);
    if (b.description !== undefined && b.description !== null && typeof b.description !== 'string') throw err.badField('description', b.description, 'is not of type \'string\'');
    const t = await vt.createType(deps, auth, {
      name: b.name, description: typeof b.description === 'string' ? b.description : undefined,
      isPublic: optBool(b['os-volume-type-access:is_public'] ?? b.is_public, 'is_public') ?? true,
      extraSpecs: b.extra_specs === undefined || b.extra_specs === null ? {} : parseMetadata(b.extra_specs, 'extra_specs'),
    });
    return send(reply, 200, { volume_type: vt.typeView(auth, t, 'create') });
  });
  r.put('/types/:id', async (req, reply) => {
    const auth = who(req);
    const b = member(req.body, 'volume_type');
    if (b.name === undefined && b.description === undefined && b.is_public === undefined) throw err.invalidType('Specify volume type name, description, is_public or a combination thereof.');
    if (b.name !== undefined && typeof b.name !== 'string') throw err.badField('name', b.name, 'is not of type \'string\'');
    const t = await vt.updateType(deps, auth, idOf(req), {
      name: typeof b.name === 'string' ? b.name : undefined, description: typeof b.description === 'string' ? b.description : undefined,
      isPublic: optBool(b.is_public, 'is_public'),
    });
    return send(reply, 200, { volume_type: vt.typeView(auth, t, 'update') });
  });
  r.delete('/types/:id', async (req, reply) => { await vt.deleteType(deps, who(req), idOf(req)); return send(reply, 202); });

  r.get('/types/:id/extra_specs', async (req, reply) => {
    const auth = who(req);
    return send(reply, 200, { extra_specs: vt.typeView(auth, await vt.findType(deps, auth, idOf(req))).extra_specs });
  });
  r.post('/types/:id/extra_specs', async (req, reply) => {
    const specs = parseMetadata(member(req.body, 'extra_specs'), 'extra_specs');
    await vt.setExtraSpecs(deps, who(req), idOf(req), specs);
    return send(reply, 200, { extra_specs: specs });
  });
  r.get('/types/:id/extra_specs/:key', async (req, reply) => {
    const auth = who(req);
    const key = (req.params as { key: string }).key;
    const specs = vt.typeView(auth, await vt.findType(deps, auth, idOf(req))).extra_specs as Record<string, string>;
    if (!(key in specs)) throw err.extraSpecNotFound(idOf(req), key);
    return send(reply, 200, { [key]: specs[key] });
  });
  r.put('/types/:id/extra_specs/:key', async (req, reply) => {
    const key = (req.params as { key: string }).key;
    const specs = isObj(req.body) ? parseMetadata(req.body, 'extra_specs') : {};
    if (Object.keys(specs).length !== 1 || !(key in specs)) throw err.badRequest('Request body and URI mismatch');
    await vt.setExtraSpecs(deps, who(req), idOf(req), specs);
    return send(reply, 200, specs);
  });
  r.delete('/types/:id/extra_specs/:key', async (req, reply) => {
    await vt.deleteExtraSpec(deps, who(req), idOf(req), (req.params as { key: string }).key);
    return send(reply, 202);
  });

  r.get('/types/:id/os-volume-type-access', async (req, reply) =>
    send(reply, 200, { volume_type_access: await vt.typeAccess(deps, who(req), idOf(req)) }));
  r.post('/types/:id/action', async (req, reply) => {
    const auth = who(req);
    const body = isObj(req.body) ? req.body : {};
    const add = body.addProjectAccess;
    const rem = body.removeProjectAccess;
    const project = (x: unknown): string => {
      if (!isObj(x) || typeof x.project !== 'string') throw err.badRequest('Missing required element \'project\' in request body.');
      return x.project;
    };
    if (add !== undefined) await vt.addTypeAccess(deps, auth, idOf(req), project(add));
    else if (rem !== undefined) await vt.removeTypeAccess(deps, auth, idOf(req), project(rem));
    else throw err.badRequest('There is no such action');
    return send(reply, 202);
  });

  // QoS specs
  r.get('/qos-specs', async (req, reply) => send(reply, 200, { qos_specs: (await vt.listQos(deps, who(req))).map(qosView) }));
  const qosLinks = (req: FastifyRequest, q: QosSpecRecord) => links(req, who(req).projectId ?? '', 'qos-specs', q.id);
  r.get('/qos-specs/:id', async (req, reply) => {
    const q = await vt.getQos(deps, who(req), idOf(req));
    return send(reply, 200, { qos_specs: qosView(q), links: qosLinks(req, q) });
  });
  r.post('/qos-specs', async (req, reply) => {
    const b = member(req.body, 'qos_specs');
    if (typeof b.name !== 'string') throw err.badField('qos_specs', b, `'name' is a required property`);
    const specs = { ...b };
    delete specs.name;
    const q = await vt.createQos(deps, who(req), b.name, parseMetadata(specs, 'qos_specs'));
    return send(reply, 200, { qos_specs: qosView(q), links: qosLinks(req, q) });
  });
  r.put('/qos-specs/:id', async (req, reply) => {
    const specs = parseMetadata(member(req.body, 'qos_specs'), 'qos_specs');
    return send(reply, 200, { qos_specs: await vt.setQosKeys(deps, who(req), idOf(req), specs) });
  });
  r.put('/qos-specs/:id/delete_keys', async (req, reply) => {
    const keys = isObj(req.body) ? req.body.keys : undefined;
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw err.badRequest('Missing required element \'keys\' in request body.');
    await vt.unsetQosKeys(deps, who(req), idOf(req), keys as string[]);
    return send(reply, 202);
  });
  r.delete('/qos-specs/:id', async (req, reply) => {
    await vt.deleteQos(deps, who(req), idOf(req), optBool((req.query as Obj).force, 'force') ?? false);
    return send(reply, 202);
  });
  r.get('/qos-specs/:id/associations', async (req, reply) => send(reply, 200, { qos_associations: await vt.qosAssociations(deps, who(req), idOf(req)) }));
  const vtid = (req: FastifyRequest) => { const x = (req.query as Obj).vol_type_id; return typeof x === 'string' ? x : undefined; };
  r.get('/qos-specs/:id/associate', async (req, reply) => { await vt.associateQos(deps, who(req), idOf(req), vtid(req), true); return send(reply, 202); });
  r.get('/qos-specs/:id/disassociate', async (req, reply) => { await vt.associateQos(deps, who(req), idOf(req), vtid(req), false); return send(reply, 202); });
  r.get('/qos-specs/:id/disassociate_all', async (req, reply) => { await vt.disassociateAllQos(deps, who(req), idOf(req)); return send(reply, 202); });
}
