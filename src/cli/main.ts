import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../common/config.ts';
import { createLogger, type Logger } from '../common/logger.ts';
import { defaultConfigDir, writeClientFiles } from './clientconfig.ts';
import { keyRepository, startController } from './controller.ts';
import { NatsChild } from './nats.ts';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { startAgent } from '../agent/agent.ts';
import { AgentChild } from './agent-child.ts';
import { canRunNetworking, ensureExternalBridge, externalSettings } from './host-network.ts';
import { ensurePublicNetwork } from './network-bootstrap.ts';
import { configSection } from '../common/config.ts';
import { ensureGuestImages } from './guest-images.ts';
import { registerGuestImages } from './guest-register.ts';
import {
  ensureHost, ensureUnderlay, extraHosts, HOST_EXTERNAL_BRIDGE, hostDataDir, hostsLayout, loadHostsFile, MAX_HOSTS, removeHosts, type HostsLayout,
} from './hosts.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const USAGE = `gureum — a private cloud behind the OpenStack APIs

Usage:
  gureum up [options]            all-in-one cloud on this machine, in the foreground
  gureum controller [options]    the API controller only (needs --nats-url)
  gureum agent [options]         the compute agent of this host (needs --nats-url)
  gureum image build [options]   rebuild the built-in guest images (registered at the next up)
  gureum keys rotate [options]   rotate the token signing keys
  gureum hosts remove [options]  remove the host namespaces, veths and underlay bridge of up --hosts N
                                 (with the guests running in them); stop up first
  gureum help

Options (each also settable in the config file or environment; see docs/configuration.md):
  --data-dir DIR        state directory (default ~/.local/share/gureum)
  --database URL        sqlite:<path> (default, in the data directory) or postgresql://...
  --nats-url URL        use this NATS server instead of starting one (up), required (controller)
  --host ADDR           listen address (default 127.0.0.1)
  --port N              listen port (default 8700)
  --public-url URL      base URL published in the catalog
  --region NAME         region name (default RegionOne)
  --config FILE         config file (default <data-dir>/gureum.yaml)
  --config-dir DIR      where up writes openrc and clouds.yaml (default ~/.config/gureum)
  --log-level LEVEL     trace|debug|info|warn|error (default info)
  --host-name NAME      this compute host's name (agent; default the machine's hostname)
  --accel auto|kvm|tcg  QEMU accelerator (agent; default auto: KVM when a boot probe passes)
  --no-agent            up: do not run a compute agent on this machine
  --hosts N             up: N compute hosts, each agent in its own network namespace on an underlay
                        bridge (multi-host networking on one machine; root; see docs/multi-host.md)
  --tunnel-ip ADDR      agent: this host's underlay address for VXLAN (enables tenant networking)
  --physical-bridge P:B agent: physical network P is host bridge B (repeatable; e.g. public:br-ex)
  --namespace-prefix P  agent: prefix of its qdhcp-/qrouter-/qmeta- namespaces (several agents on one machine)
`;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' }, database: { type: 'string' }, 'nats-url': { type: 'string' },
      host: { type: 'string' }, port: { type: 'string' }, 'public-url': { type: 'string' }, region: { type: 'string' },
      config: { type: 'string' }, 'config-dir': { type: 'string' }, 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      'host-name': { type: 'string' }, accel: { type: 'string' }, 'no-agent': { type: 'boolean' },
      'tunnel-ip': { type: 'string' }, 'physical-bridge': { type: 'string', multiple: true },
      hosts: { type: 'string' }, 'namespace-prefix': { type: 'string' },
    },
  });
}

function configFrom(values: ReturnType<typeof parse>['values']): Config {
  return loadConfig({
    flags: {
      dataDir: values['data-dir'], database: values.database, natsUrl: values['nats-url'], listenHost: values.host,
      listenPort: values.port, publicUrl: values['public-url'], region: values.region, logLevel: values['log-level'], config: values.config,
    },
  });
}

/** Stops `stoppers` in order on SIGINT/SIGTERM, then exits. */
function onSignals(stoppers: (() => Promise<void>)[], log: { info: (o: object, m: string) => void }): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    for (const s of stoppers) { try { await s(); } catch { /* keep stopping the rest */ } }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/** `--hosts N`: a whole number from 1 to MAX_HOSTS (1, the default, is the single-host all-in-one). */
function hostCount(raw: string | undefined): number {
  if (raw === undefined) return 1;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_HOSTS) throw new Error(`--hosts must be a number from 1 to ${MAX_HOSTS}, not ${raw}`);
  return n;
}

/** `up --hosts N`: the underlay, before NATS and the controller (they listen on its address too). */
async function prepareHosts(cfg: Config, n: number, values: ReturnType<typeof parse>['values'], log: Logger): Promise<HostsLayout> {
  if (!canRunNetworking()) throw new Error('--hosts needs root: it makes network namespaces, bridges and veths');
  if (values['no-agent']) throw new Error('--hosts and --no-agent do not go together');
  if (cfg.natsUrl) throw new Error('--hosts runs its own nats-server on the underlay (the host namespaces cannot reach another one on loopback); drop --nats-url');
  mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  const layout = hostsLayout(await loadHostsFile(cfg.dataDir, log), n);
  await ensureUnderlay(layout, log);
  return layout;
}

async function up(values: ReturnType<typeof parse>['values']): Promise<void> {
  const cfg = configFrom(values);
  const log = createLogger(cfg.logLevel);
  const stoppers: (() => Promise<void>)[] = [];
  let nats: NatsChild | null = null;
  onSignals(stoppers, log);
  try {
    const n = hostCount(values.hosts);
    const layout = n > 1 ? await prepareHosts(cfg, n, values, log.child({ component: 'hosts' })) : undefined;
    if (!layout && existsSync(join(cfg.dataDir, 'hosts.json'))) {
      log.warn('the host namespaces of an earlier up --hosts N are left as they are (their guests run on, unmanaged); gureum hosts remove removes them');
    }
    nats = cfg.natsUrl ? null : new NatsChild(cfg.dataDir, log.child({ component: 'nats' }), layout?.gateway);
    const natsUrl = cfg.natsUrl || (await nats!.start());
    const started = nats;
    if (started) stoppers.push(() => started.stop());
    const ctl = await startController(cfg, log, natsUrl, { internalHost: layout?.gateway });
    stoppers.unshift(() => ctl.stop());
    // The built-in guest images: built once (cached), registered in Glance as public images.
    const guest = await ensureGuestImages(cfg.guestDir, { log: log.child({ component: 'guest' }) });
    await registerGuestImages(ctl.images, await ctl.adminAuth(), guest, log.child({ component: 'guest' }));
    const baseName = values['host-name'] ?? hostname();
    if (layout) {
      // N agents, each in its host namespace: tunnel IP = its underlay address, `public` = the host's own br-ex.
      const hlog = log.child({ component: 'hosts' });
      const ext = externalSettings(configSection(cfg, 'external_network'));
      if (!(await ensureExternalBridge(ext, log.child({ component: 'host-network' })))) throw new Error(`cannot set up the external bridge ${ext.bridge}`);
      await ensurePublicNetwork(ctl.network, await ctl.adminAuth(), ext, log.child({ component: 'host-network' }));
      for (const h of layout.hosts) {
        await ensureHost(layout, h, ext.bridge, hlog);
        const host = `${baseName}-${h.index}`;
        const agent = new AgentChild({
          dataDir: hostDataDir(cfg.dataDir, h), natsUrl, host, logLevel: cfg.logLevel, netns: h.namespace,
          network: { tunnelIp: h.address, physicalBridges: { [ext.physicalNetwork]: HOST_EXTERNAL_BRIDGE }, namespacePrefix: h.namespacePrefix },
          beforeRestart: async () => { await ensureUnderlay(layout, hlog); await ensureHost(layout, h, ext.bridge, hlog); },
        }, log.child({ component: 'agent-supervisor', host }));
        agent.start();
        stoppers.unshift(() => agent.stop());
      }
      const extra = await extraHosts(layout, n);
      if (extra.length) hlog.warn({ namespaces: extra }, 'host namespaces beyond --hosts are left as they are (their guests run on, unmanaged); gureum hosts remove removes all');
    } else if (!values['no-agent']) {
      // Tenant networking needs root; the external bridge gives this machine a way in to floating IPs.
      const ext = externalSettings(configSection(cfg, 'external_network'));
      const network = canRunNetworking() && await ensureExternalBridge(ext, log.child({ component: 'host-network' }))
        ? { tunnelIp: '127.0.0.1', physicalBridges: { [ext.physicalNetwork]: ext.bridge } } : undefined;
      if (!network) log.warn('tenant networking is off (not root): servers get the user-mode NIC only');
      else await ensurePublicNetwork(ctl.network, await ctl.adminAuth(), ext, log.child({ component: 'host-network' }));
      const agent = new AgentChild({ dataDir: join(cfg.dataDir, 'agent'), natsUrl, host: baseName, logLevel: cfg.logLevel, network }, log.child({ component: 'agent-supervisor' }));
      agent.start();
      stoppers.unshift(() => agent.stop());
    }
    const configDir = values['config-dir'] ?? defaultConfigDir();
    const authUrl = `${ctl.url}/identity/v3`;
    const files = writeClientFiles(configDir, authUrl, ctl.adminPassword, cfg.region, values['config-dir'] === undefined);
    const lines = [
      '',
      'Gureum is up.',
      `  API:         ${ctl.url}  (identity: ${authUrl})`,
      `  Admin:       user admin, project admin, domain Default`,
      ctl.createdAdmin ? `  Password:    ${ctl.adminPassword}   (shown once; also in ${ctl.adminPasswordFile})` : `  Password:    in ${ctl.adminPasswordFile}`,
      `  openrc:      ${files.openrc}`,
      `  clouds.yaml: ${files.cloudsYaml}${values['config-dir'] === undefined ? ' (cloud "gureum", also merged into ~/.config/openstack/clouds.yaml)' : ' (cloud "gureum")'}`,
      `  Data:        ${cfg.dataDir}`,
      ...(layout ? [
        `  Hosts:       ${layout.hosts.length} on the underlay ${layout.subnet} (bridge ${layout.bridge}, this machine ${layout.gateway}):`,
        ...layout.hosts.map((h) => `                 ${baseName}-${h.index}  ${h.address}  ip netns exec ${h.namespace} ...`),
      ] : []),
      '',
      `Try: source ${files.openrc} && openstack token issue`,
      'Stop with Ctrl-C.',
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } catch (err) {
    log.fatal({ err }, 'start failed');
    for (const s of stoppers) await s().catch(() => undefined);
    await nats?.stop();
    process.exit(1);
  }
}

/** `gureum hosts remove`: what `up --hosts N` built in the kernel, and the guests in it. */
async function hostsRemove(values: ReturnType<typeof parse>['values']): Promise<void> {
  const cfg = configFrom(values);
  const log = createLogger(cfg.logLevel);
  if (!canRunNetworking()) throw new Error('gureum hosts remove needs root');
  const pidFile = join(cfg.dataDir, 'run', 'nats.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
  if (pid > 0) {
    let running = false;
    try { process.kill(pid, 0); running = true; } catch { /* not running */ }
    if (running) throw new Error(`gureum up is running for ${cfg.dataDir} (nats-server pid ${pid}); stop it first`);
  }
  const r = await removeHosts(cfg.dataDir, log.child({ component: 'hosts' }));
  process.stdout.write(`removed ${r.namespaces.length} namespaces (${r.processes} processes in them), the veths and the underlay bridge of ${cfg.dataDir}\n`);
}

async function controller(values: ReturnType<typeof parse>['values']): Promise<void> {
  const cfg = configFrom(values);
  const log = createLogger(cfg.logLevel);
  if (!cfg.natsUrl) throw new Error('gureum controller needs --nats-url (or GUREUM_NATS_URL); gureum up starts its own');
  const stoppers: (() => Promise<void>)[] = [];
  onSignals(stoppers, log);
  const ctl = await startController(cfg, log, cfg.natsUrl);
  stoppers.push(() => ctl.stop());
  process.stdout.write(`gureum controller listening on ${ctl.url}\n`);
}

async function agent(values: ReturnType<typeof parse>['values']): Promise<void> {
  const cfg = configFrom(values);
  const log = createLogger(cfg.logLevel);
  if (!cfg.natsUrl) throw new Error('gureum agent needs --nats-url (or GUREUM_NATS_URL)');
  const accel = values.accel as 'auto' | 'kvm' | 'tcg' | undefined;
  if (accel !== undefined && !['auto', 'kvm', 'tcg'].includes(accel)) throw new Error('--accel must be auto, kvm or tcg');
  const stoppers: (() => Promise<void>)[] = [];
  onSignals(stoppers, log);
  let network: { tunnelIp: string; physicalBridges: Record<string, string>; namespacePrefix?: string } | undefined;
  if (values['tunnel-ip']) {
    const physicalBridges: Record<string, string> = {};
    for (const pb of values['physical-bridge'] ?? []) {
      const [p, b] = pb.split(':');
      if (!p || !b) throw new Error(`--physical-bridge wants <physical network>:<bridge>, not ${pb}`);
      physicalBridges[p] = b;
    }
    network = { tunnelIp: values['tunnel-ip'], physicalBridges, namespacePrefix: values['namespace-prefix'] };
  }
  const a = await startAgent({ host: values['host-name'], dataDir: cfg.dataDir, natsUrl: cfg.natsUrl, log, accel, version: VERSION, network });
  stoppers.push(() => a.stop());
}

async function main(): Promise<void> {
  const { values, positionals } = parse(process.argv.slice(2));
  const [verb, sub] = positionals;
  if (values.help || verb === undefined || verb === 'help') { process.stdout.write(USAGE); return; }
  switch (verb) {
    case 'up': return up(values);
    case 'controller': return controller(values);
    case 'agent': return agent(values);
    case 'image':
      if (sub === 'build') {
        const cfg = configFrom(values);
        const g = await ensureGuestImages(cfg.guestDir, { rebuild: true, log: createLogger(cfg.logLevel) });
        process.stdout.write(`built the guest images in ${g.dir} (kernel ${g.kernelVersion}); gureum up registers them\n`);
        return;
      }
      break;
    case 'hosts':
      if (sub === 'remove') return hostsRemove(values);
      break;
    case 'keys':
      if (sub === 'rotate') {
        const cfg = configFrom(values);
        const r = keyRepository(cfg).rotate();
        process.stdout.write(`rotated token keys: primary is now key ${r.primary}${r.removed.length ? `, removed ${r.removed.join(', ')}` : ''}\n`);
        return;
      }
      break;
  }
  process.stderr.write(`gureum: unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  process.exit(2);
}

main().catch((err: unknown) => {
  process.stderr.write(`gureum: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
