/**
 * ServerGroupAntiAffinityFilter: with an 'anti-affinity' group, a host passes while it
 * holds fewer than `maxServerPerHost` (default 1) of the group's members.
 */
import type { Filter } from '../types.ts';
import { groupWithPolicy, membersOn } from './server-group.ts';

function limit(max: number | undefined): number {
  return max !== undefined && max > 0 ? max : 1;
}

export const serverGroupAntiAffinityFilter: Filter = {
  name: 'server-group-anti-affinity',
  passes(host, spec) {
    const g = groupWithPolicy(spec, 'anti-affinity');
    return !g || membersOn(g.memberHosts, host.host) < limit(g.maxServerPerHost);
  },
  forRequest(spec) {
    const g = groupWithPolicy(spec, 'anti-affinity');
    if (!g || g.memberHosts.length === 0) return null;
    const max = limit(g.maxServerPerHost);
    const members = g.memberHosts;
    if (members.length <= 16) return (host) => membersOn(members, host.host) < max;
    const counts = new Map<string, number>();
    for (const h of members) counts.set(h, (counts.get(h) ?? 0) + 1);
    return (host) => (counts.get(host.host) ?? 0) < max;
  },
  need: (spec) => `need at most ${limit(spec.serverGroup?.maxServerPerHost)} group member(s) per host`,
  explain: (host, spec) => `${membersOn(spec.serverGroup?.memberHosts ?? [], host.host)} member(s) already`,
};
