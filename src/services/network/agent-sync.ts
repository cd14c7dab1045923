import { Value } from 'typebox/value';
import type { Bus } from '../../bus/index.ts';
import {
  HostNetworkStateRequest, networkSubjects, PortStatusReportSchema, PortStatusRequest, type HostNetworkState, type PortStatusResult,
} from '../../bus/network.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import { hostNetworkStates, networksMissingDhcpPort, type NetworkHost } from './agent-state.ts';
import { setPortStatus } from './ports.ts';

export interface AgentSyncOptions {
  db: Db;
  bus: Bus;
  log: Logger;
  /** A host whose agent has not reported for this long is not given DHCP servers or routers. */
  hostDownAfterSec: number;
  /** Creates the network:dhcp port of a network that has a DHCP-enabled subnet but no port yet. */
  ensureDhcpPort(networkId: string): Promise<void>;
  /**
   * Records what the agents report (NetworkService.setPortStatus); returns the ids that
   * changed. Default: the ports module on `db` (without the change listener, which ignores
   * port status anyway).
   */
  setPortStatus?(portIds: string[], status: 'ACTIVE' | 'DOWN'): Promise<string[]>;
}

/** Every port a host's state makes it responsible for: its VM ports, DHCP ports, router interfaces and gateways. */
export function portsOfState(state: HostNetworkState): Set<string> {
  const ids = new Set<string>(state.ports.map((p) => p.id));
  for (const d of state.dhcp) ids.add(d.port.id);
  for (const r of state.routers) {
    for (const i of r.interfaces) ids.add(i.portId);
    if (r.gateway) ids.add(r.gateway.portId);
  }
  return ids;
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
    this.o.bus.serve(PortStatusRequest, async (req) => this.portStatus(req));
  }

  /**
   * An agent's port status report (bus/network.ts PortStatusRequest): ports the host's
   * current state lists become ACTIVE or DOWN as reported; any other id is ignored (a
   * router or DHCP server that moved away, a port unbound or deleted meanwhile).
   */
  async portStatus(report: unknown): Promise<PortStatusResult> {
    if (!Value.Check(PortStatusReportSchema, report)) throw new Error('malformed port status report');
    if (!report.up.length && !report.down.length) return { changed: 0, ignored: [] };
    const mine = portsOfState(await this.stateOf(report.host));
    const ignored = [...report.up, ...report.down].filter((id) => !mine.has(id));
    const up = report.up.filter((id) => mine.has(id));
    const down = report.down.filter((id) => mine.has(id) && !report.up.includes(id));
    const changed = [...(up.length ? await this.setStatus(up, 'ACTIVE') : []), ...(down.length ? await this.setStatus(down, 'DOWN') : [])];
    if (changed.length || ignored.length) this.o.log.info({ host: report.host, up: up.length, down: down.length, changed: changed.length, ignored: ignored.length }, 'port status reported');
    return { changed: changed.length, ignored };
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
          const hosts = await this.liveHosts();
          for (const h of hosts) this.o.bus.publish(networkSubjects(h.host).changed, { generation: gen });
          await this.sweepStatus(hosts);
        } catch (err) {
          this.o.log.error({ err }, 'network agent sync failed');
        }
      } while (this.again);
    })().finally(() => { this.running = undefined; });
    await this.running;
  }

  /**
   * Ports still ACTIVE that no live host's state lists any more — unbound, moved, their
   * router set down or gone, their host dead — are DOWN (nobody is left to report them).
   */
  private async sweepStatus(hosts: NetworkHost[]): Promise<void> {
    const active = await this.o.db.selectFrom('ports').select('id').where('status', '=', 'ACTIVE').execute();
    if (!active.length) return;
    const listed = new Set<string>();
    for (const st of (await hostNetworkStates(this.o.db, hosts, this.generation)).values()) for (const id of portsOfState(st)) listed.add(id);
    const stale = active.map((r) => r.id).filter((id) => !listed.has(id));
    if (stale.length) await this.setStatus(stale, 'DOWN');
  }

  private setStatus(ids: string[], status: 'ACTIVE' | 'DOWN'): Promise<string[]> {
    return this.o.setPortStatus ? this.o.setPortStatus(ids, status) : setPortStatus({ db: this.o.db, log: this.o.log }, ids, status);
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
