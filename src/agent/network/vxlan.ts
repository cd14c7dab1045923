/**
 * VXLAN per network: `vxlan-<vni>` (id <vni> local <tunnel ip> dstport 4789 nolearning)
 * enslaved to the network's bridge. No multicast: head-end replication through all-zero
 * FDB entries, one per peer host, plus static entries for the MACs known on other hosts
 * (l2population). Stale entries are removed.
 */
import type { FdbEntry, Link } from './ip.ts';
import { attachLines } from './bridge.ts';

export const VXLAN_PORT = 4789;
const FLOOD = '00:00:00:00:00:00';

export interface VxlanSpec {
  name: string;
  vni: number;
  local: string;
  bridge: string;
  mtu: number;
  peers: string[];
  /** MAC → tunnel address of the host that has it. */
  remoteMacs: { mac: string; ip: string }[];
}

export function vxlanLines(want: VxlanSpec, have: Link | undefined): string[] {
  const lines: string[] = [];
  const ok = have?.kind === 'vxlan' && have.vxlan?.id === want.vni && have.vxlan.local === want.local && have.vxlan.port === VXLAN_PORT && !have.vxlan.learning;
  if (have && !ok) {
    lines.push(`link del ${want.name}`);
    have = undefined;
  }
  if (!have) lines.push(`link add ${want.name} type vxlan id ${want.vni} local ${want.local} dstport ${VXLAN_PORT} nolearning`);
  lines.push(...attachLines(want.name, want.bridge, want.mtu, have));
  return lines;
}

/** `bridge -batch` lines that make the VXLAN devices' forwarding entries exactly these. */
export function fdbLines(want: VxlanSpec[], have: FdbEntry[]): string[] {
  const lines: string[] = [];
  for (const v of want) {
    const mine = have.filter((e) => e.dev === v.name && e.self && e.dst !== undefined);
    const wantFlood = new Set(v.peers.filter((p) => p !== v.local));
    const wantStatic = new Map<string, string>();
    for (const m of v.remoteMacs) if (m.ip !== v.local) wantStatic.set(m.mac.toLowerCase(), m.ip);
    const haveFlood = new Set<string>();
    for (const e of mine) {
      const mac = e.mac.toLowerCase();
      if (mac === FLOOD) {
        if (wantFlood.has(e.dst!)) haveFlood.add(e.dst!);
        else lines.push(`fdb del ${FLOOD} dev ${v.name} dst ${e.dst} self`);
      } else if (wantStatic.get(mac) === e.dst) {
        wantStatic.delete(mac);
      } else {
        lines.push(`fdb del ${mac} dev ${v.name} dst ${e.dst} self`);
      }
    }
    for (const p of wantFlood) if (!haveFlood.has(p)) lines.push(`fdb append ${FLOOD} dev ${v.name} dst ${p} self permanent`);
    for (const [mac, ip] of wantStatic) lines.push(`fdb replace ${mac} dev ${v.name} dst ${ip} self permanent`);
  }
  return lines;
}
