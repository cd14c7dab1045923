/**
 * AggregateInstanceExtraSpecsFilter: every flavor extra spec scoped
 * `aggregate_instance_extra_specs:KEY` (or unscoped KEY, Nova's legacy form) must be
 * matched by the metadata value KEY of at least one aggregate the host is in, using
 * Nova's extra-spec operators ("<or> ssd <or> nvme", ">= 2", "s!= slow", ...). Keys with
 * another scope ("hw:", "quota:", ...) belong to other filters and are ignored.
 */
import type { Filter, HostState, RequestSpec } from '../types.ts';
import { compileMatcher, type ValueMatcher } from './extra-specs-ops.ts';

const SCOPE = 'aggregate_instance_extra_specs';

interface Requirement { key: string; req: string; match: ValueMatcher }

const parsed = new WeakMap<Record<string, string>, { signature: string; reqs: Requirement[] }>();

/**
 * The aggregate requirements of a flavor's extra specs, memoised per extra-specs object
 * (explanations ask once per removed host); a changed object is parsed again.
 */
export function aggregateRequirements(extraSpecs: Record<string, string>): Requirement[] {
  let signature = '';
  for (const k in extraSpecs) signature += `${k}\u0000${extraSpecs[k]}\u0000`;
  const hit = parsed.get(extraSpecs);
  if (hit && hit.signature === signature) return hit.reqs;
  const reqs = parseRequirements(extraSpecs);
  parsed.set(extraSpecs, { signature, reqs });
  return reqs;
}

function parseRequirements(extraSpecs: Record<string, string>): Requirement[] {
  const out: Requirement[] = [];
  for (const full in extraSpecs) {
    const colon = full.indexOf(':');
    let key = full;
    if (colon >= 0) {
      if (full.slice(0, colon) !== SCOPE) continue;
      key = full.slice(colon + 1);
    }
    const req = extraSpecs[full];
    out.push({ key, req, match: compileMatcher(req) });
  }
  return out;
}

/** First failing requirement on this host, or -1 when all pass. */
function firstFailing(host: HostState, reqs: readonly Requirement[]): number {
  const aggs = host.aggregates;
  for (let r = 0; r < reqs.length; r++) {
    const { key, match } = reqs[r];
    let ok = false;
    for (let a = 0; a < aggs.length; a++) {
      const v = aggs[a].metadata[key];
      if (v !== undefined && match(v)) { ok = true; break; }
    }
    if (!ok) return r;
  }
  return -1;
}

export const aggregateInstanceExtraSpecsFilter: Filter = {
  name: 'aggregate-instance-extra-specs',
  passes: (host, spec) => firstFailing(host, aggregateRequirements(spec.flavorExtraSpecs)) < 0,
  forRequest(spec: RequestSpec) {
    const reqs = parseRequirements(spec.flavorExtraSpecs);
    if (reqs.length === 0) return null;
    return (host) => firstFailing(host, reqs) < 0;
  },
  need: (spec) => `need aggregate metadata ${aggregateRequirements(spec.flavorExtraSpecs).map((r) => `${r.key}=${r.req}`).join(', ')}`,
  explain(host, spec) {
    const reqs = aggregateRequirements(spec.flavorExtraSpecs);
    const r = reqs[firstFailing(host, reqs)];
    if (!r) return 'matches';
    const values = host.aggregates.map((a) => a.metadata[r.key]).filter((v): v is string => v !== undefined);
    return values.length === 0 ? `no ${r.key}` : `${r.key}=${values.join('|')}`;
  },
};
