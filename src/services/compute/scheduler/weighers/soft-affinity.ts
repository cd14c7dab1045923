/**
 * ServerGroupSoftAffinityWeigher: for a 'soft-affinity' group, the number of the group's
 * members on the host, so hosts with more members win; other requests weigh all hosts 0.
 */
import { groupWithPolicy, membersOn } from '../filters/server-group.ts';
import type { Weigher } from '../types.ts';

export const softAffinityWeigher: Weigher = {
  name: 'soft-affinity',
  weigh(host, spec) {
    const g = groupWithPolicy(spec, 'soft-affinity');
    return g ? membersOn(g.memberHosts, host.host) : 0;
  },
  forRequest(spec) {
    const g = groupWithPolicy(spec, 'soft-affinity');
    if (!g || g.memberHosts.length === 0) return null;
    const members = g.memberHosts;
    return (host) => membersOn(members, host.host);
  },
};
