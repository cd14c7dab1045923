/** AvailabilityZoneFilter: when the request names a zone, the host must be in it. */
import type { Filter, HostState, RequestSpec } from '../types.ts';

export const availabilityZoneFilter: Filter = {
  name: 'availability-zone',
  passes: (host: HostState, spec: RequestSpec) => !spec.availabilityZone || host.availabilityZone === spec.availabilityZone,
  forRequest(spec) {
    const az = spec.availabilityZone;
    if (!az) return null;
    return (host) => host.availabilityZone === az;
  },
  need: (spec) => `need zone ${spec.availabilityZone ?? '(any)'}`,
  explain: (host) => `in zone ${host.availabilityZone}`,
};
