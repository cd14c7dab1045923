/** CPUWeigher: free vCPUs (vcpus * cpuAllocationRatio - vcpusUsed). Positive spreads, negative packs. */
import type { Weigher } from '../types.ts';

export const cpuWeigher: Weigher = {
  name: 'cpu',
  weigh: (host) => host.vcpus * host.cpuAllocationRatio - host.vcpusUsed,
};
