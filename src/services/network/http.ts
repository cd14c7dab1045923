import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { err } from './errors.ts';
import { parseBool, type RawQuery } from './query.ts';
import type { Json } from './types.ts';

/** HTTP conventions shared by every networking route: URLs, bodies, If-Match, `.json` suffixes. */

/** The public base URL of the networking API as the client reached it (for links). */
export function networkBase(req: FastifyRequest): string {
  const host = req.headers.host ?? 'localhost';
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  return `${proto}://${host}/networking`;
}

/** The request's own URL without its query string (list links are built on it). */
export function requestUrl(req: FastifyRequest): string {
  const host = req.headers.host ?? 'localhost';
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  return `${proto}://${host}${req.url.split('?')[0]}`;
}

export function rawQuery(req: FastifyRequest): RawQuery {
  return (req.query ?? {}) as RawQuery;
}

/** Neutron accepts a `.json` suffix on any URL: `/networks.json`, `/networks/<id>.json`. */
export function stripJson(id: string): string {
  return id.endsWith('.json') ? id.slice(0, -5) : id;
}
/** A route path and its `.json` twin (for collection URLs, whose last segment is static). */
export const withJson = (path: string): string[] => [path, `${path}.json`];

/** The revision the caller constrains a change to (`If-Match: revision_number=N`), if any. */
export function ifMatch(req: FastifyRequest): number | undefined {
  const h = req.headers['if-match'];
  if (h === undefined) return undefined;
  const text = (Array.isArray(h) ? h.join(',') : h).trim();
  let found: number | undefined;
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^revision_number=(\d+)$/.exec(part);
    if (!m) throw err.badRequest(`If-Match header must be of the form 'revision_number=<integer>', not '${part}'`);
    found = Number(m[1]);
  }
  return found;
}

/** Send a resource (or a list) as JSON with the given status. */
export function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).type('application/json').send(body);
}

type Obj = { [k: string]: Json };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Python-ish rendering of a value inside an error message. */
function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

interface SchemaLike { type?: string; anyOf?: SchemaLike[]; const?: unknown; properties?: Record<string, SchemaLike> }

function reasonFor(attrSchema: SchemaLike | undefined, value: unknown, e: { keyword: string; params: Record<string, unknown> }): string {
  const literals = attrSchema?.anyOf?.filter((s) => s.const !== undefined).map((s) => s.const);
  if (literals && literals.length && literals.length === (attrSchema?.anyOf?.filter((s) => s.type !== 'null').length ?? 0)) {
    return `'${show(value)}' is not in [${literals.map((l) => `'${String(l)}'`).join(', ')}]`;
  }
  switch (e.keyword) {
    case 'maxLength': return `'${show(value)}' exceeds maximum length of ${String(e.params.limit)}`;
    case 'minLength': return `'${show(value)}' is too short - must be at least ${String(e.params.limit)} characters`;
    case 'minimum': return `'${show(value)}' is too small - must be at least '${String(e.params.limit)}'`;
    case 'maximum': return `'${show(value)}' is too large - must be no larger than '${String(e.params.limit)}'`;
    case 'maxItems': return `'${show(value)}' has more than ${String(e.params.limit)} items`;
    case 'required': case 'additionalProperties':
      return `Validation of dictionary's keys failed. Provided keys: ${JSON.stringify(value)} do not match the expected keys`;
    case 'type':
      switch (e.params.type) {
        case 'boolean': return `'${show(value)}' cannot be converted to boolean`;
        case 'integer': case 'number': return `'${show(value)}' is not an integer`;
        case 'string': return `'${show(value)}' is not a valid string`;
        case 'array': return `'${show(value)}' is not a list`;
        case 'object': return `'${show(value)}' is not a dictionary`;
        default: return `'${show(value)}' is not a valid value`;
      }
    default: return `'${show(value)}' is not a valid value`;
  }
}

export interface BodySpec<S extends TSchema> {
  /** The resource key of the body ('network'). */
  member: string;
  schema: S;
  /** Attributes the resource has but this operation may not set (named in Neutron's words). */
  readOnly: readonly string[];
  mode: 'POST' | 'PUT';
}

/**
 * Booleans given as strings or 0/1 and integers given as digit strings, as Neutron's
 * convert_to_boolean and convert_to_int accept them.
 */
function coerceScalars(schema: SchemaLike, data: Obj): void {
  for (const [k, s] of Object.entries(schema.properties ?? {})) {
    const has = (t: string) => s.type === t || (s.anyOf?.some((x) => x.type === t) ?? false);
    const v = data[k];
    if (v === undefined || v === null) continue;
    if (has('boolean') && (typeof v === 'string' || typeof v === 'number')) {
      try { data[k] = parseBool(k, v); } catch { /* left as is: the schema check reports it */ }
    } else if (has('integer') && !has('string') && typeof v === 'string' && /^-?\d+$/.test(v.trim())) {
      data[k] = Number(v.trim());
    }
  }
}

/** Check one resource object against its schema; the messages are Neutron's. */
export function checkResource<S extends TSchema>(spec: BodySpec<S>, data: unknown): Obj {
  if (!isObj(data)) throw err.badRequest(`Unable to find '${spec.member}' in request body`);
  const schema = spec.schema as unknown as SchemaLike;
  coerceScalars(schema, data);
  if (Value.Check(spec.schema, data)) return data;
  const errors = [...Value.Errors(spec.schema, data)] as { keyword: string; instancePath: string; params: Record<string, unknown> }[];
  const extra = errors.find((e) => e.keyword === 'additionalProperties' && e.instancePath === '');
  if (extra) {
    const names = (extra.params.additionalProperties as string[] | undefined) ?? [];
    const ro = names.filter((n) => spec.readOnly.includes(n));
    if (ro.length) {
      throw err.badRequest(spec.mode === 'POST' ? `Attribute '${ro[0]}' not allowed in POST` : `Cannot update read-only attribute ${ro[0]}`);
    }
    throw err.badRequest(`Unrecognized attribute(s) '${names.join(', ')}'`);
  }
  const missing = errors.find((e) => e.keyword === 'required' && e.instancePath === '');
  if (missing) {
    const names = (missing.params.requiredProperties as string[] | undefined) ?? [];
    throw err.badRequest(`Failed to parse request. Required attribute '${names[0] ?? '?'}' not specified`);
  }
  const specific = errors.find((e) => e.keyword !== 'anyOf' && e.keyword !== 'boolean' && e.keyword !== 'const' && !(e.keyword === 'type' && e.params.type === 'null'))
    ?? errors[0]!;
  const attr = specific.instancePath.split('/')[1] ?? spec.member;
  throw err.badAttr(attr, reasonFor(schema.properties?.[attr], data[attr], specific));
}

/**
 * The resource objects of a create: `{"network": {...}}`, or a bulk create
 * `{"networks": [{...}, ...]}` (all or nothing, as Neutron's bulk API).
 */
export function createBodies<S extends TSchema>(spec: BodySpec<S>, collection: string, body: unknown): { items: Obj[]; bulk: boolean } {
  if (isObj(body) && Array.isArray(body[collection])) {
    const list = body[collection] as unknown[];
    if (list.length === 0) throw err.badRequest(`Resources required`);
    return { items: list.map((x) => checkResource(spec, isObj(x) && isObj(x[spec.member]) ? x[spec.member] : x)), bulk: true };
  }
  if (!isObj(body) || !(spec.member in body)) throw err.badRequest(`Unable to find '${spec.member}' in request body`);
  return { items: [checkResource(spec, body[spec.member])], bulk: false };
}

export function updateBody<S extends TSchema>(spec: BodySpec<S>, body: unknown): Obj {
  if (!isObj(body) || !(spec.member in body)) throw err.badRequest(`Unable to find '${spec.member}' in request body`);
  return checkResource(spec, body[spec.member]);
}

/** Attributes given as tenant_id and/or project_id: one project, or a 400. */
export function requestedProject(data: Obj): string | undefined {
  const p = data.project_id;
  const t = data.tenant_id;
  if (typeof p === 'string' && typeof t === 'string' && p !== t) throw err.badRequest(`'project_id' and 'tenant_id' do not match`);
  return typeof p === 'string' ? p : typeof t === 'string' ? t : undefined;
}

