/**
 * Helpers for the data-plane tests and the benchmark: throw-away network namespaces with
 * a random suffix (never the root namespace), "fake VMs" (a veth named like the port's tap
 * whose peer, with the port's MAC, sits in its own namespace), a real DHCP client
 * (busybox udhcpc), ping and small TCP/HTTP helpers run inside namespaces.
 */
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { run, runIn } from './exec.ts';
import { deleteNamespace, listNamespaces, namespacePids } from './ip.ts';

const TOOLS = ['ip', 'bridge', 'nft', 'dnsmasq', 'haproxy', 'busybox', 'sysctl'];

function onPath(cmd: string): boolean {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    try { accessSync(join(d, cmd), constants.X_OK); return true; } catch { /* next */ }
  }
  return false;
}

/** False when the data-plane tests can run here, else why not (a skip reason). */
export function canRunNetworkTests(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length) return `missing tools: ${missing.join(', ')} (Debian: iproute2 nftables dnsmasq-base haproxy busybox-static procps)`;
  return false;
}

export { sleep } from './util.ts';

/** Namespaces (and processes in them) a test made; all removed by cleanup(). */
export class TestNamespaces {
  readonly suffix: string;
  readonly dir: string;
  private readonly made = new Set<string>();

  private constructor(readonly tag: string) {
    this.suffix = randomBytes(3).toString('hex');
    this.dir = mkdtempSync(join(tmpdir(), `gnet-${tag}-`));
    // dnsmasq (as nobody) re-reads its files and haproxy (nobody) reaches the agent's socket below here
    chmodSync(this.dir, 0o711);
  }

  static async create(tag: string): Promise<TestNamespaces> {
    return new TestNamespaces(tag);
  }

  /** A unique name for this test run. */
  name(base: string): string { return `t${this.tag}-${base}-${this.suffix}`; }

  /** Prefix for agent-made namespaces of one simulated host. */
  prefix(host: string): string { return `t${this.suffix}${host}-`; }

  async add(name: string): Promise<string> {
    await run('ip', ['netns', 'add', name]);
    this.made.add(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Removes every namespace made here or whose name carries this run's suffix. */
  async cleanup(): Promise<void> {
    const all = await listNamespaces();
    const ours = all.filter((n) => this.made.has(n) || n.includes(this.suffix));
    for (const n of ours) {
      for (const pid of await namespacePids(n)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    for (const n of ours) await deleteNamespace(n);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A fake VM: veth `tap` in the host namespace, `eth0` with `mac` in namespace `vm`. */
export async function fakeVm(ns: TestNamespaces, host: string, vm: string, tap: string, mac: string, mtu = 1450): Promise<void> {
  await ns.add(vm);
  await run('ip', ['-n', host, 'link', 'add', tap, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'address', mac, 'mtu', String(mtu), 'netns', vm]);
  await run('ip', ['-n', vm, 'link', 'set', 'eth0', 'up']);
}

export interface Lease { ip: string; mask: string; router?: string; mtu?: string; staticroutes?: string; hostname?: string; domain?: string; dns?: string; serverid?: string }

/** The udhcpc event script: configures eth0 like a guest's DHCP client and records the lease. */
function dhcpScript(dir: string): string {
  const path = join(dir, 'udhcpc.sh');
  if (!existsSync(path)) {
    writeFileSync(path, [
      '#!/bin/sh',
      'case "$1" in',
      '  bound|renew)',
      '    ip addr flush dev "$interface" scope global',
      '    ip addr add "$ip/$mask" dev "$interface"',
      '    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"',
      '    if [ -n "$staticroutes" ]; then',
      '      set -- $staticroutes',
      '      while [ $# -ge 2 ]; do',
      '        if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface"; else ip route replace "$1" via "$2" dev "$interface"; fi',
      '        shift 2',
      '      done',
      '    elif [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi',
      '    env | grep -E "^(ip|mask|router|mtu|staticroutes|hostname|domain|dns|serverid)=" > "$LEASE_FILE"',
      '    ;;',
      'esac',
      '',
    ].join('\n'), { mode: 0o755 });
  }
  return path;
}

/** Runs a real DHCP client (busybox udhcpc) in the fake VM; returns the lease it got and configured. */
export async function dhcpClient(ns: TestNamespaces, vm: string, opts: { tries?: number; timeoutSec?: number } = {}): Promise<Lease> {
  const leaseFile = join(ns.dir, `lease-${vm}-${randomBytes(3).toString('hex')}`);
  const script = dhcpScript(ns.dir);
  const r = await run('ip', ['netns', 'exec', vm, 'env', `LEASE_FILE=${leaseFile}`, 'busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-s', script,
    '-t', String(opts.tries ?? 5), '-T', String(opts.timeoutSec ?? 1), '-O', 'staticroutes', '-O', 'mtu'], { allowFailure: true, timeoutMs: 30_000 });
  if (!existsSync(leaseFile)) throw new Error(`no DHCP lease in ${vm}: ${r.stderr.trim()}`);
  const lease: Record<string, string> = {};
  for (const line of readFileSync(leaseFile, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) lease[line.slice(0, i)] = line.slice(i + 1);
  }
  return lease as unknown as Lease;
}

/** One ping; true when answered within `waitSec`. */
export async function ping(vm: string, dst: string, opts: { waitSec?: number; src?: string; count?: number } = {}): Promise<boolean> {
  const args = ['-n', '-q', '-c', String(opts.count ?? 1), '-W', String(opts.waitSec ?? 1)];
  if (opts.src) args.push('-I', opts.src);
  const r = await runIn(vm, 'ping', [...args, dst], { allowFailure: true });
  return r.code === 0;
}

/** Pings until answered (true) or `timeoutMs` passes (false). */
export async function pingUntil(vm: string, dst: string, timeoutMs: number, src?: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ping(vm, dst, { waitSec: 0.2, src })) return true;
    if (Date.now() > deadline) return false;
  }
}

/** HTTP GET from inside a namespace (curl); status and body. */
export async function httpGet(vm: string, url: string, timeoutSec = 3): Promise<{ status: number; body: string }> {
  const r = await runIn(vm, 'curl', ['-s', '-m', String(timeoutSec), '-w', '\n%{http_code}', url], { allowFailure: true });
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)) };
}

/**
 * A TCP server in a namespace that answers every connection with the peer's address and
 * closes (python3); stop() kills it.
 */
export async function peerEchoServer(ns: string, port: number): Promise<{ stop(): void }> {
  const code = [
    'import socket,sys',
    's=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    `s.bind(("0.0.0.0", ${port})); s.listen(16); print("ready", flush=True)`,
    'while True:',
    '    c,a=s.accept(); c.sendall((a[0]+"\\n").encode()); c.close()',
  ].join('\n');
  const child = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`echo server in ${ns} did not start`)), 5000);
    child.stdout.once('data', () => { clearTimeout(t); resolve(); });
    child.once('exit', (c) => { clearTimeout(t); reject(new Error(`echo server in ${ns} exited ${c}`)); });
  });
  return { stop: () => { if (child.pid) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } } } };
}

/** Connects from a namespace and returns what the server sent ('' when it could not connect). */
export async function tcpRead(ns: string, host: string, port: number, timeoutSec = 2): Promise<string> {
  const code = [
    'import socket,sys',
    'try:',
    `    c=socket.create_connection(("${host}", ${port}), timeout=${timeoutSec}); print(c.recv(100).decode().strip())`,
    'except Exception as e:',
    '    print("")',
  ].join('\n');
  const r = await runIn(ns, 'python3', ['-c', code], { allowFailure: true, timeoutMs: (timeoutSec + 3) * 1000 });
  return r.stdout.trim();
}
