import type { PortNic } from '../bus/compute.ts';
import type { Bus } from '../bus/index.ts';
import { HostNetworkStateRequest, networkSubjects, PortStatusRequest, type HostNetworkState } from '../bus/network.ts';
import type { Logger } from '../common/logger.ts';
import type { PortLinkState } from './network/agent.ts';

/** What the link drives: the host's data plane (agent/network/). */
export interface DataPlane {
  apply(state: HostNetworkState): Promise<unknown>;
  /** How each port of the applied state is on this host; see NetworkAgent.portStatus. */
  portStatus?(): Promise<Map<string, PortLinkState>>;
}

export interface NetworkLinkOptions {
  bus: Bus;
  host: string;
  plane: DataPlane;
  log: Logger;
  /** How often the state is pulled again without a nudge; default 30 s. */
  resyncMs?: number;
  /** How often the ports' status is looked at (an instance that stopped lets go of its tap); default 2 s. */
  statusPollMs?: number;
  /** How often every port's status is reported again, changed or not (a controller that missed one); default 2 min. */
  statusFullMs?: number;
  /** How long a port handed to a starting instance counts as ACTIVE while its tap waits for QEMU; default 60 s. */
  startGraceMs?: number;
}

/**
 * The agent's half of the network protocol (bus/network.ts): pulls this host's desired
 * state from the controller and hands it to the data plane — at start, whenever the
 * controller nudges, every `resyncMs` (so what someone broke by hand comes back), and
 * before an instance starts on its ports. Pulls never overlap; nudges that arrive during
 * one coalesce into a single follow-up pull.
 *
 * It also reports the ports' status (PortStatusRequest): after every apply and every
 * `statusPollMs` it asks the data plane which ports work and sends the controller only
 * those that changed since the last acknowledged report (all of them after a start, and
 * again every `statusFullMs`).
 */
export class NetworkLink {
  private running?: Promise<HostNetworkState | undefined>;
  private pending?: Promise<HostNetworkState | undefined>;
  private timer?: NodeJS.Timeout;
  private statusTimer?: NodeJS.Timeout;
  private lastGeneration = 0;
  /** Port → status the controller acknowledged (true: ACTIVE). */
  private readonly reported = new Map<string, boolean>();
  private lastFullReport = 0;
  private reporting?: Promise<void>;
  private reportAgain = false;
  private reportFailing = false;
  /** Ports of instances being started → until when a wired tap without carrier counts as ACTIVE. */
  private readonly starting = new Map<string, number>();

  constructor(private readonly o: NetworkLinkOptions) {}

  start(): void {
    this.o.bus.subscribe(networkSubjects(this.o.host).changed, () => { void this.sync('nudge').catch(() => undefined); });
    this.timer = setInterval(() => { void this.sync('periodic').catch(() => undefined); }, this.o.resyncMs ?? 30_000);
    this.timer.unref();
    if (this.o.plane.portStatus) {
      this.statusTimer = setInterval(() => { void this.reportStatus(); }, this.o.statusPollMs ?? 2_000);
      this.statusTimer.unref();
    }
    void this.sync('start').catch(() => undefined);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.statusTimer) clearInterval(this.statusTimer);
  }

  /**
   * Report the ports whose status changed (never throws; a failed report is retried on the
   * next round, as nothing of it counts as acknowledged). Calls during a report coalesce
   * into one more round after it.
   */
  reportStatus(): Promise<void> {
    if (this.reporting) { this.reportAgain = true; return this.reporting; }
    this.reporting = (async () => {
      do {
        this.reportAgain = false;
        try {
          await this.reportOnce();
          if (this.reportFailing) this.o.log.info('port status reports go through again');
          this.reportFailing = false;
        } catch (err) {
          if (!this.reportFailing) this.o.log.warn({ err: (err as Error).message }, 'cannot report the ports\' status');
          this.reportFailing = true;
        }
      } while (this.reportAgain);
    })().finally(() => { this.reporting = undefined; });
    return this.reporting;
  }

  private async reportOnce(): Promise<void> {
    if (!this.o.plane.portStatus) return;
    if (Date.now() - this.lastFullReport >= (this.o.statusFullMs ?? 120_000)) {
      this.reported.clear();
      this.lastFullReport = Date.now();
    }
    const states = await this.o.plane.portStatus();
    const t = Date.now();
    const now = new Map<string, boolean>();
    for (const [id, st] of states) {
      // A starting instance's tap is ACTIVE once wired, as Neutron's agent reports a device
      // before the guest runs; once QEMU holds it (or the grace ends) carrier decides.
      const grace = (this.starting.get(id) ?? 0) > t;
      if (st === 'up' || !grace) this.starting.delete(id);
      now.set(id, st === 'up' || (st === 'wired' && grace));
    }
    for (const [id, until] of this.starting) if (until <= t) this.starting.delete(id);
    // ports this host no longer has: their next owner (or the controller's sweep) sets them
    for (const id of [...this.reported.keys()]) if (!now.has(id)) this.reported.delete(id);
    const up: string[] = [];
    const down: string[] = [];
    for (const [id, ok] of now) if (this.reported.get(id) !== ok) (ok ? up : down).push(id);
    if (!up.length && !down.length) return;
    const res = await this.o.bus.request(PortStatusRequest, { host: this.o.host, up, down }, { timeoutMs: 10_000 });
    // ignored ones (the controller's view moved on) count as sent too: the full report retries them
    for (const id of up) this.reported.set(id, true);
    for (const id of down) this.reported.set(id, false);
    this.o.log.debug({ up, down, changed: res.changed, ignored: res.ignored }, 'port status reported');
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
    void this.reportStatus();
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
    // Plugged and filtered: report them ACTIVE before the guest starts (Nova waits for
    // Neutron's network-vif-plugged the same way), so the server is never ACTIVE before its ports.
    const until = Date.now() + (this.o.startGraceMs ?? 60_000);
    for (const p of ports) this.starting.set(p.portId, until);
    await this.reportStatus();
    log.debug({ ports: ports.map((p) => p.portId) }, 'ports ready');
  }
}
