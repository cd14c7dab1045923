import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/cli/nats.ts';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

export interface Cloud {
  dir: string;
  port: number;
  url: string;
  authUrl: string;
  password: string;
  /** Environment for the openstack CLI as admin (what `source openrc` gives). */
  env: NodeJS.ProcessEnv;
  output: () => string;
  /** SIGTERM and wait: the clean Ctrl-C path. */
  stop(): Promise<number | null>;
  /** SIGKILL: the crash path. */
  kill9(): Promise<void>;
  child: ChildProcess;
}

/** Parse `export K='v'` lines of an openrc file. */
export function readOpenrc(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1').replaceAll("'\\''", "'");
  }
  return env;
}

/** Start `gureum up` in a fresh (or given) directory and wait until it serves. */
export async function startCloud(opts: { dir?: string; database?: string; port?: number; extraArgs?: string[] } = {}): Promise<Cloud> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'gureum-test-'));
  const port = opts.port ?? (await freePort());
  const args = ['up', '--data-dir', join(dir, 'data'), '--config-dir', join(dir, 'conf'), '--port', String(port), ...(opts.extraArgs ?? [])];
  if (opts.database) args.push('--database', opts.database);
  // Every test cloud shares one build of the guest images (built on first use, then cached).
  const child = spawn(join(ROOT, 'bin/gureum'), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { GUREUM_GUEST_DIR: join(ROOT, '.cache', 'guest'), ...process.env, GUREUM_LOG_LEVEL: process.env.GUREUM_TEST_LOG_LEVEL ?? 'warn' } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`gureum up did not start in 300 s:\n${out}`)), 300_000);
    const check = () => { if (out.includes('Gureum is up.')) { clearTimeout(t); resolve(); } };
    child.stdout!.on('data', check);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`gureum up exited with ${code}:\n${out}`)); });
  });
  const rc = readOpenrc(join(dir, 'conf', 'openrc'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    dir, port, url: `http://127.0.0.1:${port}`, authUrl: rc.OS_AUTH_URL!, password: rc.OS_PASSWORD!,
    env: { ...cleanEnv(), ...rc }, output: () => out, child,
    async stop() { child.kill('SIGTERM'); const code = await exited; killGuests(dir); await dropAgentNetwork(join(dir, 'data', 'agent')); return code; },
    async kill9() { child.kill('SIGKILL'); await exited; killGuests(dir); },
  };
}

/**
 * What a stopped test cloud's agent leaves on the machine once its guests are gone: the
 * host nftables tables and the network state directory (both named after the agent's data
 * directory: /run/gureum/net-<id>, gureum_net_<id>), and the namespaces, their daemons and
 * the devices it recorded making (its state file's `owned`).
 */
export async function dropAgentNetwork(agentDataDir: string): Promise<void> {
  const id = createHash('sha1').update(resolve(agentDataDir)).digest('hex').slice(0, 12);
  const stateDir = join('/run/gureum', `net-${id}`);
  // What the agent recorded making and a test did not delete (a network left at the end).
  let owned: string[] = [];
  try { owned = (JSON.parse(readFileSync(join(stateDir, 'network-agent.json'), 'utf8')) as { owned?: string[] }).owned ?? []; } catch { /* none */ }
  for (const name of owned) {
    if (existsSync(join('/run/netns', name))) {
      const { stdout } = await run('ip', ['netns', 'pids', name]).catch(() => ({ stdout: '' }));
      for (const pid of stdout.split('\n').filter(Boolean)) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      await run('ip', ['netns', 'del', name]).catch(() => undefined);
    } else {
      await run('ip', ['link', 'del', name]).catch(() => undefined);
    }
  }
  for (const family of ['bridge', 'inet']) await run('nft', ['delete', 'table', family, `gureum_net_${id}`]).catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
}

/**
 * QEMU processes outlive gureum by design (the agent re-adopts them); a test's cloud is
 * gone for good, so its guests go too. Also stops an agent left behind by a kill -9.
 */
export function killGuests(dir: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes(dir) && ((cmd.split('\0')[0] ?? '').includes('qemu-system') || cmd.includes('\0agent\0'))) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}

/** The process environment without any OS_* settings of the caller's. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OS_')));
}

/** Run the real openstack CLI; returns parsed JSON when `-f json` is among the args. */
export async function openstack(env: NodeJS.ProcessEnv, ...args: string[]): Promise<unknown> {
  const { stdout } = await run('openstack', args, { env, maxBuffer: 16 * 1024 * 1024 });
  return args.includes('json') ? JSON.parse(stdout || 'null') : stdout;
}

/** Like `openstack` but expects failure; returns stderr. */
export async function openstackFails(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  try {
    await run('openstack', args, { env });
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
  throw new Error(`openstack ${args.join(' ')} succeeded but should have failed`);
}

/** Raw HTTP against the cloud, JSON in and out. */
export async function api(cloud: { url: string }, method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers['X-Auth-Token'] = opts.token;
  if (opts.body !== undefined || opts.raw !== undefined) headers['Content-Type'] ??= 'application/json';
  const res = await fetch(`${cloud.url}${path}`, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) });
  const text = await res.text();
  let json: unknown = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  return { status: res.status, headers: res.headers, json: json as Record<string, any>, text };
}

/** A password token for a user, scoped to a project by id (or unscoped). */
export async function passwordToken(cloud: { url: string }, user: { name: string; domain?: string; password: string }, projectId?: string): Promise<string> {
  const r = await api(cloud, 'POST', '/identity/v3/auth/tokens', { body: { auth: {
    identity: { methods: ['password'], password: { user: { name: user.name, domain: { name: user.domain ?? 'Default' }, password: user.password } } },
    ...(projectId ? { scope: { project: { id: projectId } } } : {}),
  } } });
  if (r.status !== 201) throw new Error(`token for ${user.name}: ${r.status} ${r.text}`);
  return r.headers.get('x-subject-token')!;
}

/** A second project with a member user, made with the CLI as the identity tests do. */
export async function otherProject(env: NodeJS.ProcessEnv, name: string): Promise<{ env: NodeJS.ProcessEnv; projectId: string }> {
  const p = (await openstack(env, 'project', 'create', name, '-f', 'json')) as Record<string, unknown>;
  await openstack(env, 'user', 'create', '--password', `pw-${name}`, `user-${name}`);
  await openstack(env, 'role', 'add', '--user', `user-${name}`, '--project', name, 'member');
  return {
    projectId: String(p.id),
    env: { ...env, OS_USERNAME: `user-${name}`, OS_PASSWORD: `pw-${name}`, OS_PROJECT_NAME: name, OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default' },
  };
}

/** How many QEMU processes run for an instance (its uuid is on their command line). */
export function qemuProcesses(uuid: string): number {
  let n = 0;
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(uuid) && (cmd.split('\0')[0] ?? '').includes('qemu-system')) n++;
    } catch { /* gone */ }
  }
  return n;
}
