/**
 * The filter scheduler (Nova's initial placement): filters drop hosts that cannot take the
 * instance, weighers rank the rest (each weight min-max normalised to 0..1 across the
 * candidates, times its multiplier, summed), and the best host is chosen — at random
 * among the top `hostSubsetSize` to spread concurrent schedulers — with the next best as
 * alternates for the conductor to try if its atomic claim in the database fails.
 *
 * `select` never changes its inputs: a multi-create consumes the chosen hosts' resources
 * in the HostStates while it places the later instances and gives them back before
 * returning. The caller applies a placement with `consume` once it has claimed it.
 *
 * Hot path: one pass over the hosts running each filter's per-request predicate until one
 * fails; reusable typed arrays for candidates and weights; partial top-k selection instead
 * of a sort. Reasons are built only when explaining a failure (or with detailedReports).
 */
import { allFilters, DEFAULT_FILTERS, forceHostsFilter } from './filters/index.ts';
import type { Filter, FilterReport, HostPredicate, HostState, RequestSpec, Selection, Weigher } from './types.ts';
import { allWeighers, DEFAULT_MULTIPLIERS } from './weighers/index.ts';

export const NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.';

export interface SchedulerOptions {
  /** Enabled filter names, run in this order (default DEFAULT_FILTERS). force-hosts always runs first. */
  filters?: readonly string[];
  /** Weigher multipliers by weigher name (defaults DEFAULT_MULTIPLIERS); 0 turns a weigher off. */
  multipliers?: Readonly<Record<string, number>>;
  /** Nova's host_subset_size: choose at random among the best N hosts (default 1, the best). */
  hostSubsetSize?: number;
  /** Nova's max_attempts: the chosen host plus up to maxAttempts - 1 alternates (default 3). */
  maxAttempts?: number;
  /** Extra filter plug-ins, enabled by listing their names in `filters`. */
  extraFilters?: readonly Filter[];
  /** Extra weigher plug-ins, weighed with multiplier `multipliers[name]` (default 1). */
  extraWeighers?: readonly Weigher[];
  /** Random source in [0, 1) for hostSubsetSize (default Math.random). */
  random?: () => number;
  /** Also list removed hosts with reasons on success (costs allocations; for debugging). */
  detailedReports?: boolean;
}

/** Adds an instance's resources to the host (Nova's consume_from_request). */
export function consume(host: HostState, spec: RequestSpec): void {
  host.vcpusUsed += spec.vcpus;
  host.memoryMbUsed += spec.memoryMb;
  host.diskGbUsed += spec.diskGb;
  host.instances += 1;
}

/** Takes an instance's resources back off the host (the inverse of consume). */
export function release(host: HostState, spec: RequestSpec): void {
  host.vcpusUsed -= spec.vcpus;
  host.memoryMbUsed -= spec.memoryMb;
  host.diskGbUsed -= spec.diskGb;
  host.instances -= 1;
}

interface ActiveWeigher { weigher: Weigher; multiplier: number }

export class Scheduler {
  readonly filters: readonly Filter[];
  readonly hostSubsetSize: number;
  readonly maxAttempts: number;
  private readonly weighers: readonly ActiveWeigher[];
  private readonly random: () => number;
  private readonly detailed: boolean;

  // Reusable buffers (select is synchronous, so one set per scheduler is enough).
  private cap = 0;
  private cand = new Int32Array(0);
  private removedBy = new Int16Array(0);
  private raw = new Float64Array(0);
  private score = new Float64Array(0);
  private readonly removedCounts: Int32Array;
  private readonly preds: HostPredicate[] = [];
  private readonly predFilter: Int16Array;
  private readonly topPos: number[] = [];
  private readonly topScore: number[] = [];
  /** Index in `hosts` of the host the last successful selectOne chose. */
  private chosenIndex = -1;

  constructor(options: SchedulerOptions = {}) {
    const registry: Record<string, Filter> = { ...allFilters };
    for (const f of options.extraFilters ?? []) registry[f.name] = f;
    const names = options.filters ?? DEFAULT_FILTERS;
    const filters: Filter[] = [forceHostsFilter];
    for (const name of names) {
      const f = registry[name];
      if (!f) throw new Error(`scheduler: unknown filter '${name}' (known: ${Object.keys(registry).join(', ')})`);
      if (f !== forceHostsFilter && !filters.includes(f)) filters.push(f);
    }
    this.filters = filters;
    this.removedCounts = new Int32Array(filters.length);
    this.predFilter = new Int16Array(filters.length);

    const multipliers = { ...DEFAULT_MULTIPLIERS, ...options.multipliers };
    const weighers: ActiveWeigher[] = [];
    for (const w of [...allWeighers, ...(options.extraWeighers ?? [])]) {
      const m = multipliers[w.name] ?? 1;
      if (!Number.isFinite(m)) throw new Error(`scheduler: multiplier for '${w.name}' must be a finite number`);
      if (m !== 0) weighers.push({ weigher: w, multiplier: m });
    }
    for (const name of Object.keys(options.multipliers ?? {})) {
      if (!allWeighers.some((w) => w.name === name) && !options.extraWeighers?.some((w) => w.name === name)) {
        throw new Error(`scheduler: unknown weigher '${name}'`);
      }
    }
    this.weighers = weighers;

    const subset = options.hostSubsetSize ?? 1;
    this.hostSubsetSize = Number.isInteger(subset) && subset >= 1 ? subset : 1;
    const attempts = options.maxAttempts ?? 3;
    this.maxAttempts = Number.isInteger(attempts) && attempts >= 1 ? attempts : 3;
    this.random = options.random ?? Math.random;
    this.detailed = options.detailedReports ?? false;
  }

  /**
   * Chooses hosts for `count` instances of `spec`. ok: `hosts` is the first instance's
   * ranked list (choice + alternates), `placements` one such list per instance. Not ok:
   * NoValidHost, with per-filter reports and an explanation in `message`. All-or-nothing,
   * as in Nova: a multi-create that cannot place every instance fails.
   */
  select(hosts: readonly HostState[], spec: RequestSpec, count = 1): Selection {
    if (!Number.isInteger(count) || count < 1) throw new RangeError('scheduler: count must be a positive integer');
    if (count === 1) {
      const ranked = this.selectOne(hosts, spec);
      if (!ranked) return this.failure(hosts, spec, '');
      return { ok: true, hosts: ranked, reports: this.successReports(hosts, spec), placements: [ranked] };
    }

    const placements: string[][] = [];
    const consumed: HostState[] = [];
    let current = spec;
    const group = spec.serverGroup;
    try {
      for (let n = 0; n < count; n++) {
        const ranked = this.selectOne(hosts, current);
        if (!ranked) {
          return this.failure(hosts, current, `Placed ${n} of ${count} instances; for instance ${n + 1}: `);
        }
        placements.push(ranked);
        const chosen = hosts[this.chosenIndex];
        consume(chosen, spec);
        consumed.push(chosen);
        if (group) {
          current = { ...current, serverGroup: { ...group, memberHosts: [...(current.serverGroup?.memberHosts ?? []), ranked[0]] } };
        }
      }
      return { ok: true, hosts: placements[0], reports: this.successReports(hosts, current), placements };
    } finally {
      for (const h of consumed) release(h, spec);
    }
  }

  /** Fills preds/predFilter with the per-request predicates of the filters that apply. */
  private predicates(spec: RequestSpec): number {
    const preds = this.preds;
    const predFilter = this.predFilter;
    let np = 0;
    for (let f = 0; f < this.filters.length; f++) {
      const filter = this.filters[f];
      const p = filter.forRequest ? filter.forRequest(spec) : (h: HostState) => filter.passes(h, spec);
      if (p) { preds[np] = p; predFilter[np] = f; np++; }
    }
    preds.length = np;
    return np;
  }

  private ensure(n: number): void {
    if (n <= this.cap) return;
    const cap = Math.max(n, this.cap * 2, 64);
    this.cand = new Int32Array(cap);
    this.removedBy = new Int16Array(cap);
    this.raw = new Float64Array(cap);
    this.score = new Float64Array(cap);
    this.cap = cap;
  }

  /** Filters, weighs and ranks; the ranked host names, or null when no host passes. */
  private selectOne(hosts: readonly HostState[], spec: RequestSpec): string[] | null {
    const n = hosts.length;
    this.ensure(n);
    const cand = this.cand;
    const removedBy = this.removedBy;
    const counts = this.removedCounts;
    counts.fill(0);

    // Filter: one pass over the hosts; the first failing filter removes the host.
    const np = this.predicates(spec);
    const preds = this.preds;
    const predFilter = this.predFilter;
    let nc = 0;
    for (let i = 0; i < n; i++) {
      const h = hosts[i];
      let j = 0;
      for (; j < np; j++) if (preds[j](h) !== true) break;
      if (j === np) {
        cand[nc++] = i;
        removedBy[i] = -1;
      } else {
        const f = predFilter[j];
        removedBy[i] = f;
        counts[f]++;
      }
    }
    if (nc === 0) return null;

    // Weigh: min-max normalise each weigher across the candidates, times its multiplier.
    const score = this.score;
    score.fill(0, 0, nc);
    if (nc > 1) {
      const raw = this.raw;
      for (const { weigher, multiplier } of this.weighers) {
        const fn = weigher.forRequest ? weigher.forRequest(spec) : (h: HostState) => weigher.weigh(h, spec);
        if (!fn) continue;
        let min = Infinity;
        let max = -Infinity;
        for (let c = 0; c < nc; c++) {
          const v = fn(hosts[cand[c]]);
          raw[c] = v;
          if (v < min) min = v;
          if (v > max) max = v;
        }
        if (!(max > min)) continue; // all equal: Nova normalises every weight to 0
        const scale = multiplier / (max - min);
        for (let c = 0; c < nc; c++) score[c] += (raw[c] - min) * scale;
      }
    }

    // Rank: the best k (stable: an earlier host wins a tie, as Python's sorted does).
    const subset = Math.min(this.hostSubsetSize, nc);
    const k = Math.min(nc, subset + this.maxAttempts - 1);
    const topPos = this.topPos;
    const topScore = this.topScore;
    topPos.length = 0;
    topScore.length = 0;
    for (let c = 0; c < nc; c++) {
      const s = score[c];
      let len = topPos.length;
      if (len === k && !(s > topScore[len - 1])) continue;
      if (len === k) { topPos.pop(); topScore.pop(); len--; }
      let at = len;
      while (at > 0 && s > topScore[at - 1]) at--;
      topPos.splice(at, 0, c);
      topScore.splice(at, 0, s);
    }
    const pick = subset > 1 ? Math.min(subset - 1, Math.floor(this.random() * subset)) : 0;
    this.chosenIndex = cand[topPos[pick]];
    const ranked: string[] = [hosts[this.chosenIndex].host];
    for (let t = 0; t < topPos.length && ranked.length < this.maxAttempts; t++) {
      if (t !== pick) ranked.push(hosts[cand[topPos[t]]].host);
    }
    return ranked;
  }

  /** Reports after a successful selectOne (counts; removed hosts only when detailed). */
  private successReports(hosts: readonly HostState[], spec: RequestSpec): FilterReport[] {
    if (this.detailed) return this.fullReports(hosts, spec);
    const reports: FilterReport[] = [];
    let remaining = hosts.length;
    for (let f = 0; f < this.filters.length; f++) {
      remaining -= this.removedCounts[f];
      reports.push({ filter: this.filters[f].name, removed: [], remaining, removedCount: this.removedCounts[f] });
    }
    return reports;
  }

  /** Reports with every removed host and its reason (built from the last selectOne's buffers). */
  private fullReports(hosts: readonly HostState[], spec: RequestSpec): FilterReport[] {
    const reports: FilterReport[] = this.filters.map((f) => {
      const need = f.need?.(spec);
      return { filter: f.name, removed: [], remaining: 0, removedCount: 0, ...(need ? { need } : {}) };
    });
    for (let i = 0; i < hosts.length; i++) {
      const f = this.removedBy[i];
      if (f < 0) continue;
      const filter = this.filters[f];
      const host = hosts[i];
      let reason: string | undefined;
      if (filter.explain) reason = filter.explain(host, spec);
      else {
        const r = filter.passes(host, spec);
        if (typeof r === 'string') reason = r;
      }
      reports[f].removed.push(reason === undefined ? { host: host.host } : { host: host.host, reason });
    }
    let remaining = hosts.length;
    for (const r of reports) {
      r.removedCount = r.removed.length;
      remaining -= r.removed.length;
      r.remaining = remaining;
    }
    return reports;
  }

  private failure(hosts: readonly HostState[], spec: RequestSpec, prefix: string): Selection {
    const reports = this.fullReports(hosts, spec);
    return { ok: false, reports, message: `${NO_VALID_HOST} ${prefix}${explainReports(hosts.length, reports)}` };
  }
}

const MAX_GROUPS = 3;
const MAX_HOSTS_PER_GROUP = 3;

/**
 * The compact explanation: per filter that removed hosts, how many, what the request
 * needed and the hosts grouped by reason, e.g.
 * "4 hosts: ram: 3 hosts (need 2048 MB; free 1024 MB on h1, h2; free 512 MB on h3); compute: 1 host (down on h4)."
 */
export function explainReports(total: number, reports: readonly FilterReport[]): string {
  if (total === 0) return 'No compute hosts are known.';
  const parts: string[] = [];
  for (const r of reports) {
    if (r.removed.length === 0) continue;
    const groups = new Map<string, string[]>();
    for (const { host, reason } of r.removed) {
      const key = reason ?? '';
      const list = groups.get(key);
      if (list) list.push(host);
      else groups.set(key, [host]);
    }
    const shown: string[] = [];
    let g = 0;
    let hidden = 0;
    for (const [reason, list] of groups) {
      if (g++ >= MAX_GROUPS) { hidden += list.length; continue; }
      const names = list.slice(0, MAX_HOSTS_PER_GROUP).join(', ') + (list.length > MAX_HOSTS_PER_GROUP ? ` +${list.length - MAX_HOSTS_PER_GROUP} more` : '');
      shown.push(reason ? `${reason} on ${names}` : names);
    }
    if (hidden > 0) shown.push(`${hidden} more host${hidden === 1 ? '' : 's'} for other reasons`);
    const n = r.removed.length;
    const detail = (r.need ? [r.need, ...shown] : shown).join('; ');
    parts.push(`${r.filter}: ${n} host${n === 1 ? '' : 's'} (${detail})`);
  }
  return `${total} host${total === 1 ? '' : 's'} considered: ${parts.join('; ')}.`;
}
