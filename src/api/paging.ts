import { BadRequest } from '../common/errors.ts';

export interface PageRequest { limit?: number; marker?: string }

/** Parse OpenStack `limit` and `marker` query parameters; `maxLimit` caps a page. */
export function parsePage(query: Record<string, unknown>, maxLimit = 1000): PageRequest {
  const page: PageRequest = {};
  if (query.limit !== undefined) {
    const n = Number(query.limit);
    if (!Number.isInteger(n) || n < 0) throw new BadRequest(`Invalid limit: ${String(query.limit)}`);
    page.limit = Math.min(n, maxLimit);
  }
  if (typeof query.marker === 'string' && query.marker !== '') page.marker = query.marker;
  return page;
}

/** Apply marker/limit to an id-sorted list (used where the store already filtered). */
export function applyPage<T extends { id: string }>(items: T[], page: PageRequest): { items: T[]; more: boolean } {
  let start = 0;
  if (page.marker !== undefined) {
    const i = items.findIndex((x) => x.id === page.marker);
    if (i < 0) throw new BadRequest(`Marker ${page.marker} could not be found.`);
    start = i + 1;
  }
  const end = page.limit === undefined ? items.length : start + page.limit;
  return { items: items.slice(start, end), more: end < items.length };
}
