/** DiskWeigher: free disk (diskGb - diskGbUsed, physical). Positive spreads, negative packs. */
import type { Weigher } from '../types.ts';

export const diskWeigher: Weigher = {
  name: 'disk',
  weigh: (host) => host.diskGb - host.diskGbUsed,
};
