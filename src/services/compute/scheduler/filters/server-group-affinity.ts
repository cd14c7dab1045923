/**
 * ServerGroupAffinityFilter: with an 'affinity' group that already has members, only the
 * hosts those members are on pass. The first member may go anywhere.
 */
import type { Filter } from '../types.ts';
import { groupWithPolicy } from './server-group.ts';

export const serverGroupAffinityFilter: Filter = {
  name: 'server-group-affinity',
  passes(host, spec) {
    const g = groupWithPolicy(spec, 'affinity');
    return !g || g.memberHosts.length === 0 || g.memberHosts.includes(host.host);
  },
  forRequest(spec) {
    const g = groupWithPolicy(spec, 'affinity');
    if (!g || g.memberHosts.length === 0) return null;
    const members = g.memberHosts;
    if (members.length <= 8) return (host) => members.includes(host.host);
    const set = new Set(members);
    return (host) => set.has(host.host);
  },
  need(spec) {
    const hosts = [...new Set(spec.serverGroup?.memberHosts ?? [])];
    return `need the affinity group's host (${hosts.join(', ')})`;
  },
  explain: () => 'no group member here',
};
