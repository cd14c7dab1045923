import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { compare, negotiate, parseMicroversion, type Microversion } from '../../api/microversion.ts';
import type { AuthContext } from '../../api/context.ts';
import { CinderError, err } from './errors.ts';
import { caller } from './policy.ts';

/**
 * Cinder v3 HTTP conventions: microversions (`OpenStack-API-Version: volume 3.x`), the
 * two URL forms (`/v3/{project_id}/volumes`, and `/v3/volumes` as 3.67 allows), bodies
 * checked against TypeBox schemas with Cinder's wording, links and paging.
 */

export const MIN_VERSION: Microversion = { major: 3, minor: 0 };
/** The documented maximum (docs/block-storage.md). */
export const MAX_VERSION: Microversion = { major: 3, minor: 70 };

declare module 'fastify' {
  interface FastifyRequest { volumeVersion: Microversion }
}

export function installMicroversions(app: FastifyInstance): void {
  app.decorateRequest('volumeVersion', null as unknown as Microversion);
  app.addHook('onRequest', async (req, reply) => {
    req.volumeVersion = MIN_VERSION;
    void reply.header('Vary', 'OpenStack-API-Version');
    req.volumeVersion = negotiate(req.headers, 'volume', MIN_VERSION, MAX_VERSION);
    void reply.header('OpenStack-API-Version', `volume ${req.volumeVersion.major}.${req.volumeVersion.minor}`);
  });
}

/** True when the negotiated microversion is at least `v` ("3.27"). */
export function atLeast(req: FastifyRequest, v: string): boolean {
  return compare(req.volumeVersion, parseMicroversion(v)!) >= 0;
}
export function requireVersion(req: FastifyRequest, v: string): void {
  if (!atLeast(req, v)) throw Object.assign(new Error(`API version ${req.volumeVersion.major}.${req.volumeVersion.minor} is not supported on this method.`), { statusCode: 404 });
}

/** The public base URL of the volume API as the client reached it. */
export function volumeBase(req: FastifyRequest): string {
  const host = req.headers.host ?? 'localhost';
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  return `${proto}://${host}/volume`;
}

export function send(reply: FastifyReply, status: number, body?: unknown): FastifyReply {
  if (body === undefined) return reply.code(status).send();
  return reply.code(status).type('application/json').send(body);
}

/**
 * The caller of a request under `/v3/{project_id}/...`: the URL's project must be the
 * token's (Cinder's "Malformed request url"), admins may name any.
 */
export function who(req: FastifyRequest): AuthContext {
  const auth = caller(req.ctx.auth);
  const p = (req.params as { project_id?: string }).project_id;
  if (p !== undefined && p !== auth.projectId && !auth.roles.includes('admin')) throw err.badRequest('Malformed request url');
  return auth;
}

type Method = 'get' | 'post' | 'put' | 'delete';
/** Register a route in both URL forms: /v3/<path> and /v3/:project_id/<path>. */
export function v3(app: FastifyInstance) {
  const add = (m: Method) => (path: string, handler: RouteHandlerMethod) => {
    app[m](`/v3${path}`, handler);
    app[m](`/v3/:project_id${path}`, handler);
  };
  return { get: add('get'), post: add('post'), put: add('put'), delete: add('delete') };
}

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The member object of a body ({"volume": {...}}), or Cinder's 400. */
export function member(body: unknown, key: string): Obj {
  if (!isObj(body) || !(key in body)) throw err.missingBody(key);
  const v = body[key];
  if (!isObj(v)) throw err.badField(key, v, `${JSON.stringify(v)} is not of type 'object'`);
  return v;
}

/** Check `data` against a schema; 400 in Cinder's jsonschema wording otherwise. */
export function check<S extends TSchema>(schema: S, data: unknown, where: string): Static<S> {
  if (Value.Check(schema, data)) return data as Static<S>;
  const all = [...Value.Errors(schema, data)];
  const e = all.find((x) => x.keyword === 'additionalProperties') ?? all.find((x) => x.keyword !== 'anyOf' && x.keyword !== 'boolean') ?? all[0]!;
  const field = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || where;
  const value = e.instancePath === '' ? data : e.instancePath.split('/').slice(1).reduce<unknown>((o, k) => (isObj(o) ? o[k] : undefined), data);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const names = (p.additionalProperties as string[] | undefined) ?? [];
      throw err.badField(where, data, `Additional properties are not allowed (${names.map((n) => `'${n}'`).join(', ')} ${names.length > 1 ? 'were' : 'was'} unexpected)`);
    }
    case 'required': throw err.badField(where, data, `'${String((p.requiredProperties as string[] | undefined)?.[0] ?? '')}' is a required property`);
    case 'maxLength': throw err.badField(field, value, `${JSON.stringify(value)} is too long`);
    case 'minLength': throw err.badField(field, value, `${JSON.stringify(value)} is too short`);
    case 'minimum': throw err.badField(field, value, `${JSON.stringify(value)} is less than the minimum of ${String(p.limit)}`);
    case 'maximum': throw err.badField(field, value, `${JSON.stringify(value)} is greater than the maximum of ${String(p.limit)}`);
    case 'pattern': throw err.badField(field, value, `${JSON.stringify(value)} does not match '${String(p.pattern)}'`);
    default: throw err.badField(field, value, `${JSON.stringify(value)} is not of type '${String(p.type ?? 'valid')}'`);
  }
}

/** Booleans as Cinder's strutils.bool_from_string(strict=True) reads them. */
export function parseBool(v: unknown, name: string): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(s)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(s)) return false;
  throw err.badField(name, v, `${JSON.stringify(v)} is not a valid boolean value`);
}
export function optBool(v: unknown, name: string): boolean | undefined {
  return v === undefined || v === null || v === '' ? undefined : parseBool(v, name);
}

/** A size in GiB: an integer or a digit string, at least `min`. */
export function parseSize(v: unknown, name = 'size', min = 1): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw err.badField(name, v, `${JSON.stringify(v)} is not of type 'integer', 'string'`);
  if (n < min) throw err.badField(name, v, `${n} is less than the minimum of ${min}`);
  if (n > 2147483647) throw err.badField(name, v, `${n} is greater than the maximum of 2147483647`);
  return n;
}

/** metadata: {string: string}, keys 1..255, values up to 255 (Cinder's metadata schema). */
export function parseMetadata(v: unknown, name = 'metadata'): Record<string, string> {
  if (!isObj(v)) throw err.badField(name, v, `${JSON.stringify(v)} is not of type 'object'`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (k.length === 0 || k.length > 255) throw err.badField(name, v, `'${k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. /]{1,255}$'`);
    if (typeof val !== 'string') throw err.badField(`${name}.${k}`, val, `${JSON.stringify(val)} is not of type 'string'`);
    if (val.length > 255) throw err.badField(`${name}.${k}`, val, `${JSON.stringify(val)} is too long`);
    out[k] = val;
  }
  return out;
}

export interface ListQuery {
  limit?: number; marker?: string; sort: { key: string; dir: 'asc' | 'desc' }[]; offset?: number;
  filters: Record<string, string>; allTenants: boolean; projectFilter?: string;
}

/**
 * Cinder's list parameters: limit, marker, offset, sort=key:dir,... (or sort_key/sort_dir),
 * all_tenants, project_id (admin, with all_tenants), the rest are filters.
 */
export function listQuery(req: FastifyRequest, sortable: string[]): ListQuery {
  const q = { ...(req.query as Record<string, string | string[]>) };
  const one = (k: string): string | undefined => { const v = q[k]; delete q[k]; return Array.isArray(v) ? v[v.length - 1] : v; };
  const out: ListQuery = { sort: [], filters: {}, allTenants: false };
  const limit = one('limit');
  if (limit !== undefined) {
    if (!/^\d+$/.test(limit)) throw err.invalidInput(`limit must be an integer`);
    out.limit = Number(limit);
  }
  const offset = one('offset');
  if (offset !== undefined) {
    if (!/^\d+$/.test(offset)) throw err.invalidInput(`offset must be an integer`);
    out.offset = Number(offset);
  }
  const marker = one('marker');
  if (marker) out.marker = marker;
  const sort = one('sort');
  const sortKey = one('sort_key');
  const sortDir = one('sort_dir');
  if (sort && (sortKey || sortDir)) throw err.invalidInput(`The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.`);
  const pairs = sort ? sort.split(',').map((s) => s.trim().split(':')) : sortKey ? [[sortKey, sortDir ?? 'desc']] : [];
  for (const [given, dir] of pairs) {
    // Cinder's v1 names still work as sort keys.
    const key = given === 'display_name' ? 'name' : given === 'display_description' ? 'description' : given;
    const d = (dir ?? 'desc').toLowerCase();
    if (!key || !sortable.includes(key)) throw err.invalidInput(`Invalid sort key ${String(key)}`);
    if (d !== 'asc' && d !== 'desc') throw err.invalidInput(`Unknown sort direction, must be 'desc' or 'asc'`);
    out.sort.push({ key, dir: d });
  }
  const at = one('all_tenants');
  if (at !== undefined) out.allTenants = at === '' || parseBool(at, 'all_tenants');
  const pf = one('project_id');
  if (pf) out.projectFilter = pf;
  one('with_count');
  for (const [k, v] of Object.entries(q)) out.filters[k] = Array.isArray(v) ? v[v.length - 1]! : String(v);
  return out;
}

/** Sort (default created_at desc, then id), apply marker/offset/limit; `more` when a next page exists. */
export function page<T extends { id: string }>(items: T[], q: ListQuery, maxLimit = 1000): { items: T[]; more: boolean } {
  const sort = q.sort.length ? q.sort : [{ key: 'created_at', dir: 'desc' as const }];
  const cmp = (a: T, b: T): number => {
    for (const { key, dir } of [...sort, { key: 'id', dir: sort[0]!.dir }]) {
      const x = (a as Record<string, unknown>)[key];
      const y = (b as Record<string, unknown>)[key];
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x ?? '').localeCompare(String(y ?? ''));
      if (c !== 0) return dir === 'asc' ? c : -c;
    }
    return 0;
  };
  const sorted = [...items].sort(cmp);
  let start = q.offset ?? 0;
  if (q.marker !== undefined) {
    const i = sorted.findIndex((x) => x.id === q.marker);
    if (i < 0) throw new CinderError(404, `Marker ${q.marker} could not be found.`, 'MarkerNotFound');
    start = i + 1;
  }
  const limit = Math.min(q.limit ?? maxLimit, maxLimit);
  const slice = sorted.slice(start, start + limit);
  // Cinder links a next page whenever a page is full (the next one may be empty).
  if (limit === 0) return { items: [], more: false };
  return { items: slice, more: start + limit < sorted.length || (q.limit !== undefined && slice.length === limit) };
}

/** The `<collection>_links` next link of a page that has more. */
export function nextLink(req: FastifyRequest, collection: string, lastId: string, q: ListQuery): { href: string; rel: string }[] {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query as Record<string, string>)) if (k !== 'marker' && k !== 'offset') params.set(k, String(v));
  params.set('marker', lastId);
  if (q.limit !== undefined) params.set('limit', String(q.limit));
  const host = req.headers.host ?? 'localhost';
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  return [{ href: `${proto}://${host}${req.url.split('?')[0]}?${params.toString()}`, rel: 'next' }];
}

export function links(req: FastifyRequest, projectId: string, collection: string, id: string) {
  const base = volumeBase(req);
  return [{ href: `${base}/v3/${projectId}/${collection}/${id}`, rel: 'self' }, { href: `${base}/${projectId}/${collection}/${id}`, rel: 'bookmark' }];
}

/** An optional string attribute (name, description, ...) of at most 255 characters. */
export function optText(v: unknown, k: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > 255) throw err.badField(k, v, `${JSON.stringify(v)} is not of type 'string'`);
  return v;
}

/** Metadata after a set (merged, or replacing everything). */
export const mergeMetadata = (cur: Record<string, string>, meta: Record<string, string>, replace: boolean): Record<string, string> =>
  (replace ? meta : { ...cur, ...meta });

/** Metadata without `key`; `notFound` when it has no such key. */
export function withoutKey(cur: Record<string, string>, key: string, notFound: () => Error): Record<string, string> {
  if (!(key in cur)) throw notFound();
  const next = { ...cur };
  delete next[key];
  return next;
}

export interface MetadataOps {
  get(req: FastifyRequest, id: string): Promise<Record<string, string>>;
  set(req: FastifyRequest, id: string, meta: Record<string, string>, replace: boolean): Promise<Record<string, string>>;
  remove(req: FastifyRequest, id: string, key: string): Promise<void>;
  notFound(id: string, key: string): Error;
}

/** `<base>/:id/metadata[/:key]`: show, set (POST merges, PUT replaces), one key's show/set/delete. */
export function metadataRoutes(app: FastifyInstance, base: string, ops: MetadataOps): void {
  const r = v3(app);
  const p = (req: FastifyRequest) => req.params as { id: string; key: string };
  r.get(`${base}/:id/metadata`, async (req, reply) => send(reply, 200, { metadata: await ops.get(req, p(req).id) }));
  for (const [method, replace] of [['post', false], ['put', true]] as const) {
    r[method](`${base}/:id/metadata`, async (req, reply) => send(reply, 200, { metadata: await ops.set(req, p(req).id, parseMetadata(member(req.body, 'metadata')), replace) }));
  }
  r.get(`${base}/:id/metadata/:key`, async (req, reply) => {
    const { id, key } = p(req);
    const meta = await ops.get(req, id);
    if (!(key in meta)) throw ops.notFound(id, key);
    return send(reply, 200, { meta: { [key]: meta[key]! } });
  });
  r.put(`${base}/:id/metadata/:key`, async (req, reply) => {
    const { id, key } = p(req);
    const meta = parseMetadata(member(req.body, 'meta'), 'meta');
    if (Object.keys(meta).length !== 1 || !(key in meta)) throw err.badRequest('Request body and URI mismatch');
    await ops.set(req, id, meta, false);
    return send(reply, 200, { meta });
  });
  r.delete(`${base}/:id/metadata/:key`, async (req, reply) => { await ops.remove(req, p(req).id, p(req).key); return send(reply, 200); });
}
