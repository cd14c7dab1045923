import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';

const BIN = new URL('../../bin/gureum', import.meta.url).pathname;

/**
 * `gureum up` runs this host's compute agent as a supervised child process (the agent
 * is its own process, as on every other host): restarted when it dies, its pid in
 * `<dataDir>/run/agent.pid`. QEMU processes are not its children's children to kill:
 * they outlive the agent, which re-adopts them when it starts again.
 */
export class AgentChild {
  private child?: ChildProcess;
  private stopping = false;
  private restarts = 0;

  constructor(private readonly args: {
    dataDir: string; natsUrl: string; host: string; logLevel: string;
    /** Tenant networking: the VXLAN source address, physical network → bridge, and the prefix of the agent's namespaces. */
    network?: { tunnelIp: string; physicalBridges: Record<string, string>; namespacePrefix?: string };
    /** A network namespace (in /run/netns) to run the agent in: a simulated host of `up --hosts N`. */
    netns?: string;
    /** Run before each restart (re-create the host namespace if someone removed it). */
    beforeRestart?: () => Promise<void>;
  }, private readonly log: Logger) {}

  get pidFile(): string { return join(this.args.dataDir, 'run', 'agent.pid'); }

  start(): void {
    mkdirSync(join(this.args.dataDir, 'run'), { recursive: true });
    const argv = [...process.execArgv, ...this.entry(), 'agent',
      '--data-dir', this.args.dataDir, '--nats-url', this.args.natsUrl, '--host-name', this.args.host, '--log-level', this.args.logLevel,
      ...(this.args.network ? ['--tunnel-ip', this.args.network.tunnelIp,
        ...Object.entries(this.args.network.physicalBridges).flatMap(([p, b]) => ['--physical-bridge', `${p}:${b}`]),
        ...(this.args.network.namespacePrefix ? ['--namespace-prefix', this.args.network.namespacePrefix] : [])] : []),
    ];
    // In a host namespace: nsenter switches only the network namespace and then execs node, so the
    // agent keeps the machine's mounts (the qdhcp-/qrouter- namespaces it adds in /run/netns are
    // visible to everyone) and its pid is the agent's own.
    const child = this.args.netns
      ? spawn('nsenter', [`--net=/run/netns/${this.args.netns}`, '--', process.execPath, ...argv], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env })
      : spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
    this.child = child;
    writeFileSync(this.pidFile, String(child.pid));
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      this.restarts++;
      const delay = Math.min(10_000, 500 * this.restarts);
      this.log.error({ code, signal, restartInMs: delay }, 'compute agent exited; restarting it');
      setTimeout(() => {
        if (this.stopping) return;
        void (this.args.beforeRestart?.() ?? Promise.resolve())
          .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'preparing the agent\'s host failed'))
          .then(() => { if (!this.stopping) this.start(); });
      }, delay).unref();
    });
  }

  /** The script and loader the current process runs with, so the child runs the same code. */
  private entry(): string[] {
    const script = process.argv[1];
    return script ? [script] : [BIN];
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    rmSync(this.pidFile, { force: true });
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { c.kill('SIGKILL'); }, 5000);
      c.once('exit', () => { clearTimeout(t); resolve(); });
      c.kill('SIGTERM');
    });
  }
}
