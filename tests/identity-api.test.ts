/**
 * Raw HTTP against the Keystone v3 API: error shapes and status codes for bad input
 * (and that bad input changes nothing), tenant isolation, revocation at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { api, passwordToken, startCloud, type Cloud } from './helpers/cloud.ts';
import { startPostgres, type Postgres } from './helpers/postgres.ts';

const run = promisify(execFile);

/**
 * POST a 2 MiB body; the server answers 413 from the Content-Length alone and may close
 * the connection while the body is still being written, so a write error after the
 * response has arrived is expected, not a failure.
 */
function oversizeStatus(url: string, token: string): Promise<number> {
  const body = JSON.stringify({ user: { name: 'x', description: 'd'.repeat(2 * 1024 * 1024) } });
  return new Promise((resolve, reject) => {
    let status = 0;
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-auth-token': token } }, (res) => {
      status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => resolve(status));
    });
    req.on('error', (err) => (status ? resolve(status) : reject(err)));
    req.end(body);
  });
}

const V3 = '/identity/v3';

for (const dbName of ['sqlite', 'postgresql'] as const) describe(`identity API behaviour on ${dbName}`, () => {
  let cloud: Cloud;
  let pg: Postgres | undefined;
  let admin: string;
  const ids: Record<string, string> = {};

  before(async () => {
    if (dbName === 'postgresql') pg = await startPostgres();
    cloud = await startCloud({ database: pg?.url });
    admin = await passwordToken(cloud, { name: 'admin', password: cloud.password }, undefined);
    const scoped = await api(cloud, 'POST', `${V3}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: admin } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } } });
    assert.equal(scoped.status, 201);
    admin = scoped.headers.get('x-subject-token')!;
    const roles = (await api(cloud, 'GET', `${V3}/roles`, { token: admin })).json.roles as { id: string; name: string }[];
    for (const r of roles) ids[`role:${r.name}`] = r.id;
    for (const name of ['alpha', 'beta']) {
      const p = await api(cloud, 'POST', `${V3}/projects`, { token: admin, body: { project: { name } } });
      ids[name] = p.json.project.id;
      const u = await api(cloud, 'POST', `${V3}/users`, { token: admin, body: { user: { name: `${name}-user`, password: `${name}-pw` } } });
      ids[`${name}-user`] = u.json.user.id;
      assert.equal((await api(cloud, 'PUT', `${V3}/projects/${p.json.project.id}/users/${u.json.user.id}/roles/${ids['role:member']}`, { token: admin })).status, 204);
    }
    const r = await api(cloud, 'POST', `${V3}/users`, { token: admin, body: { user: { name: 'watcher', password: 'watcher-pw' } } });
    ids.watcher = r.json.user.id;
    await api(cloud, 'PUT', `${V3}/projects/${ids.alpha}/users/${ids.watcher}/roles/${ids['role:reader']}`, { token: admin });
  });
  after(async () => { await cloud?.stop(); pg?.stop(); });

  test('every response carries a request id', async () => {
    const r = await api(cloud, 'GET', `${V3}`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('x-openstack-request-id')!, /^req-[0-9a-f-]{36}$/);
    assert.equal(r.json.version.id, 'v3.14');
  });

  test('bad input: Keystone error shape, right status, nothing created', async () => {
    const before = (await api(cloud, 'GET', `${V3}/users`, { token: admin })).json.users.length;
    const cases: [string, { raw?: string; body?: unknown }, number][] = [
      ['malformed JSON', { raw: '{"user": {"name": ' }, 400],
      ['wrong type', { body: { user: { name: 42 } } }, 400],
      ['enabled not a boolean', { body: { user: { name: 'x', enabled: 'yes' } } }, 400],
      ['64 KiB name', { body: { user: { name: 'n'.repeat(65536) } } }, 400],
      ['missing wrapper', { body: { name: 'x' } }, 400],
      ['empty name', { body: { user: { name: '' } } }, 400],
      ['unknown domain', { body: { user: { name: 'x', domain_id: 'nope' } } }, 404],
    ];
    for (const [what, body, status] of cases) {
      const r = await api(cloud, 'POST', `${V3}/users`, { token: admin, ...body });
      assert.equal(r.status, status, what);
      assert.equal(r.json.error.code, status, what);
      assert.equal(typeof r.json.error.title, 'string', what);
      assert.equal(typeof r.json.error.message, 'string', what);
    }
    // Keystone rejects unknown fields in an application credential.
    const me = await api(cloud, 'GET', `${V3}/auth/tokens`, { token: admin, headers: { 'X-Subject-Token': admin } });
    const unknown = await api(cloud, 'POST', `${V3}/users/${me.json.token.user.id}/application_credentials`, { token: admin, body: { application_credential: { name: 'x', colour: 'blue' } } });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error.message, /colour/);
    let status = 0;
    for (let i = 0; i < 3 && status === 0; i++) status = await oversizeStatus(cloud.url + `${V3}/users`, admin).catch(() => 0);
    assert.equal(status, 413);
    assert.equal((await api(cloud, 'GET', `${V3}/users`, { token: admin })).json.users.length, before, 'no user was created');
  });

  test('unicode and SQL-looking names are stored literally; duplicates are 409', async () => {
    for (const name of ['구름-사용자 ☁', "Robert'); DROP TABLE users;--", 'a"b\\c']) {
      const r = await api(cloud, 'POST', `${V3}/users`, { token: admin, body: { user: { name } } });
      assert.equal(r.status, 201, name);
      const got = await api(cloud, 'GET', `${V3}/users?name=${encodeURIComponent(name)}`, { token: admin });
      assert.deepEqual(got.json.users.map((u: { name: string }) => u.name), [name]);
      const dup = await api(cloud, 'POST', `${V3}/users`, { token: admin, body: { user: { name } } });
      assert.equal(dup.status, 409);
      assert.equal(dup.json.error.title, 'Conflict');
    }
  });

  test('401 on bad credentials gives no hint which part was wrong', async () => {
    const tries = [
      { name: 'alpha-user', password: 'wrong' },
      { name: 'no-such-user', password: 'alpha-pw' },
    ];
    const bodies = [];
    for (const u of tries) {
      const r = await api(cloud, 'POST', `${V3}/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { name: u.name, domain: { id: 'default' }, password: u.password } } } } } });
      assert.equal(r.status, 401);
      bodies.push(r.json.error.message);
    }
    assert.equal(bodies[0], bodies[1]);
    assert.equal((await api(cloud, 'GET', `${V3}/users`, { token: 'garbage-token' })).status, 401);
    assert.equal((await api(cloud, 'GET', `${V3}/users`)).status, 401);
  });

  test('tenants are isolated; readers cannot write', async () => {
    const alpha = await passwordToken(cloud, { name: 'alpha-user', password: 'alpha-pw' }, ids.alpha);
    assert.equal((await api(cloud, 'GET', `${V3}/projects/${ids.alpha}`, { token: alpha })).status, 200);
    assert.equal((await api(cloud, 'GET', `${V3}/projects/${ids.beta}`, { token: alpha })).status, 403);
    assert.equal((await api(cloud, 'GET', `${V3}/users/${ids['beta-user']}`, { token: alpha })).status, 403);
    assert.equal((await api(cloud, 'PATCH', `${V3}/users/${ids['beta-user']}`, { token: alpha, body: { user: { enabled: false } } })).status, 403);
    assert.equal((await api(cloud, 'PUT', `${V3}/projects/${ids.beta}/users/${ids['alpha-user']}/roles/${ids['role:member']}`, { token: alpha })).status, 403);
    assert.equal((await api(cloud, 'POST', `${V3}/domains`, { token: alpha, body: { domain: { name: 'mine' } } })).status, 403);
    assert.equal((await api(cloud, 'POST', `${V3}/roles`, { token: alpha, body: { role: { name: 'mine' } } })).status, 403);
    // A token for a project the user has no role on is refused.
    const r = await api(cloud, 'POST', `${V3}/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { id: ids['alpha-user'], password: 'alpha-pw' } } }, scope: { project: { id: ids.beta } } } } });
    assert.equal(r.status, 401);
    const watcher = await passwordToken(cloud, { name: 'watcher', password: 'watcher-pw' }, ids.alpha);
    assert.equal((await api(cloud, 'GET', `${V3}/projects/${ids.alpha}`, { token: watcher })).status, 200);
    assert.equal((await api(cloud, 'PATCH', `${V3}/projects/${ids.alpha}`, { token: watcher, body: { project: { description: 'x' } } })).status, 403);
    assert.equal((await api(cloud, 'GET', `${V3}/projects/${ids.alpha}`, { token: admin })).json.project.description, '');
  });

  test('disabling a user or a project invalidates its tokens at once', async () => {
    const t = await passwordToken(cloud, { name: 'beta-user', password: 'beta-pw' }, ids.beta);
    const check = () => api(cloud, 'GET', `${V3}/auth/tokens`, { token: admin, headers: { 'X-Subject-Token': t } });
    const ok = await check();
    assert.equal(ok.status, 200);
    assert.equal(ok.json.token.project.id, ids.beta);
    assert.deepEqual(ok.json.token.roles.map((r: { name: string }) => r.name).sort(), ['member', 'reader']);
    assert.equal(typeof ok.json.token.audit_ids[0], 'string');
    assert.ok(Array.isArray(ok.json.token.catalog));
    await api(cloud, 'PATCH', `${V3}/projects/${ids.beta}`, { token: admin, body: { project: { enabled: false } } });
    assert.equal((await check()).status, 404);
    await api(cloud, 'PATCH', `${V3}/projects/${ids.beta}`, { token: admin, body: { project: { enabled: true } } });
    assert.equal((await check()).status, 404, 'tokens issued before the disable stay revoked');
    const t2 = await passwordToken(cloud, { name: 'beta-user', password: 'beta-pw' }, ids.beta);
    await api(cloud, 'PATCH', `${V3}/users/${ids['beta-user']}`, { token: admin, body: { user: { enabled: false } } });
    assert.equal((await api(cloud, 'GET', `${V3}/auth/tokens`, { token: admin, headers: { 'X-Subject-Token': t2 } })).status, 404);
    assert.equal((await api(cloud, 'GET', `${V3}/auth/catalog`, { token: t2 })).status, 401);
  });

  test('a deleted project fails validation at once', async () => {
    const p = await api(cloud, 'POST', `${V3}/projects`, { token: admin, body: { project: { name: 'short-lived' } } });
    const pid = p.json.project.id;
    await api(cloud, 'PUT', `${V3}/projects/${pid}/users/${ids['alpha-user']}/roles/${ids['role:member']}`, { token: admin });
    const t = await passwordToken(cloud, { name: 'alpha-user', password: 'alpha-pw' }, pid);
    assert.equal((await api(cloud, 'GET', `${V3}/auth/catalog`, { token: t })).status, 200);
    assert.equal((await api(cloud, 'DELETE', `${V3}/projects/${pid}`, { token: admin })).status, 204);
    assert.equal((await api(cloud, 'GET', `${V3}/auth/catalog`, { token: t })).status, 401);
  });

  test('gureum keys rotate: the running controller signs with the new key and still accepts old tokens', async () => {
    const old = await passwordToken(cloud, { name: 'alpha-user', password: 'alpha-pw' }, ids.alpha);
    const rotate = () => run(new URL('../bin/gureum', import.meta.url).pathname, ['keys', 'rotate', '--data-dir', join(cloud.dir, 'data')]);
    assert.match((await rotate()).stdout, /primary is now key 2/);
    await new Promise((r) => setTimeout(r, 1100)); // the controller re-reads the key folder at most once a second
    const fresh = await passwordToken(cloud, { name: 'alpha-user', password: 'alpha-pw' }, ids.alpha);
    for (const t of [old, fresh]) assert.equal((await api(cloud, 'GET', `${V3}/auth/tokens`, { token: admin, headers: { 'X-Subject-Token': t } })).status, 200);
    // Two more rotations retire the key that signed `old` (3 keys kept: staged, primary, one secondary).
    await rotate();
    await rotate();
    await new Promise((r) => setTimeout(r, 1100));
    const newest = await passwordToken(cloud, { name: 'admin', password: cloud.password }, undefined);
    const scoped = await api(cloud, 'POST', `${V3}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: newest } }, scope: { system: { all: true } } } } });
    const admin2 = scoped.headers.get('x-subject-token')!;
    assert.equal((await api(cloud, 'GET', `${V3}/auth/tokens`, { token: admin2, headers: { 'X-Subject-Token': old } })).status, 404);
    admin = admin2;
  });
});
