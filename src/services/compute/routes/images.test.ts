import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { computeImageApi } from '../../../cli/controller.ts';
import { createLogger } from '../../../common/logger.ts';
import type { OpenDatabase } from '../../../db/index.ts';
import { LocalImageStore } from '../../image/data-store.ts';
import { ImageService } from '../../image/service.ts';
import { imageProxyRoutes } from './images.ts';
import { caller, harness, USERS, type App } from './test-harness.ts';

/** The compute image proxy in front of the real in-process Glance (through the controller's adapter). */
describe('compute image proxy (/images) over Glance', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  let glance: ImageService;
  const dir = mkdtempSync(join(tmpdir(), 'gureum-proxy-'));
  const ids: Record<string, string> = {};

  async function image(who: keyof typeof USERS, name: string, opts: { properties?: Record<string, string>; minRam?: number; minDisk?: number; upload?: boolean; visibility?: 'public' | 'private' } = {}): Promise<string> {
    const img = await glance.createImage(USERS[who]!, {
      name, disk_format: 'raw', container_format: 'bare', visibility: opts.visibility ?? 'private', properties: opts.properties,
      min_ram: opts.minRam, min_disk: opts.minDisk,
    });
    if (opts.upload !== false) await glance.uploadImage(USERS[who]!, img.id, Readable.from([Buffer.alloc(1024, 42)]));
    await new Promise((r) => setTimeout(r, 5)); // distinct creation times: newest first is deterministic
    return img.id;
  }

  before(async () => {
    ({ app, dbh } = await harness((a, d) => {
      glance = new ImageService(d.db, new LocalImageStore(dir), createLogger('silent'));
      imageProxyRoutes(a, d, computeImageApi(glance, 'http://cloud'));
    }));
    await glance.start();
    call = caller(app);
    ids.a = await image('alice', 'alpha', { minRam: 256, minDisk: 1 });
    ids.b = await image('alice', 'beta', { minRam: 1024, minDisk: 5 });
    ids.snap = await image('alice', 'snap-1', { properties: { image_type: 'snapshot', instance_uuid: '11111111-2222-3333-4444-555555555555', auto_disk_config: 'False' } });
    ids.queued = await image('alice', 'queued', { upload: false });
    ids.bob = await image('bob', 'bobs');
    ids.pub = await image('admin', 'public-one', { visibility: 'public' });
  });
  after(async () => { await app.close(); await dbh.close(); rmSync(dir, { recursive: true, force: true }); });

  test('list: id, name and links of the images the caller may see, newest first', async () => {
    const r = await call('alice', 'GET', '/images');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.images.map((i: { name: string }) => i.name), ['public-one', 'queued', 'snap-1', 'beta', 'alpha']);
    const a = r.body.images.find((i: { id: string }) => i.id === ids.a);
    assert.deepEqual(Object.keys(a).sort(), ['id', 'links', 'name']);
    assert.deepEqual(a.links.map((l: { rel: string }) => l.rel), ['self', 'bookmark', 'alternate']);
    assert.equal(a.links[0].href, `http://localhost:80/compute/v2.1/images/${ids.a}`);
    assert.equal(a.links[2].href, `http://localhost:80/image/images/${ids.a}`);
    assert.equal(a.links[2].type, 'application/vnd.openstack.image');
    assert.equal('images_links' in r.body, false);
  });

  test('detail: Nova image view (status mapping, progress, sizes, metadata, server link)', async () => {
    const r = await call('alice', 'GET', '/images/detail');
    const by = (id: string) => r.body.images.find((i: { id: string }) => i.id === id);
    const a = by(ids.a);
    assert.equal(a.status, 'ACTIVE');
    assert.equal(a.progress, 100);
    assert.equal(a.minRam, 256);
    assert.equal(a.minDisk, 1);
    assert.equal(a['OS-EXT-IMG-SIZE:size'], 1024);
    assert.match(a.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(a.metadata, {});
    assert.equal('server' in a, false);
    const q = by(ids.queued);
    assert.equal(q.status, 'SAVING');
    assert.equal(q.progress, 25);
    assert.equal(q['OS-EXT-IMG-SIZE:size'], null);
    const s = by(ids.snap);
    assert.equal(s.server.id, '11111111-2222-3333-4444-555555555555');
    assert.equal(s.server.links[0].href, 'http://localhost:80/compute/v2.1/servers/11111111-2222-3333-4444-555555555555');
    assert.equal(s['OS-DCF:diskConfig'], 'MANUAL');
    assert.equal(s.metadata.image_type, 'snapshot');
  });

  test('filters: name, status, server (id or link), type, minRam/minDisk, changes-since, property-*', async () => {
    const names = async (q: string) => (await call('alice', 'GET', `/images?${q}`)).body.images.map((i: { name: string }) => i.name);
    assert.deepEqual(await names('name=alpha'), ['alpha']);
    assert.deepEqual(await names('status=SAVING'), []);
    assert.deepEqual(await names('status=queued'), ['queued']);
    assert.deepEqual((await names('status=ACTIVE')).sort(), ['alpha', 'beta', 'public-one', 'snap-1']);
    assert.deepEqual(await names('server=11111111-2222-3333-4444-555555555555'), ['snap-1']);
    assert.deepEqual(await names(`server=${encodeURIComponent('http://x/compute/v2.1/servers/11111111-2222-3333-4444-555555555555')}`), ['snap-1']);
    assert.deepEqual(await names('type=snapshot'), ['snap-1']);
    assert.deepEqual(await names('minRam=512'), ['beta']);
    assert.deepEqual(await names('minDisk=1'), ['beta', 'alpha']);
    assert.deepEqual(await names('property-image_type=snapshot'), ['snap-1']);
    assert.deepEqual(await names(`changes-since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`), []);
    assert.equal((await names('changes-since=2000-01-01T00:00:00Z')).length, 5);
    assert.equal((await call('alice', 'GET', '/images?minRam=x')).status, 400);
    assert.equal((await call('alice', 'GET', '/images?changes-since=yesterday')).status, 400);
  });

  test('limit and marker page with a next link', async () => {
    let r = await call('alice', 'GET', '/images/detail?limit=2');
    assert.equal(r.body.images.length, 2);
    const next = new URL(r.body.images_links[0].href);
    assert.equal(next.pathname, '/compute/v2.1/images/detail');
    assert.equal(next.searchParams.get('marker'), r.body.images[1].id);
    r = await call('alice', 'GET', `/images/detail?limit=2&marker=${r.body.images[1].id}`);
    assert.deepEqual(r.body.images.map((i: { name: string }) => i.name), ['snap-1', 'beta']);
    r = await call('alice', 'GET', '/images?limit=1');
    assert.equal(r.body.images.length, 1);
    assert.equal((await call('alice', 'GET', '/images?marker=00000000-0000-0000-0000-000000000000')).status, 400);
    assert.equal((await call('alice', 'GET', '/images?limit=-1')).status, 400);
  });

  test("show: 404 'Image not found.' for unknown, malformed and other projects' private images", async () => {
    let r = await call('alice', 'GET', `/images/${ids.a}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.image.name, 'alpha');
    for (const id of [ids.bob!, '00000000-0000-0000-0000-000000000000', 'not-an-id']) {
      r = await call('alice', 'GET', `/images/${id}`);
      assert.equal(r.status, 404, id);
      assert.deepEqual(r.body, { itemNotFound: { code: 404, message: 'Image not found.' } });
    }
  });

  test('the proxy is gone from 2.36 (metadata from 2.39)', async () => {
    assert.equal((await call('alice', 'GET', '/images', undefined, '2.35')).status, 200);
    assert.equal((await call('alice', 'GET', '/images', undefined, '2.36')).status, 404);
    assert.equal((await call('alice', 'GET', `/images/${ids.a}`, undefined, '2.36')).status, 404);
    assert.equal((await call('alice', 'GET', '/images/detail', undefined, '2.90')).status, 404);
    assert.equal((await call('alice', 'GET', `/images/${ids.a}/metadata`, undefined, '2.38')).status, 200);
    assert.equal((await call('alice', 'GET', `/images/${ids.a}/metadata`, undefined, '2.39')).status, 404);
  });

  test('metadata: replace (PUT), merge (POST), item get/set/delete; reflected in Glance', async () => {
    const path = `/images/${ids.a}/metadata`;
    let r = await call('alice', 'PUT', path, { metadata: { os_version: 'value1', os_distro: 'value2' } });
    assert.deepEqual(r.body, { metadata: { os_version: 'value1', os_distro: 'value2' } });
    r = await call('alice', 'POST', path, { metadata: { os_version: 'alt1', architecture: 'value3' } });
    assert.deepEqual(r.body, { metadata: { os_version: 'alt1', os_distro: 'value2', architecture: 'value3' } });
    r = await call('alice', 'PUT', path, { metadata: { os_version: 'value2', architecture: 'value3' } });
    assert.deepEqual((await call('alice', 'GET', path)).body, { metadata: { os_version: 'value2', architecture: 'value3' } });
    r = await call('alice', 'GET', `${path}/architecture`);
    assert.deepEqual(r.body, { meta: { architecture: 'value3' } });
    assert.equal((await call('alice', 'GET', `${path}/nope`)).status, 404);
    r = await call('alice', 'PUT', `${path}/os_version`, { meta: { os_version: 'alt' } });
    assert.deepEqual(r.body, { meta: { os_version: 'alt' } });
    assert.equal((await call('alice', 'DELETE', `${path}/architecture`)).status, 204);
    assert.equal((await call('alice', 'DELETE', `${path}/architecture`)).status, 404);
    assert.deepEqual((await call('alice', 'GET', path)).body, { metadata: { os_version: 'alt' } });
    assert.deepEqual((await glance.getImage(USERS.alice!, ids.a!)).properties, { os_version: 'alt' });
  });

  test('metadata: bad bodies 400, URI mismatch 400, unknown image 404, quota 403, not the owner 403', async () => {
    const path = `/images/${ids.a}/metadata`;
    assert.equal((await call('alice', 'PUT', `${path}/k`, { meta: { other: 'v' } })).status, 400);
    assert.equal((await call('alice', 'PUT', `${path}/k`, { meta: { k: 'v', j: 'w' } })).status, 400);
    assert.equal((await call('alice', 'POST', path, { metadata: { k: 1 } })).status, 400);
    assert.equal((await call('alice', 'POST', path, { meta: { k: 'v' } })).status, 400);
    assert.equal((await call('alice', 'POST', path, { metadata: { 'bad/key': 'v' } })).status, 400);
    const unknown = '/images/00000000-0000-0000-0000-000000000000/metadata';
    assert.equal((await call('alice', 'GET', unknown)).status, 404);
    assert.equal((await call('alice', 'PUT', unknown, { metadata: { a: 'b' } })).status, 404);
    assert.equal((await call('alice', 'POST', unknown, { metadata: { a: 'b' } })).status, 404);
    assert.equal((await call('alice', 'PUT', `${unknown}/a`, { meta: { a: 'b' } })).status, 404);
    assert.equal((await call('alice', 'DELETE', `${unknown}/a`)).status, 404);
    await dbh.db.insertInto('quotas').values({ project_id: 'p-one', resource: 'metadata_items', hard_limit: 2 }).execute();
    const r = await call('alice', 'POST', path, { metadata: { x: '1', y: '2' } });
    assert.equal(r.status, 403);
    assert.equal(r.body.forbidden.message, 'Image metadata limit exceeded');
    await dbh.db.deleteFrom('quotas').where('project_id', '=', 'p-one').execute();
    // A public image alice may see but not change.
    assert.equal((await call('alice', 'POST', `/images/${ids.pub}/metadata`, { metadata: { x: '1' } })).status, 403);
    assert.equal((await call('alice', 'POST', path, { metadata: { min_ram: '1' } })).status, 400);
  });

  test("delete: 204, then 404; another project's image 404; a public one 403", async () => {
    assert.equal((await call('alice', 'DELETE', `/images/${ids.bob}`)).status, 404);
    const r = await call('alice', 'DELETE', `/images/${ids.pub}`);
    assert.equal(r.status, 403);
    assert.equal(r.body.forbidden.message, 'You are not allowed to delete the image.');
    assert.equal((await call('alice', 'DELETE', `/images/${ids.queued}`)).status, 204);
    assert.equal((await call('alice', 'GET', `/images/${ids.queued}`)).status, 404);
    assert.equal((await call('alice', 'DELETE', `/images/${ids.queued}`)).status, 404);
    assert.equal((await call('alice', 'DELETE', '/images/-1')).status, 404);
  });
});
