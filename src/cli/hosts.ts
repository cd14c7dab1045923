/**
 * `gureum up --hosts N`: N simulated compute hosts on one machine. Each host is a network
 * namespace (`gh-<id>-<i>`) whose `eth0` sits on an underlay bridge in the root namespace
 * (`gh-<id>`, the root namespace has `.1`, host i has `.<10+i>` of a private /24 chosen per
 * cloud) and whose own external bridge (`br-ex` inside the namespace) is joined by a veth to
 * the machine's external bridge. The agent of host i runs inside that namespace, so its
 * bridges, VXLAN devices, taps, nftables and QEMU guests are that host's alone.
 * See docs/multi-host.md.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../common/logger.ts';

const exec = promisify(execFile);

/** The most simulated hosts one cloud may have (addresses .11 – .250 of its /24, and short device names). */
export const MAX_HOSTS = 64;
/** The external bridge inside every host namespace (what `public` maps to there). */
export const HOST_EXTERNAL_BRIDGE = 'br-ex';
/** The underlay interface inside every host namespace. */
export const HOST_UNDERLAY_IF = 'eth0';
/** The host namespace's end of the veth to the machine's external bridge. */
export const HOST_EXTERNAL_IF = 'ex0';

/** What is kept in `<dataDir>/hosts.json`, so restarts reuse the same names and addresses. */
export interface HostsFile { id: string; subnet: string }

export interface SimulatedHost {
  index: number;
  /** The network namespace standing for the host. */
  namespace: string;
  /** The host's underlay address: its VXLAN tunnel IP. */
  address: string;
  /** Prefix for the agent's qdhcp-/qrouter-/qmeta- namespaces (names in /run/netns are global). */
  namespacePrefix: string;
  /** Root-namespace ends of the underlay and external veths. */
  underlayVeth: string;
  externalVeth: string;
}

export interface HostsLayout {
  id: string;
  /** The underlay /24, e.g. 10.213.7.0/24. */
  subnet: string;
  prefixLen: number;
  /** The underlay bridge in the root namespace and the root namespace's address on it. */
  bridge: string;
  gateway: string;
  hosts: SimulatedHost[];
}

/** Six hex digits naming one cloud's devices and namespaces, from its data directory. */
export function cloudId(dataDir: string): string {
  return createHash('sha1').update(resolve(dataDir)).digest('hex').slice(0, 6);
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** Whether two IPv4 prefixes overlap. */
export function overlaps(a: { network: string; prefixLen: number }, b: { network: string; prefixLen: number }): boolean {
  const len = Math.min(a.prefixLen, b.prefixLen);
  const size = 2 ** (32 - len);
  return Math.floor(ipToInt(a.network) / size) === Math.floor(ipToInt(b.network) / size);
}

/**
 * A /24 in 10.200.0.0 – 10.249.255.0 for this cloud: derived from its data directory (so it
 * is the same on every start and differs between clouds), moved on while it overlaps a
 * prefix the machine already uses.
 */
export function chooseSubnet(dataDir: string, taken: { network: string; prefixLen: number }[]): string {
  const h = createHash('sha1').update(`underlay:${resolve(dataDir)}`).digest();
  const start = (h.readUInt16BE(0) % (50 * 256));
  for (let k = 0; k < 50 * 256; k++) {
    const n = (start + k) % (50 * 256);
    const network = `10.${200 + Math.floor(n / 256)}.${n % 256}.0`;
    if (!taken.some((t) => overlaps(t, { network, prefixLen: 24 }))) return `${network}/24`;
  }
  throw new Error('no free /24 in 10.200.0.0/16 – 10.249.0.0/16 for the underlay');
}

/** Names and addresses of a cloud's underlay and its hosts 1..n. Pure. */
export function hostsLayout(file: HostsFile, n: number): HostsLayout {
  if (!/^[0-9a-f]{6}$/.test(file.id)) throw new Error(`hosts.json: invalid id ${file.id}`);
  const m = /^(\d+)\.(\d+)\.(\d+)\.0\/24$/.exec(file.subnet);
  if (!m || [m[1], m[2], m[3]].some((o) => Number(o) > 255)) throw new Error(`hosts.json: the underlay must be an IPv4 /24, not ${file.subnet}`);
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new Error(`--hosts must be 1 to ${MAX_HOSTS}, not ${n}`);
  const base = `${m[1]}.${m[2]}.${m[3]}`;
  const hosts: SimulatedHost[] = [];
  for (let i = 1; i <= n; i++) {
    hosts.push({
      index: i, namespace: `gh-${file.id}-${i}`, address: `${base}.${10 + i}`, namespacePrefix: `gh-${file.id}-${i}-`,
      underlayVeth: `gh-${file.id}-u${i}`, externalVeth: `gh-${file.id}-x${i}`,
    });
  }
  return { id: file.id, subnet: file.subnet, prefixLen: 24, bridge: `gh-${file.id}`, gateway: `${base}.1`, hosts };
}

async function ip(args: string[]): Promise<string> {
  return (await exec('ip', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

async function ipOk(args: string[]): Promise<boolean> {
  try { await ip(args); return true; } catch { return false; }
}

/** The IPv4 prefixes the root namespace has routes or addresses for (to keep clear of). */
async function usedPrefixes(exceptBridge?: string): Promise<{ network: string; prefixLen: number }[]> {
  const routes = JSON.parse((await ip(['-4', '-json', 'route', 'show', 'table', 'all'])) || '[]') as { dst: string; dev?: string; type?: string }[];
  const out: { network: string; prefixLen: number }[] = [];
  for (const r of routes) {
    if (r.dev === exceptBridge || r.dst === 'default' || r.type === 'broadcast' || r.type === 'local' || r.type === 'multicast') continue;
    const [network, len] = r.dst.split('/');
    if (network && /^\d+\.\d+\.\d+\.\d+$/.test(network)) out.push({ network, prefixLen: len === undefined ? 32 : Number(len) });
  }
  return out;
}

/**
 * The cloud's underlay settings: read from `<dataDir>/hosts.json`, or chosen (and written)
 * on first use.
 */
export async function loadHostsFile(dataDir: string, log: Logger): Promise<HostsFile> {
  const path = join(dataDir, 'hosts.json');
  if (existsSync(path)) {
    const f = JSON.parse(readFileSync(path, 'utf8')) as Partial<HostsFile>;
    if (typeof f.id === 'string' && typeof f.subnet === 'string') return { id: f.id, subnet: f.subnet };
    log.warn({ path }, 'hosts.json is incomplete; choosing the underlay again');
  }
  const id = cloudId(dataDir);
  const subnet = chooseSubnet(dataDir, await usedPrefixes(`gh-${id}`));
  const f: HostsFile = { id, subnet };
  writeFileSync(path, `${JSON.stringify(f, null, 2)}\n`);
  log.info({ id, subnet }, 'chose the underlay for the simulated hosts');
  return f;
}

/** The underlay bridge in the root namespace, up, with the root namespace's address. Idempotent. */
export async function ensureUnderlay(l: HostsLayout, log: Logger): Promise<void> {
  if (!(await ipOk(['link', 'show', 'dev', l.bridge]))) {
    await ip(['link', 'add', l.bridge, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
    log.info({ bridge: l.bridge }, 'created the underlay bridge');
  }
  await ip(['addr', 'replace', `${l.gateway}/${l.prefixLen}`, 'dev', l.bridge]);
  await ip(['link', 'set', l.bridge, 'up']);
}

function namespaces(): Promise<string[]> {
  return ip(['-json', 'netns', 'list']).then((s) => (JSON.parse(s || '[]') as { name: string }[]).map((n) => n.name));
}

/**
 * Host i: its namespace (lo up), `eth0` on the underlay with the host's address, and its
 * external bridge `br-ex` joined to the machine's external bridge. Idempotent: what exists
 * and is right is left alone (a namespace that exists keeps its guests).
 */
export async function ensureHost(l: HostsLayout, h: SimulatedHost, externalBridge: string, log: Logger): Promise<void> {
  const present = (await namespaces()).includes(h.namespace);
  if (present && !(await ipOk(['-n', h.namespace, 'link', 'show', 'lo']))) {
    // a name left in /run/netns without a namespace behind it
    await ip(['netns', 'delete', h.namespace]).catch(() => undefined);
  }
  if (!present || !(await ipOk(['-n', h.namespace, 'link', 'show', 'lo']))) {
    await ip(['netns', 'add', h.namespace]);
    log.info({ namespace: h.namespace }, 'created a host namespace');
  }
  const inNs = (args: string[]) => ip(['-n', h.namespace, ...args]);
  await inNs(['link', 'set', 'lo', 'up']);
  // the underlay: root end on the underlay bridge, eth0 in the host
  if (!(await ipOk(['link', 'show', 'dev', h.underlayVeth]))) {
    await inNs(['link', 'del', HOST_UNDERLAY_IF]).catch(() => undefined);
    await ip(['link', 'add', h.underlayVeth, 'type', 'veth', 'peer', 'name', HOST_UNDERLAY_IF, 'netns', h.namespace]);
  }
  await ip(['link', 'set', h.underlayVeth, 'master', l.bridge, 'up']);
  await inNs(['addr', 'replace', `${h.address}/${l.prefixLen}`, 'dev', HOST_UNDERLAY_IF]);
  await inNs(['link', 'set', HOST_UNDERLAY_IF, 'up']);
  // the external network: the host's own br-ex, joined to the machine's
  if (!(await ipOk(['-n', h.namespace, 'link', 'show', 'dev', HOST_EXTERNAL_BRIDGE]))) {
    await inNs(['link', 'add', HOST_EXTERNAL_BRIDGE, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
  }
  await inNs(['link', 'set', HOST_EXTERNAL_BRIDGE, 'up']);
  if (!(await ipOk(['link', 'show', 'dev', h.externalVeth]))) {
    await inNs(['link', 'del', HOST_EXTERNAL_IF]).catch(() => undefined);
    await ip(['link', 'add', h.externalVeth, 'type', 'veth', 'peer', 'name', HOST_EXTERNAL_IF, 'netns', h.namespace]);
  }
  await ip(['link', 'set', h.externalVeth, 'master', externalBridge, 'up']);
  await inNs(['link', 'set', HOST_EXTERNAL_IF, 'master', HOST_EXTERNAL_BRIDGE, 'up']);
}

/** Namespaces of this cloud's hosts that exist beyond the first `n` (an earlier, larger `--hosts`). */
export async function extraHosts(l: HostsLayout, n: number): Promise<string[]> {
  const re = new RegExp(`^gh-${l.id}-(\\d+)$`);
  return (await namespaces()).filter((name) => { const m = re.exec(name); return m !== null && Number(m[1]) > n; });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function killNamespace(name: string): Promise<number> {
  const pids = (await ip(['netns', 'pids', name]).catch(() => '')).split('\n').map(Number).filter((p) => p > 0 && p !== process.pid);
  for (const p of pids) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
  for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  for (const p of pids.filter(alive)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  return pids.length;
}

/**
 * Removes everything `up --hosts N` built for this data directory: the agents' qdhcp/qrouter/qmeta
 * namespaces of every host and the processes in them (dnsmasq, haproxy), the host namespaces
 * and what runs there (guests, agents), the veths, the underlay bridge and hosts.json.
 * The servers stay in the database (SHUTOFF once an agent reports them gone).
 */
export async function removeHosts(dataDir: string, log: Logger): Promise<{ namespaces: string[]; processes: number }> {
  const path = join(dataDir, 'hosts.json');
  const id = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Partial<HostsFile>).id ?? cloudId(dataDir) : cloudId(dataDir);
  if (!/^[0-9a-f]{6}$/.test(id)) throw new Error(`hosts.json: invalid id ${id}`);
  const mine = (await namespaces()).filter((n) => n.startsWith(`gh-${id}-`));
  const hostRe = new RegExp(`^gh-${id}-\\d+$`);
  // the agents' namespaces first (their veths live in the hosts), then the hosts
  const ordered = [...mine.filter((n) => !hostRe.test(n)), ...mine.filter((n) => hostRe.test(n))];
  let processes = 0;
  for (const n of ordered) {
    processes += await killNamespace(n);
    await ip(['netns', 'delete', n]).catch((err: unknown) => log.warn({ namespace: n, err: (err as Error).message }, 'cannot delete a namespace'));
  }
  const links = JSON.parse((await ip(['-json', 'link', 'show'])) || '[]') as { ifname: string }[];
  const re = new RegExp(`^gh-${id}(-[ux]\\d+)?$`);
  for (const link of links.filter((k) => re.test(k.ifname))) await ip(['link', 'del', link.ifname]).catch(() => undefined);
  // the agents' files under /run/gureum (named as agent.ts names them: a hash of each agent's data directory)
  for (const n of mine.filter((x) => hostRe.test(x))) {
    const agentDir = resolve(join(dataDir, `agent-${n.slice(`gh-${id}-`.length)}`));
    rmSync(join('/run/gureum', `net-${createHash('sha1').update(agentDir).digest('hex').slice(0, 12)}`), { recursive: true, force: true });
  }
  rmSync(path, { force: true });
  log.info({ namespaces: ordered.length, processes }, 'removed the simulated hosts');
  return { namespaces: ordered, processes };
}

/** Each host's agent data directory: its instances, image cache and pid files. */
export function hostDataDir(dataDir: string, h: SimulatedHost): string {
  return join(dataDir, `agent-${h.index}`);
}
