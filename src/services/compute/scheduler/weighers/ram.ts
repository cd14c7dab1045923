/**
 * RAMWeigher: free RAM (memoryMb - memoryMbUsed, physical, as Nova's free_ram_mb). With a
 * positive multiplier the emptiest host wins (spread); a negative one packs.
 */
import type { Weigher } from '../types.ts';

export const ramWeigher: Weigher = {
  name: 'ram',
  weigh: (host) => host.memoryMb - host.memoryMbUsed,
};
