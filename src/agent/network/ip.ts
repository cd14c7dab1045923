/**
 * Typed wrappers over iproute2: `ip -json` / `bridge -json` for reading, `-batch` for
 * writing many changes with one process, and named namespaces (`/run/netns`). Every
 * function takes the namespace to act in (undefined = the agent's own).
 */
import { readdir, stat } from 'node:fs/promises';
import { run, runIn, CommandError } from './exec.ts';

export interface Link {
  name: string;
  index: number;
  mtu: number;
  mac?: string;
  /** Administratively up. */
  up: boolean;
  /** No carrier: for a tap, no process has it open. */
  noCarrier: boolean;
  master?: string;
  kind?: string;
  vxlan?: { id: number; local?: string; port: number; learning: boolean };
  tun?: { type: string; vnetHdr: boolean; multiQueue: boolean; persist: boolean };
  /** veth: the peer is in another namespace. */
  peerElsewhere?: boolean;
  addrGenMode?: string;
}

interface RawLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  address?: string;
  flags?: string[];
  master?: string;
  link_netnsid?: number;
  inet6_addr_gen_mode?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
  };
}

function nsArgs(ns: string | undefined): string[] { return ns ? ['-n', ns] : []; }

function parseJson<T>(text: string): T[] {
  const t = text.trim();
  return t ? (JSON.parse(t) as T[]) : [];
}

export function toLink(r: RawLink): Link {
  const flags = r.flags ?? [];
  const link: Link = {
    name: r.ifname, index: r.ifindex, mtu: r.mtu, mac: r.address, up: flags.includes('UP'), noCarrier: flags.includes('NO-CARRIER'),
    master: r.master, kind: r.linkinfo?.info_kind, addrGenMode: r.inet6_addr_gen_mode,
  };
  const d = r.linkinfo?.info_data ?? {};
  if (link.kind === 'vxlan') {
    link.vxlan = { id: Number(d.id), local: typeof d.local === 'string' ? d.local : undefined, port: Number(d.port), learning: d.learning === true };
  } else if (link.kind === 'tun') {
    link.tun = { type: String(d.type), vnetHdr: d.vnet_hdr === true, multiQueue: d.multi_queue === true, persist: d.persist === true };
  } else if (link.kind === 'veth') {
    link.peerElsewhere = r.link_netnsid !== undefined;
  }
  return link;
}

/** Every link with details (`ip -d -json link show`). */
export async function listLinks(ns: string | undefined): Promise<Link[]> {
  const { stdout } = await run('ip', [...nsArgs(ns), '-d', '-json', 'link', 'show']);
  return parseJson<RawLink>(stdout).map(toLink);
}

export async function getLink(ns: string | undefined, name: string): Promise<Link | undefined> {
  const r = await run('ip', [...nsArgs(ns), '-d', '-json', 'link', 'show', 'dev', name], { allowFailure: true });
  if (r.code !== 0) {
    if (/does not exist|Cannot find device/.test(r.stderr)) return undefined;
    throw new CommandError('ip', ['link', 'show', 'dev', name], r.code, r.stderr);
  }
  return parseJson<RawLink>(r.stdout).map(toLink)[0];
}

export interface Address { ip: string; prefixLen: number; family: 4 | 6; scope: string }
export interface LinkAddresses { name: string; mtu: number; mac?: string; up: boolean; addresses: Address[] }

interface RawAddrLink {
  ifname: string; mtu: number; address?: string; flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

/** Links with their addresses (`ip -json addr show`). */
export async function listAddresses(ns: string | undefined): Promise<LinkAddresses[]> {
  const { stdout } = await run('ip', [...nsArgs(ns), '-json', 'addr', 'show']);
  return parseJson<RawAddrLink>(stdout).map((l) => ({
    name: l.ifname, mtu: l.mtu, mac: l.address, up: (l.flags ?? []).includes('UP'),
    addresses: (l.addr_info ?? []).filter((a) => a.family === 'inet' || a.family === 'inet6')
      .map((a) => ({ ip: a.local, prefixLen: a.prefixlen, family: a.family === 'inet' ? 4 as const : 6 as const, scope: a.scope })),
  }));
}

export interface Route { dst: string; gateway?: string; dev?: string; protocol?: string; family: 4 | 6 }

/** Routes of the main table with the given protocol (e.g. 'static': the ones the agent adds). */
export async function listRoutes(ns: string | undefined, family: 4 | 6, protocol: string): Promise<Route[]> {
  const { stdout } = await run('ip', [...nsArgs(ns), `-${family}`, '-json', 'route', 'show', 'proto', protocol]);
  return parseJson<{ dst: string; gateway?: string; dev?: string; protocol?: string }>(stdout)
    .map((r) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, protocol: r.protocol ?? protocol, family }));
}

export interface Neighbor { ip: string; mac?: string; dev: string; permanent: boolean }

/** Neighbour (ARP/NDP) entries of a device. */
export async function listNeighbors(ns: string | undefined, dev: string): Promise<Neighbor[]> {
  const { stdout } = await run('ip', [...nsArgs(ns), '-json', 'neigh', 'show', 'dev', dev]);
  return parseJson<{ dst: string; lladdr?: string; state?: string[] }>(stdout)
    .map((n) => ({ ip: n.dst, mac: n.lladdr, dev, permanent: (n.state ?? []).includes('PERMANENT') }));
}

export interface BatchResult { failed: { line: string; error: string }[] }

/**
 * Runs `lines` as one `ip -batch` (or `bridge -batch`) with -force: every line is tried;
 * failures are returned with the line that caused them.
 */
export async function batch(tool: 'ip' | 'bridge', ns: string | undefined, lines: string[]): Promise<BatchResult> {
  if (lines.length === 0) return { failed: [] };
  for (const l of lines) if (/[\n\r"'\\]/.test(l)) throw new Error(`refusing batch line ${JSON.stringify(l)}`);
  const r = await run(tool, [...nsArgs(ns), '-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFailure: true });
  if (r.code === 0) return { failed: [] };
  // iproute2 prints the error, then "Command failed -:N" for each failing line.
  const failed: { line: string; error: string }[] = [];
  let pending: string[] = [];
  for (const l of r.stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(l);
    if (m) {
      failed.push({ line: lines[Number(m[1]) - 1] ?? `line ${m[1]}`, error: pending.join(' ').trim() || 'failed' });
      pending = [];
    } else if (l.trim()) pending.push(l.trim());
  }
  if (failed.length === 0) failed.push({ line: lines.join('; '), error: r.stderr.trim() || `exit ${r.code}` });
  return { failed };
}

export interface FdbEntry { mac: string; dev: string; dst?: string; self: boolean; permanent: boolean }

/** Forwarding entries (`bridge fdb show`), of every device or of one. */
export async function listFdb(ns: string | undefined, dev?: string): Promise<FdbEntry[]> {
  const { stdout } = await run('bridge', [...nsArgs(ns), '-json', 'fdb', 'show', ...(dev ? ['dev', dev] : [])]);
  return parseJson<{ mac: string; ifname?: string; dst?: string; flags?: string[]; state?: string }>(stdout)
    .filter((e) => e.ifname !== undefined || dev !== undefined)
    .map((e) => ({ mac: e.mac, dev: e.ifname ?? dev!, dst: e.dst, self: (e.flags ?? []).includes('self'), permanent: e.state === 'permanent' }));
}

const NETNS_DIR = '/run/netns';

export async function listNamespaces(): Promise<string[]> {
  try { return await readdir(NETNS_DIR); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Identity of a named namespace (the nsfs inode), to tell a re-created one from the old. */
export async function namespaceInode(name: string): Promise<number | undefined> {
  try { return (await stat(`${NETNS_DIR}/${name}`)).ino; } catch { return undefined; }
}

/** The network namespace inode a process is in (undefined when it is gone). */
export async function processNamespaceInode(pid: number): Promise<number | undefined> {
  try { return (await stat(`/proc/${pid}/ns/net`)).ino; } catch { return undefined; }
}

export async function addNamespace(name: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
}

export async function deleteNamespace(name: string): Promise<void> {
  const r = await run('ip', ['netns', 'delete', name], { allowFailure: true });
  if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new CommandError('ip', ['netns', 'delete', name], r.code, r.stderr);
}

/** Pids of the processes in a namespace. */
export async function namespacePids(name: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', name], { allowFailure: true });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

/** Sets sysctls (`sysctl -w k=v …`) inside a namespace. */
export async function sysctl(ns: string | undefined, settings: Record<string, string | number>): Promise<void> {
  const args = Object.entries(settings).map(([k, v]) => {
    if (!/^[a-z0-9_.-]+$/.test(k) || !/^[A-Za-z0-9_.-]+$/.test(String(v))) throw new Error(`invalid sysctl ${k}=${v}`);
    return `${k}=${v}`;
  });
  await runIn(ns, 'sysctl', ['-q', '-w', ...args]);
}
