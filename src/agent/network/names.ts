/**
 * Validation of everything from the state that ends up in a command line, a config file or
 * an nftables ruleset, and the names the agent owns. Nothing unvalidated reaches a tool:
 * ids, MACs, addresses and prefixes are checked here and rejected with a clear message.
 */
import { isIP } from 'node:net';
import { deviceNames } from '../../bus/network.ts';

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NS_PREFIX = /^[A-Za-z0-9_.-]{0,32}$/;

export class InvalidInput extends Error {
  constructor(message: string) { super(message); this.name = 'InvalidInput'; }
}

export function checkId(what: string, id: string): string {
  if (typeof id !== 'string' || !ID.test(id)) throw new InvalidInput(`${what}: invalid id ${JSON.stringify(id)}`);
  return id;
}

export function checkMac(what: string, mac: string): string {
  const m = typeof mac === 'string' ? mac.toLowerCase() : '';
  if (!MAC.test(m)) throw new InvalidInput(`${what}: invalid MAC ${JSON.stringify(mac)}`);
  if (m === '00:00:00:00:00:00' || (parseInt(m.slice(0, 2), 16) & 1) === 1) throw new InvalidInput(`${what}: not a unicast MAC: ${m}`);
  return m;
}

export function checkIfname(name: string): string {
  if (!IFNAME.test(name)) throw new InvalidInput(`invalid interface name ${JSON.stringify(name)}`);
  return name;
}

export function checkNamespacePrefix(prefix: string): string {
  if (!NS_PREFIX.test(prefix)) throw new InvalidInput(`invalid namespace prefix ${JSON.stringify(prefix)}`);
  return prefix;
}

export function checkIp(what: string, ip: string): { ip: string; version: 4 | 6 } {
  const v = typeof ip === 'string' ? isIP(ip) : 0;
  if (v !== 4 && v !== 6) throw new InvalidInput(`${what}: invalid IP address ${JSON.stringify(ip)}`);
  return { ip: v === 6 ? ip.toLowerCase() : ip, version: v };
}

export interface Cidr { network: string; prefixLen: number; version: 4 | 6 }

/** Parses `addr/len` (or a bare address as a host prefix), normalised to the network address. */
export function parseCidr(what: string, text: string): Cidr {
  if (typeof text !== 'string') throw new InvalidInput(`${what}: invalid prefix`);
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) throw new InvalidInput(`${what}: invalid prefix ${JSON.stringify(text)}`);
  const { version } = checkIp(what, addr);
  const max = version === 4 ? 32 : 128;
  const prefixLen = len === undefined ? max : Number(len);
  if (!/^\d{1,3}$/.test(len ?? String(max)) || !Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > max) {
    throw new InvalidInput(`${what}: invalid prefix length in ${JSON.stringify(text)}`);
  }
  return { network: formatIp(maskBits(ipToBigInt(addr), prefixLen, version), version), prefixLen, version };
}

export function checkPrefixLen(what: string, len: number, version: 4 | 6): number {
  if (!Number.isInteger(len) || len < 0 || len > (version === 4 ? 32 : 128)) throw new InvalidInput(`${what}: invalid prefix length ${len}`);
  return len;
}

export function checkMtu(what: string, mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new InvalidInput(`${what}: invalid MTU ${mtu}`);
  return mtu;
}

export function cidrText(c: Cidr): string { return `${c.network}/${c.prefixLen}`; }

export function ipToBigInt(ip: string): bigint {
  if (isIP(ip) === 4) return ip.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
  // IPv6: expand '::', allow an embedded IPv4 tail.
  let text = ip.toLowerCase();
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail) {
    const n = ipToBigInt(v4tail[1]!);
    text = text.slice(0, -v4tail[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function formatIp(n: bigint, version: 4 | 6): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function maskBits(n: bigint, prefixLen: number, version: 4 | 6): bigint {
  const bits = version === 4 ? 32 : 128;
  const hostBits = BigInt(bits - prefixLen);
  return (n >> hostBits) << hostBits;
}

/** Dotted netmask of an IPv4 prefix length. */
export function netmask(prefixLen: number): string {
  return formatIp(((1n << 32n) - 1n) ^ ((1n << BigInt(32 - prefixLen)) - 1n), 4);
}

/** The EUI-64 IPv6 link-local address a MAC produces (what a guest's kernel configures). */
export function linkLocalFromMac(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  b[0] = b[0]! ^ 2;
  const hex = (x: number) => x.toString(16).padStart(2, '0');
  const g = [`${hex(b[0]!)}${hex(b[1]!)}`, `${hex(b[2]!)}ff`, `fe${hex(b[3]!)}`, `${hex(b[4]!)}${hex(b[5]!)}`];
  return formatIp(ipToBigInt(`fe80::${g.join(':')}`), 6);
}

/** Names of everything the agent creates; `prefix` keeps simulated hosts' namespaces apart. */
export function agentNames(prefix: string) {
  checkNamespacePrefix(prefix);
  return {
    dhcpNamespace: (networkId: string) => `${prefix}${deviceNames.dhcpNamespace(networkId)}`,
    routerNamespace: (routerId: string) => `${prefix}${deviceNames.routerNamespace(routerId)}`,
    isDhcpNamespace: (ns: string) => ns.startsWith(`${prefix}qdhcp-`),
    isRouterNamespace: (ns: string) => ns.startsWith(`${prefix}qrouter-`),
    /** The host-local metadata namespace of a network (see metadata-local.ts). */
    metaNamespace: (networkId: string) => `${prefix}qmeta-${networkId}`,
    isMetaNamespace: (ns: string) => ns.startsWith(`${prefix}qmeta-`),
  };
}

/** Host-namespace device prefixes the agent owns (bridges, VXLAN devices, veth host ends). */
export const OWNED_HOST_PREFIXES = ['brq', 'vxlan-', 'vns-', 'vqr-', 'vqg-', 'vmt-'] as const;
export const TAP_PREFIX = 'tap';

export function isOwnedHostDevice(name: string): boolean {
  return OWNED_HOST_PREFIXES.some((p) => name.startsWith(p));
}
