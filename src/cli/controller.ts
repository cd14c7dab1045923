import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createApiServer } from '../api/server.ts';
import { Bus, HealthPing, subject } from '../bus/index.ts';
import type { Config } from '../common/config.ts';
import { newSecret } from '../common/ids.ts';
import type { RootLogger } from '../common/logger.ts';
import { openDatabase, type Db } from '../db/index.ts';
import { bootstrapIdentity } from '../services/identity/bootstrap.ts';
import { KeyRepository } from '../services/identity/keys.ts';
import { identityMount } from '../services/identity/routes.ts';
import { IdentityService } from '../services/identity/service.ts';
import { TokenCodec } from '../services/identity/tokens.ts';
import { LocalImageStore } from '../services/image/data-store.ts';
import { imageMount } from '../services/image/routes.ts';
import { ImageService, type PatchOp } from '../services/image/service.ts';
import type { AuthContext } from '../api/context.ts';
import { Conductor } from '../services/compute/conductor.ts';
import { computeSettings, DEFAULT_COMPUTE_CONFIG, type ComputeDeps } from '../services/compute/deps.ts';
import type { ImageApi } from '../services/compute/images.ts';
import { computeMount } from '../services/compute/routes.ts';
import { bootstrapFlavors, flavorRoutes } from '../services/compute/routes/flavors.ts';
import { keypairRoutes } from '../services/compute/routes/keypairs.ts';
import { quotaRoutes } from '../services/compute/routes/quotas.ts';
import { hostRoutes } from '../services/compute/routes/hosts.ts';
import { serverGroupRoutes } from '../services/compute/routes/server-groups.ts';
import { busAgentQueries } from '../services/compute/agent-queries.ts';
import { extensionRoutes } from '../services/compute/routes/extensions.ts';
import { externalEventRoutes } from '../services/compute/routes/external-events.ts';
import { imageProxyRoutes } from '../services/compute/routes/images.ts';
import { osHostRoutes } from '../services/compute/routes/os-hosts.ts';
import { quotaClassRoutes } from '../services/compute/routes/quota-classes.ts';
import { serverExtraRoutes } from '../services/compute/routes/server-extras.ts';
import { usageRoutes } from '../services/compute/routes/usage.ts';
import { migrationRoutes } from '../services/compute/routes/migrations.ts';
import { Scheduler } from '../services/compute/scheduler/scheduler.ts';
import { schedulerConfig } from '../services/compute/scheduler/config.ts';
import { configSection } from '../common/config.ts';
import { ComputeService } from '../services/compute/service.ts';
import { BASE_FIELDS, type ImageRecord } from '../services/image/types.ts';
import { BadRequest } from '../common/errors.ts';
import { networkSettings } from '../services/network/config.ts';
import { networkMount } from '../services/network/routes.ts';
import type { NetworkDeps } from '../services/network/types.ts';
import { NetworkService } from '../services/network/service.ts';
import { AgentSync } from '../services/network/agent-sync.ts';
import { computeNetworkApi } from './compute-network.ts';
import { volumeSettings } from '../services/volume/config.ts';
import { volumeMount } from '../services/volume/routes.ts';
import { VolumeService } from '../services/volume/service.ts';
import type { VolumeImageApi } from '../services/volume/types.ts';
import { computeVolumeApi } from './compute-volume.ts';

/** Published when identity data changes, so every controller drops cached token views. */
const IdentityChanged = subject<{ from: string; kind: string }>('gureum.identity.changed');

export interface RunningController {
  url: string;
  /** The URL the compute agents use (image downloads, snapshot uploads): `url`, or the underlay one with `up --hosts N`. */
  internalUrl: string;
  adminPassword: string;
  adminPasswordFile: string;
  createdAdmin: boolean;
  images: ImageService;
  network: NetworkService;
  /** An in-process admin identity for the controller's own work (registering built-in images). */
  adminAuth(): Promise<AuthContext>;
  stop(): Promise<void>;
}

export function keyRepository(cfg: Config): KeyRepository {
  return new KeyRepository(join(cfg.dataDir, 'keys', 'tokens'), cfg.maxActiveKeys);
}

/** The admin password: generated once at first start, kept mode 0600 in the data directory. */
function adminPassword(cfg: Config): { password: string; file: string } {
  const file = join(cfg.dataDir, 'admin-password');
  if (!existsSync(file)) writeFileSync(file, `${newSecret(18)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { password: readFileSync(file, 'utf8').trim(), file };
}

export interface ControllerOptions {
  /**
   * An address the agents reach the API on when they cannot use `publicUrl` (`up --hosts N`:
   * the root namespace's underlay address; 127.0.0.1 inside a host namespace is that host's
   * own). The API is also served there, and the agents get URLs with it (OpenStack's internal endpoint).
   */
  internalHost?: string;
}

/**
 * The API on a second address: a TCP relay from `host:port` to the listener (Fastify serves
 * one address). Not needed when the listener is on every address already.
 */
async function relay(host: string, port: number, target: { host: string; port: number }, log: RootLogger): Promise<{ close(): Promise<void> }> {
  const open = new Set<{ destroy(): void }>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.host, port: target.port });
    const pair = { destroy: () => { client.destroy(); upstream.destroy(); } };
    open.add(pair);
    const close = () => { open.delete(pair); pair.destroy(); };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', (err) => { log.warn({ err: err.message }, 'API relay: upstream connection failed'); close(); });
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, () => { server.off('error', reject); resolve(); }); });
  log.info({ listen: `${host}:${port}`, target: `${target.host}:${target.port}` }, 'API relayed for the agents');
  return {
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const p of open) p.destroy();
    }),
  };
}

/** Start every API on one listener, plus the bus; returns once it accepts requests. */
export async function startController(cfg: Config, log: RootLogger, natsUrl: string, opts: ControllerOptions = {}): Promise<RunningController> {
  mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  const { password, file } = adminPassword(cfg);
  const database = await openDatabase(cfg.database);
  log.info({ dialect: database.dialect }, 'database ready');
  const keys = keyRepository(cfg);
  keys.setup();
  const identity = new IdentityService(database.db, new TokenCodec(keys), {
    tokenExpiration: cfg.tokenExpiration, passwordHashRounds: cfg.passwordHashRounds,
  }, log.child({ component: 'identity' }));
  await identity.start();
  const { createdAdmin } = await bootstrapIdentity(identity, {
    adminPassword: password, region: cfg.region,
    services: [
      { type: 'identity', name: 'keystone', url: `${cfg.publicUrl}/identity/v3` },
      { type: 'image', name: 'glance', url: `${cfg.publicUrl}/image` },
      { type: 'compute', name: 'nova', url: `${cfg.publicUrl}/compute/v2.1` },
      { type: 'network', name: 'neutron', url: `${cfg.publicUrl}/networking` },
      { type: 'block-storage', name: 'cinder', url: `${cfg.publicUrl}/volume/v3` },
      { type: 'volumev3', name: 'cinderv3', url: `${cfg.publicUrl}/volume/v3` },
    ],
  });

  const images = new ImageService(database.db, new LocalImageStore(join(cfg.dataDir, 'images')), log.child({ component: 'image' }));
  await images.start();

  const bus = await Bus.connect(natsUrl, log.child({ component: 'bus' }), `gureum-controller-${hostname()}-${process.pid}`);
  const me = `${hostname()}:${process.pid}`;
  const startedAt = new Date().toISOString();
  bus.serve(HealthPing, () => ({ process: 'controller', host: hostname(), pid: process.pid, startedAt }));
  identity.onChange((kind) => bus.publish(IdentityChanged, { from: me, kind }));
  bus.subscribe(IdentityChanged, (m) => { if (m.from !== me) void identity.refreshFromPeer(); });

  const sched = schedulerConfig(configSection(cfg, 'scheduler'));
  const computeCfg = { ...DEFAULT_COMPUTE_CONFIG, ...sched.ratios, ...computeSettings(configSection(cfg, 'compute')) };
  // Neutron: the API, the agents' desired state (AgentSync) and what compute uses of it.
  const networkDeps: NetworkDeps = { db: database.db, log: log.child({ component: 'network' }), cfg: networkSettings(configSection(cfg, 'network')) };
  const network = new NetworkService(networkDeps);
  const agentSync = new AgentSync({
    db: database.db, bus, log: log.child({ component: 'network-sync' }), hostDownAfterSec: computeCfg.serviceDownTimeSec,
    ensureDhcpPort: (id) => network.ensureDhcpPort(id),
  });
  const computeDeps: ComputeDeps = { db: database.db, log: log.child({ component: 'compute' }), cfg: computeCfg, networks: computeNetworkApi(network, database.db) };
  const wildcard = cfg.listenHost === '0.0.0.0' || cfg.listenHost === '::';
  const internalUrl = opts.internalHost ? `http://${opts.internalHost}:${cfg.listenPort}` : cfg.publicUrl;
  const imageApi = computeImageApi(images, internalUrl);
  // Cinder: the API, the scheduler and the volume manager driving the hosts' pools; compute attaches and boots through it.
  const volume = new VolumeService({ db: database.db, bus, log: log.child({ component: 'volume' }), cfg: volumeSettings(configSection(cfg, 'volume')), images: volumeImageApi(images, internalUrl) });
  await volume.start();
  computeDeps.volumes = computeVolumeApi(volume);
  const conductor = new Conductor(computeDeps, bus, imageApi, new Scheduler(sched.options), log.child({ component: 'conductor' }));
  const compute = new ComputeService(computeDeps, imageApi, conductor);
  await bootstrapFlavors(database.db);
  await conductor.start();
  const hostStatus = computeHostStatus(computeDeps);
  networkDeps.changed = (what) => {
    // Agents' own port status reports change nothing they need to pull.
    if (what !== 'port_status') agentSync.changed();
    // Ports and floating IPs show in server views: refresh compute's network info cache (Nova's network-changed event).
    if (what === 'port' || what === 'floatingip' || what === 'router') conductor.refreshNetworkInfo();
  };
  agentSync.start();
  agentSync.changed();

  const app = createApiServer({ log, validator: identity, maxBodyBytes: cfg.maxBodyBytes }, [
    identityMount(identity), imageMount(images), computeMount({ compute, hostStatus: hostStatus.lookup, extra: [
      (a) => flavorRoutes(a, computeDeps), (a) => keypairRoutes(a, computeDeps), (a) => quotaRoutes(a, computeDeps),
      (a) => hostRoutes(a, computeDeps), (a) => serverGroupRoutes(a, computeDeps),
      (a) => serverExtraRoutes(a, computeDeps, busAgentQueries(bus)), (a) => imageProxyRoutes(a, computeDeps, imageApi),
      (a) => usageRoutes(a, computeDeps), (a) => quotaClassRoutes(a, computeDeps), (a) => extensionRoutes(a),
      (a) => externalEventRoutes(a, computeDeps), (a) => osHostRoutes(a, computeDeps),
      (a) => migrationRoutes(a, computeDeps, compute),
    ] }),
    networkMount(networkDeps),
    volumeMount(volume),
  ]);
  app.get('/healthz', { config: { auth: false } }, async () => ({ status: 'ok', bus_rtt_ms: await bus.rtt() }));
  await app.listen({ host: cfg.listenHost, port: cfg.listenPort });
  log.info({ url: cfg.publicUrl }, 'controller listening');
  const relayed = opts.internalHost && !wildcard && opts.internalHost !== cfg.listenHost
    ? await relay(opts.internalHost, cfg.listenPort, { host: cfg.listenHost, port: cfg.listenPort }, log) : undefined;

  return {
    url: cfg.publicUrl, internalUrl, adminPassword: password, adminPasswordFile: file, createdAdmin,
    images, network, adminAuth: () => adminAuth(database.db),
    async stop() {
      conductor.stop();
      await volume.stop();
      agentSync.stop();
      hostStatus.stop();
      await relayed?.close();
      await app.close();
      await bus.close();
      await database.close();
    },
  };
}

/** Glance, as compute sees it (exported for the compute image-proxy tests). */
export function computeImageApi(images: ImageService, publicUrl: string): ImageApi {
  const view = (i: ImageRecord) => ({
    id: i.id, name: i.name, status: i.status, diskFormat: i.disk_format, containerFormat: i.container_format, size: i.size,
    virtualSize: i.virtual_size, minDisk: i.min_disk, minRam: i.min_ram, sha512: i.os_hash_algo === 'sha512' ? i.os_hash_value : null, properties: i.properties,
  });
  const proxyView = (i: ImageRecord) => ({ ...view(i), createdAt: i.created_at, updatedAt: i.updated_at });
  const pointer = (key: string) => `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  const standard = new Set<string>(BASE_FIELDS);
  return {
    get: async (auth, id) => view(await images.getImage(auth, id)),
    fileUrl: (id) => `${publicUrl}/image/v2/images/${id}/file`,
    localPath: (id) => images.localPath(id),
    createSnapshot: async (auth, f) => (await images.createImage(auth, {
      name: f.name, disk_format: f.diskFormat, container_format: 'bare', visibility: 'private', properties: f.properties, min_disk: f.minDisk, min_ram: f.minRam,
    })).id,
    status: async (auth, id) => (await images.getImage(auth, id)).status,
    discard: async (auth, id) => { await images.deleteImage(auth, id); },
    delete: async (auth, id) => { await images.deleteImage(auth, id); },
    list: async (auth) => (await images.listImages(auth, {
      limit: Number.MAX_SAFE_INTEGER, sort: [{ key: 'created_at', dir: 'desc' }], memberStatus: 'accepted', osHidden: false,
      tags: [], fields: {}, times: [], properties: {},
    })).images.map(proxyView),
    show: async (auth, id) => proxyView(await images.getImage(auth, id)),
    updateProperties: async (auth, id, properties) => {
      for (const k of Object.keys(properties)) {
        if (standard.has(k)) throw new BadRequest(`Image metadata key '${k}' is a standard image attribute, not metadata.`);
      }
      const current = await images.getImage(auth, id);
      const ops: PatchOp[] = [];
      for (const k of Object.keys(current.properties)) if (!Object.prototype.hasOwnProperty.call(properties, k)) ops.push({ op: 'remove', path: pointer(k) });
      for (const [k, v] of Object.entries(properties)) if (current.properties[k] !== v) ops.push({ op: 'add', path: pointer(k), value: v });
      return proxyView(ops.length ? await images.updateImage(auth, id, ops) : current);
    },
  };
}

/** Glance, as the volume service sees it: images to create volumes from, and images volumes are uploaded to. */
function volumeImageApi(images: ImageService, url: string): VolumeImageApi {
  return {
    get: async (auth, id) => {
      const i = await images.getImage(auth, id);
      return {
        id: i.id, name: i.name ?? '', status: i.status, diskFormat: i.disk_format, containerFormat: i.container_format, size: i.size, virtualSize: i.virtual_size,
        minDisk: i.min_disk, minRam: i.min_ram, sha512: i.os_hash_algo === 'sha512' ? i.os_hash_value : null, properties: i.properties, checksum: i.checksum,
      };
    },
    fileUrl: (id) => `${url}/image/v2/images/${id}/file`,
    localPath: (id) => images.localPath(id),
    create: async (auth, f) => (await images.createImage(auth, {
      name: f.name, disk_format: f.diskFormat, container_format: f.containerFormat, visibility: f.visibility, protected: f.protected,
      properties: f.properties, min_disk: f.minDisk,
    })).id,
    discard: async (auth, id) => { await images.deleteImage(auth, id); },
  };
}

/** host_status for servers: UP, DOWN (no heartbeat), MAINTENANCE (disabled), UNKNOWN; refreshed every few seconds. */
function computeHostStatus(deps: ComputeDeps) {
  let table = new Map<string, string>();
  const refresh = async () => {
    const rows = await deps.db.selectFrom('compute_hosts').select(['host', 'enabled', 'forced_down', 'last_seen']).execute();
    const cutoff = Date.now() - deps.cfg.serviceDownTimeSec * 1000;
    table = new Map(rows.map((r) => [r.host, r.forced_down || Date.parse(r.last_seen) < cutoff ? 'DOWN' : r.enabled ? 'UP' : 'MAINTENANCE']));
  };
  const timer = setInterval(() => { void refresh().catch(() => undefined); }, 5000);
  timer.unref();
  void refresh().catch(() => undefined);
  return { lookup: (h: string | null) => (h ? table.get(h) ?? 'UNKNOWN' : ''), stop: () => clearInterval(timer) };
}

/** The bootstrap admin, scoped to the admin project, as an in-process caller. */
async function adminAuth(db: Db): Promise<AuthContext> {
  const user = await db.selectFrom('users').select(['id', 'name', 'domain_id']).where('name', '=', 'admin').where('domain_id', '=', 'default').executeTakeFirstOrThrow();
  const project = await db.selectFrom('projects').select(['id', 'domain_id']).where('name', '=', 'admin').where('domain_id', '=', 'default').executeTakeFirstOrThrow();
  const now = Date.now();
  return {
    token: '', userId: user.id, userName: user.name, userDomainId: user.domain_id, projectId: project.id, projectDomainId: project.domain_id,
    roles: ['admin', 'member', 'reader'], roleIds: [], methods: ['internal'], auditIds: [], issuedAt: now, expiresAt: now + 3600_000,
  };
}
