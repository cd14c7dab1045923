/**
 * Running the host tools (ip, bridge, nft, sysctl, dnsmasq, haproxy): always execFile-style
 * argument vectors, never a shell; optionally inside a named network namespace
 * (`ip netns exec <ns> …`). Errors carry the command and its stderr.
 */
import { spawn } from 'node:child_process';

export class CommandError extends Error {
  constructor(readonly cmd: string, readonly args: readonly string[], readonly code: number | null, readonly stderr: string) {
    super(`${cmd} ${args.join(' ')}: ${stderr.trim() || `exit ${code}`}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  /** Written to the command's standard input (then closed). */
  input?: string;
  /** Killed (SIGKILL) after this many ms; default 15 s. */
  timeoutMs?: number;
  /** Resolve even when the exit status is not 0 (the caller reads `code`). */
  allowFailure?: boolean;
}

export interface RunResult { stdout: string; stderr: string; code: number | null }

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let done = false;
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, opts.timeoutMs ?? 15_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new CommandError(cmd, args, null, e.message));
    });
    child.on('close', (code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const r = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code };
      if (code === 0 || opts.allowFailure) resolve(r);
      else reject(new CommandError(cmd, args, code, r.stderr));
    });
    child.stdin.on('error', () => { /* the command did not read its input; its exit status tells */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** The argument vector that runs `cmd args` inside namespace `ns` (or here when undefined). */
export function inNamespace(ns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, [...args]];
}

export function runIn(ns: string | undefined, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const [c, a] = inNamespace(ns, cmd, args);
  return run(c, a, opts);
}
