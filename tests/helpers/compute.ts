/** Helpers for the compute tests: polling, server state through the CLI, QEMU's own view of a guest, SSH. */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { QmpClient } from '../../src/agent/hypervisor/qemu/qmp.ts';
import { openstack, type Cloud } from './cloud.ts';

const run = promisify(execFile);

export type Server = Record<string, unknown> & { id: string; status: string };

/** Poll `f` until it returns something other than undefined/false; the last error is reported on timeout. */
export async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 90_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** SSH into a guest through its forwarded port on 127.0.0.1. */
export async function ssh(port: string | number, key: string, cmd: string): Promise<string> {
  const { stdout } = await run('ssh', ['-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', 'root@127.0.0.1', cmd]);
  return stdout;
}

/**
 * A command in a guest over SSH at its own address, from network namespace `ns` (a
 * network's qdhcp-<id>, the operator's vantage point) or from this machine (a floating
 * IP); never throws: `ok` is false when ssh or the command failed.
 */
export async function guestSsh(key: string, ip: string, cmd: string, opts: { ns?: string; timeoutMs?: number } = {}): Promise<{ ok: boolean; out: string }> {
  const ssh = ['ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=15', '-o', 'LogLevel=ERROR', `root@${ip}`, cmd];
  const [bin, ...args] = opts.ns ? ['ip', 'netns', 'exec', opts.ns, ...ssh] : ssh;
  try {
    const { stdout, stderr } = await run(bin!, args, { timeout: opts.timeoutMs ?? 60_000 });
    return { ok: true, out: stdout + stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` || (err.message ?? '') };
  }
}

/** Tools bound to one running cloud (and one openstack environment). */
export function computeTools(cloud: Cloud, env: NodeJS.ProcessEnv = cloud.env) {
  const os = (...args: string[]) => openstack(env, ...args);
  const json = async <T = Record<string, unknown>>(...args: string[]) => (await os(...args, '-f', 'json')) as T;
  const instDir = (uuid: string) => join(cloud.dir, 'data', 'agent', 'instances', uuid);
  const server = (id: string) => json<Server>('server', 'show', id);
  return {
    os, json, instDir, server,
    /** Wait for a status with no task running; fail at once on an unexpected ERROR. */
    waitStatus(id: string, status: string, timeoutMs = 90_000): Promise<Server> {
      return until(`server ${id} to be ${status}`, async () => {
        const s = await server(id);
        if (s.status === 'ERROR' && status !== 'ERROR') throw new Error(`server went to ERROR: ${JSON.stringify(s.fault)}`);
        return s.status === status && s['OS-EXT-STS:task_state'] === null ? s : undefined;
      }, timeoutMs);
    },
    /** QEMU's run state through the instance's second QMP socket. */
    async qemuStatus(uuid: string): Promise<string> {
      const m = await QmpClient.connect(join(instDir(uuid), 'qmp-debug.sock'), { timeoutMs: 3000 });
      try { return (await m.execute('query-status')).status; } finally { m.close(); }
    },
    /** The pid of the instance's QEMU when it runs. */
    qemuPid(uuid: string): number | undefined {
      const f = join(instDir(uuid), 'qemu.pid');
      if (!existsSync(f)) return undefined;
      const pid = Number(readFileSync(f, 'utf8').trim());
      try { process.kill(pid, 0); return pid; } catch { return undefined; }
    },
    /** The command line the running QEMU was started with. */
    qemuArgv(uuid: string): string[] {
      return (JSON.parse(readFileSync(join(instDir(uuid), 'launch.json'), 'utf8')) as { argv: string[] }).argv;
    },
    /** Wait for a line matching `re` in the console log (openstack console log show). */
    consoleMatch(id: string, re: RegExp, timeoutMs = 90_000): Promise<string> {
      return until(`${re} on the console of ${id}`, async () => {
        const out = String(await os('console', 'log', 'show', id));
        return re.test(out) ? out : undefined;
      }, timeoutMs, 500);
    },
  };
}
