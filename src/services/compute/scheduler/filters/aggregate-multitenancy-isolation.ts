/**
 * AggregateMultiTenancyIsolation: a host in an aggregate whose metadata has
 * `filter_tenant_id` (or any key starting with it: filter_tenant_id2, ...; values may be
 * comma-separated project ids) only takes instances of those projects. Hosts outside such
 * aggregates take any project.
 */
import type { Filter, HostState } from '../types.ts';

const PREFIX = 'filter_tenant_id';

/** Whether `list` (comma-separated, spaces tolerated) contains `id`, without splitting. */
function listHas(list: string, id: string): boolean {
  let start = 0;
  while (start <= list.length) {
    let end = list.indexOf(',', start);
    if (end < 0) end = list.length;
    let s = start, e = end;
    while (s < e && list.charCodeAt(s) === 32) s++;
    while (e > s && list.charCodeAt(e - 1) === 32) e--;
    if (e - s === id.length && list.startsWith(id, s)) return true;
    start = end + 1;
  }
  return false;
}

/** 1: host is restricted and the project is allowed, 0: unrestricted, -1: restricted, not allowed. */
function verdict(host: HostState, projectId: string): number {
  let restricted = false;
  const aggs = host.aggregates;
  for (let a = 0; a < aggs.length; a++) {
    const md = aggs[a].metadata;
    for (const k in md) {
      if (!k.startsWith(PREFIX)) continue;
      restricted = true;
      if (listHas(md[k], projectId)) return 1;
    }
  }
  return restricted ? -1 : 0;
}

export const aggregateMultiTenancyIsolationFilter: Filter = {
  name: 'aggregate-multitenancy-isolation',
  passes: (host, spec) => verdict(host, spec.projectId) >= 0,
  forRequest(spec) {
    const project = spec.projectId;
    return (host) => host.aggregates.length === 0 || verdict(host, project) >= 0;
  },
  need: (spec) => `need a host open to project ${spec.projectId}`,
  explain: (host) => {
    const names = host.aggregates.filter((a) => Object.keys(a.metadata).some((k) => k.startsWith(PREFIX))).map((a) => a.name);
    return `reserved for other projects by ${names.join(', ')}`;
  },
};
