import { err } from './errors.ts';
import type { Json, View } from './types.ts';

/**
 * Neutron's list semantics over resource views, the same for every collection: filters
 * on any attribute (a repeated key is an OR, different keys AND), tag filters, `fields`
 * projection, `sort_key`/`sort_dir` pairs (with id as the final key), and limit/marker/
 * page_reverse paging with `<collection>_links`. Unknown filter or sort attributes are a
 * 400, as with Neutron's filter validation.
 */

/** How an attribute filters and sorts: scalars compare by value, lists by membership. */
export type AttrType = 'str' | 'bool' | 'int' | 'list' | 'obj' | 'custom';

export interface ResourceSpec {
  member: string;
  collection: string;
  attrs: Record<string, AttrType>;
  /** Matchers for attributes of type 'custom' (e.g. a port's fixed_ips). */
  custom?: Record<string, (view: View, values: string[]) => boolean>;
  /** The error for a paging marker that names no visible resource. */
  notFound: (id: string) => Error;
}

export type RawQuery = Record<string, string | string[] | undefined>;

export interface ListQuery {
  filters: Map<string, string[]>;
  fields: string[];
  sorts: { key: string; asc: boolean }[];
  limit?: number;
  marker?: string;
  pageReverse: boolean;
  tags: { all: string[]; any: string[]; notAll: string[]; notAny: string[] };
}

const RESERVED = new Set(['fields', 'sort_key', 'sort_dir', 'limit', 'marker', 'page_reverse', 'tags', 'tags-any', 'not-tags', 'not-tags-any']);

export function values(q: RawQuery, key: string): string[] {
  const v = q[key];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

const TRUE = new Set(['1', 't', 'true', 'on', 'y', 'yes']);
const FALSE = new Set(['0', 'f', 'false', 'off', 'n', 'no']);
export function parseBool(attr: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v).toLowerCase();
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  throw err.badAttr(attr, `'${String(v)}' cannot be converted to boolean`);
}

function parseInteger(attr: string, v: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw err.badAttr(attr, `'${v}' is not an integer`);
  return Number(v);
}

/** The `fields` of a show or list request (empty: every attribute). */
export function parseFields(q: RawQuery): string[] {
  return values(q, 'fields').flatMap((f) => f.split(',')).map((f) => f.trim()).filter((f) => f !== '');
}

export function parseListQuery(q: RawQuery, spec: ResourceSpec): ListQuery {
  const sortKeys = values(q, 'sort_key').filter((x) => x !== '');
  const sortDirs = values(q, 'sort_dir').filter((x) => x !== '');
  if (sortKeys.length !== sortDirs.length) throw err.badRequest('The number of sort_keys and sort_dirs must be same');
  const badKeys = sortKeys.filter((k) => !['str', 'bool', 'int'].includes(spec.attrs[k] ?? ''));
  if (badKeys.length) throw err.badRequest(`[${badKeys.map((k) => `'${k}'`).join(', ')}] is invalid attribute for sort_keys`);
  const badDirs = sortDirs.filter((d) => d !== 'asc' && d !== 'desc');
  if (badDirs.length) throw err.badRequest(`[${badDirs.map((d) => `'${d}'`).join(', ')}] is invalid value for sort_dirs, valid value is 'asc' and 'desc'`);

  let limit: number | undefined;
  const rawLimit = values(q, 'limit')[0];
  if (rawLimit !== undefined && rawLimit !== '') {
    if (!/^\d+$/.test(rawLimit)) throw err.badRequest(`Bad limit request: Limit must be an integer 0 or greater and not '${rawLimit}'.`);
    limit = Number(rawLimit) || undefined;
  }
  const marker = values(q, 'marker')[0] || undefined;
  const pageReverse = (values(q, 'page_reverse')[0] ?? 'false').toLowerCase() === 'true';

  const list = (k: string) => values(q, k).flatMap((v) => v.split(',')).map((t) => t.trim()).filter((t) => t !== '');
  const tags = { all: list('tags'), any: list('tags-any'), notAll: list('not-tags'), notAny: list('not-tags-any') };
  if (!spec.attrs.tags && (tags.all.length || tags.any.length || tags.notAll.length || tags.notAny.length)) {
    throw err.badRequest(`tags is invalid attribute for filtering`);
  }

  const filters = new Map<string, string[]>();
  for (const key of Object.keys(q)) {
    if (RESERVED.has(key)) continue;
    const type = spec.attrs[key];
    if (type === undefined || type === 'obj') throw err.badRequest(`${key} is invalid attribute for filtering`);
    const vs = values(q, key);
    for (const v of vs) {
      if (type === 'bool') parseBool(key, v);
      else if (type === 'int') parseInteger(key, v);
    }
    filters.set(key, vs);
  }
  return { filters, fields: parseFields(q), sorts: sortKeys.map((key, i) => ({ key, asc: sortDirs[i] === 'asc' })), limit, marker, pageReverse, tags };
}

function matches(view: View, key: string, type: AttrType, wanted: string[], spec: ResourceSpec): boolean {
  if (type === 'custom') return spec.custom?.[key]?.(view, wanted) ?? false;
  const v = view[key];
  if (v === undefined || v === null) return false;
  switch (type) {
    case 'bool': return wanted.some((w) => parseBool(key, w) === v);
    case 'int': return wanted.some((w) => Number(w) === v);
    case 'list': return Array.isArray(v) && wanted.some((w) => v.includes(w));
    default: return wanted.some((w) => w === String(v));
  }
}

function tagsMatch(view: View, t: ListQuery['tags']): boolean {
  const have = new Set(Array.isArray(view.tags) ? view.tags.map(String) : []);
  if (t.all.length && !t.all.every((x) => have.has(x))) return false;
  if (t.any.length && !t.any.some((x) => have.has(x))) return false;
  if (t.notAll.length && t.notAll.every((x) => have.has(x))) return false;
  if (t.notAny.length && t.notAny.some((x) => have.has(x))) return false;
  return true;
}

function compare(a: Json | undefined, b: Json | undefined): number {
  const an = a === undefined || a === null;
  const bn = b === undefined || b === null;
  if (an || bn) return an && bn ? 0 : an ? -1 : 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Keep only the requested attributes (all of them when none were asked for). */
export function project<T extends View>(view: T, fields: string[]): View {
  const out: View = {};
  const keys = fields.length ? fields : Object.keys(view);
  for (const k of keys) if (view[k] !== undefined) out[k] = view[k];
  return out;
}

export interface Page { items: View[]; links: { rel: string; href: string }[] }

/**
 * Filter, sort, page and project `views`; `url` is the request's public URL (for the
 * next/previous links), `query` its query parameters as received.
 */
export function applyListQuery<T extends View>(views: T[], q: ListQuery, spec: ResourceSpec, url: string, query: RawQuery): Page {
  let items = views.filter((v) => {
    for (const [key, wanted] of q.filters) if (!matches(v, key, spec.attrs[key]!, wanted, spec)) return false;
    return tagsMatch(v, q.tags);
  });
  const sorts = [...q.sorts];
  if (!sorts.some((s) => s.key === 'id')) sorts.push({ key: 'id', asc: true });
  items.sort((a, b) => {
    for (const s of sorts) {
      const c = compare(a[s.key], b[s.key]);
      if (c !== 0) return s.asc ? c : -c;
    }
    return 0;
  });
  const links: Page['links'] = [];
  if (q.limit) {
    const limit = q.limit;
    let end = items.length;
    let start = 0;
    if (q.marker !== undefined) {
      const i = items.findIndex((x) => x.id === q.marker);
      if (i < 0) throw spec.notFound(q.marker);
      if (q.pageReverse) end = i;
      else start = i + 1;
    }
    items = q.pageReverse ? items.slice(Math.max(0, end - limit), end) : items.slice(start, start + limit);
    const link = (marker: string | undefined, reverse: boolean) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (k === 'marker' || k === 'page_reverse' || v === undefined) continue;
        for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
      }
      if (marker !== undefined) params.set('marker', marker);
      if (reverse) params.set('page_reverse', 'True');
      return `${url}?${params.toString()}`;
    };
    if (!(items.length < limit && !q.pageReverse)) links.push({ rel: 'next', href: link(items.at(-1)?.id as string | undefined, false) });
    if (!(items.length < limit && q.pageReverse)) links.push({ rel: 'previous', href: link(items[0]?.id as string | undefined, true) });
  }
  return { items: items.map((v) => project(v, q.fields)), links };
}
