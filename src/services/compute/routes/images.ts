import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuthContext } from '../../../api/context.ts';
import { BadRequest, Forbidden, GureumError, NotFound } from '../../../common/errors.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast, boolParam, computeBase, intParam, selfLinks } from '../http.ts';
import type { ImageApi, ProxyImage } from '../images.ts';
import { novaTime } from '../render.ts';
import { effectiveQuotas } from './quotas.ts';

/**
 * Nova's image proxy: /images (list, detail, show, delete) and /images/{id}/metadata,
 * served from Glance through ImageApi with Nova's image view. Deprecated: /images answers
 * 404 from microversion 2.36 on, /images/{id}/metadata from 2.39 on.
 */

const MAX_LIMIT = 1000;
/** The microversions from which the proxies are gone. */
const PROXY_GONE = '2.36';
const META_PROXY_GONE = '2.39';

const MetaKey = '^[a-zA-Z0-9-_:. ]{1,255}$';
const Metadata = Type.Record(Type.String({ pattern: MetaKey }), Type.String({ maxLength: 255 }), { additionalProperties: false });
const MetaBody = Type.Object({ metadata: Metadata }, { additionalProperties: false });
const MetaItemBody = Type.Object({
  meta: Type.Record(Type.String({ pattern: MetaKey }), Type.String({ maxLength: 255 }), { additionalProperties: false, minProperties: 1, maxProperties: 1 }),
}, { additionalProperties: false });

type Params = { id: string };
type Query = Record<string, string | string[] | undefined>;
const q1 = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[v.length - 1] : v);

/** Glance status -> Nova's image status, and the progress Nova derives from it. */
const STATUS: Record<string, string> = {
  active: 'ACTIVE', queued: 'SAVING', saving: 'SAVING', deleted: 'DELETED', pending_delete: 'DELETED', killed: 'ERROR',
};
const PROGRESS: Record<string, number> = { queued: 25, saving: 50, active: 100 };

/** The filters Nova's /images accepts, parsed from the query string. */
interface ProxyFilters {
  name?: string; status?: string; changesSince?: number; minRam?: number; minDisk?: number; properties: Record<string, string>;
}

function filtersFrom(q: Query): ProxyFilters {
  const f: ProxyFilters = { properties: {} };
  f.name = q1(q.name);
  const status = q1(q.status);
  if (status !== undefined) f.status = status.toLowerCase();
  const since = q1(q['changes-since']);
  if (since !== undefined) {
    const t = Date.parse(since);
    if (Number.isNaN(t)) throw new BadRequest(`Invalid changes-since value: ${since}`);
    f.changesSince = t;
  }
  f.minRam = intParam(q1(q.minRam), 'minRam');
  f.minDisk = intParam(q1(q.minDisk), 'minDisk');
  // A server filter may be the server's id or any link to it.
  const server = q1(q.server);
  if (server !== undefined) f.properties.instance_uuid = server.replace(/\/+$/, '').split('/').pop() ?? server;
  const type = q1(q.type);
  if (type !== undefined) f.properties.image_type = type;
  for (const [k, v] of Object.entries(q)) {
    const value = q1(v);
    if (k.startsWith('property-') && k.length > 'property-'.length && value !== undefined) f.properties[k.slice('property-'.length)] = value;
  }
  return f;
}

function matches(img: ProxyImage, f: ProxyFilters): boolean {
  if (f.name !== undefined && img.name !== f.name) return false;
  if (f.status !== undefined && img.status !== f.status) return false;
  if (f.changesSince !== undefined && Date.parse(img.updatedAt) < f.changesSince) return false;
  if (f.minRam !== undefined && img.minRam < f.minRam) return false;
  if (f.minDisk !== undefined && img.minDisk < f.minDisk) return false;
  for (const [k, v] of Object.entries(f.properties)) if (img.properties[k] !== v) return false;
  return true;
}

/** Glance's own URL for an image (Nova's "alternate" link). */
function glanceHref(req: FastifyRequest, id: string): string {
  return `${computeBase(req).replace(/\/compute$/, '')}/image/images/${id}`;
}

function imageLinks(req: FastifyRequest, id: string) {
  return [...selfLinks(req, '', 'images', id), { rel: 'alternate', type: 'application/vnd.openstack.image', href: glanceHref(req, id) }];
}

function basicView(req: FastifyRequest, img: ProxyImage) {
  return { id: img.id, name: img.name, links: imageLinks(req, img.id) };
}

function detailView(req: FastifyRequest, img: ProxyImage) {
  const out: Record<string, unknown> = {
    id: img.id, name: img.name, minRam: img.minRam, minDisk: img.minDisk, metadata: img.properties,
    created: novaTime(img.createdAt), updated: novaTime(img.updatedAt), status: STATUS[img.status] ?? 'UNKNOWN',
    progress: PROGRESS[img.status] ?? 0, 'OS-EXT-IMG-SIZE:size': img.size, links: imageLinks(req, img.id),
  };
  const server = img.properties.instance_uuid;
  if (server !== undefined) out.server = { id: server, links: selfLinks(req, '', 'servers', server) };
  const auto = img.properties.auto_disk_config;
  if (auto !== undefined) out['OS-DCF:diskConfig'] = boolParam(auto) === true ? 'AUTO' : 'MANUAL';
  return out;
}

/** Glance's 404 (and a malformed id) become Nova's "Image not found."; other errors pass through. */
async function glance<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof GureumError && err.status === 404) throw new NotFound('Image not found.');
    throw err;
  }
}

export function imageProxyRoutes(app: FastifyInstance, deps: ComputeDeps, images: ImageApi): void {
  const proxy = (req: FastifyRequest, goneFrom: string) => {
    if (atLeast(req, goneFrom)) throw new NotFound('The resource could not be found.');
  };
  const authOf = (req: FastifyRequest): AuthContext => req.ctx.auth!;

  /** Nova's metadata_items quota, applied to an image's whole property set. */
  async function checkQuota(auth: AuthContext, metadata: Record<string, string>): Promise<void> {
    const n = Object.keys(metadata).length;
    if (n === 0) return;
    const limit = (await effectiveQuotas(deps, auth.projectId ?? '')).metadata_items ?? -1;
    if (limit >= 0 && n > limit) throw new Forbidden('Image metadata limit exceeded');
  }

  const list = (detail: boolean) => async (req: FastifyRequest) => {
    proxy(req, PROXY_GONE);
    const q = req.query as Query;
    const f = filtersFrom(q);
    const limit = intParam(q1(q.limit), 'limit');
    const marker = q1(q.marker);
    let all = (await images.list(authOf(req))).filter((i) => matches(i, f));
    if (marker !== undefined) {
      const i = all.findIndex((x) => x.id === marker);
      if (i < 0) throw new BadRequest(`marker [${marker}] not found`);
      all = all.slice(i + 1);
    }
    const max = Math.min(limit ?? MAX_LIMIT, MAX_LIMIT);
    const page = all.slice(0, max);
    const out: Record<string, unknown> = { images: page.map((i) => (detail ? detailView(req, i) : basicView(req, i))) };
    const last = page[page.length - 1];
    if (max > 0 && page.length === max && last) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (k !== 'marker' && v !== undefined) for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
      params.set('marker', last.id);
      out.images_links = [{ rel: 'next', href: `${computeBase(req)}/v2.1/images${detail ? '/detail' : ''}?${params.toString()}` }];
    }
    return out;
  };
  app.get('/v2.1/images', list(false));
  app.get('/v2.1/images/detail', list(true));

  app.get<{ Params: Params }>('/v2.1/images/:id', async (req) => {
    proxy(req, PROXY_GONE);
    return { image: detailView(req, await glance(() => images.show(authOf(req), req.params.id))) };
  });

  app.delete<{ Params: Params }>('/v2.1/images/:id', async (req, reply) => {
    proxy(req, PROXY_GONE);
    try {
      await glance(() => images.delete(authOf(req), req.params.id));
    } catch (err) {
      if (err instanceof GureumError && err.status === 403) throw new Forbidden('You are not allowed to delete the image.');
      throw err;
    }
    return reply.code(204).send();
  });

  // ---- metadata ----

  const current = async (req: FastifyRequest<{ Params: Params }>) => glance(() => images.show(authOf(req), req.params.id));

  app.get<{ Params: Params }>('/v2.1/images/:id/metadata', async (req) => {
    proxy(req, META_PROXY_GONE);
    return { metadata: (await current(req)).properties };
  });

  app.post<{ Params: Params; Body: Static<typeof MetaBody> }>('/v2.1/images/:id/metadata', { schema: { body: MetaBody } }, async (req) => {
    proxy(req, META_PROXY_GONE);
    const img = await current(req);
    const merged = { ...img.properties, ...req.body.metadata };
    await checkQuota(authOf(req), merged);
    return { metadata: (await glance(() => images.updateProperties(authOf(req), img.id, merged))).properties };
  });

  app.put<{ Params: Params; Body: Static<typeof MetaBody> }>('/v2.1/images/:id/metadata', { schema: { body: MetaBody } }, async (req) => {
    proxy(req, META_PROXY_GONE);
    const img = await current(req);
    await checkQuota(authOf(req), req.body.metadata);
    await glance(() => images.updateProperties(authOf(req), img.id, req.body.metadata));
    return { metadata: req.body.metadata };
  });

  app.get<{ Params: Params & { key: string } }>('/v2.1/images/:id/metadata/:key', async (req) => {
    proxy(req, META_PROXY_GONE);
    const props = (await current(req)).properties;
    if (!Object.prototype.hasOwnProperty.call(props, req.params.key)) throw new NotFound('The resource could not be found.');
    return { meta: { [req.params.key]: props[req.params.key] } };
  });

  app.put<{ Params: Params & { key: string }; Body: Static<typeof MetaItemBody> }>('/v2.1/images/:id/metadata/:key', { schema: { body: MetaItemBody } }, async (req) => {
    proxy(req, META_PROXY_GONE);
    const key = req.params.key;
    if (!Object.prototype.hasOwnProperty.call(req.body.meta, key)) throw new BadRequest('Request body and URI mismatch');
    const img = await current(req);
    const merged = { ...img.properties, [key]: req.body.meta[key]! };
    await checkQuota(authOf(req), merged);
    await glance(() => images.updateProperties(authOf(req), img.id, merged));
    return { meta: req.body.meta };
  });

  app.delete<{ Params: Params & { key: string } }>('/v2.1/images/:id/metadata/:key', async (req, reply) => {
    proxy(req, META_PROXY_GONE);
    const img = await current(req);
    if (!Object.prototype.hasOwnProperty.call(img.properties, req.params.key)) throw new NotFound('Invalid metadata key');
    const rest = { ...img.properties };
    delete rest[req.params.key];
    await glance(() => images.updateProperties(authOf(req), img.id, rest));
    return reply.code(204).send();
  });
}
