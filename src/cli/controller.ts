import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createApiServer } from '../api/server.ts';
import { Bus, HealthPing, subject } from '../bus/index.ts';
import type { Config } from '../common/config.ts';
import { newSecret } from '../common/ids.ts';
import type { RootLogger } from '../common/logger.ts';
import { openDatabase } from '../db/index.ts';
import { bootstrapIdentity } from '../services/identity/bootstrap.ts';
import { KeyRepository } from '../services/identity/keys.ts';
import { identityMount } from '../services/identity/routes.ts';
import { IdentityService } from '../services/identity/service.ts';
import { TokenCodec } from '../services/identity/tokens.ts';
import { LocalImageStore } from '../services/image/data-store.ts';
import { imageMount } from '../services/image/routes.ts';
import { ImageService } from '../services/image/service.ts';

/** Published when identity data changes, so every controller drops cached token views. */
const IdentityChanged = subject<{ from: string; kind: string }>('gureum.identity.changed');

export interface RunningController {
  url: string;
  adminPassword: string;
  adminPasswordFile: string;
  createdAdmin: boolean;
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

/** Start every API on one listener, plus the bus; returns once it accepts requests. */
export async function startController(cfg: Config, log: RootLogger, natsUrl: string): Promise<RunningController> {
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

  const app = createApiServer({ log, validator: identity, maxBodyBytes: cfg.maxBodyBytes }, [identityMount(identity), imageMount(images)]);
  app.get('/healthz', { config: { auth: false } }, async () => ({ status: 'ok', bus_rtt_ms: await bus.rtt() }));
  await app.listen({ host: cfg.listenHost, port: cfg.listenPort });
  log.info({ url: cfg.publicUrl }, 'controller listening');

  return {
    url: cfg.publicUrl, adminPassword: password, adminPasswordFile: file, createdAdmin,
    async stop() {
      await app.close();
      await bus.close();
      await database.close();
    },
  };
}
