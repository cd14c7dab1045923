import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import type { AuthContext, TokenValidator } from '../../../api/context.ts';
import { createApiServer } from '../../../api/server.ts';
import { Unauthorized } from '../../../common/errors.ts';
import { createLogger } from '../../../common/logger.ts';
import { openDatabase, type OpenDatabase } from '../../../db/index.ts';
import { DEFAULT_COMPUTE_CONFIG, type ComputeDeps } from '../deps.ts';
import { installMicroversions, novaError } from '../http.ts';
import * as store from '../store.ts';
import { serverGroupRoutes } from './server-groups.ts';

// ---- harness: an in-memory database and the routes behind the real API server, with a fake token validator ----
const cred = (userId: string, projectId: string, roles: string[]): AuthContext => ({
  token: `tok-${userId}`, userId, userName: userId, userDomainId: 'default', projectId, projectDomainId: 'default',
  roles, roleIds: roles, methods: ['password'], auditIds: ['a'], issuedAt: 0, expiresAt: Date.now() + 3_600_000,
});
const USERS: Record<string, AuthContext> = {
  admin: cred('u-admin', 'p-admin', ['admin', 'member', 'reader']),
  alice: cred('u-alice', 'p-one', ['member', 'reader']),
  bob: cred('u-bob', 'p-two', ['member', 'reader']),
};
const validator: TokenValidator = {
  async validate(token) {
    const u = Object.values(USERS).find((x) => x.token === token);
    if (!u) throw new Unauthorized();
    return u;
  },
};
type App = ReturnType<typeof createApiServer>;
/** In-memory SQLite, or a new database on GUREUM_TEST_POSTGRES_URL's server to run the same tests on PostgreSQL. */
async function freshDatabase(): Promise<OpenDatabase> {
  const base = process.env.GUREUM_TEST_POSTGRES_URL;
  if (!base) return openDatabase(':memory:');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return openDatabase(u.toString());
}
async function harness(mount: (app: FastifyInstance, deps: ComputeDeps) => void): Promise<{ app: App; deps: ComputeDeps; dbh: OpenDatabase }> {
  const dbh = await freshDatabase();
  const log = createLogger('silent');
  const deps: ComputeDeps = { db: dbh.db, log, cfg: DEFAULT_COMPUTE_CONFIG };
  const app = createApiServer({ log, validator, maxBodyBytes: 1 << 20 }, [{
    prefix: '/compute', formatError: novaError, routes: (scope) => { installMicroversions(scope); mount(scope, deps); },
  }]);
  await app.ready();
  return { app, deps, dbh };
}
type Call = { status: number; body: Record<string, any> };
function caller(app: App) {
  return async (who: keyof typeof USERS, method: string, path: string, body?: unknown, version?: string): Promise<Call> => {
    const res = await app.inject({
      method: method as 'GET', url: `/compute/v2.1${path}`, payload: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'x-auth-token': USERS[who]!.token, ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(version ? { 'openstack-api-version': `compute ${version}` } : {}) },
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : {} };
  };
}
// ---- end harness ----

describe('server groups', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: ComputeDeps;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh, deps } = await harness(serverGroupRoutes));
    call = caller(app);
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('pre-2.64: policies and metadata; 2.13 adds project_id/user_id; 2.15 soft policies', async () => {
    let r = await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g1', policies: ['anti-affinity'] } });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body.server_group).sort(), ['id', 'members', 'metadata', 'name', 'policies']);
    assert.deepEqual(r.body.server_group.policies, ['anti-affinity']);
    r = await call('alice', 'GET', `/os-server-groups/${r.body.server_group.id}`, undefined, '2.13');
    assert.equal(r.body.server_group.project_id, 'p-one');
    assert.equal(r.body.server_group.user_id, 'u-alice');
    assert.equal((await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g', policies: ['soft-affinity'] } })).status, 400);
    assert.equal((await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g2', policies: ['soft-affinity'] } }, '2.15')).status, 200);
    for (const bad of [
      { server_group: { name: 'g', policies: [] } },
      { server_group: { name: 'g', policies: ['affinity', 'anti-affinity'] } },
      { server_group: { name: 'g', policies: ['bogus'] } },
      { server_group: { name: '', policies: ['affinity'] } },
      { server_group: { name: 'g', policy: 'affinity' } },
      { server_group: { name: 'g', policies: ['affinity'], extra: 1 } },
    ]) {
      const res = await call('alice', 'POST', '/os-server-groups', bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.body.badRequest.code, 400);
    }
  });

  test('2.64: policy and rules (max_server_per_host for anti-affinity only)', async () => {
    let r = await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g3', policy: 'anti-affinity', rules: { max_server_per_host: 2 } } }, '2.64');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body.server_group).sort(), ['id', 'members', 'name', 'policy', 'project_id', 'rules', 'user_id']);
    assert.deepEqual(r.body.server_group.rules, { max_server_per_host: 2 });
    r = await call('alice', 'GET', `/os-server-groups/${r.body.server_group.id}`);
    assert.deepEqual(r.body.server_group.policies, ['anti-affinity']);
    r = await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g', policy: 'affinity', rules: { max_server_per_host: 2 } } }, '2.64');
    assert.equal(r.body.badRequest.message, 'Only anti-affinity policy supports rules.');
    assert.equal((await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g', policy: 'anti-affinity', rules: { max_server_per_host: 0 } } }, '2.64')).status, 400);
    assert.equal((await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g', policies: ['affinity'] } }, '2.64')).status, 400);
    r = await call('alice', 'POST', '/os-server-groups', { server_group: { name: 'g4', policy: 'affinity' } }, '2.64');
    assert.deepEqual(r.body.server_group.rules, {});
  });

  test('projects: list own, admin all_projects, 404 across projects, delete', async () => {
    const mine = (await call('alice', 'GET', '/os-server-groups')).body.server_groups;
    assert.deepEqual(mine.map((g: { name: string }) => g.name), ['g1', 'g2', 'g3', 'g4']);
    const bobs = (await call('bob', 'POST', '/os-server-groups', { server_group: { name: 'bg', policies: ['affinity'] } })).body.server_group;
    assert.deepEqual((await call('bob', 'GET', '/os-server-groups?all_projects=true')).body.server_groups.map((g: { name: string }) => g.name), ['bg']);
    assert.equal((await call('admin', 'GET', '/os-server-groups')).body.server_groups.length, 0);
    assert.equal((await call('admin', 'GET', '/os-server-groups?all_projects=True')).body.server_groups.length, 5);
    assert.deepEqual((await call('alice', 'GET', '/os-server-groups?limit=2&offset=1')).body.server_groups.map((g: { name: string }) => g.name), ['g2', 'g3']);
    let r = await call('alice', 'GET', `/os-server-groups/${bobs.id}`);
    assert.deepEqual(r.body, { itemNotFound: { code: 404, message: `Instance group ${bobs.id} could not be found.` } });
    assert.equal((await call('alice', 'DELETE', `/os-server-groups/${bobs.id}`)).status, 404);
    assert.equal((await call('admin', 'GET', `/os-server-groups/${bobs.id}`)).status, 200);
    assert.equal((await call('bob', 'DELETE', `/os-server-groups/${bobs.id}`)).status, 204);
    assert.equal((await call('bob', 'GET', `/os-server-groups/${bobs.id}`)).status, 404);
    r = await call('bob', 'DELETE', `/os-server-groups/${bobs.id}`);
    assert.equal(r.status, 404);
  });

  test('quota server_groups (403)', async () => {
    await store.setQuotas(deps.db, 'p-two', { server_groups: 1 });
    assert.equal((await call('bob', 'POST', '/os-server-groups', { server_group: { name: 'a', policies: ['affinity'] } })).status, 200);
    const r = await call('bob', 'POST', '/os-server-groups', { server_group: { name: 'b', policies: ['affinity'] } });
    assert.equal(r.status, 403);
    assert.equal(r.body.forbidden.message, 'Quota exceeded, too many server groups.');
  });
});
