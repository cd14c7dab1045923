/**
 * Force-host and ignore-hosts handling (Nova does this in the host manager, before the
 * filters): an admin's forced host ("zone:host", "zone:host:node", ":host" or "host")
 * leaves only that host; hosts in `ignoreHosts` (e.g. tried by an earlier attempt) are
 * dropped. The scheduler always applies this filter first, whatever `scheduler.filters`
 * says. Unlike old Nova, a forced host still has to pass the other filters (in current
 * Nova placement still checks its capacity; here the ram/cores/disk filters do that).
 */
import type { Filter, HostState, RequestSpec } from '../types.ts';

/** Parses Nova's forced-host syntax into its zone (may be empty) and host parts. */
export function parseForceHost(value: string): { zone: string; host: string } {
  const parts = value.split(':');
  if (parts.length === 1) return { zone: '', host: parts[0] };
  return { zone: parts[0], host: parts[1] };
}

function check(host: HostState, forced: { zone: string; host: string } | null, ignore: readonly string[] | undefined): boolean {
  if (forced && forced.host && host.host !== forced.host) return false;
  if (forced && forced.zone && host.availabilityZone !== forced.zone) return false;
  if (ignore && ignore.length > 0 && ignore.includes(host.host)) return false;
  return true;
}

export const forceHostsFilter: Filter = {
  name: 'force-hosts',
  passes: (host, spec) => check(host, spec.forceHost ? parseForceHost(spec.forceHost) : null, spec.ignoreHosts),
  forRequest(spec: RequestSpec) {
    const ignore = spec.ignoreHosts && spec.ignoreHosts.length > 0 ? spec.ignoreHosts : undefined;
    const forced = spec.forceHost ? parseForceHost(spec.forceHost) : null;
    if (!forced && !ignore) return null;
    if (forced && forced.host) {
      const name = forced.host;
      const zone = forced.zone;
      return (host) => host.host === name && (!zone || host.availabilityZone === zone) && (!ignore || !ignore.includes(name));
    }
    return (host) => check(host, forced, ignore);
  },
  need(spec) {
    const parts: string[] = [];
    if (spec.forceHost) parts.push(`forced to ${spec.forceHost}`);
    if (spec.ignoreHosts?.length) parts.push(`ignoring ${spec.ignoreHosts.join(', ')}`);
    return parts.join(', ');
  },
  explain(host, spec) {
    if (spec.ignoreHosts?.includes(host.host)) return 'ignored';
    const forced = spec.forceHost ? parseForceHost(spec.forceHost) : null;
    if (forced?.zone && forced.host === host.host && host.availabilityZone !== forced.zone) return `in zone ${host.availabilityZone}`;
    return 'not the forced host';
  },
};
