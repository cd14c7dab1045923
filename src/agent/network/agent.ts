/**
 * NetworkAgent: converges one host's data plane to a HostNetworkState — bridges and VXLAN
 * per network, VM port devices, security groups (nftables), DHCP + metadata proxy per
 * network, routers with NAT — creating what is missing, fixing what differs and removing
 * what it owns but is no longer listed. See docs/networking-dataplane.md.
 *
 * apply() calls run one at a time; a state queued while one runs replaces older queued
 * ones. Each apply reads the host cheaply (one `ip -json link`, the namespace list, pid
 * files) and touches only what differs; the insides of qdhcp/qrouter namespaces are
 * re-read when their spec changed, the namespace was re-created, or on a deep apply
 * (explicit, the first one, and then every `deepCheckIntervalMs`).
 */
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/logger.ts';
import { deviceNames, type HostNetworkState, type PortState } from '../../bus/network.ts';
import { attachLines, bridgeLines } from './bridge.ts';
import { stopProcess } from './daemon.ts';
import { run } from './exec.ts';
import { convergeDnsmasq, renderDnsmasq, stopDnsmasq } from './dhcp.ts';
import { firewallDelta, firewallPresent, firewallTableName, loadRuleset, renderFirewall, type FirewallPort, type NftTable } from './firewall.ts';
import {
  addNamespace, batch, deleteNamespace, getLink, listAddresses, type Link, listFdb, listLinks, listNamespaces, listNeighbors, namespaceInode, namespacePids, sysctl,
} from './ip.ts';
import { convergeHaproxy, MetadataRouter, proxyUser, stopHaproxy, type ProxyUser } from './metadata-proxy.ts';
import {
  agentNames, checkId, checkIfname, checkIp, InvalidInput, isOwnedHostDevice, TAP_PREFIX,
} from './names.ts';
import { buildModel, type Model } from './model.ts';
import { neighborLines } from './metadata-local.ts';
import { planNamespace } from './netns.ts';
import { loadRouterNat, routeLines, routerNatPresent } from './router.ts';
import { allocate, loadStateFile, saveStateFile, type AgentStateFile } from './state-file.ts';
import { portLines, staleTapAction } from './tap.ts';
import { forEachLimit, Serial } from './util.ts';
import { fdbLines, vxlanLines } from './vxlan.ts';

export interface NetworkAgentOptions {
  log: Logger;
  /** Where the agent keeps its state file, dnsmasq/haproxy files and the metadata socket. */
  stateDir: string;
  /**
   * An existing network namespace that stands for the host: every host-level device
   * (bridges, VXLAN, taps, veth host ends) and the host's nftables live there. Unset: the
   * agent's own namespace.
   */
  hostNamespace?: string;
  /** This host's underlay address (VXLAN source). */
  tunnelIp: string;
  /** Physical network name → existing host bridge (flat networks use it directly). */
  physicalBridges: Record<string, string>;
  /** Prepended to qdhcp-/qrouter- namespace names (several simulated hosts on one machine). */
  namespacePrefix?: string;
  metadata: { resolveSocket(instanceUuid: string): string | undefined };
  /** How often an apply re-reads everything (namespace insides, nft tables, sysctls); default 60 s. */
  deepCheckIntervalMs?: number;
}

/**
 * How a port is on this host: `up` — plugged and working (a VM port's tap also has carrier:
 * its QEMU holds it); `wired` — a VM port's tap is plugged and filtered but nobody holds it
 * (the instance is not running, or is just starting); `down` — not plugged (missing, off its
 * bridge, down, admin_state_up false, its filter or namespace failed).
 */
export type PortLinkState = 'up' | 'wired' | 'down';

export interface ApplyOptions {
  /** Re-read and re-check everything, not only what the cheap checks cover. */
  deep?: boolean;
}

export interface ApplyReport {
  generation: number;
  durationMs: number;
  /** What was changed (the commands, in short). */
  changes: string[];
  /** What failed; the rest of the state was still applied. */
  errors: { what: string; error: string }[];
  warnings: string[];
  deep: boolean;
  /** This state was replaced by a newer one before it ran; the report is the newer one's. */
  superseded: boolean;
  /** Milliseconds per phase. */
  phases: Record<string, number>;
}

interface Waiter { resolve(r: ApplyReport): void; reject(e: unknown): void; superseded: boolean }

const STATE_FILE = 'network-agent.json';
const ENSURE_GRACE_MS = 5 * 60_000;

function message(e: unknown): string { return e instanceof Error ? e.message : String(e); }

export class NetworkAgent {
  readonly metadataSocket: string;
  private readonly log: Logger;
  private readonly host: string | undefined;
  private readonly names: ReturnType<typeof agentNames>;
  private readonly serial = new Serial();
  private readonly deepEvery: number;
  private queued?: { state: HostNetworkState; opts: ApplyOptions; waiters: Waiter[] };
  private applying = false;
  private persisted?: AgentStateFile;
  private initialised = false;
  private lastDeepAt = 0;
  private firewallApplied?: string;
  private firewallTables?: NftTable[];
  private fdbApplied?: string;
  /** Namespace → spec key and namespace inode it was last converged with. */
  private readonly nsApplied = new Map<string, { key: string; inode: number; neighbors?: { ip: string; mac: string }[] }>();
  private model?: Model;
  /** The state the last apply converged to, and what failed in it (ApplyReport error `what`s). */
  private applied?: { state: HostNetworkState; failed: Set<string> };
  private metadataIndex = new Map<string, Map<string, string>>();
  /** Taps handed out by ensurePortDevice, kept even before a state lists their port. */
  private readonly ensured = new Map<string, number>();
  private readonly router: MetadataRouter;
  /** This agent's nftables tables (bridge + inet) in the host namespace. */
  readonly table: string;
  /** Who dnsmasq and haproxy run as after start: nobody when it can reach stateDir, else root. */
  private daemonUser: ProxyUser | undefined;

  constructor(private readonly opts: NetworkAgentOptions) {
    this.log = opts.log.child({ component: 'network-agent', hostNamespace: opts.hostNamespace });
    this.host = opts.hostNamespace;
    this.names = agentNames(opts.namespacePrefix ?? '');
    this.table = firewallTableName(opts.stateDir);
    this.deepEvery = opts.deepCheckIntervalMs ?? 60_000;
    checkIp('tunnelIp', opts.tunnelIp);
    for (const b of Object.values(opts.physicalBridges)) checkIfname(b);
    if (opts.hostNamespace !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(opts.hostNamespace)) throw new InvalidInput(`invalid host namespace ${opts.hostNamespace}`);
    this.metadataSocket = join(opts.stateDir, 'metadata.sock');
    if (Buffer.byteLength(this.metadataSocket) > 100) throw new InvalidInput(`stateDir too long for a unix socket path: ${this.metadataSocket}`);
    this.router = new MetadataRouter(this.metadataSocket, {
      instanceFor: (network, ip) => this.metadataIndex.get(network)?.get(ip),
      resolveSocket: (uuid) => opts.metadata.resolveSocket(uuid),
    }, this.log.child({ component: 'metadata-proxy' }));
  }

  /** Converges the host to `state`. Serialized; a newer queued state replaces an older queued one. */
  apply(state: HostNetworkState, opts: ApplyOptions = {}): Promise<ApplyReport> {
    return new Promise<ApplyReport>((resolve, reject) => {
      const w: Waiter = { resolve, reject, superseded: false };
      if (this.queued) {
        for (const o of this.queued.waiters) o.superseded = true;
        this.queued = { state, opts: { deep: opts.deep || this.queued.opts.deep }, waiters: [...this.queued.waiters, w] };
      } else {
        this.queued = { state, opts, waiters: [w] };
      }
      this.pump();
    });
  }

  /**
   * Makes the port's device exist and plugs it into its network's bridge (when the network
   * is known from an applied state); for the compute side to call before starting QEMU.
   * Returns the device name.
   */
  ensurePortDevice(port: PortState): Promise<string> {
    return this.serial.run(async () => {
      await this.init();
      checkId('port', port.id);
      const dev = deviceNames.tap(port.id);
      const have = await getLink(this.host, dev);
      const net = this.model?.nets.get(port.networkId);
      const bridgeExists = net ? (await getLink(this.host, net.bridge)) !== undefined : false;
      const lines = net && bridgeExists
        ? portLines({ name: dev, bridge: net.bridge, mtu: port.mtu || net.net.mtu, up: port.adminStateUp !== false }, have)
        : { lines: have ? [] : [`tuntap add dev ${dev} mode tap vnet_hdr`], created: !have };
      const res = await batch('ip', this.host, lines.lines);
      if (lines.created && !(await getLink(this.host, dev))) throw new Error(`cannot create ${dev}: ${res.failed.map((f) => f.error).join('; ')}`);
      if (res.failed.length) this.log.warn({ dev, failed: res.failed }, 'plugging the port device failed in part');
      if (lines.created) {
        this.persisted!.createdTaps.push(dev);
        await this.saveState();
      }
      this.ensured.set(dev, Date.now());
      this.log.info({ port: port.id, dev, created: lines.created, bridge: net?.bridge }, 'port device ensured');
      return dev;
    });
  }

  /** Takes the port's device off its bridge; deletes it when the agent created it and nobody holds it. */
  unplug(portId: string): Promise<void> {
    return this.serial.run(async () => {
      await this.init();
      checkId('port', portId);
      const dev = deviceNames.tap(portId);
      this.ensured.delete(dev);
      const have = await getLink(this.host, dev);
      if (!have) return;
      const created = this.persisted!.createdTaps.includes(dev);
      const bridges = new Set([have.master ?? '']);
      const action = staleTapAction(have, created, bridges);
      if (action === 'delete') {
        await batch('ip', this.host, [`link del ${dev}`]);
        this.persisted!.createdTaps = this.persisted!.createdTaps.filter((t) => t !== dev);
        await this.saveState();
      } else if (have.master) {
        await batch('ip', this.host, [`link set ${dev} nomaster`]);
      }
      this.log.info({ port: portId, dev, action }, 'port unplugged');
    });
  }

  /**
   * How each port of the last applied state is on this host (Neutron's device up/down,
   * see PortLinkState): a VM port is wired when its tap is on its bridge, up and — with
   * port security — the host ruleset is loaded, and up when its instance also holds the tap
   * (carrier); a DHCP port is up when its namespace and dnsmasq converged; a router's
   * interfaces and gateway when its namespace did. Costs one `ip link` read (none without
   * VM ports). Empty before the first apply.
   */
  portStatus(): Promise<Map<string, PortLinkState>> {
    return this.serial.run(async () => {
      const out = new Map<string, PortLinkState>();
      const applied = this.applied;
      const model = this.model;
      if (!applied || !model) return out;
      const { state, failed } = applied;
      const firewallOk = !failed.has('firewall');
      const links = state.ports.length ? new Map((await listLinks(this.host)).map((l) => [l.name, l])) : new Map<string, Link>();
      const portModels = new Map(model.ports.map((p) => [p.port.id, p]));
      for (const p of state.ports) {
        const m = portModels.get(p.id);
        const l = m ? links.get(m.dev) : undefined;
        const wired = !!m && !!l && l.master === m.bridge && l.up && p.adminStateUp !== false && (!p.portSecurity || firewallOk);
        out.set(p.id, !wired ? 'down' : l.noCarrier ? 'wired' : 'up');
      }
      // a namespace counts as converged only when its last pass had no error (routes and NAT included)
      const nsOk = (ns: string) => this.nsApplied.has(ns);
      const dhcpModels = new Map(model.dhcp.map((d) => [d.d.networkId, d]));
      for (const d of state.dhcp) {
        const m = dhcpModels.get(d.networkId);
        out.set(d.port.id, m && nsOk(m.spec.ns) && !failed.has(`dhcp ${d.networkId}`) ? 'up' : 'down');
      }
      const routerModels = new Map(model.routers.map((r) => [r.r.id, r]));
      for (const r of state.routers) {
        const m = routerModels.get(r.id);
        const ok = !!m && nsOk(m.spec.ns);
        for (const i of r.interfaces) out.set(i.portId, ok && m.spec.interfaces.some((x) => x.name === deviceNames.routerInterface(i.portId)) ? 'up' : 'down');
        if (r.gateway) out.set(r.gateway.portId, ok ? 'up' : 'down');
      }
      return out;
    });
  }

  /** Stops the metadata socket server. The data plane (devices, dnsmasq, haproxy) stays as it is. */
  async close(): Promise<void> {
    await this.serial.run(async () => { await this.router.close(); this.initialised = false; });
  }

  // ---------------------------------------------------------------------------------

  private pump(): void {
    if (this.applying || !this.queued) return;
    const job = this.queued;
    this.queued = undefined;
    this.applying = true;
    void this.serial.run(() => this.applyNow(job.state, job.opts)).then(
      (rep) => { for (const w of job.waiters) w.resolve({ ...rep, superseded: w.superseded }); },
      (e: unknown) => { for (const w of job.waiters) w.reject(e); },
    ).finally(() => { this.applying = false; this.pump(); });
  }

  private async init(): Promise<void> {
    if (this.initialised) return;
    await mkdir(join(this.opts.stateDir, 'dhcp'), { recursive: true });
    await mkdir(join(this.opts.stateDir, 'meta'), { recursive: true });
    // dnsmasq re-reads its files and haproxy reaches the socket after dropping to nobody.
    await chmod(this.opts.stateDir, 0o711);
    await chmod(join(this.opts.stateDir, 'dhcp'), 0o755);
    await chmod(join(this.opts.stateDir, 'meta'), 0o755);
    // dnsmasq re-reads its files, and haproxy connects to the agent's socket, after dropping
    // to nobody: only possible when every parent of stateDir is searchable by others.
    let reachable = true;
    for (let d = dirname(this.opts.stateDir); d !== dirname(d); d = dirname(d)) {
      if (((await stat(d)).mode & 0o001) === 0) { reachable = false; this.log.warn({ dir: d }, 'a parent of stateDir is not searchable by others: dnsmasq and haproxy keep running as root'); break; }
    }
    this.daemonUser = reachable ? proxyUser() : undefined;
    this.persisted ??= await loadStateFile(join(this.opts.stateDir, STATE_FILE));
    await this.router.start(this.daemonUser?.gid);
    this.initialised = true;
  }

  private async saveState(): Promise<void> {
    if (this.persisted) await saveStateFile(join(this.opts.stateDir, STATE_FILE), this.persisted);
  }

  private async applyNow(state: HostNetworkState, opts: ApplyOptions): Promise<ApplyReport> {
    const t0 = performance.now();
    await this.init();
    const deep = !!opts.deep || this.lastDeepAt === 0 || Date.now() - this.lastDeepAt >= this.deepEvery;
    const rep: ApplyReport = { generation: state.generation, durationMs: 0, changes: [], errors: [], warnings: [], deep, superseded: false, phases: {} };
    const phase = async (name: string, f: () => Promise<void>) => {
      const t = performance.now();
      try { await f(); } catch (e) { rep.errors.push({ what: name, error: message(e) }); }
      rep.phases[name] = Math.round((performance.now() - t) * 10) / 10;
    };
    const model = buildModel(state, { tunnelIp: this.opts.tunnelIp, physicalBridges: this.opts.physicalBridges, stateDir: this.opts.stateDir, names: this.names }, rep);
    const st = this.persisted!;
    st.zones = allocate(st.zones, [...model.nets.values()].filter((n) => n.managed).map((n) => n.net.id));
    st.marks = allocate(st.marks, model.ports.filter((p) => p.port.portSecurity).map((p) => p.port.id));

    if (deep) {
      await phase('sysctl', async () => {
        const settings = { 'net.bridge.bridge-nf-call-iptables': 1, 'net.bridge.bridge-nf-call-ip6tables': 1 };
        try { await sysctl(this.host, settings); } catch {
          // a kernel with br_netfilter as a module (here it is built in)
          await run('modprobe', ['br_netfilter'], { allowFailure: true });
          await sysctl(this.host, settings);
        }
      });
    }
    let links = await listLinks(this.host);
    const nsSpecs = [...model.dhcp.map((d) => d.spec), ...model.routers.map((r) => r.spec), ...model.meta.map((m) => m.spec)];
    // Recorded before they are made: a crash half-way leaves nothing unaccounted for.
    const wanted = new Set<string>();
    for (const s of nsSpecs) { wanted.add(s.ns); for (const i of s.interfaces) wanted.add(i.hostEnd); }
    for (const nm of model.nets.values()) if (nm.managed) wanted.add(nm.bridge);
    for (const v of model.vxlans) wanted.add(v.name);
    const owned = new Set([...st.owned, ...wanted]);
    if (owned.size !== st.owned.length) { st.owned = [...owned]; await this.saveState(); }
    const wantNs = new Set(nsSpecs.map((s) => s.ns));
    const created = new Set<string>();
    const dirty = new Set<string>();

    let existingNs: string[] | undefined;
    await phase('namespaces', async () => {
      const existing = await listNamespaces();
      const ours = (n: string) => this.names.isDhcpNamespace(n) || this.names.isRouterNamespace(n) || this.names.isMetaNamespace(n);
      // Another agent on this machine (another cloud) names its namespaces the same way: only ours go.
      const stale = existing.filter((n) => ours(n) && !wantNs.has(n) && owned.has(n));
      for (const n of stale) {
        await Promise.all((await namespacePids(n)).map((pid) => stopProcess(pid)));
        await deleteNamespace(n);
        this.nsApplied.delete(n);
        owned.delete(n);
        rep.changes.push(`netns delete ${n}`);
      }
      existingNs = existing;
      // files (and daemons, even in namespaces deleted by hand) of networks no longer served here
      const wantDirs = new Set(model.dhcp.map((d) => d.d.networkId));
      for (const id of await readdir(join(this.opts.stateDir, 'dhcp'))) {
        if (wantDirs.has(id)) continue;
        const dir = join(this.opts.stateDir, 'dhcp', id);
        const ns = this.names.dhcpNamespace(id);
        if (await stopDnsmasq(ns, dir)) rep.changes.push(`dnsmasq stop ${id}`);
        if (await stopHaproxy(ns, dir)) rep.changes.push(`haproxy stop ${id}`);
        await rm(dir, { recursive: true, force: true });
      }
      const wantMeta = new Set(model.meta.map((m) => m.networkId));
      for (const id of await readdir(join(this.opts.stateDir, 'meta'))) {
        if (wantMeta.has(id)) continue;
        const dir = join(this.opts.stateDir, 'meta', id);
        if (await stopHaproxy(this.names.metaNamespace(id), dir)) rep.changes.push(`haproxy stop meta ${id}`);
        await rm(dir, { recursive: true, force: true });
      }
      for (const s of nsSpecs) {
        if (existing.includes(s.ns)) continue;
        await addNamespace(s.ns);
        created.add(s.ns);
        dirty.add(s.ns);
        rep.changes.push(`netns add ${s.ns}`);
      }
      if (stale.length) links = await listLinks(this.host);
    });

    await phase('links', async () => {
      const byName = new Map(links.map((l) => [l.name, l]));
      const lines: string[] = [];
      const wantHost = new Set<string>();
      for (const nm of model.nets.values()) if (nm.managed) wantHost.add(nm.bridge);
      for (const v of model.vxlans) wantHost.add(v.name);
      for (const s of nsSpecs) for (const i of s.interfaces) wantHost.add(i.hostEnd);
      const wantTaps = new Set(model.ports.map((p) => p.dev));
      // A tap that no port lists is ours to detach when it hangs on a bridge we made; on a
      // physical bridge (shared with whatever else uses it) only when we made the tap too.
      const ownedBridges = new Set(links.filter((l) => l.name.startsWith('brq') && owned.has(l.name)).map((l) => l.name));
      const withPhysical = new Set([...ownedBridges, ...Object.values(this.opts.physicalBridges)]);
      const now = Date.now();
      for (const l of links) {
        if (isOwnedHostDevice(l.name) && !wantHost.has(l.name) && owned.has(l.name)) {
          lines.push(`link del ${l.name}`);
          owned.delete(l.name);
        } else if (l.name.startsWith(TAP_PREFIX) && !wantTaps.has(l.name) && !(now - (this.ensured.get(l.name) ?? 0) < ENSURE_GRACE_MS)) {
          const made = st.createdTaps.includes(l.name);
          const a = staleTapAction(l, made, made ? withPhysical : ownedBridges);
          if (a === 'delete') { lines.push(`link del ${l.name}`); st.createdTaps = st.createdTaps.filter((t) => t !== l.name); }
          else if (a === 'detach') lines.push(`link set ${l.name} nomaster`);
        }
      }
      for (const nm of model.nets.values()) {
        if (nm.managed) lines.push(...bridgeLines({ name: nm.bridge, mtu: nm.net.mtu }, byName.get(nm.bridge)));
        else if (!byName.has(nm.bridge)) rep.errors.push({ what: `network ${nm.net.id}`, error: `physical bridge ${nm.bridge} does not exist` });
      }
      for (const v of model.vxlans) lines.push(...vxlanLines(v, byName.get(v.name)));
      for (const s of nsSpecs) {
        for (const i of s.interfaces) {
          const have = byName.get(i.hostEnd);
          if (have && have.kind === 'veth' && have.peerElsewhere && !created.has(s.ns)) {
            lines.push(...attachLines(i.hostEnd, i.bridge, i.mtu, have));
            continue;
          }
          if (have) lines.push(`link del ${i.hostEnd}`);
          lines.push(`link add ${i.hostEnd} mtu ${i.mtu} type veth peer name ${i.name} address ${i.mac} mtu ${i.mtu} netns ${s.ns}`);
          lines.push(...attachLines(i.hostEnd, i.bridge, i.mtu, undefined));
          dirty.add(s.ns);
        }
      }
      for (const p of model.ports) {
        const r = portLines({ name: p.dev, bridge: p.bridge, mtu: p.mtu, up: p.port.adminStateUp !== false }, byName.get(p.dev));
        lines.push(...r.lines);
        if (r.created) st.createdTaps.push(p.dev);
      }
      await this.runBatch('ip', this.host, lines, 'host links', rep);
    });

    // FDB entries: re-read only when the wanted ones changed, a VXLAN device was (re)made, or deep.
    const fdbKey = JSON.stringify(model.vxlans.map((v) => [v.name, v.peers, v.remoteMacs]));
    if (deep || fdbKey !== this.fdbApplied || rep.changes.some((c) => / link add vxlan-/.test(c))) {
      this.fdbApplied = undefined;
      await phase('fdb', async () => {
        const errorsBefore = rep.errors.length;
        const lines = fdbLines(model.vxlans, await listFdb(this.host));
        await this.runBatch('bridge', this.host, lines, 'vxlan fdb', rep);
        if (rep.errors.length === errorsBefore) this.fdbApplied = fdbKey;
      });
    }

    await phase('namespace-config', async () => {
      const routerPlans = new Map(model.routers.map((r) => [r.spec.ns, r.plan]));
      const metas = new Map(model.meta.map((m) => [m.spec.ns, m]));
      await forEachLimit(nsSpecs, 4, async (spec) => {
        const plan = routerPlans.get(spec.ns);
        const meta = metas.get(spec.ns);
        const key = JSON.stringify([spec, plan?.routes, plan?.nat, meta?.routes]);
        const inode = await namespaceInode(spec.ns);
        const prev = this.nsApplied.get(spec.ns);
        const errorsBefore = rep.errors.length;
        if (!deep && !dirty.has(spec.ns) && prev && prev.key === key && prev.inode === inode) {
          // unchanged but for a metadata namespace's neighbours (a port came or went): only those, from what was applied
          if (meta && prev.neighbors && JSON.stringify(prev.neighbors) !== JSON.stringify(meta.neighbors)) {
            const had = prev.neighbors.map((n) => ({ ...n, dev: meta.spec.interfaces[0]!.name, permanent: true }));
            await this.runBatch('ip', spec.ns, neighborLines(meta.spec.interfaces[0]!.name, meta.neighbors, had), `metadata namespace ${spec.ns}`, rep);
            if (rep.errors.length === errorsBefore) prev.neighbors = meta.neighbors;
            else this.nsApplied.delete(spec.ns);
          }
          return;
        }
        try {
          if (created.has(spec.ns) || deep) {
            await batch('ip', spec.ns, ['link set lo up']);
            if (Object.keys(spec.sysctls).length) await sysctl(spec.ns, spec.sysctls);
          }
          const lines = planNamespace(spec, await listAddresses(spec.ns));
          await this.runBatch('ip', spec.ns, lines, `namespace ${spec.ns}`, rep);
          if (plan) {
            await this.runBatch('ip', spec.ns, await routeLines(spec.ns, plan.routes), `routes ${spec.ns}`, rep);
            const natChanged = prev?.key !== key || created.has(spec.ns) || prev?.inode !== inode;
            if (natChanged || !(await routerNatPresent(spec.ns))) {
              await loadRouterNat(spec.ns, plan.nat);
              rep.changes.push(`nft router ${spec.ns}`);
            }
          }
          if (meta) {
            const dev = meta.spec.interfaces[0]!;
            await this.runBatch('ip', spec.ns, [
              ...await routeLines(spec.ns, meta.routes),
              ...neighborLines(dev.name, meta.neighbors, await listNeighbors(spec.ns, dev.name)),
            ], `metadata namespace ${spec.ns}`, rep);
            // requests redirected to its MAC never flood the network (or cross to other hosts)
            const fdb = await listFdb(this.host, dev.hostEnd);
            if (!fdb.some((e) => e.mac === meta.mac && !e.self)) {
              await this.runBatch('bridge', this.host, [`fdb replace ${meta.mac} dev ${dev.hostEnd} master static`], `fdb ${dev.hostEnd}`, rep);
            }
          }
        } catch (e) {
          rep.errors.push({ what: `namespace ${spec.ns}`, error: message(e) });
        }
        if (rep.errors.length === errorsBefore && inode !== undefined) this.nsApplied.set(spec.ns, { key, inode, neighbors: meta?.neighbors });
        else this.nsApplied.delete(spec.ns);
      });
    });

    await phase('firewall', async () => {
      const fwPorts: FirewallPort[] = model.ports.filter((p) => p.port.portSecurity).map((p) => ({
        device: p.dev, index: st.marks[p.port.id]!, mac: p.port.mac.toLowerCase(), ips: p.port.fixedIps.map((f) => f.ip),
        allowedAddressPairs: p.port.allowedAddressPairs, securityGroupIds: p.port.securityGroupIds,
      }));
      const bridges = [...model.nets.values()].map((nm) => ({ name: nm.bridge, zone: nm.managed ? st.zones[nm.net.id] : undefined }));
      const metadataRedirects = model.meta.map((m) => ({ devices: m.taps, mac: m.mac }));
      const { text, tables, warnings } = renderFirewall({ table: this.table, ports: fwPorts, bridges, securityGroups: state.securityGroups, metadataRedirects });
      rep.warnings.push(...warnings);
      const full = async () => {
        this.firewallApplied = undefined;
        this.firewallTables = undefined;
        await loadRuleset(this.host, text);
        this.firewallApplied = text;
        this.firewallTables = tables;
      };
      if (deep) {
        // re-load it whole (undoes edits by hand); a change only when it differed or was gone
        const differs = text !== this.firewallApplied || !(await firewallPresent(this.host, this.table));
        await full();
        if (differs) rep.changes.push('nft host ruleset (full)');
      } else if (text !== this.firewallApplied) {
        const delta = this.firewallTables ? firewallDelta(this.firewallTables, tables) : undefined;
        if (delta === undefined) {
          await full();
          rep.changes.push('nft host ruleset (full)');
        } else {
          try {
            await loadRuleset(this.host, delta);
            this.firewallApplied = text;
            this.firewallTables = tables;
            rep.changes.push(`nft host ruleset (${delta.split('\n').filter((l) => /^(add|delete) chain|^flush set/.test(l)).length} chains/sets changed)`);
          } catch (e) {
            this.log.warn({ err: message(e) }, 'incremental ruleset update failed; loading it whole');
            await full();
            rep.changes.push('nft host ruleset (full)');
          }
        }
      }
    });

    await phase('daemons', async () => {
      await forEachLimit(model.dhcp, 4, async (m) => {
        try {
          const f = renderDnsmasq(m.d, m.net, m.spec.interfaces[0]!.name, m.dir, this.daemonUser?.user ?? 'root');
          rep.warnings.push(...f.warnings.map((w) => `dhcp ${m.d.networkId}: ${w}`));
          await mkdir(m.dir, { recursive: true, mode: 0o755 });
          const outcome = await convergeDnsmasq(m.spec.ns, f);
          if (outcome !== 'unchanged') rep.changes.push(`dnsmasq ${outcome} ${m.d.networkId}`);
          if (await convergeHaproxy(m.spec.ns, m.dir, m.d.networkId, this.metadataSocket, this.daemonUser)) rep.changes.push(`haproxy start ${m.d.networkId}`);
        } catch (e) {
          rep.errors.push({ what: `dhcp ${m.d.networkId}`, error: message(e) });
        }
      });
      await forEachLimit(model.meta, 4, async (m) => {
        try {
          await mkdir(m.dir, { recursive: true, mode: 0o755 });
          if (await convergeHaproxy(m.spec.ns, m.dir, m.networkId, this.metadataSocket, this.daemonUser)) rep.changes.push(`haproxy start meta ${m.networkId}`);
        } catch (e) {
          rep.errors.push({ what: `metadata ${m.networkId}`, error: message(e) });
        }
      });
      // (network, address) → instance: the DHCP hosts of networks served here, and the local ports
      const index = new Map<string, Map<string, string>>();
      const byNet = (id: string) => { let m = index.get(id); if (!m) index.set(id, m = new Map()); return m; };
      for (const m of model.dhcp) for (const h of m.d.hosts) if (h.deviceId) byNet(m.d.networkId).set(h.ip, h.deviceId);
      for (const p of model.ports) if (p.port.deviceId) for (const f of p.port.fixedIps) byNet(p.port.networkId).set(f.ip, p.port.deviceId);
      this.metadataIndex = index;
    });

    // What is gone from the kernel (removed here, by hand, or by a reboot) and no longer wanted is forgotten.
    const unwanted = [...owned].filter((n) => !wanted.has(n));
    if (unwanted.length && existingNs) {
      const present = new Set([...existingNs, ...(await listLinks(this.host).catch(() => links)).map((l) => l.name)]);
      for (const n of unwanted) if (!present.has(n)) owned.delete(n);
    }
    st.owned = [...owned];
    this.model = model;
    this.applied = { state, failed: new Set(rep.errors.map((e) => e.what)) };
    if (deep) this.lastDeepAt = Date.now();
    await this.saveState();
    rep.durationMs = Math.round((performance.now() - t0) * 10) / 10;
    const summary = { generation: rep.generation, durationMs: rep.durationMs, deep, changes: rep.changes.length, errors: rep.errors.length };
    if (rep.errors.length) this.log.warn({ ...summary, errorList: rep.errors }, 'network state applied with errors');
    else if (rep.changes.length) this.log.info(summary, 'network state applied');
    else this.log.debug(summary, 'network state unchanged');
    if (rep.changes.length) this.log.debug({ generation: rep.generation, changeList: rep.changes }, 'network changes');
    if (rep.warnings.length) this.log.warn({ generation: rep.generation, warnings: rep.warnings }, 'network state warnings');
    return rep;
  }

  private async runBatch(tool: 'ip' | 'bridge', ns: string | undefined, lines: string[], what: string, rep: ApplyReport): Promise<void> {
    if (!lines.length) return;
    const r = await batch(tool, ns, lines);
    // Deleting what is already gone (a namespace's veth vanishing as the kernel tears it down) is no error.
    const gone = (f: { line: string; error: string }) => /^link del /.test(f.line) && /Cannot find device/.test(f.error);
    const failed = new Set(r.failed.map((f) => f.line));
    for (const l of lines) if (!failed.has(l)) rep.changes.push(`${tool}${ns ? ` -n ${ns}` : ''} ${l}`);
    for (const f of r.failed) if (!gone(f)) rep.errors.push({ what: `${what}: ${f.line}`, error: f.error });
  }
}

