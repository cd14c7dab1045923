import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuthContext } from '../../api/context.ts';
import { normalizeError, type ErrorFormatter } from '../../api/errors.ts';
import type { ServiceMount } from '../../api/server.ts';
import { BadRequest, GureumError, HTTP_TITLES, NotFound, Unauthorized } from '../../common/errors.ts';
import { metadefRoutes } from './metadefs/routes.ts';
import { MetadefService } from './metadefs/service.ts';
import { imageSchema, imagesSchema, memberSchema, membersSchema } from './schemas.ts';
import type { ImageService, PatchOp } from './service.ts';
import {
  BASE_FIELDS, MEMBER_STATUSES, SORT_KEYS, VISIBILITIES,
  type ImageCreate, type ImageListQuery, type ImageMember, type ImageRecord, type MemberStatus, type SortKey, type Visibility,
} from './types.ts';

/** Glance v2, mounted under /image (the catalog publishes <base>/image). */

const TITLES: Record<number, string> = { ...HTTP_TITLES, 410: 'Gone', 416: 'Requested Range Not Satisfiable' };
const PATCH_TYPES = /^application\/openstack-images-v2\.[01]-json-patch$/;
const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 1000;

/** The API versions Glance advertises; the newest is CURRENT. */
const VERSIONS = ['2.16', '2.15', '2.14', '2.13', '2.12', '2.11', '2.10', '2.9', '2.8', '2.7', '2.6', '2.5', '2.4', '2.3', '2.2', '2.1', '2.0'];

function baseUrl(req: FastifyRequest): string {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol;
  return `${proto}://${req.headers.host ?? 'localhost'}/image`;
}
function versionsDoc(req: FastifyRequest) {
  const b = baseUrl(req);
  return { versions: VERSIONS.map((v, i) => ({ id: `v${v}`, status: i === 0 ? 'CURRENT' : 'SUPPORTED', links: [{ rel: 'self', href: `${b}/v2/` }] })) };
}

/** webob's error page, which is what Glance sends unless the client asks for JSON. */
function webobHtml(status: number, message: string): string {
  const title = `${status} ${TITLES[status] ?? 'Error'}`;
  const esc = message.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  return `<html>\n <head>\n  <title>${title}</title>\n </head>\n <body>\n  <h1>${title}</h1>\n  ${esc}<br /><br />\n\n\n\n </body>\n</html>`;
}
/** webob's JSON error body (Accept: application/json). */
export const glanceError: ErrorFormatter = (status, message) => ({ message, code: `${status} ${TITLES[status] ?? 'Error'}`, title: TITLES[status] ?? 'Error' });

function wantsJson(req: FastifyRequest): boolean {
  const accept = String(req.headers.accept ?? '');
  return accept.includes('application/json') && !accept.includes('text/html') && !accept.includes('*/*');
}

function sendGlanceError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const n = normalizeError(err);
  if (n.status >= 500) req.log.error({ err }, 'request failed');
  else req.log.debug({ status: n.status, msg: n.message }, 'request refused');
  if (n.headers) void reply.headers(n.headers);
  reply.code(n.status);
  if (wantsJson(req)) return reply.type('application/json').send(glanceError(n.status, n.message));
  return reply.type('text/html; charset=UTF-8').send(webobHtml(n.status, n.message));
}

const ts = (iso: string): string => iso.replace(/\.\d+Z$/, 'Z');

export function renderImage(img: ImageRecord): Record<string, unknown> {
  return {
    ...img.properties,
    id: img.id, name: img.name, status: img.status, visibility: img.visibility, protected: img.protected, os_hidden: img.os_hidden,
    checksum: img.checksum, os_hash_algo: img.os_hash_algo, os_hash_value: img.os_hash_value, owner: img.owner, size: img.size,
    virtual_size: img.virtual_size, min_disk: img.min_disk, min_ram: img.min_ram, container_format: img.container_format,
    disk_format: img.disk_format, created_at: ts(img.created_at), updated_at: ts(img.updated_at), tags: img.tags,
    self: `/v2/images/${img.id}`, file: `/v2/images/${img.id}/file`, schema: '/v2/schemas/image',
  };
}
const renderMember = (m: ImageMember) => ({
  image_id: m.image_id, member_id: m.member_id, status: m.status, created_at: ts(m.created_at), updated_at: ts(m.updated_at), schema: '/v2/schemas/member',
});

// ---- request bodies ----
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const ImageCreateBody = Type.Object({
  id: Type.Optional(Type.String()),
  name: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
  visibility: Type.Optional(Type.String()),
  protected: Type.Optional(Type.Boolean()),
  os_hidden: Type.Optional(Type.Boolean()),
  owner: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
  min_disk: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647 })),
  min_ram: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647 })),
  container_format: Type.Optional(Nullable(Type.String())),
  disk_format: Type.Optional(Nullable(Type.String())),
  tags: Type.Optional(Type.Array(Type.String({ maxLength: 255 }))),
}, { additionalProperties: true });
const MemberCreateBody = Type.Object({ member: Type.String({ minLength: 1, maxLength: 255 }) });
const MemberUpdateBody = Type.Object({ status: Type.String() });

const CREATE_KEYS = new Set(['id', 'name', 'visibility', 'protected', 'os_hidden', 'owner', 'min_disk', 'min_ram', 'container_format', 'disk_format', 'tags']);

/** The create body's custom properties; standard computed fields are refused by the service. */
function createFields(body: Static<typeof ImageCreateBody>): ImageCreate {
  const properties: Record<string, string> = {};
  const rec = body as Record<string, unknown>;
  for (const [k, v] of Object.entries(rec)) {
    if (CREATE_KEYS.has(k)) continue;
    properties[k] = v as string; // type-checked by the service (400 when not a string)
  }
  return {
    id: body.id, name: body.name, visibility: body.visibility as Visibility | undefined, protected: body.protected, os_hidden: body.os_hidden,
    owner: body.owner, min_disk: body.min_disk, min_ram: body.min_ram, container_format: body.container_format,
    disk_format: body.disk_format, tags: body.tags, properties,
  };
}

/** Both JSON-patch dialects: v2.1 ({op, path, value}) and v2.0 ({"replace": "/path", value}). */
function patchOps(body: unknown): PatchOp[] {
  if (!Array.isArray(body)) throw new BadRequest('Request body must be a JSON array of operation objects.');
  return body.map((raw: unknown): PatchOp => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new BadRequest('Operations must be JSON objects.');
    const o = raw as Record<string, unknown>;
    let op: unknown = o.op; let path: unknown = o.path;
    if (op === undefined) {
      const k = ['add', 'replace', 'remove'].filter((x) => x in o);
      if (k.length !== 1) throw new BadRequest('Operation objects must contain exactly one of "add", "remove", or "replace".');
      op = k[0]; path = o[k[0]!];
    }
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw new BadRequest(`Invalid operation: '${String(op)}'. Supported: add, replace, remove.`);
    if (typeof path !== 'string') throw new BadRequest('Unable to find \'path\' in JSON Schema change');
    const out: PatchOp = { op, path };
    if ('value' in o) out.value = o.value;
    else if (op !== 'remove') throw new BadRequest(`Operation "${op}" requires a member named "value".`);
    return out;
  });
}

type Query = Record<string, string | string[] | undefined>;
const one = (q: Query, k: string): string | undefined => { const v = q[k]; return Array.isArray(v) ? v[v.length - 1] : v; };
const many = (q: Query, k: string): string[] => { const v = q[k]; return v === undefined ? [] : Array.isArray(v) ? v : [v]; };
const intParam = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new BadRequest(`Invalid ${name}: ${v}`);
  return n;
};
const LIST_RESERVED = new Set(['limit', 'marker', 'sort_key', 'sort_dir', 'sort', 'visibility', 'member_status', 'os_hidden', 'tag', 'size_min', 'size_max', 'created_at', 'updated_at']);
const FILTERABLE = new Set<string>(BASE_FIELDS);

/** Glance's list parameters: paging, both sort syntaxes, filters (with `in:` lists and time comparisons). */
export function parseListQuery(q: Query): ImageListQuery {
  const limit = intParam('limit', one(q, 'limit')) ?? DEFAULT_LIMIT;
  const sort: ImageListQuery['sort'] = [];
  const sortKeyOk = (k: string): SortKey => {
    if (!(SORT_KEYS as readonly string[]).includes(k)) throw new BadRequest(`Invalid sort key: ${k}. It should be one of the following: ${SORT_KEYS.join(', ')}.`);
    return k as SortKey;
  };
  const dirOk = (d: string): 'asc' | 'desc' => {
    if (d !== 'asc' && d !== 'desc') throw new BadRequest(`Invalid sort direction: ${d}`);
    return d;
  };
  const keysOld = many(q, 'sort_key').flatMap((s) => s.split(','));
  const dirsOld = many(q, 'sort_dir').flatMap((s) => s.split(','));
  const sortNew = one(q, 'sort');
  if (sortNew !== undefined) {
    if (keysOld.length || dirsOld.length) throw new BadRequest('The \'sort\' parameter cannot be combined with \'sort_key\' or \'sort_dir\'.');
    for (const part of sortNew.split(',')) {
      const [k, d] = part.trim().split(':');
      sort.push({ key: sortKeyOk(k!.trim()), dir: dirOk((d ?? 'desc').trim()) });
    }
  } else {
    if (dirsOld.length > 1 && dirsOld.length !== keysOld.length) throw new BadRequest('Number of sort dirs does not match the number of sort keys.');
    keysOld.forEach((k, i) => sort.push({ key: sortKeyOk(k), dir: dirOk(dirsOld[i] ?? dirsOld[0] ?? 'desc') }));
    if (!keysOld.length && dirsOld.length) sort.push({ key: 'created_at', dir: dirOk(dirsOld[0]!) });
  }
  const vis = one(q, 'visibility');
  if (vis !== undefined && vis !== 'all' && !(VISIBILITIES as readonly string[]).includes(vis)) throw new BadRequest(`Invalid visibility value: ${vis}`);
  const ms = one(q, 'member_status') ?? 'accepted';
  if (ms !== 'all' && !(MEMBER_STATUSES as readonly string[]).includes(ms)) throw new BadRequest(`Invalid status value: ${ms}`);
  const hidden = one(q, 'os_hidden');
  let osHidden = false;
  if (hidden !== undefined) {
    const h = hidden.toLowerCase();
    if (!['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(h)) throw new BadRequest(`Invalid value for os_hidden: ${hidden}`);
    osHidden = ['true', '1', 'yes', 'on'].includes(h);
  }
  const fields: Record<string, string[]> = {};
  const properties: Record<string, string> = {};
  const times: ImageListQuery['times'] = [];
  for (const t of ['created_at', 'updated_at'] as const) {
    for (const raw of many(q, t)) {
      const m = /^(gt|gte|lt|lte|eq|neq):(.+)$/.exec(raw);
      if (!m || Number.isNaN(Date.parse(m[2]!))) throw new BadRequest(`Invalid filter value ${raw} for ${t}: use <op>:<ISO 8601 time>.`);
      times.push({ field: t, op: m[1] as ImageListQuery['times'][number]['op'], value: new Date(m[2]!).toISOString() });
    }
  }
  for (const [k, raw] of Object.entries(q)) {
    if (LIST_RESERVED.has(k) || raw === undefined) continue;
    const v = Array.isArray(raw) ? raw[raw.length - 1]! : raw;
    if (FILTERABLE.has(k)) {
      const values = v.startsWith('in:') ? v.slice(3).split(',').map((x) => x.trim().replace(/^"(.*)"$/, '$1')) : [v];
      fields[k] = k === 'protected' ? values.map((x) => String(x.toLowerCase() === 'true')) : values;
    } else {
      properties[k] = v;
    }
  }
  return {
    limit: Math.min(limit, MAX_LIMIT), marker: one(q, 'marker'), sort: sort.length ? sort : [{ key: 'created_at', dir: 'desc' }],
    visibility: vis as Visibility | 'all' | undefined, memberStatus: ms as MemberStatus | 'all', osHidden, tags: many(q, 'tag'),
    sizeMin: intParam('size_min', one(q, 'size_min')), sizeMax: intParam('size_max', one(q, 'size_max')), fields, times, properties,
  };
}

/** The `next` link: the same query with the marker moved to the page's last image. */
function nextLink(q: Query, lastId: string): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (k !== 'marker' && v !== undefined) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  p.set('marker', lastId);
  return `/v2/images?${p.toString()}`;
}

/** `Range: bytes=a-b | a- | -n` (one range only). */
function parseRange(h: string | undefined): { start?: number; end?: number; suffix?: number } | undefined {
  if (!h) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(h);
  if (!m || (m[1] === '' && m[2] === '')) throw new GureumError(416, `Invalid Range header: ${h}`);
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  const end = m[2] === '' ? undefined : Number(m[2]);
  if (end !== undefined && end < start) throw new GureumError(416, `Invalid Range header: ${h}`);
  return { start, end };
}

function mediaType(req: FastifyRequest): string {
  return String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

const auth = (req: FastifyRequest): AuthContext => {
  if (!req.ctx.auth) throw new Unauthorized();
  return req.ctx.auth;
};

type IdParams = { Params: { id: string } };

function imageRoutes(app: FastifyInstance, images: ImageService, metadefs: MetadefService): void {
  app.setErrorHandler((err, req, reply) => sendGlanceError(err, req, reply));
  // Upload bodies reach the handler as the raw request stream: never buffered, no body limit.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => { done(null, payload); });
  app.addContentTypeParser(PATCH_TYPES, { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    try {
      done(null, JSON.parse(text, (k, v: unknown) => (k === '__proto__' || k === 'constructor' ? undefined : v)));
    } catch {
      done(new BadRequest('Malformed request body: the body is not valid JSON.'), undefined);
    }
  });

  app.get('/', { config: { auth: false } }, async (req, reply) => reply.code(300).send(versionsDoc(req)));
  app.get('/versions', { config: { auth: false } }, async (req) => versionsDoc(req));

  app.get('/v2/schemas/image', async () => imageSchema);
  app.get('/v2/schemas/images', async () => imagesSchema);
  app.get('/v2/schemas/member', async () => memberSchema);
  app.get('/v2/schemas/members', async () => membersSchema);
  app.get('/v2/info/import', async () => ({ 'import-methods': { description: 'Import methods available.', type: 'array', value: [] } }));

  app.post<{ Body: Static<typeof ImageCreateBody> }>('/v2/images', { schema: { body: ImageCreateBody } }, async (req, reply) => {
    const img = await images.createImage(auth(req), createFields(req.body ?? {}));
    return reply.code(201).header('Location', `${baseUrl(req)}/v2/images/${img.id}`).send(renderImage(img));
  });

  app.get<{ Querystring: Query }>('/v2/images', async (req) => {
    // The router ignores trailing slashes; Glance has no /v2/images/ (an empty image id is a 404).
    if (req.url.split('?')[0]!.endsWith('/')) throw new NotFound('No image found with ID ');
    const q = req.query ?? {};
    const { images: list, more } = await images.listImages(auth(req), parseListQuery(q));
    const out: Record<string, unknown> = { images: list.map(renderImage), first: '/v2/images', schema: '/v2/schemas/images' };
    if (more && list.length) out.next = nextLink(q, list[list.length - 1]!.id);
    return out;
  });

  app.get<IdParams>('/v2/images/:id', async (req) => renderImage(await images.getImage(auth(req), req.params.id)));

  app.patch<IdParams & { Body: unknown }>('/v2/images/:id', async (req) => {
    if (!PATCH_TYPES.test(mediaType(req))) {
      throw new GureumError(415, `Unsupported Content-Type: use application/openstack-images-v2.1-json-patch.`);
    }
    const img = await images.updateImage(auth(req), req.params.id, patchOps(req.body));
    return renderImage(img);
  });

  app.delete<IdParams>('/v2/images/:id', async (req, reply) => {
    await images.deleteImage(auth(req), req.params.id);
    return reply.code(204).send();
  });

  app.put<IdParams>('/v2/images/:id/file', { bodyLimit: Number.MAX_SAFE_INTEGER }, async (req, reply) => {
    const stream = req.body as IncomingMessage | undefined;
    if (mediaType(req) !== 'application/octet-stream' || !stream || typeof (stream as { pipe?: unknown }).pipe !== 'function') {
      throw new GureumError(415, 'Unsupported Content-Type: image data must be sent as application/octet-stream.');
    }
    const len = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    await images.uploadImage(auth(req), req.params.id, stream, { contentLength: Number.isFinite(len) ? len : undefined });
    return reply.code(204).send();
  });

  app.get<IdParams>('/v2/images/:id/file', async (req, reply) => {
    const range = parseRange(req.headers.range);
    const d = await images.download(auth(req), req.params.id, range);
    if (!d.stream) return reply.code(204).send();
    const size = d.image.size ?? 0;
    reply.header('Content-Type', 'application/octet-stream');
    if (d.range) {
      reply.code(206).header('Content-Range', `bytes ${d.range.start}-${d.range.end}/${size}`).header('Content-Length', String(d.range.end - d.range.start + 1));
    } else {
      reply.header('Content-Length', String(size));
      if (d.image.checksum) reply.header('Content-MD5', d.image.checksum);
    }
    return reply.send(d.stream);
  });

  app.post<IdParams>('/v2/images/:id/actions/deactivate', async (req, reply) => {
    await images.deactivate(auth(req), req.params.id);
    return reply.code(204).send();
  });
  app.post<IdParams>('/v2/images/:id/actions/reactivate', async (req, reply) => {
    await images.reactivate(auth(req), req.params.id);
    return reply.code(204).send();
  });

  app.put<{ Params: { id: string; tag: string } }>('/v2/images/:id/tags/:tag', async (req, reply) => {
    await images.addTag(auth(req), req.params.id, req.params.tag);
    return reply.code(204).send();
  });
  app.delete<{ Params: { id: string; tag: string } }>('/v2/images/:id/tags/:tag', async (req, reply) => {
    await images.deleteTag(auth(req), req.params.id, req.params.tag);
    return reply.code(204).send();
  });

  app.get<IdParams>('/v2/images/:id/members', async (req) => ({
    members: (await images.listMembers(auth(req), req.params.id)).map(renderMember), schema: '/v2/schemas/members',
  }));
  app.post<IdParams & { Body: Static<typeof MemberCreateBody> }>('/v2/images/:id/members', { schema: { body: MemberCreateBody } }, async (req) =>
    renderMember(await images.addMember(auth(req), req.params.id, req.body.member)));
  app.get<{ Params: { id: string; member: string } }>('/v2/images/:id/members/:member', async (req) =>
    renderMember(await images.getMember(auth(req), req.params.id, req.params.member)));
  app.put<{ Params: { id: string; member: string }; Body: Static<typeof MemberUpdateBody> }>('/v2/images/:id/members/:member', { schema: { body: MemberUpdateBody } }, async (req) =>
    renderMember(await images.updateMember(auth(req), req.params.id, req.params.member, req.body.status)));
  app.delete<{ Params: { id: string; member: string } }>('/v2/images/:id/members/:member', async (req, reply) => {
    await images.deleteMember(auth(req), req.params.id, req.params.member);
    return reply.code(204).send();
  });

  metadefRoutes(app, metadefs);
}

/** The image API; the metadefs catalog shares its database unless given its own service. */
export function imageMount(images: ImageService, metadefs: MetadefService = new MetadefService(images.db)): ServiceMount {
  return {
    prefix: '/image',
    // Used by the shared server for requests that match no image route (404s).
    formatError: glanceError,
    routes: async (app: FastifyInstance) => {
      // A child scope so the image API has its own error handler (webob's HTML/JSON
      // error bodies) and its own body parsers (octet-stream streams, JSON patch).
      await app.register(async (scope) => { imageRoutes(scope, images, metadefs); });
    },
  };
}
