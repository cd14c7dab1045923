import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';

/** A free TCP port on loopback (or `host`), chosen by the kernel. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/**
 * Runs Debian's nats-server (with JetStream, state under dataDir/nats) as a supervised
 * child for the all-in-one cloud. A pid file lets the next start reap a server left
 * behind when gureum itself was killed with SIGKILL.
 */
export class NatsChild {
  private child?: ChildProcess;
  private stopping = false;
  url = '';

  /**
   * `listenHost`: the address nats-server binds — loopback for the all-in-one, the underlay
   * bridge's address with `up --hosts N` (the agents in the host namespaces reach it there).
   */
  constructor(private readonly dataDir: string, private readonly log: Logger, private readonly listenHost = '127.0.0.1') {}

  async start(): Promise<string> {
    const runDir = join(this.dataDir, 'run');
    mkdirSync(runDir, { recursive: true });
    const pidFile = join(runDir, 'nats.pid');
    if (existsSync(pidFile)) {
      const old = Number(readFileSync(pidFile, 'utf8'));
      if (old > 0 && alive(old)) {
        this.log.warn({ pid: old }, 'stopping a nats-server left from an earlier run');
        process.kill(old, 'SIGTERM');
        for (let i = 0; i < 50 && alive(old); i++) await new Promise((r) => setTimeout(r, 100));
        if (alive(old)) process.kill(old, 'SIGKILL');
      }
      rmSync(pidFile, { force: true });
    }
    const port = await freePort(this.listenHost);
    const args = ['-a', this.listenHost, '-p', String(port), '-js', '-sd', join(this.dataDir, 'nats'), '--pid', pidFile];
    const child = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const ready = await new Promise<boolean>((resolve) => {
      const onData = (d: Buffer) => { if (d.toString().includes('Server is ready')) { child.stderr!.off('data', onData); resolve(true); } };
      child.stderr!.on('data', onData);
      child.once('exit', () => resolve(false));
      child.once('error', () => resolve(false));
      setTimeout(() => resolve(false), 15_000).unref();
    });
    if (!ready) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not start (is the Debian package nats-server installed?): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    child.on('exit', (code, signal) => {
      if (!this.stopping) this.log.error({ code, signal }, 'nats-server exited unexpectedly');
    });
    this.url = `nats://${this.listenHost}:${port}`;
    this.log.info({ url: this.url, pid: child.pid }, 'nats-server started');
    writeFileSync(pidFile, String(child.pid));
    return this.url;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { c.kill('SIGKILL'); }, 5000);
      c.once('exit', () => { clearTimeout(t); resolve(); });
      c.kill('SIGTERM');
    });
  }
}
