/**
 * The IPAM concurrency proof on PostgreSQL with two "controllers": two API servers, each
 * with its own connection pool on one database, take turns at 70 concurrent port
 * creates on a /26 — every address once, the rest IpAddressGenerationFailure. The same
 * for VNIs (concurrent network creates) and for a project's default security group
 * (concurrent first ports). Skipped when PostgreSQL is not installed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import pgClient from 'pg';
import { createApiServer } from '../../api/server.ts';
import { createLogger } from '../../common/logger.ts';
import { openDatabase, type OpenDatabase } from '../../db/index.ts';
import { startPostgres, type Postgres } from '../../../tests/helpers/postgres.ts';
import { networkMount } from './routes.ts';
import { caller, concurrencyProof, USERS, type App } from './routes/test-harness.ts';
import { DEFAULT_NETWORK_CONFIG, type NetworkDeps } from './types.ts';
import { Unauthorized } from '../../common/errors.ts';

const havePostgres = existsSync('/usr/lib/postgresql');

describe('ipam on PostgreSQL, two controllers sharing one database', { skip: !havePostgres && 'PostgreSQL is not installed' }, () => {
  let pg: Postgres;
  const handles: OpenDatabase[] = [];
  const apps: App[] = [];
  const deps: NetworkDeps[] = [];
  before(async () => {
    pg = await startPostgres();
    const log = createLogger('silent');
    const validator = { async validate(token: string) { const u = Object.values(USERS).find((x) => x.token === token); if (!u) throw new Unauthorized(); return u; } };
    for (let i = 0; i < 2; i++) {
      const h = await openDatabase(pg.url);
      handles.push(h);
      const d: NetworkDeps = { db: h.db, log, cfg: DEFAULT_NETWORK_CONFIG };
      deps.push(d);
      const app = createApiServer({ log, validator, maxBodyBytes: 1 << 20 }, [networkMount(d)]);
      await app.ready();
      apps.push(app);
    }
  });
  after(async () => {
    for (const a of apps) await a.close();
    for (const h of handles) await h.close();
    // pg's pool resolves end() before its sockets are closed: let the backends go before stopping the server.
    if (pg) {
      const c = new pgClient.Client({ connectionString: pg.url });
      await c.connect();
      for (let i = 0; i < 50; i++) {
        const r = await c.query('select count(*)::int as n from pg_stat_activity where datname is not null and pid <> pg_backend_pid()');
        if ((r.rows[0] as { n: number }).n === 0) break;
        await new Promise((ok) => setTimeout(ok, 100));
      }
      await c.end();
      pg.stop();
    }
  });

  test('70 concurrent port creates on a /26 through two controllers: 61 distinct addresses, 9 IpAddressGenerationFailure', async () => {
    const [one, two] = apps.map((a) => caller(a));
    const net = (await one!('alice', 'POST', '/networks', { network: { name: 'busy' } })).body.network!;
    assert.equal((await two!('alice', 'POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.60.0.0/26' } })).status, 201);
    await concurrencyProof([(b) => one!('alice', 'POST', '/ports', b), (b) => two!('alice', 'POST', '/ports', b)], net.id, deps[0]!);
  });

  test('concurrent network creates never share a VNI; concurrent first ports of a project make one default group', async () => {
    const [one, two] = apps.map((a) => caller(a));
    const made = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? one! : two!)('bob', 'POST', '/networks', { network: { name: `n${i}` } })));
    assert.ok(made.every((r) => r.status === 201), JSON.stringify(made.find((r) => r.status !== 201)?.body));
    const all = (await one!('admin', 'GET', '/networks')).body.networks!;
    const vnis = all.map((n) => n['provider:segmentation_id']);
    assert.equal(new Set(vnis).size, all.length, 'one VNI per network');
    assert.deepEqual([...vnis].sort((a, b) => Number(a) - Number(b)), Array.from({ length: all.length }, (_, i) => i + 1), 'lowest free first');
    const groups = (await one!('admin', 'GET', '/security-groups?project_id=p-two&name=default')).body.security_groups!;
    assert.equal(groups.length, 1, 'one default group for the project');
  });
});
