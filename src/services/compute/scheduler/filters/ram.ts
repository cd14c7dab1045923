/** RamFilter: memoryMb * ramAllocationRatio - memoryMbUsed >= the flavor's RAM. */
import type { Filter, HostState, RequestSpec } from '../types.ts';

export function usableRamMb(host: HostState): number {
  return host.memoryMb * host.ramAllocationRatio - host.memoryMbUsed;
}

export const ramFilter: Filter = {
  name: 'ram',
  passes: (host: HostState, spec: RequestSpec) => host.memoryMb * host.ramAllocationRatio - host.memoryMbUsed >= spec.memoryMb,
  forRequest(spec) {
    const need = spec.memoryMb;
    return (host) => host.memoryMb * host.ramAllocationRatio - host.memoryMbUsed >= need;
  },
  need: (spec) => `need ${spec.memoryMb} MB`,
  explain: (host) => `free ${Math.max(0, Math.floor(usableRamMb(host)))} MB`,
};
