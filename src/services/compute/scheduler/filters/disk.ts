/** DiskFilter: diskGb * diskAllocationRatio - diskGbUsed >= root + ephemeral + swap. */
import type { Filter, HostState, RequestSpec } from '../types.ts';

export function usableDiskGb(host: HostState): number {
  return host.diskGb * host.diskAllocationRatio - host.diskGbUsed;
}

export const diskFilter: Filter = {
  name: 'disk',
  passes: (host: HostState, spec: RequestSpec) => host.diskGb * host.diskAllocationRatio - host.diskGbUsed >= spec.diskGb,
  forRequest(spec) {
    const need = spec.diskGb;
    return (host) => host.diskGb * host.diskAllocationRatio - host.diskGbUsed >= need;
  },
  need: (spec) => `need ${spec.diskGb} GB`,
  explain: (host) => `free ${Math.max(0, Math.floor(usableDiskGb(host)))} GB`,
};
