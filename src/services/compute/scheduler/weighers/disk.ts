/** DiskWeigher: free disk (diskGb - diskGbUsed, physical). Positive spreads, negative packs. */
import type { HostState, Weigher } from '../types.ts';

const weigh = (host: HostState): number => host.diskGb - host.diskGbUsed;

export const diskWeigher: Weigher = {
  name: 'disk',
  weigh,
  forRequest: () => weigh,
};
