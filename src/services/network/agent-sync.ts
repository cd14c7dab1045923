import type { Bus } from '../../bus/index.ts';
import { HostNetworkStateRequest, networkSubjects, type HostNetworkState } from '../../bus/network.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import { hostNetworkStates, networksMissingDhcpPort, type NetworkHost } from './agent-state.ts';

export interface AgentSyncOptions {
  db: Db;
  bus: Bus;
  log: Logger;
  /** A host whose agent has not reported for this long is not given DHCP servers or routers. */
  hostDownAfterSec: number;
  /** Creates the network:dhcp port of a network that has a DHCP-enabled subnet but no port yet. */
  ensureDhcpPort(networkId: string): Promise<void>;
}

/**
 * The controller's half of the network agent protocol: answers each agent's request for
 * its HostNetworkState, and after every change nudges the agents to pull again (debounced,
 * so a burst of API calls costs one round). The generation increases with every nudge.
 */
export class AgentSync {
  private generation = Date.now();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;

  constructor(private readonly o: AgentSyncOptions) {}

  start(): void {
    this.o.bus.serve(HostNetworkStateRequest, async (req) => this.stateOf(req.host));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** Something changed: make sure DHCP ports exist, then tell every live host to pull. */
  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush(); }, 5);
    this.timer.unref();
  }

  /** Resolves once the nudges for every change so far have gone out. */
  async flushNow(): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.running) { this.again = true; await this.running; return; }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          for (const id of await networksMissingDhcpPort(this.o.db)) await this.o.ensureDhcpPort(id);
          const gen = ++this.generation;
          for (const h of await this.liveHosts()) this.o.bus.publish(networkSubjects(h.host).changed, { generation: gen });
        } catch (err) {
          this.o.log.error({ err }, 'network agent sync failed');
        }
      } while (this.again);
    })().finally(() => { this.running = undefined; });
    await this.running;
  }

  /** The desired state of one host (the requesting agent counts as live even before its first heartbeat lands). */
  async stateOf(host: string): Promise<HostNetworkState> {
    const hosts = await this.liveHosts();
    if (!hosts.some((h) => h.host === host)) {
      const row = await this.o.db.selectFrom('compute_hosts').select(['host', 'host_ip']).where('host', '=', host).executeTakeFirst();
      hosts.push({ host, tunnelIp: row?.host_ip ?? '127.0.0.1' });
    }
    const states = await hostNetworkStates(this.o.db, hosts, this.generation);
    return states.get(host)!;
  }

  private async liveHosts(): Promise<NetworkHost[]> {
    const cutoff = new Date(Date.now() - this.o.hostDownAfterSec * 1000).toISOString();
    const rows = await this.o.db.selectFrom('compute_hosts').select(['host', 'host_ip', 'last_seen', 'forced_down'])
      .where('last_seen', '>=', cutoff).where('forced_down', '=', 0).execute();
    return rows.map((r) => ({ host: r.host, tunnelIp: r.host_ip }));
  }
}
