import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../api/context.ts';
import { BadRequest, Unauthorized } from '../../../common/errors.ts';
import { METADEF_SCHEMAS } from './schemas.ts';
import type { MetadefService } from './service.ts';
import {
  AssociationBody, CHILD_SORT_KEYS, NAMESPACE_SORT_KEYS, NS_VISIBILITIES, NamespaceBody, ObjectBody, PropertyBody, TagBody, TagsBody,
  type Association, type ChildSortKey, type MetadefObject, type MetadefProperty, type MetadefTag, type Namespace, type NamespaceDetail,
  type NamespaceListQuery, type NamespaceSortKey, type NsVisibility, type Page, type PropertyDefinition, type SortDir,
} from './types.ts';

/**
 * Glance's metadata definitions API under /v2/metadefs and its schemas under
 * /v2/schemas/metadefs. Registered inside the image API's scope, so errors take
 * Glance's shape and bodies go through the same parsers.
 */

const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 1000;
const NS_BASE = '/v2/metadefs/namespaces';

type Query = Record<string, string | string[] | undefined>;
type Ns = { Params: { ns: string } };
type NsName = { Params: { ns: string; name: string } };
const one = (q: Query, k: string): string | undefined => { const v = q[k]; return Array.isArray(v) ? v[v.length - 1] : v; };

const ts = (iso: string): string => iso.replace(/\.\d+Z$/, 'Z');
const auth = (req: FastifyRequest): AuthContext => {
  if (!req.ctx.auth) throw new Unauthorized();
  return req.ctx.auth;
};
function baseUrl(req: FastifyRequest): string {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol;
  return `${proto}://${req.headers.host ?? 'localhost'}/image`;
}

// ---- documents (absent values are left out, never null: clients validate against the schemas) ----

export function renderNamespace(n: Namespace): Record<string, unknown> {
  const out: Record<string, unknown> = { namespace: n.namespace };
  if (n.display_name !== null) out.display_name = n.display_name;
  if (n.description !== null) out.description = n.description;
  out.visibility = n.visibility;
  out.protected = n.protected;
  if (n.owner !== null) out.owner = n.owner;
  out.created_at = ts(n.created_at);
  out.updated_at = ts(n.updated_at);
  out.schema = '/v2/schemas/metadefs/namespace';
  out.self = `${NS_BASE}/${n.namespace}`;
  return out;
}
export function renderAssociation(a: Association): Record<string, unknown> {
  const out: Record<string, unknown> = { name: a.name };
  if (a.prefix !== null) out.prefix = a.prefix;
  if (a.properties_target !== null) out.properties_target = a.properties_target;
  out.created_at = ts(a.created_at);
  out.updated_at = ts(a.updated_at);
  return out;
}
const renderPropertyMap = (ps: MetadefProperty[]): Record<string, PropertyDefinition> => Object.fromEntries(ps.map((p) => [p.name, p.definition]));
const renderProperty = (p: MetadefProperty): Record<string, unknown> => ({ name: p.name, ...p.definition });
export function renderObject(ns: string, o: MetadefObject): Record<string, unknown> {
  const out: Record<string, unknown> = { name: o.name };
  if (o.description !== null) out.description = o.description;
  out.required = o.required;
  out.properties = o.properties;
  out.created_at = ts(o.created_at);
  out.updated_at = ts(o.updated_at);
  out.schema = '/v2/schemas/metadefs/object';
  out.self = `${NS_BASE}/${ns}/objects/${o.name}`;
  return out;
}
const renderTag = (t: MetadefTag) => ({ name: t.name, created_at: ts(t.created_at), updated_at: ts(t.updated_at) });

/** A namespace with its contents; empty collections are left out, as Glance does. */
export function renderDetail(d: NamespaceDetail): Record<string, unknown> {
  const out = renderNamespace(d.namespace);
  if (d.associations.length) out.resource_type_associations = d.associations.map(renderAssociation);
  if (d.properties.length) out.properties = renderPropertyMap(d.properties);
  if (d.objects.length) out.objects = d.objects.map((o) => renderObject(d.namespace.namespace, o));
  if (d.tags.length) out.tags = d.tags.map((t) => ({ name: t.name }));
  return out;
}

// ---- query parameters ----

function limitParam(q: Query, fallback: number): number {
  const v = one(q, 'limit');
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new BadRequest(`Invalid limit: ${v}. The limit must be a non-negative integer.`);
  return Math.min(n, MAX_LIMIT);
}
function sortParams<K extends string>(q: Query, keys: readonly K[]): { sortKey: K; sortDir: SortDir } {
  const k = one(q, 'sort_key') ?? 'created_at';
  if (!(keys as readonly string[]).includes(k)) throw new BadRequest(`Invalid sort key: ${k}. It should be one of the following: ${keys.join(', ')}.`);
  const d = one(q, 'sort_dir') ?? 'desc';
  if (d !== 'asc' && d !== 'desc') throw new BadRequest(`Invalid sort direction: ${d}. It should be asc or desc.`);
  return { sortKey: k as K, sortDir: d };
}
export function parseNamespaceQuery(q: Query): NamespaceListQuery {
  const vis = one(q, 'visibility');
  if (vis !== undefined && !(NS_VISIBILITIES as readonly string[]).includes(vis)) throw new BadRequest(`Invalid visibility value: ${vis}. It should be public or private.`);
  const rts = one(q, 'resource_types');
  return {
    limit: limitParam(q, DEFAULT_LIMIT), marker: one(q, 'marker'), ...sortParams<NamespaceSortKey>(q, NAMESPACE_SORT_KEYS),
    visibility: vis as NsVisibility | undefined, resourceTypes: rts ? rts.split(',').map((s) => s.trim()).filter(Boolean) : [],
  };
}
/** Objects and tags: every item unless a limit is given (their lists carry no next link). */
const childPage = (q: Query): Page<ChildSortKey> => ({ limit: limitParam(q, MAX_LIMIT), marker: one(q, 'marker'), ...sortParams<ChildSortKey>(q, CHILD_SORT_KEYS) });

function listUrl(q: Query, marker?: string): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (k !== 'marker' && v !== undefined) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  if (marker !== undefined) p.set('marker', marker);
  const s = p.toString();
  return s ? `${NS_BASE}?${s}` : NS_BASE;
}

const truthy = (v: string | string[] | undefined): boolean => /^(1|t|true|on|y|yes)$/i.test(String(Array.isArray(v) ? v[v.length - 1] : v ?? '').trim());

export function metadefRoutes(app: FastifyInstance, svc: MetadefService): void {
  for (const [path, doc] of Object.entries(METADEF_SCHEMAS)) app.get(`/v2/schemas/${path}`, async () => doc);

  app.get('/v2/metadefs/resource_types', async (req) => ({
    resource_types: (await svc.listResourceTypes(auth(req))).map((r) => ({ name: r.name, created_at: ts(r.created_at), updated_at: ts(r.updated_at) })),
  }));

  // ---- namespaces ----
  app.get<{ Querystring: Query }>(NS_BASE, async (req) => {
    const q = req.query ?? {};
    const { namespaces, more } = await svc.listNamespaces(auth(req), parseNamespaceQuery(q));
    const out: Record<string, unknown> = {
      namespaces: namespaces.map(({ ns, associations }) => {
        const d = renderNamespace(ns);
        if (associations.length) d.resource_type_associations = associations.map(renderAssociation);
        return d;
      }),
      first: listUrl(q),
      schema: '/v2/schemas/metadefs/namespaces',
    };
    if (more && namespaces.length) out.next = listUrl(q, namespaces[namespaces.length - 1]!.ns.namespace);
    return out;
  });
  app.post<{ Body: NamespaceBody }>(NS_BASE, { schema: { body: NamespaceBody } }, async (req, reply) => {
    const d = await svc.createNamespace(auth(req), req.body);
    return reply.code(201).header('Location', `${baseUrl(req)}${NS_BASE}/${encodeURI(d.namespace.namespace)}`).send(renderDetail(d));
  });
  app.get<Ns & { Querystring: Query }>(`${NS_BASE}/:ns`, async (req) =>
    renderDetail(await svc.getNamespace(auth(req), req.params.ns, one(req.query ?? {}, 'resource_type'))));
  app.put<Ns & { Body: NamespaceBody }>(`${NS_BASE}/:ns`, { schema: { body: NamespaceBody } }, async (req) =>
    renderNamespace(await svc.updateNamespace(auth(req), req.params.ns, req.body)));
  app.delete<Ns>(`${NS_BASE}/:ns`, async (req, reply) => {
    await svc.deleteNamespace(auth(req), req.params.ns);
    return reply.code(204).send();
  });

  // ---- resource type associations ----
  app.get<Ns>(`${NS_BASE}/:ns/resource_types`, async (req) => ({
    resource_type_associations: (await svc.listAssociations(auth(req), req.params.ns)).map(renderAssociation),
  }));
  app.post<Ns & { Body: AssociationBody }>(`${NS_BASE}/:ns/resource_types`, { schema: { body: AssociationBody } }, async (req, reply) =>
    reply.code(201).send(renderAssociation(await svc.associate(auth(req), req.params.ns, req.body))));
  app.delete<NsName>(`${NS_BASE}/:ns/resource_types/:name`, async (req, reply) => {
    await svc.deassociate(auth(req), req.params.ns, req.params.name);
    return reply.code(204).send();
  });

  // ---- objects ----
  app.get<Ns & { Querystring: Query }>(`${NS_BASE}/:ns/objects`, async (req) => ({
    objects: (await svc.listObjects(auth(req), req.params.ns, childPage(req.query ?? {}))).map((o) => renderObject(req.params.ns, o)),
    schema: '/v2/schemas/metadefs/objects',
  }));
  app.post<Ns & { Body: ObjectBody }>(`${NS_BASE}/:ns/objects`, { schema: { body: ObjectBody } }, async (req, reply) =>
    reply.code(201).send(renderObject(req.params.ns, await svc.createObject(auth(req), req.params.ns, req.body))));
  app.delete<Ns>(`${NS_BASE}/:ns/objects`, async (req, reply) => {
    await svc.deleteObjects(auth(req), req.params.ns);
    return reply.code(204).send();
  });
  app.get<NsName>(`${NS_BASE}/:ns/objects/:name`, async (req) =>
    renderObject(req.params.ns, await svc.getObject(auth(req), req.params.ns, req.params.name)));
  app.put<NsName & { Body: ObjectBody }>(`${NS_BASE}/:ns/objects/:name`, { schema: { body: ObjectBody } }, async (req) =>
    renderObject(req.params.ns, await svc.updateObject(auth(req), req.params.ns, req.params.name, req.body)));
  app.delete<NsName>(`${NS_BASE}/:ns/objects/:name`, async (req, reply) => {
    await svc.deleteObject(auth(req), req.params.ns, req.params.name);
    return reply.code(204).send();
  });

  // ---- properties ----
  app.get<Ns>(`${NS_BASE}/:ns/properties`, async (req) => ({
    properties: renderPropertyMap(await svc.listProperties(auth(req), req.params.ns)),
  }));
  app.post<Ns & { Body: PropertyBody }>(`${NS_BASE}/:ns/properties`, { schema: { body: PropertyBody } }, async (req, reply) =>
    reply.code(201).send(renderProperty(await svc.createProperty(auth(req), req.params.ns, req.body))));
  app.delete<Ns>(`${NS_BASE}/:ns/properties`, async (req, reply) => {
    await svc.deleteProperties(auth(req), req.params.ns);
    return reply.code(204).send();
  });
  app.get<NsName & { Querystring: Query }>(`${NS_BASE}/:ns/properties/:name`, async (req) =>
    renderProperty(await svc.getProperty(auth(req), req.params.ns, req.params.name, one(req.query ?? {}, 'resource_type'))));
  app.put<NsName & { Body: PropertyBody }>(`${NS_BASE}/:ns/properties/:name`, { schema: { body: PropertyBody } }, async (req) =>
    renderProperty(await svc.updateProperty(auth(req), req.params.ns, req.params.name, req.body)));
  app.delete<NsName>(`${NS_BASE}/:ns/properties/:name`, async (req, reply) => {
    await svc.deleteProperty(auth(req), req.params.ns, req.params.name);
    return reply.code(204).send();
  });

  // ---- tags ----
  app.get<Ns & { Querystring: Query }>(`${NS_BASE}/:ns/tags`, async (req) => ({
    tags: (await svc.listTags(auth(req), req.params.ns, childPage(req.query ?? {}))).map(renderTag),
  }));
  app.post<Ns & { Body: TagsBody }>(`${NS_BASE}/:ns/tags`, { schema: { body: TagsBody } }, async (req, reply) => {
    const tags = await svc.createTags(auth(req), req.params.ns, req.body.tags.map((t) => t.name), truthy(req.headers['x-openstack-append']));
    return reply.code(201).send({ tags: tags.map(renderTag) });
  });
  app.delete<Ns>(`${NS_BASE}/:ns/tags`, async (req, reply) => {
    await svc.deleteTags(auth(req), req.params.ns);
    return reply.code(204).send();
  });
  app.get<NsName>(`${NS_BASE}/:ns/tags/:name`, async (req) => renderTag(await svc.getTag(auth(req), req.params.ns, req.params.name)));
  app.post<NsName>(`${NS_BASE}/:ns/tags/:name`, async (req, reply) =>
    reply.code(201).send(renderTag(await svc.createTag(auth(req), req.params.ns, req.params.name))));
  app.put<NsName & { Body: TagBody }>(`${NS_BASE}/:ns/tags/:name`, { schema: { body: TagBody } }, async (req) =>
    renderTag(await svc.updateTag(auth(req), req.params.ns, req.params.name, req.body.name)));
  app.delete<NsName>(`${NS_BASE}/:ns/tags/:name`, async (req, reply) => {
    await svc.deleteTag(auth(req), req.params.ns, req.params.name);
    return reply.code(204).send();
  });
}
