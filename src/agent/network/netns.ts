/**
 * Namespaces the agent builds (qdhcp-, qrouter-) hold veth ends whose other end is on a
 * bridge of the host namespace. This module plans, from what `ip -json addr show` sees in
 * such a namespace, the `ip -batch` lines that make its interfaces exactly as wanted:
 * MAC, MTU, up, addresses (extra global addresses removed), foreign interfaces deleted.
 */
import type { LinkAddresses } from './ip.ts';
import { parseCidr } from './names.ts';

export interface NsInterface {
  /** Name inside the namespace (ns-…, qr-…, qg-…). */
  name: string;
  /** Its veth peer in the host namespace (v + name). */
  hostEnd: string;
  /** The host bridge the peer is enslaved to. */
  bridge: string;
  mac: string;
  mtu: number;
  /** `ip/prefixLen` of every address it must hold. */
  addresses: string[];
}

export interface NsSpec {
  ns: string;
  interfaces: NsInterface[];
  sysctls: Record<string, number>;
}

function addrKey(ip: string, len: number): string {
  return ip.includes(':') ? `${parseCidr('address', `${ip}/128`).network}/${len}` : `${ip}/${len}`;
}

/** Batch lines for the inside of one namespace (pure). */
export function planNamespace(spec: NsSpec, observed: LinkAddresses[]): string[] {
  const lines: string[] = [];
  const want = new Map(spec.interfaces.map((i) => [i.name, i]));
  for (const l of observed) {
    if (l.name === 'lo') {
      if (!l.up) lines.push('link set lo up');
      continue;
    }
    const w = want.get(l.name);
    if (!w) { lines.push(`link del ${l.name}`); continue; }
    const set: string[] = [];
    if (l.mac?.toLowerCase() !== w.mac) set.push(`address ${w.mac}`);
    if (l.mtu !== w.mtu) set.push(`mtu ${w.mtu}`);
    if (!l.up) set.push('up');
    if (set.length) lines.push(`link set ${w.name} ${set.join(' ')}`);
    const wantAddrs = new Map(w.addresses.map((a) => { const [ip, len] = a.split('/'); return [addrKey(ip!, Number(len)), a]; }));
    const have = new Set<string>();
    for (const a of l.addresses) {
      if (a.scope === 'link' || a.scope === 'host') continue;
      const k = addrKey(a.ip, a.prefixLen);
      have.add(k);
      if (!wantAddrs.has(k)) lines.push(`addr del ${a.ip}/${a.prefixLen} dev ${w.name}`);
    }
    for (const [k, a] of wantAddrs) {
      if (!have.has(k)) lines.push(`addr add ${a} dev ${w.name}${a.includes(':') ? ' nodad' : ''}`);
    }
  }
  return lines;
}
