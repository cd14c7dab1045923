import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../common/errors.ts';
import { newId } from '../../../common/ids.ts';
import { isUniqueViolation } from '../../../db/index.ts';
import type { IdentityService } from '../service.ts';
import * as store from '../store.ts';
import { collectionLinks, renderEndpoint, renderRegion, renderService, v3Base } from '../render.ts';
import type { CatalogService, Endpoint, Region } from '../types.ts';

/** Regions, services and endpoints: the catalog's contents. */

const Extra = { additionalProperties: true } as const;
const RegionBody = Type.Object({ region: Type.Object({
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
  parent_region_id: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
}, Extra) });
const ServiceCreate = Type.Object({ service: Type.Object({
  type: Type.String({ minLength: 1, maxLength: 255 }), name: Type.Optional(Type.String({ maxLength: 255 })),
  description: Type.Optional(Type.Union([Type.String(), Type.Null()])), enabled: Type.Optional(Type.Boolean()),
}, Extra) });
const ServiceUpdate = Type.Object({ service: Type.Object({
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), name: Type.Optional(Type.String({ maxLength: 255 })),
  description: Type.Optional(Type.Union([Type.String(), Type.Null()])), enabled: Type.Optional(Type.Boolean()),
}, { ...Extra, minProperties: 1 }) });
const Interface = Type.Union([Type.Literal('public'), Type.Literal('internal'), Type.Literal('admin')]);
const Url = Type.String({ minLength: 1, maxLength: 1024, pattern: '^[a-zA-Z][a-zA-Z0-9+.-]*://' });
const EndpointCreate = Type.Object({ endpoint: Type.Object({
  interface: Interface, url: Url, service_id: Type.String({ maxLength: 64 }), region_id: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
  region: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])), enabled: Type.Optional(Type.Boolean()),
}, Extra) });
const EndpointUpdate = Type.Object({ endpoint: Type.Object({
  interface: Type.Optional(Interface), url: Type.Optional(Url), service_id: Type.Optional(Type.String({ maxLength: 64 })),
  region_id: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])), region: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
  enabled: Type.Optional(Type.Boolean()),
}, { ...Extra, minProperties: 1 }) });

const extraOf = (b: Record<string, unknown>, known: string[]) => Object.fromEntries(Object.entries(b).filter(([k]) => !known.includes(k)));

export function catalogRoutes(app: FastifyInstance, identity: IdentityService): void {
  const db = identity.db;

  const createRegion = async (id: string, b: Static<typeof RegionBody>['region']): Promise<Region> => {
    if (b.parent_region_id && !(await store.getRegion(db, b.parent_region_id))) throw new BadRequest(`Parent region ${b.parent_region_id} not found.`);
    const r: Region = { id, description: b.description ?? '', parent_region_id: b.parent_region_id ?? null, extra: extraOf(b, ['id', 'description', 'parent_region_id']) };
    try { await store.insertRegion(db, r); } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Duplicate ID, ${id}.`);
      throw err;
    }
    await identity.changed('catalog');
    return r;
  };
  app.post<{ Body: Static<typeof RegionBody> }>('/v3/regions', { schema: { body: RegionBody } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_region');
    const r = await createRegion(req.body.region.id ?? newId(), req.body.region);
    return reply.code(201).send({ region: renderRegion(v3Base(req), r) });
  });
  app.put<{ Params: { id: string }; Body: Static<typeof RegionBody> }>('/v3/regions/:id', { schema: { body: RegionBody } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_region');
    if (req.body.region.id !== undefined && req.body.region.id !== req.params.id) throw new BadRequest('The region id in the body does not match the URL.');
    const r = await createRegion(req.params.id, req.body.region);
    return reply.code(201).send({ region: renderRegion(v3Base(req), r) });
  });
  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/regions', async (req) => {
    enforce(req.ctx.auth, 'identity:list_regions');
    const list = await store.listRegions(db, { parent_region_id: req.query.parent_region_id });
    return { regions: list.map((r) => renderRegion(v3Base(req), r)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>('/v3/regions/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_region');
    const r = await store.getRegion(db, req.params.id);
    if (!r) throw new NotFound(`Could not find region: ${req.params.id}.`);
    return { region: renderRegion(v3Base(req), r) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof RegionBody> }>('/v3/regions/:id', { schema: { body: RegionBody } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_region');
    const r = await store.getRegion(db, req.params.id);
    if (!r) throw new NotFound(`Could not find region: ${req.params.id}.`);
    const b = req.body.region;
    if (b.id !== undefined && b.id !== r.id) throw new BadRequest('The id of a region cannot change.');
    if (b.description !== undefined) r.description = b.description ?? '';
    if (b.parent_region_id !== undefined) {
      if (b.parent_region_id !== null) {
        let cur: string | null = b.parent_region_id;
        while (cur) {
          if (cur === r.id) throw new BadRequest('A region cannot be its own ancestor.');
          const pr: Region | undefined = await store.getRegion(db, cur);
          if (!pr) throw new BadRequest(`Parent region ${cur} not found.`);
          cur = pr.parent_region_id;
        }
      }
      r.parent_region_id = b.parent_region_id;
    }
    Object.assign(r.extra, extraOf(b, ['id', 'description', 'parent_region_id']));
    await store.updateRegion(db, r);
    await identity.changed('catalog');
    return { region: renderRegion(v3Base(req), r) };
  });
  app.delete<{ Params: { id: string } }>('/v3/regions/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_region');
    if (!(await store.getRegion(db, req.params.id))) throw new NotFound(`Could not find region: ${req.params.id}.`);
    if ((await store.listRegions(db, { parent_region_id: req.params.id })).length) throw new Forbidden('Cannot delete a region that has child regions.');
    if ((await store.listEndpoints(db, { region_id: req.params.id })).length) throw new Forbidden('Cannot delete a region that has endpoints.');
    await store.deleteRegion(db, req.params.id);
    await identity.changed('catalog');
    return reply.code(204).send();
  });

  // ---- services ----
  app.post<{ Body: Static<typeof ServiceCreate> }>('/v3/services', { schema: { body: ServiceCreate } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_service');
    const b = req.body.service;
    const s: CatalogService = { id: newId(), type: b.type, name: b.name ?? '', description: b.description ?? '', enabled: b.enabled ?? true, extra: extraOf(b, ['id', 'type', 'name', 'description', 'enabled']) };
    await store.insertService(db, s);
    await identity.changed('catalog');
    return reply.code(201).send({ service: renderService(v3Base(req), s) });
  });
  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/services', async (req) => {
    enforce(req.ctx.auth, 'identity:list_services');
    const list = await store.listServices(db, { type: req.query.type, name: req.query.name });
    return { services: list.map((s) => renderService(v3Base(req), s)), links: collectionLinks(req) };
  });
  const requireService = async (id: string) => {
    const s = await store.getService(db, id);
    if (!s) throw new NotFound(`Could not find service: ${id}.`);
    return s;
  };
  app.get<{ Params: { id: string } }>('/v3/services/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_service');
    return { service: renderService(v3Base(req), await requireService(req.params.id)) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof ServiceUpdate> }>('/v3/services/:id', { schema: { body: ServiceUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_service');
    const s = await requireService(req.params.id);
    const b = req.body.service;
    if (b.type !== undefined) s.type = b.type;
    if (b.name !== undefined) s.name = b.name;
    if (b.description !== undefined) s.description = b.description ?? '';
    if (b.enabled !== undefined) s.enabled = b.enabled;
    Object.assign(s.extra, extraOf(b, ['id', 'type', 'name', 'description', 'enabled']));
    await store.updateService(db, s);
    await identity.changed('catalog');
    return { service: renderService(v3Base(req), s) };
  });
  app.delete<{ Params: { id: string } }>('/v3/services/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_service');
    await requireService(req.params.id);
    await store.deleteService(db, req.params.id);
    await identity.changed('catalog');
    return reply.code(204).send();
  });

  // ---- endpoints ----
  /** As Keystone does, an endpoint naming a region that does not exist creates it. */
  const checkRegion = async (id: string | null | undefined) => {
    if (id && !(await store.getRegion(db, id))) {
      try { await store.insertRegion(db, { id, description: '', parent_region_id: null, extra: {} }); } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
  };
  app.post<{ Body: Static<typeof EndpointCreate> }>('/v3/endpoints', { schema: { body: EndpointCreate } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_endpoint');
    const b = req.body.endpoint;
    await requireService(b.service_id).catch(() => { throw new BadRequest(`Service ${b.service_id} not found.`); });
    if (b.region_id && b.region && b.region_id !== b.region) throw new BadRequest('region_id and region must be the same when both are given.');
    const region = b.region_id ?? b.region ?? null;
    await checkRegion(region);
    const e: Endpoint = { id: newId(), service_id: b.service_id, interface: b.interface, url: b.url, region_id: region, enabled: b.enabled ?? true, extra: extraOf(b, ['id', 'interface', 'url', 'service_id', 'region_id', 'region', 'enabled']) };
    await store.insertEndpoint(db, e);
    await identity.changed('catalog');
    return reply.code(201).send({ endpoint: renderEndpoint(v3Base(req), e) });
  });
  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/endpoints', async (req) => {
    enforce(req.ctx.auth, 'identity:list_endpoints');
    const list = await store.listEndpoints(db, { service_id: req.query.service_id, interface: req.query.interface, region_id: req.query.region_id ?? req.query.region });
    return { endpoints: list.map((e) => renderEndpoint(v3Base(req), e)), links: collectionLinks(req) };
  });
  const requireEndpoint = async (id: string) => {
    const e = await store.getEndpoint(db, id);
    if (!e) throw new NotFound(`Could not find endpoint: ${id}.`);
    return e;
  };
  app.get<{ Params: { id: string } }>('/v3/endpoints/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_endpoint');
    return { endpoint: renderEndpoint(v3Base(req), await requireEndpoint(req.params.id)) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof EndpointUpdate> }>('/v3/endpoints/:id', { schema: { body: EndpointUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_endpoint');
    const e = await requireEndpoint(req.params.id);
    const b = req.body.endpoint;
    if (b.service_id !== undefined) { await requireService(b.service_id).catch(() => { throw new BadRequest(`Service ${b.service_id} not found.`); }); e.service_id = b.service_id; }
    if (b.interface !== undefined) e.interface = b.interface;
    if (b.url !== undefined) e.url = b.url;
    const region = b.region_id !== undefined ? b.region_id : b.region;
    if (region !== undefined) { await checkRegion(region); e.region_id = region; }
    if (b.enabled !== undefined) e.enabled = b.enabled;
    Object.assign(e.extra, extraOf(b, ['id', 'interface', 'url', 'service_id', 'region_id', 'region', 'enabled']));
    await store.updateEndpoint(db, e);
    await identity.changed('catalog');
    return { endpoint: renderEndpoint(v3Base(req), e) };
  });
  app.delete<{ Params: { id: string } }>('/v3/endpoints/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_endpoint');
    await requireEndpoint(req.params.id);
    await store.deleteEndpoint(db, req.params.id);
    await identity.changed('catalog');
    return reply.code(204).send();
  });
}
