import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import { bootstrapFlavors, flavorRoutes } from './flavors.ts';
import { caller, harness, type App } from './test-harness.ts';


describe('flavors', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh } = await harness(flavorRoutes));
    call = caller(app);
    assert.equal(await bootstrapFlavors(dbh.db), 7);
    assert.equal(await bootstrapFlavors(dbh.db), 0);
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('default flavors with classic ids, sorted by flavor id as strings', async () => {
    const r = await call('alice', 'GET', '/flavors');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.flavors.map((f: { id: string }) => f.id), ['1', '2', '3', '4', '42', '5', '84']);
    const tiny = r.body.flavors[0];
    assert.deepEqual(Object.keys(tiny).sort(), ['id', 'links', 'name']);
    assert.equal(tiny.name, 'm1.tiny');
    assert.match(tiny.links[0].href, /\/compute\/v2\.1\/flavors\/1$/);
    assert.equal(r.body.flavors_links, undefined);
  });

  test('detail shape per microversion: swap "" before 2.75, description 2.55, extra_specs 2.61', async () => {
    let r = await call('alice', 'GET', '/flavors/detail');
    const nano = r.body.flavors.find((f: { id: string }) => f.id === '42');
    assert.deepEqual(nano, {
      id: '42', name: 'm1.nano', ram: 128, disk: 1, swap: '', 'OS-FLV-EXT-DATA:ephemeral': 0, 'OS-FLV-DISABLED:disabled': false,
      vcpus: 1, 'os-flavor-access:is_public': true, rxtx_factor: 1, links: nano.links,
    });
    r = await call('alice', 'GET', '/flavors/42', undefined, '2.61');
    assert.equal(r.body.flavor.description, null);
    assert.deepEqual(r.body.flavor.extra_specs, {});
    assert.equal(r.body.flavor.swap, '');
    r = await call('alice', 'GET', '/flavors/42', undefined, '2.75');
    assert.equal(r.body.flavor.swap, 0);
    r = await call('alice', 'GET', '/flavors', undefined, '2.55');
    assert.ok('description' in r.body.flavors[0]);
  });

  test('filters, sorting, paging with flavors_links', async () => {
    let r = await call('alice', 'GET', '/flavors/detail?minRam=4096&minDisk=50');
    assert.deepEqual(r.body.flavors.map((f: { name: string }) => f.name), ['m1.large', 'm1.xlarge']);
    r = await call('alice', 'GET', '/flavors?sort_key=memory_mb&sort_dir=desc&limit=2');
    assert.deepEqual(r.body.flavors.map((f: { name: string }) => f.name), ['m1.xlarge', 'm1.large']);
    assert.equal(r.body.flavors_links[0].rel, 'next');
    const next = new URL(r.body.flavors_links[0].href);
    assert.equal(next.searchParams.get('marker'), '4');
    assert.equal(next.searchParams.get('sort_key'), 'memory_mb');
    r = await call('alice', 'GET', `/flavors?${next.searchParams.toString()}`);
    assert.deepEqual(r.body.flavors.map((f: { name: string }) => f.name), ['m1.medium', 'm1.small']);
    assert.equal((await call('alice', 'GET', '/flavors?marker=nope')).status, 400);
    assert.equal((await call('alice', 'GET', '/flavors?sort_key=bogus')).status, 400);
    assert.equal((await call('alice', 'GET', '/flavors?minRam=x')).body.badRequest.message, 'Invalid minRam filter [x]');
    assert.equal((await call('alice', 'GET', '/flavors?limit=-1')).status, 400);
  });

  test('create: admin only, 409 on duplicate name or id, generated uuid id, validation', async () => {
    const body = { flavor: { name: 'c1', ram: 256, vcpus: 1, disk: 2, id: 'c1-id', 'OS-FLV-EXT-DATA:ephemeral': 1, swap: 64, rxtx_factor: 2, description: 'd' } };
    assert.equal((await call('alice', 'POST', '/flavors', body, '2.55')).status, 403);
    let r = await call('admin', 'POST', '/flavors', body, '2.55');
    assert.equal(r.status, 200);
    assert.equal(r.body.flavor.id, 'c1-id');
    assert.equal(r.body.flavor.swap, 64);
    assert.equal(r.body.flavor.rxtx_factor, 2);
    assert.equal(r.body.flavor.description, 'd');
    r = await call('admin', 'POST', '/flavors', body, '2.55');
    assert.equal(r.status, 409);
    assert.equal(r.body.conflictingRequest.message, 'Flavor with ID c1-id already exists.');
    r = await call('admin', 'POST', '/flavors', { flavor: { ...body.flavor, id: 'other' } }, '2.55');
    assert.equal(r.body.conflictingRequest.message, 'Flavor with name c1 already exists.');
    r = await call('admin', 'POST', '/flavors', { flavor: { name: 'gen', ram: '512', vcpus: '1', disk: 0 } });
    assert.equal(r.status, 200);
    assert.match(r.body.flavor.id, /^[0-9a-f-]{36}$/);
    assert.equal(r.body.flavor.ram, 512);
    assert.equal(r.body.flavor.swap, '');
    r = await call('admin', 'POST', '/flavors', { flavor: { name: 'num', ram: 1, vcpus: 1, disk: 0, id: 77 } });
    assert.equal(r.body.flavor.id, '77');
    for (const bad of [
      { flavor: { name: 'x', ram: 0, vcpus: 1, disk: 0 } },
      { flavor: { name: 'x', ram: 1, vcpus: 1, disk: -1 } },
      { flavor: { name: ' x', ram: 1, vcpus: 1, disk: 0 } },
      { flavor: { name: 'x', ram: 1, vcpus: 1 } },
      { flavor: { name: 'x', ram: 1, vcpus: 1, disk: 0, bogus: 1 } },
      { flavor: { name: 'x', ram: 1, vcpus: 1, disk: 0, id: 'a/b' } },
      { flavor: { name: 'x', ram: '0', vcpus: 1, disk: 0 } },
      { flavor: { name: 'x', ram: 1, vcpus: 1, disk: 0, rxtx_factor: 0 } },
      { flavor: { name: 'x', ram: 1, vcpus: 1, disk: 0, description: 'too early' } },
    ]) {
      r = await call('admin', 'POST', '/flavors', bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.badRequest.code, 400);
      assert.equal(typeof r.body.badRequest.message, 'string');
    }
  });

  test('update description (2.55 only) and delete (202, then 404)', async () => {
    await call('admin', 'POST', '/flavors', { flavor: { name: 'upd', ram: 1, vcpus: 1, disk: 0, id: 'upd' } });
    assert.equal((await call('admin', 'PUT', '/flavors/upd', { flavor: { description: 'x' } })).status, 404);
    let r = await call('admin', 'PUT', '/flavors/upd', { flavor: { description: 'new' } }, '2.55');
    assert.equal(r.status, 200);
    assert.equal(r.body.flavor.description, 'new');
    assert.equal((await call('admin', 'PUT', '/flavors/upd', { flavor: { name: 'x' } }, '2.55')).status, 400);
    assert.equal((await call('alice', 'PUT', '/flavors/upd', { flavor: { description: 'x' } }, '2.55')).status, 403);
    assert.equal((await call('alice', 'DELETE', '/flavors/upd')).status, 403);
    assert.equal((await call('admin', 'DELETE', '/flavors/upd')).status, 202);
    r = await call('admin', 'GET', '/flavors/upd');
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, { itemNotFound: { code: 404, message: 'Flavor upd could not be found.' } });
    assert.equal((await call('admin', 'DELETE', '/flavors/upd')).status, 404);
  });

  test('extra specs: set, show, update, unset; readers read; admin writes; 2.61 body', async () => {
    let r = await call('admin', 'POST', '/flavors/1/os-extra_specs', { extra_specs: { 'hw:cpu_policy': 'shared', 'quota:n': 5, 'x:flag': true } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.extra_specs, { 'hw:cpu_policy': 'shared', 'quota:n': '5', 'x:flag': 'True' });
    r = await call('alice', 'GET', '/flavors/1/os-extra_specs');
    assert.deepEqual(r.body.extra_specs, { 'hw:cpu_policy': 'shared', 'quota:n': '5', 'x:flag': 'True' });
    r = await call('alice', 'GET', '/flavors/1/os-extra_specs/hw:cpu_policy');
    assert.deepEqual(r.body, { 'hw:cpu_policy': 'shared' });
    assert.equal((await call('alice', 'GET', '/flavors/1/os-extra_specs/nope')).status, 404);
    assert.equal((await call('alice', 'POST', '/flavors/1/os-extra_specs', { extra_specs: { a: 'b' } })).status, 403);
    r = await call('admin', 'PUT', '/flavors/1/os-extra_specs/hw:cpu_policy', { 'hw:cpu_policy': 'dedicated' });
    assert.deepEqual(r.body, { 'hw:cpu_policy': 'dedicated' });
    r = await call('admin', 'PUT', '/flavors/1/os-extra_specs/hw:cpu_policy', { other: 'x' });
    assert.equal(r.body.badRequest.message, 'Request body and URI mismatch');
    assert.equal((await call('admin', 'PUT', '/flavors/1/os-extra_specs/a', { a: 'x', b: 'y' })).status, 400);
    assert.equal((await call('admin', 'POST', '/flavors/1/os-extra_specs', { extra_specs: { 'bad/key': 'x' } })).status, 400);
    assert.equal((await call('admin', 'DELETE', '/flavors/1/os-extra_specs/x:flag')).status, 200);
    assert.equal((await call('admin', 'DELETE', '/flavors/1/os-extra_specs/x:flag')).status, 404);
    r = await call('alice', 'GET', '/flavors/1', undefined, '2.61');
    assert.deepEqual(r.body.flavor.extra_specs, { 'hw:cpu_policy': 'dedicated', 'quota:n': '5' });
    r = await call('alice', 'GET', '/flavors/detail', undefined, '2.61');
    assert.ok(r.body.flavors.every((f: Record<string, unknown>) => 'extra_specs' in f));
    assert.equal((await call('admin', 'POST', '/flavors/nope/os-extra_specs', { extra_specs: { a: 'b' } })).status, 404);
  });

  test('private flavors: access list, add/remove tenant access, visibility for others', async () => {
    await call('admin', 'POST', '/flavors', { flavor: { name: 'priv', ram: 64, vcpus: 1, disk: 0, id: 'priv', 'os-flavor-access:is_public': false } });
    assert.equal((await call('alice', 'GET', '/flavors/priv')).status, 404);
    assert.ok(!(await call('alice', 'GET', '/flavors')).body.flavors.some((f: { id: string }) => f.id === 'priv'));
    // Admin: default is public (plus own grants), is_public=false private only, is_public=None everything.
    assert.ok(!(await call('admin', 'GET', '/flavors')).body.flavors.some((f: { id: string }) => f.id === 'priv'));
    assert.deepEqual((await call('admin', 'GET', '/flavors?is_public=false')).body.flavors.map((f: { id: string }) => f.id), ['priv']);
    assert.ok((await call('admin', 'GET', '/flavors?is_public=None')).body.flavors.some((f: { id: string }) => f.id === 'priv'));
    assert.equal((await call('admin', 'GET', '/flavors?is_public=maybe')).status, 400);

    let r = await call('admin', 'POST', '/flavors/priv/action', { addTenantAccess: { tenant: 'p-one' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { flavor_access: [{ flavor_id: 'priv', tenant_id: 'p-one' }] });
    r = await call('admin', 'POST', '/flavors/priv/action', { addTenantAccess: { tenant: 'p-one' } });
    assert.equal(r.status, 409);
    assert.equal((await call('alice', 'GET', '/flavors/priv')).status, 200);
    assert.ok((await call('alice', 'GET', '/flavors')).body.flavors.some((f: { id: string }) => f.id === 'priv'));
    assert.equal((await call('bob', 'GET', '/flavors/priv')).status, 404);
    assert.equal((await call('alice', 'GET', '/flavors/priv/os-flavor-access')).status, 403);
    r = await call('admin', 'GET', '/flavors/priv/os-flavor-access');
    assert.deepEqual(r.body.flavor_access, [{ flavor_id: 'priv', tenant_id: 'p-one' }]);
    assert.equal((await call('alice', 'POST', '/flavors/priv/action', { addTenantAccess: { tenant: 'p-two' } })).status, 403);

    r = await call('admin', 'POST', '/flavors/1/action', { addTenantAccess: { tenant: 'p-one' } });
    assert.equal(r.status, 409);
    assert.equal(r.body.conflictingRequest.message, 'Can not add access to a public flavor.');
    assert.equal((await call('admin', 'GET', '/flavors/1/os-flavor-access')).status, 404);
    assert.equal((await call('admin', 'POST', '/flavors/priv/action', { bogus: {} })).status, 400);

    r = await call('admin', 'POST', '/flavors/priv/action', { removeTenantAccess: { tenant: 'p-one' } });
    assert.deepEqual(r.body, { flavor_access: [] });
    assert.equal((await call('admin', 'POST', '/flavors/priv/action', { removeTenantAccess: { tenant: 'p-one' } })).status, 404);
    assert.equal((await call('alice', 'GET', '/flavors/priv')).status, 404);
  });

  test('requests without a token are 401 in Nova form', async () => {
    const res = await app.inject({ method: 'GET', url: '/compute/v2.1/flavors' });
    assert.equal(res.statusCode, 401);
    assert.equal(JSON.parse(res.body).unauthorized.code, 401);
  });
});
