/**
 * ServerGroupSoftAntiAffinityWeigher: for a 'soft-anti-affinity' group, minus the number
 * of the group's members on the host, so hosts with fewer members win; other requests
 * weigh all hosts 0.
 */
import { groupWithPolicy, membersOn } from '../filters/server-group.ts';
import type { Weigher } from '../types.ts';

export const softAntiAffinityWeigher: Weigher = {
  name: 'soft-anti-affinity',
  weigh(host, spec) {
    const g = groupWithPolicy(spec, 'soft-anti-affinity');
    return g ? -membersOn(g.memberHosts, host.host) : 0;
  },
  forRequest(spec) {
    const g = groupWithPolicy(spec, 'soft-anti-affinity');
    if (!g || g.memberHosts.length === 0) return null;
    const members = g.memberHosts;
    return (host) => -membersOn(members, host.host);
  },
};
