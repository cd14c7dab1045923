/**
 * The helper daemons the agent runs inside namespaces (dnsmasq, haproxy): started with
 * `ip netns exec`, daemonised by themselves (so they outlive an agent restart, as Neutron's
 * do), found again through their pid file. A daemon counts as running only when the pid is
 * alive with exactly the expected command line and in the expected namespace; anything
 * else is stopped and started afresh.
 */
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { run } from './exec.ts';
import { namespaceInode, processNamespaceInode } from './ip.ts';
import { sleep } from './util.ts';

export interface DaemonSpec {
  /** The namespace it runs in. */
  ns: string;
  /** Command and arguments (as they appear in /proc/<pid>/cmdline). */
  argv: string[];
  pidFile: string;
}

export type DaemonStatus =
  | { state: 'running'; pid: number }
  /** A process from the pid file lives, but with other arguments or in another (old) namespace. */
  | { state: 'different'; pid: number; why: string }
  | { state: 'stopped' };

export async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(pidFile, 'utf8')).trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch { return undefined; }
}

export async function cmdline(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((_, i, a) => i < a.length - 1 || a[i] !== '');
  } catch { return undefined; }
}

export async function daemonStatus(spec: DaemonSpec): Promise<DaemonStatus> {
  const pid = await readPid(spec.pidFile);
  if (pid === undefined) return { state: 'stopped' };
  const args = await cmdline(pid);
  if (!args) return { state: 'stopped' };
  // A pid reused by an unrelated process: only ours mention our pid file / config.
  if (args[0] !== spec.argv[0] && !args.some((a) => a.includes(spec.pidFile))) return { state: 'stopped' };
  if (args.join('\0') !== spec.argv.join('\0')) return { state: 'different', pid, why: 'arguments changed' };
  const [want, have] = await Promise.all([namespaceInode(spec.ns), processNamespaceInode(pid)]);
  if (want === undefined || have !== want) return { state: 'different', pid, why: 'not in the current namespace' };
  return { state: 'running', pid };
}

/** Starts the daemon (it forks itself and writes the pid file); returns its pid. */
export async function startDaemon(spec: DaemonSpec): Promise<number> {
  await rm(spec.pidFile, { force: true });
  await run('ip', ['netns', 'exec', spec.ns, ...spec.argv], { timeoutMs: 10_000 });
  for (let i = 0; i < 100; i++) {
    const pid = await readPid(spec.pidFile);
    if (pid !== undefined) return pid;
    await sleep(10);
  }
  throw new Error(`${spec.argv[0]} in ${spec.ns} started but wrote no pid file ${spec.pidFile}`);
}

/** The process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch { return false; }
}

/** SIGTERM, then SIGKILL after `graceMs`; waits until the process is gone. */
export async function stopProcess(pid: number, graceMs = 2000): Promise<void> {
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(10);
  if (alive(pid)) {
    try { process.kill(pid, 'SIGKILL'); } catch { return; }
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(10);
  }
}

export async function stopDaemon(spec: DaemonSpec): Promise<boolean> {
  const st = await daemonStatus(spec);
  if (st.state === 'stopped') return false;
  await stopProcess(st.pid);
  await rm(spec.pidFile, { force: true });
  return true;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  process.kill(pid, sig);
}
