/**
 * Scheduler vocabulary (Nova's HostState and RequestSpec). Filters and weighers are
 * small pure modules over these; the conductor builds HostStates from the database and
 * claims the chosen host atomically there.
 */

export interface HostState {
  /** The compute host's name (unique). */
  host: string;
  /** Service enabled by the operator (not disabled / in maintenance). */
  enabled: boolean;
  /** Heartbeat recent enough. */
  up: boolean;
  availabilityZone: string;
  vcpus: number;
  vcpusUsed: number;
  memoryMb: number;
  memoryMbUsed: number;
  diskGb: number;
  diskGbUsed: number;
  /** Instances currently placed here. */
  instances: number;
  cpuAllocationRatio: number;
  ramAllocationRatio: number;
  diskAllocationRatio: number;
  /** Hypervisor type ('QEMU', 'KVM') and guest architecture ('x86_64'). */
  hypervisorType: string;
  arch: string;
  /** Aggregates this host is in, with their metadata. */
  aggregates: { name: string; metadata: Record<string, string> }[];
  /**
   * Hypervisor version, for `img_hv_requested_version`: Nova's integer encoding
   * (major * 1_000_000 + minor * 1_000 + micro, e.g. 8002001) or a dotted string ('8.2.1').
   * Hosts that report none pass any version requirement (as in Nova).
   */
  hypervisorVersion?: number | string;
}

export type ServerGroupPolicy = 'affinity' | 'anti-affinity' | 'soft-affinity' | 'soft-anti-affinity';

export interface RequestSpec {
  instanceUuid: string;
  projectId: string;
  vcpus: number;
  memoryMb: number;
  /** root + ephemeral + swap, in GiB (rounded up). */
  diskGb: number;
  /** Requested availability zone, if any. */
  availabilityZone?: string;
  /** Admin-forced host ("zone:host" syntax). */
  forceHost?: string;
  /** Image properties (hw_architecture, img_hv_type, ...). */
  imageProperties: Record<string, string>;
  flavorExtraSpecs: Record<string, string>;
  /** The server group this instance joins, with the hosts its other members are on. */
  serverGroup?: { policy: ServerGroupPolicy; memberHosts: string[]; maxServerPerHost?: number };
  /** Hosts to avoid (e.g. already tried by a failed attempt). */
  ignoreHosts?: string[];
}

/** A per-request host check built by `Filter.forRequest` (true keeps the host). */
export type HostPredicate = (host: HostState) => boolean | string;

/** A filter keeps a host or says why not (the reason is recorded for NoValidHost). */
export interface Filter {
  readonly name: string;
  /** true to keep the host; false (or a reason string) to drop it. */
  passes(host: HostState, spec: RequestSpec): true | false | string;
  /**
   * Optional fast path: do the per-request work once (parse extra specs, image properties)
   * and return the check to run per host, or null when this request gives the filter
   * nothing to check (every host passes). The scheduler prefers it over `passes`.
   */
  forRequest?(spec: RequestSpec): HostPredicate | null;
  /** What the request needs, for the NoValidHost explanation ("need 2048 MB"). */
  need?(spec: RequestSpec): string;
  /**
   * Why this host failed ("free 1024 MB"); called only when explaining a failure, so
   * `passes` can return a plain boolean on the hot path without building strings.
   */
  explain?(host: HostState, spec: RequestSpec): string;
}

/** A weigher scores hosts; scores are normalised to 0..1 across candidates, then multiplied. */
export interface Weigher {
  readonly name: string;
  weigh(host: HostState, spec: RequestSpec): number;
  /**
   * Optional fast path: the per-host scoring function for this request, or null when the
   * weigher gives every host the same weight for it (e.g. no soft-affinity group), so it
   * can be skipped.
   */
  forRequest?(spec: RequestSpec): ((host: HostState) => number) | null;
}

export interface FilterReport {
  filter: string;
  /** Hosts this filter removed, with its reason where it gave one. */
  removed: { host: string; reason?: string }[];
  remaining: number;
  /**
   * How many hosts this filter removed. On success the scheduler fills this and leaves
   * `removed` empty unless it was built with `detailedReports` (listing hosts costs
   * allocations on the hot path); on failure `removed` is always complete.
   */
  removedCount?: number;
  /** What the request needed, as the filter put it ("need 2048 MB"), on failure. */
  need?: string;
}

export type Selection =
  | {
      ok: true;
      hosts: string[];
      reports: FilterReport[];
      /**
       * One ranked list per instance for a multi-create (count > 1): placements[i][0] is
       * instance i's host, the rest its alternates. `hosts` is placements[0].
       */
      placements?: string[][];
    }
  | { ok: false; reports: FilterReport[]; message: string };
