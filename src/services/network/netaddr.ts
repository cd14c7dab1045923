/**
 * IP address, CIDR and MAC arithmetic for the network service. Addresses are bigints
 * (IPv4 and IPv6 alike), so ranges, pools and allocation are plain integer maths; text
 * forms are canonical (IPv4 dotted quad without leading zeros, IPv6 compressed per
 * RFC 5952, lower case), so equal addresses are equal strings in the database.
 */

export type IpVersion = 4 | 6;
export interface Ip { version: IpVersion; value: bigint }
export interface Cidr { version: IpVersion; network: bigint; prefix: number }

const BITS: Record<IpVersion, number> = { 4: 32, 6: 128 };

function parseV4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length > 45) return null;
  let tail4: bigint | null = null;
  let text = s;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    tail4 = parseV4(s.slice(lastColon + 1));
    if (tail4 === null) return null;
    text = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const group = (g: string): number | null => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : null);
  const side = (t: string): number[] | null => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      const n = group(g);
      if (n === null) return null;
      out.push(n);
    }
    return out;
  };
  const head = side(halves[0]!);
  const rest = halves.length === 2 ? side(halves[1]!) : [];
  if (!head || !rest) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  } else {
    if (head.length !== 8) return null;
    groups = head;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tail4 !== null) v = (v & ~0xffffffffn) | tail4;
  return v;
}

/** Parse an IPv4 or IPv6 address (no prefix, no zone); null when it is not one. */
export function parseIp(s: unknown): Ip | null {
  if (typeof s !== 'string' || s === '') return null;
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === null ? null : { version: 6, value: v };
  }
  const v = parseV4(s);
  return v === null ? null : { version: 4, value: v };
}

export function formatIp(version: IpVersion, value: bigint): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: the longest run (2+) of zero groups becomes '::', the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an address, or null when `s` is not an address. */
export function canonicalIp(s: unknown): string | null {
  const ip = parseIp(s);
  return ip ? formatIp(ip.version, ip.value) : null;
}

/** Parse an address with an optional /prefix; `address` keeps the address as given, host bits and all. */
export function parseCidr(s: unknown, opts: { requirePrefix?: boolean } = {}): (Cidr & { address: bigint }) | null {
  if (typeof s !== 'string') return null;
  const slash = s.indexOf('/');
  if (slash < 0 && opts.requirePrefix) return null;
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return null;
  const max = BITS[ip.version];
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  return { version: ip.version, network: ip.value & netmask(ip.version, prefix), prefix, address: ip.value };
}

export function netmask(version: IpVersion, prefix: number): bigint {
  const bits = BITS[version];
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
}

export function cidrText(c: Cidr): string { return `${formatIp(c.version, c.network)}/${c.prefix}`; }

export function firstIp(c: Cidr): bigint { return c.network; }
export function lastIp(c: Cidr): bigint { return c.network | ((1n << BigInt(BITS[c.version] - c.prefix)) - 1n); }

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return ip.version === c.version && (ip.value & netmask(c.version, c.prefix)) === c.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.version !== b.version) return false;
  const p = Math.min(a.prefix, b.prefix);
  const m = netmask(a.version, p);
  return (a.network & m) === (b.network & m);
}

/** Normalise a MAC address to lower-case colon form; null when it is not a usable unicast address. */
export function canonicalMac(s: unknown): string | null {
  if (typeof s !== 'string') return null;
  const m = /^([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})$/.exec(s);
  if (!m) return null;
  const octets = m.slice(1).map((x) => x.toLowerCase());
  if (octets.every((o) => o === '00')) return null;
  if (parseInt(octets[0]!, 16) & 1) return null; // multicast / broadcast
  return octets.join(':');
}

/** The modified EUI-64 address of `mac` in a /64 prefix (IPv6 SLAAC, as Neutron computes it). */
export function eui64(prefix: Cidr, mac: string): bigint {
  const o = mac.split(':').map((x) => parseInt(x, 16));
  const iid = [o[0]! ^ 0x02, o[1]!, o[2]!, 0xff, 0xfe, o[3]!, o[4]!, o[5]!];
  let v = 0n;
  for (const b of iid) v = (v << 8n) | BigInt(b);
  return prefix.network | v;
}
