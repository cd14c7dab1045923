/** Helpers shared by the server-group filters and weighers. */
import type { RequestSpec } from '../types.ts';

/** How many of the group's other members are on `host` (memberHosts lists one host per member). */
export function membersOn(memberHosts: readonly string[], host: string): number {
  let n = 0;
  for (let i = 0; i < memberHosts.length; i++) if (memberHosts[i] === host) n++;
  return n;
}

export function groupWithPolicy(spec: RequestSpec, policy: string): NonNullable<RequestSpec['serverGroup']> | null {
  const g = spec.serverGroup;
  return g && g.policy === policy ? g : null;
}
