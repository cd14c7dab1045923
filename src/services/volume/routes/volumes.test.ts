import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from '../test-harness.ts';

let h: Harness;
before(async () => { h = await harness(); });
after(async () => { await h.close(); });

async function create(body: Record<string, unknown>, who: 'alice' | 'bob' | 'admin' = 'alice', version?: string) {
  const r = await h.call(who, 'POST', '/volumes', { volume: body }, version);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await h.settle();
  return (await h.call(who, 'GET', `/volumes/${r.body.volume.id}`, undefined, version)).body.volume;
}

test('versions document and microversion negotiation', async () => {
  const root = await h.app.inject({ method: 'GET', url: '/volume/' });
  assert.equal(root.statusCode, 300);
  const v = JSON.parse(root.body).versions[0];
  assert.equal(v.id, 'v3.0');
  assert.equal(v.version, '3.70');
  assert.equal(v.min_version, '3.0');
  const r = await h.app.inject({ method: 'GET', url: '/volume/v3/volumes', headers: { 'x-auth-token': 'tok-u-alice', 'openstack-api-version': 'volume 3.50' } });
  assert.equal(r.headers['openstack-api-version'], 'volume 3.50');
  const bad = await h.app.inject({ method: 'GET', url: '/volume/v3/volumes', headers: { 'x-auth-token': 'tok-u-alice', 'openstack-api-version': 'volume 3.99' } });
  assert.equal(bad.statusCode, 406);
  const noauth = await h.app.inject({ method: 'GET', url: '/volume/v3/volumes' });
  assert.equal(noauth.statusCode, 401);
});

test('create an empty volume: creating, then available on the pool; both URL forms; others cannot see it', async () => {
  const v = await create({ size: 1, name: 'v1', metadata: { a: 'b' } });
  assert.equal(v.status, 'available');
  assert.equal(v.bootable, 'false');
  assert.equal(v.volume_type, '__DEFAULT__');
  assert.deepEqual(v.metadata, { a: 'b' });
  assert.ok(h.pool.volumes.has(v.id));
  assert.equal((await h.call('alice', 'GET', `/p-one/volumes/${v.id}`)).status, 200);
  const mismatch = await h.call('alice', 'GET', `/p-two/volumes/${v.id}`);
  assert.equal(mismatch.status, 400);
  const other = await h.call('bob', 'GET', `/volumes/${v.id}`);
  assert.equal(other.status, 404);
  assert.deepEqual(other.body, { itemNotFound: { code: 404, message: `Volume ${v.id} could not be found.` } });
  assert.equal((await h.call('bob', 'GET', '/volumes')).body.volumes.length, 0);
  const admin = await h.call('admin', 'GET', `/volumes/${v.id}`);
  assert.equal(admin.body.volume['os-vol-host-attr:host'], 'host1@local#pool');
  assert.equal(admin.body.volume['os-vol-tenant-attr:tenant_id'], 'p-one');
  assert.equal((await h.call('admin', 'GET', '/volumes/detail?all_tenants=1')).body.volumes.length, 1);
});

test('bad input changes nothing: size, unknown attribute, unknown type, bad zone', async () => {
  const before = (await h.call('alice', 'GET', '/volumes')).body.volumes.length;
  for (const [body, re] of [
    [{ size: 'x' }, /Invalid input for field\/attribute size/],
    [{ size: 0 }, /less than the minimum of 1/],
    [{ size: 1, color: 'red' }, /Additional properties are not allowed \('color' was unexpected\)/],
    [{ size: 1, availability_zone: 'mars' }, /Availability zone 'mars' is invalid/],
    [{}, /'size' is a required property/],
  ] as const) {
    const r = await h.call('alice', 'POST', '/volumes', { volume: body });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.badRequest.message, re);
  }
  assert.equal((await h.call('alice', 'POST', '/volumes', { volume: { size: 1, volume_type: 'nope' } })).status, 404);
  assert.equal((await h.call('alice', 'GET', '/volumes')).body.volumes.length, before);
});

test('from an image: bootable, image metadata copied; too large an image is refused', async () => {
  const v = await create({ size: 1, imageRef: 'img-tiny' });
  assert.equal(v.status, 'available');
  assert.equal(v.bootable, 'true');
  assert.equal(v.volume_image_metadata.kernel_id, 'k-1');
  assert.equal(v.volume_image_metadata.image_id, 'img-tiny');
  const big = await h.call('alice', 'POST', '/volumes', { volume: { size: 1, imageRef: 'img-big' } });
  assert.equal(big.status, 400);
  assert.match(big.body.badRequest.message, /Image virtual size is 5GB and doesn't fit in a volume of size 1GB/);
  const img = await h.call('alice', 'POST', `/volumes/${v.id}/action`, { 'os-show_image_metadata': {} });
  assert.equal(img.body.metadata.ramdisk_id, 'r-1');
});

test('extend: larger only; in-use only from 3.42', async () => {
  const v = await create({ size: 1 });
  const smaller = await h.call('alice', 'POST', `/volumes/${v.id}/action`, { 'os-extend': { new_size: 1 } });
  assert.equal(smaller.status, 400);
  assert.match(smaller.body.badRequest.message, /New size for extend must be greater than current size/);
  assert.equal((await h.call('alice', 'POST', `/volumes/${v.id}/action`, { 'os-extend': { new_size: 3 } })).status, 202);
  await h.settle();
  const after = (await h.call('alice', 'GET', `/volumes/${v.id}`)).body.volume;
  assert.equal(after.size, 3);
  assert.equal(after.status, 'available');
  assert.equal(h.pool.volumes.get(v.id), 3);
});

test('list filters, sorting and paging with volumes_links', async () => {
  for (const n of ['p1', 'p2', 'p3']) await create({ size: 1, name: n }, 'bob');
  const byName = await h.call('bob', 'GET', '/volumes?name=p2');
  assert.deepEqual(byName.body.volumes.map((v: { name: string }) => v.name), ['p2']);
  const first = await h.call('bob', 'GET', '/volumes/detail?limit=2&sort=name:asc');
  assert.deepEqual(first.body.volumes.map((v: { name: string }) => v.name), ['p1', 'p2']);
  assert.ok(first.body.volumes_links[0].href.includes('marker='));
  const marker = first.body.volumes[1].id;
  const second = await h.call('bob', 'GET', `/volumes/detail?limit=2&sort=name:asc&marker=${marker}`);
  assert.deepEqual(second.body.volumes.map((v: { name: string }) => v.name), ['p3']);
  assert.equal(second.body.volumes_links, undefined);
  assert.equal((await h.call('bob', 'GET', '/volumes?bogus=1')).status, 400);
  assert.equal((await h.call('bob', 'GET', `/volumes?metadata=${encodeURIComponent("{'x': 'y'}")}`)).body.volumes.length, 0);
});

test('update, metadata set/unset/replace', async () => {
  const v = await create({ size: 1 });
  assert.equal((await h.call('alice', 'PUT', `/volumes/${v.id}`, { volume: { name: 'renamed', description: 'd' } })).body.volume.name, 'renamed');
  await h.call('alice', 'POST', `/volumes/${v.id}/metadata`, { metadata: { k1: 'v1', k2: 'v2' } });
  assert.equal((await h.call('alice', 'DELETE', `/volumes/${v.id}/metadata/k1`)).status, 200);
  assert.equal((await h.call('alice', 'DELETE', `/volumes/${v.id}/metadata/k1`)).status, 404);
  assert.deepEqual((await h.call('alice', 'GET', `/volumes/${v.id}/metadata`)).body.metadata, { k2: 'v2' });
  await h.call('alice', 'PUT', `/volumes/${v.id}/metadata`, { metadata: { only: 'this' } });
  assert.deepEqual((await h.call('alice', 'GET', `/volumes/${v.id}/metadata`)).body.metadata, { only: 'this' });
  assert.equal((await h.call('bob', 'PUT', `/volumes/${v.id}`, { volume: { name: 'x' } })).status, 404);
});

test('delete: refused while attached, with snapshots unless cascade; the pool file goes', async () => {
  const v = await create({ size: 1 });
  const a = await h.call('alice', 'POST', '/attachments', { attachment: { volume_uuid: v.id, instance_uuid: '11111111-2222-3333-4444-555555555555' } }, '3.27');
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal((await h.call('alice', 'GET', `/volumes/${v.id}`)).body.volume.status, 'reserved');
  const refused = await h.call('alice', 'DELETE', `/volumes/${v.id}`);
  assert.equal(refused.status, 400);
  assert.match(refused.body.badRequest.message, /Invalid volume: Volume status must be available/);
  assert.equal((await h.call('alice', 'DELETE', `/attachments/${a.body.attachment.id}`, undefined, '3.27')).status, 200);
  assert.equal((await h.call('alice', 'GET', `/volumes/${v.id}`)).body.volume.status, 'available');

  const s = await h.call('alice', 'POST', '/snapshots', { snapshot: { volume_id: v.id, name: 's' } });
  assert.equal(s.status, 202);
  await h.settle();
  assert.equal((await h.call('alice', 'DELETE', `/volumes/${v.id}`)).status, 400);
  assert.equal((await h.call('alice', 'DELETE', `/volumes/${v.id}?cascade=true`)).status, 202);
  await h.settle();
  assert.equal((await h.call('alice', 'GET', `/volumes/${v.id}`)).status, 404);
  assert.equal((await h.call('alice', 'GET', `/snapshots/${s.body.snapshot.id}`)).status, 404);
  assert.ok(!h.pool.volumes.has(v.id));
  assert.ok(!h.pool.snapshots.has(s.body.snapshot.id));
});

test('quota exceeded is 413 overLimit with Cinder\'s message, and creates nothing', async () => {
  assert.equal((await h.call('admin', 'PUT', '/os-quota-sets/p-two', { quota_set: { gigabytes: 5 } })).status, 200);
  const r = await h.call('bob', 'POST', '/volumes', { volume: { size: 10 } });
  assert.equal(r.status, 413);
  assert.match(r.body.overLimit.message, /Requested volume or snapshot exceeds allowed gigabytes quota. Requested 10G, quota is 5G and 3G has been consumed/);
  assert.equal((await h.call('bob', 'PUT', '/os-quota-sets/p-two', { quota_set: { gigabytes: 50 } })).status, 403);
  const usage = await h.call('bob', 'GET', '/os-quota-sets/p-two?usage=true');
  assert.deepEqual(usage.body.quota_set.gigabytes, { limit: 5, in_use: 3, reserved: 0, allocated: 0 });
  const limits = await h.call('bob', 'GET', '/limits');
  assert.equal(limits.body.limits.absolute.maxTotalVolumeGigabytes, 5);
  assert.equal(limits.body.limits.absolute.totalVolumesUsed, 3);
  assert.equal((await h.call('admin', 'PUT', '/os-quota-sets/p-two', { quota_set: { gigabytes: 1 } })).status, 400);
});

test('a pool error leaves the volume in error with the reason; a delete of it works', async () => {
  h.pool.failing.set('create', 'disk full');
  const r = await h.call('alice', 'POST', '/volumes', { volume: { size: 1 } });
  await h.settle();
  h.pool.failing.clear();
  const v = (await h.call('admin', 'GET', `/volumes/${r.body.volume.id}`)).body.volume;
  assert.equal(v.status, 'error');
  assert.equal((await h.call('alice', 'DELETE', `/volumes/${v.id}`)).status, 202);
  await h.settle();
  assert.equal((await h.call('alice', 'GET', `/volumes/${v.id}`)).status, 404);
});

test('limit=0 is an empty page without a next link; display_name sorts as name; an unknown marker is 404', async () => {
  const zero = await h.call('bob', 'GET', '/volumes?limit=0');
  assert.equal(zero.status, 200);
  assert.deepEqual(zero.body, { volumes: [] });
  const sorted = await h.call('bob', 'GET', '/volumes?sort_key=display_name&sort_dir=asc');
  assert.deepEqual(sorted.body.volumes.map((v: { name: string }) => v.name), ['p1', 'p2', 'p3']);
  assert.equal((await h.call('bob', 'GET', '/volumes?marker=nope')).status, 404);
  assert.equal((await h.call('bob', 'GET', '/volumes/')).status, 404);
});
