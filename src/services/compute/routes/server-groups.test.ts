import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import type { ComputeDeps } from '../deps.ts';
import * as store from '../store.ts';
import { serverGroupRoutes } from './server-groups.ts';
import { caller, harness, type App } from './test-harness.ts';


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
