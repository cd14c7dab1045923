/** CPUWeigher: free vCPUs (vcpus * cpuAllocationRatio - vcpusUsed). Positive spreads, negative packs. */
import type { HostState, Weigher } from '../types.ts';

const weigh = (host: HostState): number => host.vcpus * host.cpuAllocationRatio - host.vcpusUsed;

export const cpuWeigher: Weigher = {
  name: 'cpu',
  weigh,
  forRequest: () => weigh,
};
