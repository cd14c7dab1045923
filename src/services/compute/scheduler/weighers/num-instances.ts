/**
 * NumInstancesWeigher: the number of instances on the host. As in Nova, its multiplier
 * defaults to 0 (off); positive prefers busier hosts (pack), negative emptier ones (spread).
 */
import type { HostState, Weigher } from '../types.ts';

const weigh = (host: HostState): number => host.instances;

export const numInstancesWeigher: Weigher = {
  name: 'num-instances',
  weigh,
  forRequest: () => weigh,
};
