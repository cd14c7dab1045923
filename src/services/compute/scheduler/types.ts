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

/** A filter keeps a host or says why not (the reason is recorded for NoValidHost). */
export interface Filter {
  readonly name: string;
  /** true to keep the host; false (or a reason string) to drop it. */
  passes(host: HostState, spec: RequestSpec): true | false | string;
}

/** A weigher scores hosts; scores are normalised to 0..1 across candidates, then multiplied. */
export interface Weigher {
  readonly name: string;
  weigh(host: HostState, spec: RequestSpec): number;
}

export interface FilterReport {
  filter: string;
  /** Hosts this filter removed, with its reason where it gave one. */
  removed: { host: string; reason?: string }[];
  remaining: number;
}

export type Selection =
  | { ok: true; hosts: string[]; reports: FilterReport[] }
  | { ok: false; reports: FilterReport[]; message: string };
