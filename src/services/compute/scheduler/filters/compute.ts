/** ComputeFilter: the host's compute service is enabled and its heartbeat is recent. */
import type { Filter, HostState } from '../types.ts';

export const computeFilter: Filter = {
  name: 'compute',
  passes: (host: HostState) => host.enabled && host.up,
  forRequest: () => (host) => host.enabled && host.up,
  need: () => 'need an enabled, up compute service',
  explain: (host: HostState) => (!host.enabled && !host.up ? 'disabled and down' : !host.enabled ? 'disabled' : 'down'),
};
