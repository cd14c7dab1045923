/**
 * Host-namespace bridges: one per network (`brq<network id>`), STP and multicast snooping
 * off, no IPv6 address of their own, MTU of the network. Flat networks use an existing
 * physical bridge instead, which the agent never creates, changes or removes.
 */
import type { Link } from './ip.ts';

export interface BridgeSpec { name: string; mtu: number }

/** Lines that create the bridge when missing (or of another kind) and bring it to MTU, up. */
export function bridgeLines(want: BridgeSpec, have: Link | undefined): string[] {
  const lines: string[] = [];
  if (have && have.kind !== 'bridge') {
    lines.push(`link del ${want.name}`);
    have = undefined;
  }
  if (!have) {
    lines.push(`link add ${want.name} type bridge stp_state 0 forward_delay 0 mcast_snooping 0`, `link set ${want.name} addrgenmode none`);
  }
  const set: string[] = [];
  if (!have || have.mtu !== want.mtu) set.push(`mtu ${want.mtu}`);
  if (!have || !have.up) set.push('up');
  if (set.length) lines.push(`link set ${want.name} ${set.join(' ')}`);
  return lines;
}

/**
 * Lines that enslave an existing (or just created: `have` undefined) device to `bridge`
 * with `mtu` and bring it up (or keep it down: a port with admin_state_up false). A new
 * device first loses IPv6 address generation, so the host namespace never answers on the
 * tenant network.
 */
export function attachLines(name: string, bridge: string, mtu: number, have: Link | undefined, up = true): string[] {
  const lines: string[] = [];
  if (!have || (!have.up && have.addrGenMode !== 'none')) lines.push(`link set ${name} addrgenmode none`);
  const set: string[] = [];
  if (!have || have.master !== bridge) set.push(`master ${bridge}`);
  if (!have || have.mtu !== mtu) set.push(`mtu ${mtu}`);
  if (up && (!have || !have.up)) set.push('up');
  if (!up && have?.up) set.push('down');
  if (set.length) lines.push(`link set ${name} ${set.join(' ')}`);
  return lines;
}
