/**
 * Security groups and anti-spoofing as one nftables ruleset for the host namespace — a
 * pure function of the state, applied atomically with one `nft -f` (see applyFirewall).
 *
 * The kernel here has no bridge conntrack, so the stateful part runs in the inet family,
 * which bridged IP traffic passes with `net.bridge.bridge-nf-call-ip{,6}tables=1`. There
 * `iifname`/`oifname` are the bridge, not the port, so the bridge family marks packets first:
 *
 *   bridge prerouting  -300  iifname <tap>  → anti-spoof-<tap>: only the port's MAC(s) and
 *                            addresses may send; mark = port index (low 16 bits)
 *   bridge forward     -300  oifname <tap>  → mark |= port index << 16
 *   inet prerouting    raw   ct zone = zone of the network's bridge (tenant networks may overlap);
 *                            physical bridges keep zone 0: the host itself may have an address
 *                            there, and its own connections are tracked in zone 0
 *   inet forward       0     mark & 0xffff  → egress-<tap> of the sender
 *   inet forward       10    mark & 0xffff0000 → ingress-<tap> of the receiver
 *
 * A port chain holds what every port gets (DHCP, neighbour discovery, conntrack state),
 * then jumps to one chain per security group and direction (sg-in-<id>, sg-eg-<id>) whose
 * matches accept; what no group accepts is dropped. An accept ends only its own base
 * chain, so a packet the sender's egress allowed still meets the receiver's ingress.
 *
 * Ports without port security get no chain at all (no mark, no filtering).
 */
import { basename } from 'node:path';
import type { SecurityGroupRuleState, SecurityGroupState } from '../../bus/network.ts';
import { runIn } from './exec.ts';
import { checkId, cidrText, ipToBigInt, linkLocalFromMac, parseCidr, type Cidr } from './names.ts';

export interface FirewallPort {
  /** The port's device (tap) on the bridge. */
  device: string;
  /** 1..65535, unique on the host; the packet mark. */
  index: number;
  mac: string;
  /** The port's fixed addresses. */
  ips: string[];
  allowedAddressPairs: { ipAddress: string; mac: string }[];
  securityGroupIds: string[];
}

export interface FirewallInput {
  /** The tables' name (both families); default `gureum`. One per agent, so two clouds on one machine do not overwrite each other's. */
  table?: string;
  /** Ports with port security (others are not filtered and need not be listed). */
  ports: FirewallPort[];
  /** Every bridge of this host's networks; the agent's own (tenant) bridges with a conntrack zone. */
  bridges: { name: string; zone?: number }[];
  securityGroups: SecurityGroupState[];
  /**
   * Metadata requests (to 169.254.169.254:80) from these devices get `mac` as destination,
   * so the bridge hands them to this host's metadata namespace of their network.
   */
  metadataRedirects?: { devices: string[]; mac: string }[];
}

export interface FirewallRules { text: string; warnings: string[] }

export const TABLE = 'gureum';

const PROTOCOLS: Record<string, number> = {
  icmp: 1, igmp: 2, ipip: 4, tcp: 6, egp: 8, udp: 17, 'ipv6-encap': 41, 'ipv6-route': 43, 'ipv6-frag': 44, rsvp: 46,
  gre: 47, esp: 50, ah: 51, icmpv6: 58, 'ipv6-icmp': 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, ospf: 89, pgm: 113, vrrp: 112,
  sctp: 132, dccp: 33, udplite: 136,
};
const WITH_PORTS = new Set([6, 17, 33, 132, 136]);

/** Neutron's protocol (number as text, a name, 'any' or null) as a number; null = any. */
export function protocolNumber(p: string | null, ethertype: 'IPv4' | 'IPv6'): number | null {
  if (p === null || p === '' || p === 'any') return null;
  const n = /^\d{1,3}$/.test(p) ? Number(p) : PROTOCOLS[p.toLowerCase()];
  if (n === undefined || n > 255) throw new Error(`unknown protocol ${JSON.stringify(p)}`);
  // Neutron accepts 'icmp' on an IPv6 rule and means ICMPv6.
  if (ethertype === 'IPv6' && n === 1) return 58;
  return n;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
const q = (s: string) => `"${s}"`;

/** Drops prefixes contained in others (so anonymous sets never hold overlapping elements). */
export function mergePrefixes(list: Cidr[]): Cidr[] {
  const uniq = new Map(list.map((c) => [cidrText(c), c]));
  const all = [...uniq.values()];
  const contains = (a: Cidr, b: Cidr) => {
    if (a.version !== b.version || a.prefixLen > b.prefixLen) return false;
    const bits = BigInt((a.version === 4 ? 32 : 128) - a.prefixLen);
    return (ipToBigInt(a.network) >> bits) === (ipToBigInt(b.network) >> bits);
  };
  return all.filter((c) => !all.some((o) => o.prefixLen < c.prefixLen && contains(o, c)));
}

function elements(list: Cidr[]): string {
  return mergePrefixes(list).map((c) => (c.prefixLen === (c.version === 4 ? 32 : 128) ? c.network : cidrText(c))).join(', ');
}

/** Name of the set holding a group's member addresses of one family. */
export function groupSetName(groupId: string, version: 4 | 6): string { return `rg-${groupId}-${version}`; }

function portAddresses(p: FirewallPort): Map<string, Cidr[]> {
  const byMac = new Map<string, Cidr[]>();
  const add = (mac: string, c: Cidr) => { const l = byMac.get(mac) ?? []; l.push(c); byMac.set(mac, l); };
  byMac.set(p.mac, []);
  for (const ip of p.ips) add(p.mac, parseCidr(`port ${p.device}`, ip));
  for (const pair of p.allowedAddressPairs) add((pair.mac || p.mac).toLowerCase(), parseCidr(`port ${p.device} address pair`, pair.ipAddress));
  return byMac;
}

function antiSpoof(p: FirewallPort): string[] {
  const byMac = portAddresses(p);
  const macs = [...byMac.keys()];
  const r: string[] = [
    `meta mark set ${hex(p.index)}`,
    `ether saddr != { ${macs.join(', ')} } counter drop`,
    // ARP: the sender hardware address must be the port's, the sender IP one of its own (or 0.0.0.0: a probe).
    `ether type arp arp saddr ether != { ${macs.join(', ')} } counter drop`,
    'ether type arp arp saddr ip 0.0.0.0 return',
  ];
  for (const [mac, cidrs] of byMac) {
    const v4 = cidrs.filter((c) => c.version === 4);
    if (v4.length) r.push(`ether type arp ether saddr ${mac} arp saddr ether ${mac} arp saddr ip { ${elements(v4)} } return`);
  }
  r.push('ether type arp counter drop');
  // IPv4: DHCP from 0.0.0.0 is allowed, DHCP server replies from a VM are not.
  r.push('ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return');
  r.push('ether type ip udp sport 67 udp dport 68 counter drop');
  for (const [mac, cidrs] of byMac) {
    const v4 = cidrs.filter((c) => c.version === 4);
    if (v4.length) r.push(`ether type ip ether saddr ${mac} ip saddr { ${elements(v4)} } return`);
  }
  r.push('ether type ip counter drop');
  // IPv6: no router advertisements or DHCPv6 server replies from a VM; DAD / MLD from ::; link-local from the MAC.
  r.push('ether type ip6 icmpv6 type nd-router-advert counter drop');
  r.push('ether type ip6 udp sport 547 udp dport 546 counter drop');
  r.push('ether type ip6 ip6 saddr :: icmpv6 type { nd-router-solicit, nd-neighbor-solicit, mld-listener-report, mld-listener-done, mld2-listener-report } return');
  for (const [mac, cidrs] of byMac) {
    const v6 = [...cidrs.filter((c) => c.version === 6), parseCidr('link-local', linkLocalFromMac(mac))];
    r.push(`ether type ip6 ether saddr ${mac} ip6 saddr { ${elements(v6)} } return`);
  }
  r.push('counter drop');
  return r;
}

/** The nft expression of one security group rule (without verdict), or throws when invalid. */
export function ruleMatch(rule: SecurityGroupRuleState, knownGroups: ReadonlySet<string>): string {
  const v = rule.ethertype === 'IPv6' ? 6 : 4;
  if (rule.ethertype !== 'IPv4' && rule.ethertype !== 'IPv6') throw new Error(`invalid ethertype ${String(rule.ethertype)}`);
  const fam = v === 4 ? 'ip' : 'ip6';
  const parts = [`meta nfproto ${v === 4 ? 'ipv4' : 'ipv6'}`];
  const dir = rule.direction === 'ingress' ? 'saddr' : 'daddr';
  if (rule.direction !== 'ingress' && rule.direction !== 'egress') throw new Error(`invalid direction ${String(rule.direction)}`);
  if (rule.remoteIpPrefix) {
    const c = parseCidr('remote_ip_prefix', rule.remoteIpPrefix);
    if (c.version !== v) throw new Error(`remote_ip_prefix ${rule.remoteIpPrefix} is not ${rule.ethertype}`);
    if (c.prefixLen > 0) parts.push(`${fam} ${dir} ${cidrText(c)}`);
  } else if (rule.remoteGroupId) {
    if (!knownGroups.has(rule.remoteGroupId)) throw new Error(`remote group ${rule.remoteGroupId} is not in the state`);
    parts.push(`${fam} ${dir} @${groupSetName(rule.remoteGroupId, v)}`);
  }
  const proto = protocolNumber(rule.protocol, rule.ethertype);
  if (proto !== null) {
    parts.push(`meta l4proto ${proto}`);
    const { portRangeMin: min, portRangeMax: max } = rule;
    const int = (x: number, hi: number) => Number.isInteger(x) && x >= 0 && x <= hi;
    if (WITH_PORTS.has(proto)) {
      if (min !== null || max !== null) {
        const lo = min ?? 1, up = max ?? 65535;
        if (!int(lo, 65535) || !int(up, 65535) || lo > up) throw new Error(`invalid port range ${min}-${max}`);
        if (!(lo <= 1 && up === 65535)) parts.push(lo === up ? `th dport ${lo}` : `th dport ${lo}-${up}`);
      }
    } else if (proto === 1 || proto === 58) {
      const icmp = proto === 1 ? 'icmp' : 'icmpv6';
      if (min !== null) {
        if (!int(min, 255)) throw new Error(`invalid ICMP type ${min}`);
        parts.push(`${icmp} type ${min}`);
        if (max !== null) {
          if (!int(max, 255)) throw new Error(`invalid ICMP code ${max}`);
          parts.push(`${icmp} code ${max}`);
        }
      }
    }
  }
  return parts.join(' ');
}

/** Chains holding one group's rules (shared by all its ports: a rule change touches only these). */
export function groupChainName(groupId: string, direction: 'ingress' | 'egress'): string {
  return `sg-${direction === 'ingress' ? 'in' : 'eg'}-${groupId}`;
}

/** A group's rules as two chains; a match accepts (for this hook's chain). */
function groupChains(g: SecurityGroupState, known: ReadonlySet<string>, warnings: string[]): { egress: string[]; ingress: string[] } {
  const egress: string[] = [], ingress: string[] = [];
  const seen = new Set<string>();
  for (const rule of g.rules) {
    let m: string;
    try { m = ruleMatch(rule, known); } catch (e) {
      warnings.push(`security group ${g.id} rule ${rule.id}: ${(e as Error).message}; rule skipped`);
      continue;
    }
    const key = `${rule.direction} ${m}`;
    if (seen.has(key)) continue;
    seen.add(key);
    (rule.direction === 'egress' ? egress : ingress).push(`${m} accept`);
  }
  return { egress, ingress };
}

function portChains(p: FirewallPort, groups: Map<string, SecurityGroupState>, warnings: string[]): { egress: string[]; ingress: string[] } {
  const own = p.securityGroupIds.filter((id, i, a) => a.indexOf(id) === i).map((id) => groups.get(id)).filter((g): g is SecurityGroupState => g !== undefined);
  for (const id of p.securityGroupIds) if (!groups.has(id)) warnings.push(`port ${p.device}: security group ${id} is not in the state`);
  const stateful = own.length === 0 || own.some((g) => g.stateful);
  const egress = [
    // DHCP and neighbour discovery work whatever the rules say (as in Neutron).
    'meta nfproto ipv4 udp sport 68 udp dport 67 accept',
    'meta nfproto ipv6 udp sport 546 udp dport 547 accept',
    'icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld-listener-done, mld2-listener-report } accept',
  ];
  const ingress = [
    'meta nfproto ipv4 udp sport 67 udp dport 68 accept',
    'meta nfproto ipv6 udp sport 547 udp dport 546 accept',
    'icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, nd-redirect } accept',
  ];
  if (stateful) {
    egress.push('ct state established,related accept', 'ct state invalid counter drop');
    ingress.push('ct state established,related accept', 'ct state invalid counter drop');
  }
  for (const g of own) {
    egress.push(`jump ${groupChainName(g.id, 'egress')}`);
    ingress.push(`jump ${groupChainName(g.id, 'ingress')}`);
  }
  egress.push('counter drop');
  ingress.push('counter drop');
  return { egress, ingress };
}

/** A chain of the ruleset: base chains have a `type … hook …` head. */
export interface NftChain { head: string | null; rules: string[] }
/** A named set: its declaration (type, flags) and its elements ('' when empty). */
export interface NftSet { decl: string; elements: string }
export interface NftTable { family: 'bridge' | 'inet'; name: string; sets: Map<string, NftSet>; chains: Map<string, NftChain> }

export interface FirewallRules {
  /** The whole ruleset, replacing the previous one in one transaction. */
  text: string;
  /** The same as data, for firewallDelta(). */
  tables: NftTable[];
  warnings: string[];
}

/** The whole `gureum` bridge and inet tables (pure). */
export function renderFirewall(input: FirewallInput): FirewallRules {
  const warnings: string[] = [];
  const groups = new Map<string, SecurityGroupState>();
  for (const g of input.securityGroups) {
    try { groups.set(checkId('security group', g.id), g); } catch (e) { warnings.push(`${(e as Error).message}; group ignored`); }
  }
  const ports = [...input.ports].sort((a, b) => a.index - b.index);
  const name = input.table ?? TABLE;
  const bridgeT: NftTable = { family: 'bridge', name, sets: new Map(), chains: new Map() };
  const inetT: NftTable = { family: 'inet', name, sets: new Map(), chains: new Map() };

  const okPorts: { p: FirewallPort; spoof: string[] }[] = [];
  for (const p of ports) {
    try { okPorts.push({ p, spoof: antiSpoof(p) }); } catch (e) {
      warnings.push(`port ${p.device}: ${(e as Error).message}; the port drops all traffic`);
      okPorts.push({ p, spoof: [`meta mark set ${hex(p.index)}`, 'counter drop'] });
    }
  }

  bridgeT.chains.set('prerouting', {
    head: 'type filter hook prerouting priority -300; policy accept;',
    rules: [
      // Marks only mean something when set here; VXLAN-decapsulated packets keep the underlay's.
      'iifname "vxlan-*" meta mark set 0',
      ...(okPorts.length ? [`iifname vmap { ${okPorts.map(({ p }) => `${q(p.device)} : jump anti-spoof-${p.device}`).join(', ')} }`] : []),
      // (after anti-spoofing) metadata requests stay on this host
      ...(input.metadataRedirects ?? []).filter((r) => r.devices.length).map((r) =>
        `iifname { ${r.devices.map(q).join(', ')} } ip daddr 169.254.169.254 tcp dport 80 ether daddr set ${r.mac}`),
    ],
  });
  bridgeT.chains.set('forward', {
    head: 'type filter hook forward priority -300; policy accept;',
    rules: okPorts.length ? [`oifname vmap { ${okPorts.map(({ p }) => `${q(p.device)} : jump mark-${p.device}`).join(', ')} }`] : [],
  });
  for (const { p, spoof } of okPorts) {
    bridgeT.chains.set(`anti-spoof-${p.device}`, { head: null, rules: spoof });
    bridgeT.chains.set(`mark-${p.device}`, { head: null, rules: [`meta mark set meta mark | ${hex(p.index << 16 >>> 0)}`] });
  }

  // remote-group member sets
  const referenced = new Set<string>();
  for (const { p } of okPorts) for (const id of p.securityGroupIds) for (const r of groups.get(id)?.rules ?? []) if (r.remoteGroupId) referenced.add(r.remoteGroupId);
  for (const id of [...referenced].sort()) {
    const g = groups.get(id);
    if (!g) continue;
    for (const v of [4, 6] as const) {
      const members: Cidr[] = [];
      for (const ip of g.memberIps) {
        try { const c = parseCidr(`group ${id} member`, ip); if (c.version === v) members.push(c); } catch (e) { warnings.push((e as Error).message); }
      }
      inetT.sets.set(groupSetName(id, v), { decl: `type ${v === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags interval; auto-merge;`, elements: members.length ? elements(members) : '' });
    }
  }
  const bridges = [...new Map(input.bridges.map((b) => [b.name, b])).values()].sort((a, b) => a.name.localeCompare(b.name));
  const zoned = bridges.filter((b) => b.zone !== undefined);
  inetT.chains.set('zones', {
    head: 'type filter hook prerouting priority raw; policy accept;',
    rules: zoned.length ? [`ct zone set iifname map { ${zoned.map((b) => `${q(b.name)} : ${b.zone}`).join(', ')} }`] : [],
  });
  // Two base chains: the sender's egress, then (an accept there ends only that chain) the receiver's ingress.
  const guard = bridges.length && okPorts.length ? [`iifname != { ${bridges.map((b) => q(b.name)).join(', ')} } accept`] : [];
  inetT.chains.set('forward-egress', {
    head: 'type filter hook forward priority filter; policy accept;',
    rules: guard.length ? [...guard, `meta mark & 0x0000ffff vmap { ${okPorts.map(({ p }) => `${hex(p.index)} : jump egress-${p.device}`).join(', ')} }`] : [],
  });
  inetT.chains.set('forward-ingress', {
    head: 'type filter hook forward priority 10; policy accept;',
    rules: guard.length ? [...guard, `meta mark & 0xffff0000 vmap { ${okPorts.map(({ p }) => `${hex(p.index << 16 >>> 0)} : jump ingress-${p.device}`).join(', ')} }`] : [],
  });
  const used = new Set<string>();
  for (const { p } of okPorts) {
    const { egress, ingress } = portChains(p, groups, warnings);
    inetT.chains.set(`egress-${p.device}`, { head: null, rules: egress });
    inetT.chains.set(`ingress-${p.device}`, { head: null, rules: ingress });
    for (const id of p.securityGroupIds) if (groups.has(id)) used.add(id);
  }
  const known = new Set(groups.keys());
  for (const id of [...used].sort()) {
    const { egress, ingress } = groupChains(groups.get(id)!, known, warnings);
    inetT.chains.set(groupChainName(id, 'egress'), { head: null, rules: egress });
    inetT.chains.set(groupChainName(id, 'ingress'), { head: null, rules: ingress });
  }
  const tables = [bridgeT, inetT];
  return { text: serializeFull(tables), tables, warnings };
}

/** Full replacement: create-if-missing, delete, define — one transaction. */
export function serializeFull(tables: NftTable[]): string {
  const out: string[] = [];
  for (const t of tables) out.push(`table ${t.family} ${t.name}`, `delete table ${t.family} ${t.name}`);
  for (const t of tables) {
    out.push(`table ${t.family} ${t.name} {`);
    for (const [name, set] of t.sets) {
      out.push(`  set ${name} {`, `    ${set.decl}`);
      if (set.elements) out.push(`    elements = { ${set.elements} }`);
      out.push('  }');
    }
    for (const [name, c] of t.chains) {
      out.push(`  chain ${name} {`);
      if (c.head) out.push(`    ${c.head}`);
      for (const l of c.rules) out.push(`    ${l}`);
      out.push('  }');
    }
    out.push('}');
  }
  return out.join('\n') + '\n';
}

const sameRules = (a: NftChain, b: NftChain) => a.head === b.head && a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i]);

/**
 * The nft script that turns the applied ruleset `prev` into `next` in one transaction,
 * touching only chains and sets that differ (a full reload costs time in proportion to
 * the whole ruleset; this in proportion to the change). '' when nothing differs. Base
 * chains are never added or removed (both rulesets always have them).
 */
export function firewallDelta(prev: NftTable[], next: NftTable[]): string {
  const adds: string[] = [], fills: string[] = [], removes: string[] = [];
  for (const n of next) {
    const p = prev.find((t) => t.family === n.family && t.name === n.name);
    const at = `${n.family} ${n.name}`;
    if (!p) return serializeFull(next);
    for (const [name, set] of n.sets) {
      const old = p.sets.get(name);
      if (!old) adds.push(`add set ${at} ${name} { ${set.decl} }`);
      else if (old.decl !== set.decl) return serializeFull(next);
      if (!old || old.elements !== set.elements) {
        if (old) fills.push(`flush set ${at} ${name}`);
        if (set.elements) fills.push(`add element ${at} ${name} { ${set.elements} }`);
      }
    }
    for (const [name, c] of n.chains) {
      const old = p.chains.get(name);
      if (old && old.head !== c.head) return serializeFull(next);
      if (!old && c.head) return serializeFull(next);
      if (old && sameRules(old, c)) continue;
      if (!old) adds.push(`add chain ${at} ${name}`);
      else fills.push(`flush chain ${at} ${name}`);
      for (const r of c.rules) fills.push(`add rule ${at} ${name} ${r}`);
    }
    for (const [name, c] of p.chains) {
      if (n.chains.has(name)) continue;
      if (c.head) return serializeFull(next);
      removes.push(`flush chain ${at} ${name}`, `delete chain ${at} ${name}`);
    }
    for (const name of p.sets.keys()) if (!n.sets.has(name)) removes.push(`delete set ${at} ${name}`);
  }
  const all = [...adds, ...fills, ...removes];
  return all.length ? all.join('\n') + '\n' : '';
}

/**
 * The name of an agent's host tables: one per agent state directory (one per cloud), so
 * two clouds on one machine each filter only their own ports instead of replacing each
 * other's ruleset. `/run/gureum/net-<id>` gives `gureum_net_<id>`.
 */
export function firewallTableName(stateDir: string): string {
  return `${TABLE}_${basename(stateDir).replace(/[^A-Za-z0-9_]/g, '_').slice(0, 48)}`;
}

/** Loads a ruleset atomically (`nft -f -`) in a namespace. */
export async function loadRuleset(ns: string | undefined, text: string): Promise<void> {
  await runIn(ns, 'nft', ['-f', '-'], { input: text });
}

/** Whether both tables of this name exist in a namespace. */
export async function firewallPresent(ns: string | undefined, table = TABLE): Promise<boolean> {
  const { stdout } = await runIn(ns, 'nft', ['list', 'tables']);
  const t = stdout.split('\n').map((l) => l.trim());
  return t.includes(`table bridge ${table}`) && t.includes(`table inet ${table}`);
}
