import type { PortNic } from '../bus/compute.ts';
import type { Bus } from '../bus/index.ts';
import { HostNetworkStateRequest, networkSubjects, type HostNetworkState } from '../bus/network.ts';
import type { Logger } from '../common/logger.ts';

/** What the link drives: the host's data plane (agent/network/). */
export interface DataPlane {
  apply(state: HostNetworkState): Promise<unknown>;
}

/**
 * The agent's half of the network protocol (bus/network.ts): pulls this host's desired
 * state from the controller and hands it to the data plane — at start, whenever the
 * controller nudges, every `resyncMs` (so what someone broke by hand comes back), and
 * before an instance starts on its ports. Pulls never overlap; nudges that arrive during
 * one coalesce into a single follow-up pull.
 */
export class NetworkLink {
  private running?: Promise<HostNetworkState | undefined>;
  private pending?: Promise<HostNetworkState | undefined>;
  private timer?: NodeJS.Timeout;
  private lastGeneration = 0;

  constructor(private readonly o: { bus: Bus; host: string; plane: DataPlane; log: Logger; resyncMs?: number }) {}

  start(): void {
    this.o.bus.subscribe(networkSubjects(this.o.host).changed, () => { void this.sync('nudge').catch(() => undefined); });
    this.timer = setInterval(() => { void this.sync('periodic').catch(() => undefined); }, this.o.resyncMs ?? 30_000);
    this.timer.unref();
    void this.sync('start').catch(() => undefined);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Pull and apply now. A call while a pull runs waits for one more pull after it (the
   * state it saw may predate the caller's change); further calls share that one.
   */
  sync(why: string): Promise<HostNetworkState | undefined> {
    if (!this.running) {
      this.running = this.pullAndApply(why).finally(() => { this.running = undefined; });
      return this.running;
    }
    if (!this.pending) {
      this.pending = this.running.catch(() => undefined).then(() => {
        this.pending = undefined;
        return this.sync(`${why} (queued)`);
      });
    }
    return this.pending;
  }

  private async pullAndApply(why: string): Promise<HostNetworkState | undefined> {
    const started = Date.now();
    let state: HostNetworkState;
    try {
      state = await this.o.bus.request(HostNetworkStateRequest, { host: this.o.host }, { timeoutMs: 10_000 });
    } catch (err) {
      this.o.log.warn({ why, err: (err as Error).message }, 'cannot fetch the network state');
      throw err;
    }
    try {
      await this.o.plane.apply(state);
    } catch (err) {
      this.o.log.error({ why, generation: state.generation, err: (err as Error).message }, 'applying the network state failed');
      throw err;
    }
    if (state.generation !== this.lastGeneration || why !== 'periodic') {
      this.o.log.info({ why, generation: state.generation, ports: state.ports.length, networks: state.networks.length,
        dhcp: state.dhcp.length, routers: state.routers.length, ms: Date.now() - started }, 'network state applied');
    }
    this.lastGeneration = state.generation;
    return state;
  }

  /**
   * Before QEMU starts on these ports: pull and apply, and check the controller's state
   * has every port bound here (their tap devices, DHCP entries and filters exist now).
   */
  async preparePorts(ports: PortNic[], log: Logger): Promise<void> {
    const state = await this.sync('instance start');
    const have = new Set(state?.ports.map((p) => p.id) ?? []);
    const missing = ports.filter((p) => !have.has(p.portId)).map((p) => p.portId);
    if (missing.length) throw new Error(`ports ${missing.join(', ')} are not bound to host ${this.o.host}`);
    log.debug({ ports: ports.map((p) => p.portId) }, 'ports ready');
  }
}
