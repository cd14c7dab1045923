/** The weighers Gureum ships, by name, with Nova's default multipliers. */
import type { Weigher } from '../types.ts';
import { cpuWeigher } from './cpu.ts';
import { diskWeigher } from './disk.ts';
import { numInstancesWeigher } from './num-instances.ts';
import { ramWeigher } from './ram.ts';
import { softAffinityWeigher } from './soft-affinity.ts';
import { softAntiAffinityWeigher } from './soft-anti-affinity.ts';

export const allWeighers: readonly Weigher[] = Object.freeze([
  ramWeigher, cpuWeigher, diskWeigher, numInstancesWeigher, softAffinityWeigher, softAntiAffinityWeigher,
]);

/** Multiplier per weigher name; 0 switches a weigher off. */
export const DEFAULT_MULTIPLIERS: Readonly<Record<string, number>> = Object.freeze({
  ram: 1.0,
  cpu: 1.0,
  disk: 1.0,
  'num-instances': 0.0,
  'soft-affinity': 1.0,
  'soft-anti-affinity': 1.0,
});

export { cpuWeigher, diskWeigher, numInstancesWeigher, ramWeigher, softAffinityWeigher, softAntiAffinityWeigher };
