/** CoreFilter: vcpus * cpuAllocationRatio - vcpusUsed >= the flavor's vCPUs. */
import type { Filter, HostState, RequestSpec } from '../types.ts';

export function usableVcpus(host: HostState): number {
  return host.vcpus * host.cpuAllocationRatio - host.vcpusUsed;
}

export const coresFilter: Filter = {
  name: 'cores',
  passes: (host: HostState, spec: RequestSpec) => host.vcpus * host.cpuAllocationRatio - host.vcpusUsed >= spec.vcpus,
  forRequest(spec) {
    const need = spec.vcpus;
    return (host) => host.vcpus * host.cpuAllocationRatio - host.vcpusUsed >= need;
  },
  need: (spec) => `need ${spec.vcpus} vCPU${spec.vcpus === 1 ? '' : 's'}`,
  explain: (host) => `free ${Math.max(0, Math.floor(usableVcpus(host)))} vCPUs`,
};
