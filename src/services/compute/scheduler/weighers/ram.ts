/**
 * RAMWeigher: free RAM (memoryMb - memoryMbUsed, physical, as Nova's free_ram_mb). With a
 * positive multiplier the emptiest host wins (spread); a negative one packs.
 */
import type { HostState, Weigher } from '../types.ts';

const weigh = (host: HostState): number => host.memoryMb - host.memoryMbUsed;

export const ramWeigher: Weigher = {
  name: 'ram',
  weigh,
  forRequest: () => weigh,
};
