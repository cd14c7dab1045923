/**
 * Glance metadefs API through Fastify's inject, behind the real API server and the image
 * mount, on in-memory SQLite — or on a fresh PostgreSQL database when
 * GUREUM_TEST_POSTGRES_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthContext, TokenValidator } from '../../../api/context.ts';
import { createApiServer } from '../../../api/server.ts';
import { Unauthorized } from '../../../common/errors.ts';
import { createLogger } from '../../../common/logger.ts';
import type { OpenDatabase } from '../../../db/index.ts';
import { freshDatabase } from '../../../db/test-database.ts';
import { LocalImageStore } from '../data-store.ts';
import { imageMount } from '../routes.ts';
import { ImageService } from '../service.ts';

const cred = (userId: string, projectId: string, roles: string[]): AuthContext => ({
  token: `tok-${userId}`, userId, userName: userId, userDomainId: 'default', projectId, projectDomainId: 'default',
  roles, roleIds: roles, methods: ['password'], auditIds: ['a'], issuedAt: 0, expiresAt: Date.now() + 3_600_000,
});
const USERS = {
  admin: cred('u-admin', 'p-admin', ['admin', 'member', 'reader']),
  alice: cred('u-alice', 'p-one', ['member', 'reader']),
  carol: cred('u-carol', 'p-one', ['reader']),
  bob: cred('u-bob', 'p-two', ['member', 'reader']),
};
type Who = keyof typeof USERS;
const validator: TokenValidator = {
  async validate(token) {
    const u = Object.values(USERS).find((x) => x.token === token);
    if (!u) throw new Unauthorized();
    return u;
  },
};


/** Any response document, loosely: the assertions check the actual shapes. */
interface Doc {
  [k: string]: unknown;
  message: string; code: string; name: string; namespace: string; visibility: string; protected: boolean; owner: string;
  self: string; schema: string; first: string; next?: string; title: string; prefix?: string; properties_target?: string;
  additionalProperties: unknown; required: string[]; enum: string[];
  namespaces: Doc[]; resource_types: Doc[]; resource_type_associations: Doc[]; objects: Doc[]; tags: Doc[];
  properties: Record<string, Doc>;
}
interface Res { status: number; body: Doc; headers: Record<string, unknown>; text: string }

describe('image metadefs API', () => {
  let dbh: OpenDatabase;
  let app: ReturnType<typeof createApiServer>;
  const dir = mkdtempSync(join(tmpdir(), 'gureum-metadefs-test-'));

  const call = async (who: Who, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> => {
    const res = await app.inject({
      method: method as 'GET', url: `/image/v2${path}`, payload: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'x-auth-token': USERS[who].token, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    });
    let parsed = {} as Doc;
    try { parsed = (res.body ? JSON.parse(res.body) : {}) as Doc; } catch { /* HTML error pages */ }
    return { status: res.statusCode, body: parsed, headers: res.headers, text: res.body };
  };
  const ok = (r: Res, status: number, why = '') => assert.equal(r.status, status, `${why ? `${why}: ` : ''}${r.status}: ${r.text}`);
  const ns = (name: string, extra: Record<string, unknown> = {}) => ({ namespace: name, ...extra });

  before(async () => {
    dbh = await freshDatabase();
    const log = createLogger('silent');
    const images = new ImageService(dbh.db, new LocalImageStore(join(dir, 'images')), log);
    app = createApiServer({ log, validator, maxBodyBytes: 1 << 20 }, [imageMount(images)]);
    await app.ready();
  });
  after(async () => { await app.close(); await dbh.close(); rmSync(dir, { recursive: true, force: true }); });

  test('schemas: every /v2/schemas/metadefs document, named as Glance names them', async () => {
    const names: Record<string, string> = {
      namespace: 'namespace', namespaces: 'namespaces', resource_type: 'resource_type_association', resource_types: 'resource_type_associations',
      object: 'object', objects: 'objects', property: 'property', properties: 'properties', tag: 'tag', tags: 'tags',
    };
    for (const [path, name] of Object.entries(names)) {
      const r = await call('bob', 'GET', `/schemas/metadefs/${path}`);
      ok(r, 200);
      assert.equal(r.body.name, name);
    }
    const nsSchema = (await call('bob', 'GET', '/schemas/metadefs/namespace')).body;
    assert.equal(nsSchema.additionalProperties, false);
    assert.deepEqual(nsSchema.properties.visibility.enum, ['public', 'private']);
  });

  test('resource types: Glance\'s seeded ones, OS::Glance::Image first', async () => {
    const r = await call('bob', 'GET', '/metadefs/resource_types');
    ok(r, 200);
    const names = r.body.resource_types.map((t: Doc) => t.name);
    assert.deepEqual(names, ['OS::Glance::Image', 'OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Aggregate', 'OS::Nova::Server']);
    assert.deepEqual(Object.keys(r.body.resource_types[0]).sort(), ['created_at', 'name', 'updated_at']);
    assert.match(String(r.body.resource_types[0].created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('namespace lifecycle as tempest drives it: public + protected, 403 on delete, update, delete', async () => {
    let r = await call('admin', 'POST', '/metadefs/namespaces', ns('tempest-ns', {
      visibility: 'public', description: 'Tempest', display_name: 'tempest-ns', protected: true, resource_type_associations: [{ name: 'OS::Glance::Image' }],
    }));
    ok(r, 201);
    assert.match(String(r.headers.location), /\/image\/v2\/metadefs\/namespaces\/tempest-ns$/);
    assert.equal(r.body.namespace, 'tempest-ns');
    assert.equal(r.body.owner, 'p-admin');
    assert.equal(r.body.self, '/v2/metadefs/namespaces/tempest-ns');
    assert.equal(r.body.schema, '/v2/schemas/metadefs/namespace');
    assert.equal(r.body.resource_type_associations[0].name, 'OS::Glance::Image');

    r = await call('admin', 'GET', '/metadefs/namespaces');
    ok(r, 200);
    assert.ok(r.body.namespaces.some((n: Doc) => n.namespace === 'tempest-ns'));
    r = await call('admin', 'GET', '/metadefs/namespaces/tempest-ns');
    ok(r, 200);
    assert.equal(r.body.visibility, 'public');
    assert.equal(r.body.protected, true);
    for (const k of ['properties', 'objects', 'tags']) assert.ok(!(k in r.body), `${k} left out when empty`);

    r = await call('admin', 'DELETE', '/metadefs/namespaces/tempest-ns');
    ok(r, 403);
    assert.equal(r.body.message, 'Metadata definition namespace tempest-ns is protected and cannot be deleted.');
    assert.equal(r.body.code, '403 Forbidden');

    r = await call('admin', 'PUT', '/metadefs/namespaces/tempest-ns', ns('tempest-ns', { description: 'Tempest', visibility: 'private', display_name: 'tempest-ns', protected: false }));
    ok(r, 200);
    assert.equal(r.body.visibility, 'private');
    assert.equal(r.body.protected, false);
    ok(await call('admin', 'DELETE', '/metadefs/namespaces/tempest-ns'), 204);
    r = await call('admin', 'GET', '/metadefs/namespaces/tempest-ns');
    ok(r, 404);
    assert.equal(r.body.message, 'Metadata definition namespace=tempest-ns was not found.');
  });

  test('create with contents; detail shows them; resource_type applies the prefix; all or nothing', async () => {
    const body = ns('OS::Compute::Test', {
      display_name: 'Test', visibility: 'public',
      resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'hw_' }, { name: 'OS::Nova::Flavor', prefix: 'hw:', properties_target: 'flavor' }],
      properties: { cpu_cores: { title: 'Cores', type: 'integer', minimum: 1 }, boot_menu: { title: 'Boot menu', type: 'string', enum: ['true', 'false'] } },
      objects: [{ name: 'CPU Limits', description: 'limits', required: ['quota'], properties: { quota: { title: 'Quota', type: 'integer' } } }],
      tags: [{ name: 'fast' }, { name: 'Cheap' }],
    });
    let r = await call('admin', 'POST', '/metadefs/namespaces', body);
    ok(r, 201);
    assert.deepEqual(Object.keys(r.body.properties).sort(), ['boot_menu', 'cpu_cores']);
    assert.equal(r.body.objects[0].name, 'CPU Limits');
    assert.deepEqual(r.body.tags, [{ name: 'fast' }, { name: 'Cheap' }]);

    r = await call('bob', 'GET', '/metadefs/namespaces/OS::Compute::Test');
    ok(r, 200);
    assert.deepEqual(r.body.properties.cpu_cores, { title: 'Cores', type: 'integer', minimum: 1 });
    assert.equal(r.body.objects[0].self, '/v2/metadefs/namespaces/OS::Compute::Test/objects/CPU Limits');
    assert.deepEqual(r.body.resource_type_associations.map((a: Doc) => [a.name, a.prefix, a.properties_target]),
      [['OS::Glance::Image', 'hw_', undefined], ['OS::Nova::Flavor', 'hw:', 'flavor']]);
    assert.deepEqual(r.body.tags.map((t: Doc) => t.name).sort(), ['Cheap', 'fast']);

    r = await call('bob', 'GET', '/metadefs/namespaces/OS::Compute::Test?resource_type=OS::Nova::Flavor');
    assert.deepEqual(Object.keys(r.body.properties).sort(), ['hw:boot_menu', 'hw:cpu_cores']);
    assert.deepEqual(Object.keys(r.body.objects[0].properties), ['hw:quota']);
    assert.deepEqual(r.body.objects[0].required, ['hw:quota']);
    r = await call('bob', 'GET', '/metadefs/namespaces/OS::Compute::Test?resource_type=OS::Cinder::Volume');
    assert.deepEqual(Object.keys(r.body.properties).sort(), ['boot_menu', 'cpu_cores'], 'no association: no prefix');

    r = await call('admin', 'POST', '/metadefs/namespaces', body);
    ok(r, 409);
    assert.equal(r.body.message, 'The metadata definition namespace=OS::Compute::Test already exists.');

    // A duplicate inside the body rolls the whole creation back.
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('half', { tags: [{ name: 'a' }, { name: 'A' }] }));
    ok(r, 409);
    ok(await call('admin', 'GET', '/metadefs/namespaces/half'), 404);
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('half', { objects: [{ name: 'o' }, { name: 'o' }] }));
    ok(r, 409);
    ok(await call('admin', 'GET', '/metadefs/namespaces/half'), 404);

    ok(await call('admin', 'DELETE', '/metadefs/namespaces/OS::Compute::Test'), 204);
    r = await call('admin', 'GET', '/metadefs/namespaces/OS::Compute::Test/objects');
    ok(r, 404);
  });

  test('bad bodies: 400 for schema errors, 403 for read-only fields', async () => {
    let r = await call('admin', 'POST', '/metadefs/namespaces', { display_name: 'no name' });
    ok(r, 400);
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('x', { visibility: 'shared' }));
    ok(r, 400);
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('x', { surprise: 1 }));
    ok(r, 400);
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('x'.repeat(81)));
    ok(r, 400);
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('x', { created_at: '2020-01-01T00:00:00Z' }));
    ok(r, 403);
    assert.equal(r.body.message, 'Attribute \'created_at\' is read-only.');
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('x', { properties: { p: { type: 'string' } } }));
    ok(r, 400, 'a property needs a title');
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('x', { properties: { p: { title: 'P', type: 'text' } } }));
    ok(r, 400, 'unknown type');
    r = await call('admin', 'POST', '/metadefs/namespaces', ns('x', { properties: { p: { title: 'P', type: 'string', pattern: '(' } } }));
    ok(r, 400, 'pattern must compile');
    ok(await call('admin', 'GET', '/metadefs/namespaces/x'), 404);
    // Without Accept: application/json the error is webob's HTML page, as Glance sends.
    const res = await app.inject({ method: 'GET', url: '/image/v2/metadefs/namespaces/nope', headers: { 'x-auth-token': USERS.admin.token } });
    assert.equal(res.statusCode, 404);
    assert.match(res.headers['content-type'] as string, /text\/html/);
    assert.match(res.body, /Metadata definition namespace=nope was not found\./);
  });

  test('who sees and changes what: private namespaces belong to their project', async () => {
    let r = await call('alice', 'POST', '/metadefs/namespaces', ns('alice-private', { description: 'mine' }));
    ok(r, 201);
    assert.equal(r.body.owner, 'p-one');
    assert.equal(r.body.visibility, 'private');

    ok(await call('bob', 'GET', '/metadefs/namespaces/alice-private'), 404);
    assert.ok(!(await call('bob', 'GET', '/metadefs/namespaces')).body.namespaces.some((n: Doc) => n.namespace === 'alice-private'));
    ok(await call('bob', 'PUT', '/metadefs/namespaces/alice-private', ns('alice-private')), 404);
    ok(await call('bob', 'DELETE', '/metadefs/namespaces/alice-private'), 404);
    ok(await call('bob', 'POST', '/metadefs/namespaces/alice-private/objects', { name: 'o' }), 404);
    ok(await call('bob', 'GET', '/metadefs/namespaces/alice-private/tags'), 404);

    ok(await call('carol', 'GET', '/metadefs/namespaces/alice-private'), 200);
    ok(await call('carol', 'POST', '/metadefs/namespaces/alice-private/tags/t'), 403);
    ok(await call('carol', 'POST', '/metadefs/namespaces', ns('carol-ns')), 403);
    ok(await call('admin', 'GET', '/metadefs/namespaces/alice-private'), 200);

    ok(await call('alice', 'POST', '/metadefs/namespaces/alice-private/objects', { name: 'o' }), 201);
    ok(await call('alice', 'POST', '/metadefs/namespaces/alice-private/properties', { name: 'p', title: 'P', type: 'string' }), 201);
    ok(await call('alice', 'POST', '/metadefs/namespaces/alice-private/tags/t'), 201);
    ok(await call('alice', 'POST', '/metadefs/namespaces/alice-private/resource_types', { name: 'OS::Glance::Image', prefix: 'x_' }), 201);
    r = await call('alice', 'POST', '/metadefs/namespaces/alice-private/resource_types', { name: 'OS::Alice::Thing' });
    ok(r, 403);
    assert.match(r.body.message, /image:add_metadef_resource_type\b/);

    ok(await call('alice', 'PUT', '/metadefs/namespaces/alice-private', ns('alice-private', { visibility: 'public' })), 403);
    ok(await call('alice', 'POST', '/metadefs/namespaces', ns('alice-public', { visibility: 'public' })), 403);
    ok(await call('alice', 'POST', '/metadefs/namespaces', ns('alice-for-bob', { owner: 'p-two' })), 403);
    ok(await call('alice', 'PUT', '/metadefs/namespaces/alice-private', ns('alice-private', { owner: 'p-two' })), 403);
    r = await call('alice', 'PUT', '/metadefs/namespaces/alice-private', ns('alice-renamed', { description: 'still mine' }));
    ok(r, 200);
    assert.equal(r.body.self, '/v2/metadefs/namespaces/alice-renamed');
    assert.equal(r.body.owner, 'p-one', 'owner kept when the body leaves it out');
    r = await call('alice', 'GET', '/metadefs/namespaces/alice-renamed');
    assert.equal(r.body.objects.length, 1, 'contents follow the rename');

    // A public namespace: everyone sees it, only admins change it.
    ok(await call('admin', 'POST', '/metadefs/namespaces', ns('shared-catalog', { visibility: 'public' })), 201);
    ok(await call('bob', 'GET', '/metadefs/namespaces/shared-catalog'), 200);
    ok(await call('bob', 'POST', '/metadefs/namespaces/shared-catalog/objects', { name: 'o' }), 403);
    ok(await call('bob', 'PUT', '/metadefs/namespaces/shared-catalog', ns('shared-catalog', { visibility: 'public' })), 403);
    ok(await call('bob', 'DELETE', '/metadefs/namespaces/shared-catalog'), 403);
    // An admin-made namespace given to Alice's project stays admin-only while public.
    ok(await call('admin', 'PUT', '/metadefs/namespaces/shared-catalog', ns('shared-catalog', { visibility: 'public', owner: 'p-one' })), 200);
    ok(await call('alice', 'POST', '/metadefs/namespaces/shared-catalog/tags/x'), 403);

    ok(await call('alice', 'DELETE', '/metadefs/namespaces/alice-renamed'), 204);
    ok(await call('admin', 'DELETE', '/metadefs/namespaces/shared-catalog'), 204);
  });

  test('list: visibility and resource_types filters, sort keys, limit/marker with next links', async () => {
    for (const [i, n] of ['list-c', 'list-a', 'list-b', 'list-d'].entries()) {
      ok(await call('admin', 'POST', '/metadefs/namespaces', ns(n, {
        visibility: i % 2 ? 'public' : 'private', resource_type_associations: i === 1 ? [{ name: 'OS::Cinder::Volume' }] : [],
      })), 201);
      await new Promise((res) => setTimeout(res, 5));
    }
    let r = await call('admin', 'GET', '/metadefs/namespaces?sort_key=namespace&sort_dir=asc');
    ok(r, 200);
    const names = r.body.namespaces.map((n: Doc) => n.namespace).filter((n: string) => n.startsWith('list-'));
    assert.deepEqual(names, ['list-a', 'list-b', 'list-c', 'list-d']);
    assert.equal(r.body.schema, '/v2/schemas/metadefs/namespaces');
    assert.equal(r.body.first, '/v2/metadefs/namespaces?sort_key=namespace&sort_dir=asc');

    r = await call('admin', 'GET', '/metadefs/namespaces');
    assert.deepEqual(r.body.namespaces.map((n: Doc) => n.namespace).filter((n: string) => n.startsWith('list-')), ['list-d', 'list-b', 'list-a', 'list-c'],
      'default: newest first');

    r = await call('admin', 'GET', '/metadefs/namespaces?visibility=public&sort_key=namespace&sort_dir=asc');
    assert.deepEqual(r.body.namespaces.map((n: Doc) => n.namespace), ['list-a', 'list-d']);
    r = await call('admin', 'GET', '/metadefs/namespaces?resource_types=OS::Cinder::Volume,OS::Nova::Server');
    assert.deepEqual(r.body.namespaces.map((n: Doc) => n.namespace), ['list-a']);
    assert.equal(r.body.namespaces[0].resource_type_associations[0].name, 'OS::Cinder::Volume');

    // Pages of two, following next links.
    const seen: string[] = [];
    let url = '/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc';
    for (let i = 0; i < 10 && url; i++) {
      r = await call('admin', 'GET', url);
      ok(r, 200);
      assert.ok(r.body.namespaces.length <= 2);
      seen.push(...r.body.namespaces.map((n: Doc) => n.namespace));
      url = r.body.next ? String(r.body.next).replace(/^\/v2/, '') : '';
    }
    assert.deepEqual(seen.filter((n) => n.startsWith('list-')), ['list-a', 'list-b', 'list-c', 'list-d']);
    assert.equal(new Set(seen).size, seen.length);

    // Bob (another project) sees only the public ones.
    r = await call('bob', 'GET', '/metadefs/namespaces?sort_key=namespace&sort_dir=asc');
    assert.deepEqual(r.body.namespaces.map((n: Doc) => n.namespace).filter((n: string) => n.startsWith('list-')), ['list-a', 'list-d']);

    ok(await call('admin', 'GET', '/metadefs/namespaces?sort_key=owner'), 400);
    ok(await call('admin', 'GET', '/metadefs/namespaces?sort_dir=up'), 400);
    ok(await call('admin', 'GET', '/metadefs/namespaces?limit=-1'), 400);
    ok(await call('admin', 'GET', '/metadefs/namespaces?visibility=community'), 400);
    ok(await call('admin', 'GET', '/metadefs/namespaces?marker=nope'), 404);
    ok(await call('bob', 'GET', '/metadefs/namespaces?marker=list-c'), 404, 'a marker Bob cannot see');
    for (const n of ['list-a', 'list-b', 'list-c', 'list-d']) ok(await call('admin', 'DELETE', `/metadefs/namespaces/${n}`), 204);
  });

  test('namespace update replaces its own fields; rename conflicts are 409', async () => {
    ok(await call('admin', 'POST', '/metadefs/namespaces', ns('upd-1', { display_name: 'One', description: 'd', visibility: 'public', protected: true })), 201);
    ok(await call('admin', 'POST', '/metadefs/namespaces', ns('upd-2')), 201);
    let r = await call('admin', 'PUT', '/metadefs/namespaces/upd-1', ns('upd-1'));
    ok(r, 200);
    assert.equal(r.body.visibility, 'private');
    assert.equal(r.body.protected, false);
    assert.ok(!('display_name' in r.body) && !('description' in r.body));
    r = await call('admin', 'PUT', '/metadefs/namespaces/upd-1', ns('upd-2'));
    ok(r, 409);
    r = await call('admin', 'PUT', '/metadefs/namespaces/upd-1', ns('upd-1', { self: '/x' }));
    ok(r, 403);
    // What python-glanceclient sends back: the whole detail document minus schema and times.
    ok(await call('admin', 'POST', '/metadefs/namespaces/upd-1/objects', { name: 'o', properties: { p: { title: 'P', type: 'string' } } }), 201);
    const detail = (await call('admin', 'GET', '/metadefs/namespaces/upd-1')).body;
    for (const k of ['schema', 'created_at', 'updated_at', 'self'] as string[]) delete detail[k];
    r = await call('admin', 'PUT', '/metadefs/namespaces/upd-1', { ...detail, description: 'via glanceclient' });
    ok(r, 200);
    assert.equal(r.body.description, 'via glanceclient');
    for (const n of ['upd-1', 'upd-2']) ok(await call('admin', 'DELETE', `/metadefs/namespaces/${n}`), 204);
  });

  test('objects: create, list, show, update (rename), delete, delete all; protection', async () => {
    ok(await call('admin', 'POST', '/metadefs/namespaces', ns('objs')), 201);
    const base = '/metadefs/namespaces/objs/objects';
    let r = await call('admin', 'POST', base, { name: 'CPU Limits', description: 'cpu', required: ['period'], properties: { period: { title: 'Period', type: 'integer', minimum: 1000 } } });
    ok(r, 201);
    assert.deepEqual(Object.keys(r.body).sort(), ['created_at', 'description', 'name', 'properties', 'required', 'schema', 'self', 'updated_at']);
    assert.equal(r.body.schema, '/v2/schemas/metadefs/object');
    ok(await call('admin', 'POST', base, { name: 'CPU Limits' }), 409);
    ok(await call('admin', 'POST', base, { name: 'Disk QoS' }), 201);
    r = await call('admin', 'GET', base);
    ok(r, 200);
    assert.deepEqual(r.body.objects.map((o: Doc) => o.name).sort(), ['CPU Limits', 'Disk QoS']);
    assert.equal(r.body.schema, '/v2/schemas/metadefs/objects');
    r = await call('admin', 'GET', `${base}?sort_key=name&sort_dir=asc&limit=1`);
    assert.deepEqual(r.body.objects.map((o: Doc) => o.name), ['CPU Limits']);
    r = await call('admin', 'GET', `${base}?sort_key=name&sort_dir=asc&marker=CPU%20Limits`);
    assert.deepEqual(r.body.objects.map((o: Doc) => o.name), ['Disk QoS']);

    r = await call('admin', 'GET', `${base}/CPU%20Limits`);
    ok(r, 200);
    assert.deepEqual(r.body.properties.period, { title: 'Period', type: 'integer', minimum: 1000 });
    r = await call('admin', 'PUT', `${base}/CPU%20Limits`, { name: 'CPU Quota' });
    ok(r, 200);
    assert.equal(r.body.name, 'CPU Quota');
    assert.deepEqual(r.body.properties, {}, 'update replaces the whole object');
    assert.ok(!('description' in r.body));
    ok(await call('admin', 'GET', `${base}/CPU%20Limits`), 404);
    ok(await call('admin', 'PUT', `${base}/CPU%20Quota`, { name: 'Disk QoS' }), 409);
    ok(await call('admin', 'PUT', `${base}/nope`, { name: 'x' }), 404);
    ok(await call('admin', 'PUT', `${base}/CPU%20Quota`, { name: 'x', updated_at: 'now' }), 403);

    ok(await call('admin', 'PUT', '/metadefs/namespaces/objs', ns('objs', { protected: true })), 200);
    r = await call('admin', 'DELETE', `${base}/CPU%20Quota`);
    ok(r, 403);
    assert.equal(r.body.message, 'Metadata definition object CPU Quota is protected and cannot be deleted.');
    ok(await call('admin', 'DELETE', base), 403);
    ok(await call('admin', 'PUT', '/metadefs/namespaces/objs', ns('objs')), 200);
    ok(await call('admin', 'DELETE', `${base}/CPU%20Quota`), 204);
    ok(await call('admin', 'DELETE', `${base}/CPU%20Quota`), 404);
    ok(await call('admin', 'DELETE', base), 204);
    assert.deepEqual((await call('admin', 'GET', base)).body.objects, []);
    ok(await call('admin', 'DELETE', '/metadefs/namespaces/objs'), 204);
  });

  test('properties: names with ::, show with a resource type prefix, update, delete, delete all', async () => {
    ok(await call('admin', 'POST', '/metadefs/namespaces', ns('props', { resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'hw_' }] })), 201);
    const base = '/metadefs/namespaces/props/properties';
    const hv = ['xen', 'qemu', 'kvm', 'lxc', 'uml', 'vmware', 'hyperv'];
    let r = await call('admin', 'POST', base, { name: 'OS::Glance::Image', title: 'property', type: 'string', enum: hv });
    ok(r, 201);
    assert.deepEqual(r.body, { name: 'OS::Glance::Image', title: 'property', type: 'string', enum: hv });
    ok(await call('admin', 'POST', base, { name: 'OS::Glance::Image', title: 'again', type: 'string' }), 409);
    r = await call('admin', 'GET', `${base}/OS::Glance::Image`);
    ok(r, 200);
    assert.equal(r.body.name, 'OS::Glance::Image');
    r = await call('admin', 'PUT', `${base}/OS::Glance::Image`, { name: 'OS::Glance::Image', title: 'updated', type: 'string', enum: hv });
    ok(r, 200);
    assert.equal(r.body.title, 'updated');

    ok(await call('admin', 'POST', base, { name: 'cpu_cores', title: 'Cores', type: 'integer', minimum: 1, maximum: 64, readonly: false }), 201);
    r = await call('admin', 'GET', `${base}/hw_cpu_cores?resource_type=OS::Glance::Image`);
    ok(r, 200);
    assert.equal(r.body.name, 'cpu_cores');
    ok(await call('admin', 'GET', `${base}/cpu_cores?resource_type=OS::Glance::Image`), 404);
    ok(await call('admin', 'GET', `${base}/cpu_cores?resource_type=OS::Nova::Flavor`), 404);

    r = await call('admin', 'GET', base);
    ok(r, 200);
    assert.deepEqual(Object.keys(r.body.properties).sort(), ['OS::Glance::Image', 'cpu_cores']);
    assert.ok(!('name' in r.body.properties.cpu_cores));

    ok(await call('admin', 'POST', base, { name: 'bad', title: 'B', type: 'string', minimum: 'one' }), 400);
    ok(await call('admin', 'POST', base, { name: 'bad', title: 'B', type: 'integer', minimum: 5, maximum: 1 }), 400);
    ok(await call('admin', 'POST', base, { name: 'bad', title: 'B', type: 'string', color: 'red' }), 400);
    ok(await call('admin', 'PUT', `${base}/cpu_cores`, { name: 'OS::Glance::Image', title: 'x', type: 'string' }), 409);

    ok(await call('admin', 'DELETE', `${base}/OS::Glance::Image`), 204);
    r = await call('admin', 'GET', base);
    assert.deepEqual(Object.keys(r.body.properties), ['cpu_cores']);
    ok(await call('admin', 'DELETE', `${base}/OS::Glance::Image`), 404);
    ok(await call('admin', 'DELETE', base), 204);
    assert.deepEqual((await call('admin', 'GET', base)).body.properties, {});
    ok(await call('admin', 'DELETE', '/metadefs/namespaces/props'), 204);
  });

  test('tags: bulk create replaces unless X-Openstack-Append, names unique ignoring case', async () => {
    ok(await call('admin', 'POST', '/metadefs/namespaces', ns('tags')), 201);
    const base = '/metadefs/namespaces/tags/tags';
    let r = await call('admin', 'POST', base, { tags: [{ name: 'sample-tag1' }, { name: 'sample-tag2' }, { name: 'sample-tag3' }] });
    ok(r, 201);
    assert.deepEqual(r.body.tags.map((t: Doc) => t.name), ['sample-tag1', 'sample-tag2', 'sample-tag3']);
    r = await call('admin', 'GET', base);
    assert.equal(r.body.tags.length, 3);

    r = await call('admin', 'POST', base, { tags: [{ name: 'other' }] });
    ok(r, 201);
    assert.deepEqual((await call('admin', 'GET', base)).body.tags.map((t: Doc) => t.name), ['other'], 'replaced');
    r = await call('admin', 'POST', base, { tags: [{ name: 'more' }, { name: 'extra' }] }, { 'x-openstack-append': 'True' });
    ok(r, 201);
    assert.deepEqual((await call('admin', 'GET', base + '?sort_key=name&sort_dir=asc')).body.tags.map((t: Doc) => t.name), ['extra', 'more', 'other']);
    r = await call('admin', 'POST', base, { tags: [{ name: 'OTHER' }] }, { 'x-openstack-append': 'true' });
    ok(r, 409);
    assert.match(r.body.message, /metadata tag names are case insensitive/);
    ok(await call('admin', 'POST', base, { tags: [{ name: 'x' }, { name: 'X' }] }), 409);
    assert.equal((await call('admin', 'GET', base)).body.tags.length, 3, 'a refused bulk create changes nothing');
    ok(await call('admin', 'POST', base, { tags: ['bare'] }), 400);

    r = await call('admin', 'POST', `${base}/tag_name`);
    ok(r, 201);
    assert.deepEqual(Object.keys(r.body).sort(), ['created_at', 'name', 'updated_at']);
    ok(await call('admin', 'POST', `${base}/TAG_NAME`), 409);
    r = await call('admin', 'GET', `${base}/Tag_Name`);
    ok(r, 200);
    assert.equal(r.body.name, 'tag_name');
    r = await call('admin', 'PUT', `${base}/tag_name`, { name: 'update-tag' });
    ok(r, 200);
    assert.equal(r.body.name, 'update-tag');
    ok(await call('admin', 'PUT', `${base}/update-tag`, { name: 'Other' }), 409);
    ok(await call('admin', 'PUT', `${base}/update-tag`, { name: 'Update-Tag' }), 200, 'changing only the case is a rename');
    ok(await call('admin', 'GET', `${base}/tag_name`), 404);
    ok(await call('admin', 'DELETE', `${base}/update-tag`), 204);
    ok(await call('admin', 'DELETE', `${base}/update-tag`), 404);
    r = await call('admin', 'GET', `${base}?limit=2&sort_key=name&sort_dir=desc`);
    assert.deepEqual(r.body.tags.map((t: Doc) => t.name), ['other', 'more']);

    ok(await call('admin', 'PUT', '/metadefs/namespaces/tags', ns('tags', { protected: true })), 200);
    ok(await call('admin', 'DELETE', `${base}/more`), 403);
    ok(await call('admin', 'DELETE', base), 403);
    ok(await call('admin', 'PUT', '/metadefs/namespaces/tags', ns('tags')), 200);
    ok(await call('admin', 'DELETE', base), 204);
    assert.deepEqual((await call('admin', 'GET', base)).body.tags, []);
    ok(await call('admin', 'DELETE', '/metadefs/namespaces/tags'), 204);
  });

  test('resource type associations: associate, list, 409 twice, deassociate; new resource types for admins', async () => {
    ok(await call('admin', 'POST', '/metadefs/namespaces', ns('rts')), 201);
    const base = '/metadefs/namespaces/rts/resource_types';
    let r = await call('admin', 'POST', base, { name: 'OS::Cinder::Volume', prefix: 'hw_', properties_target: 'image' });
    ok(r, 201);
    assert.deepEqual({ ...r.body, created_at: undefined, updated_at: undefined },
      { name: 'OS::Cinder::Volume', prefix: 'hw_', properties_target: 'image', created_at: undefined, updated_at: undefined });
    ok(await call('admin', 'POST', base, { name: 'OS::Cinder::Volume' }), 409);
    r = await call('admin', 'GET', base);
    ok(r, 200);
    assert.deepEqual(r.body.resource_type_associations.map((a: Doc) => a.name), ['OS::Cinder::Volume']);

    r = await call('admin', 'POST', base, { name: 'OS::Trove::Instance' });
    ok(r, 201);
    assert.ok((await call('bob', 'GET', '/metadefs/resource_types')).body.resource_types.some((t: Doc) => t.name === 'OS::Trove::Instance'),
      'a new resource type is created as a side effect');

    ok(await call('admin', 'PUT', '/metadefs/namespaces/rts', ns('rts', { protected: true })), 200);
    r = await call('admin', 'DELETE', `${base}/OS::Cinder::Volume`);
    ok(r, 403);
    ok(await call('admin', 'PUT', '/metadefs/namespaces/rts', ns('rts')), 200);
    ok(await call('admin', 'DELETE', `${base}/OS::Cinder::Volume`), 204);
    r = await call('admin', 'DELETE', `${base}/OS::Cinder::Volume`);
    ok(r, 404);
    assert.match(r.body.message, /resource-type association of resource-type=OS::Cinder::Volume to namespace=rts/);
    ok(await call('admin', 'DELETE', `${base}/OS::Nope`), 404);
    assert.deepEqual((await call('admin', 'GET', base)).body.resource_type_associations.map((a: Doc) => a.name), ['OS::Trove::Instance']);
    ok(await call('admin', 'DELETE', '/metadefs/namespaces/rts'), 204);
    // Resource types outlive their namespaces.
    assert.ok((await call('bob', 'GET', '/metadefs/resource_types')).body.resource_types.some((t: Doc) => t.name === 'OS::Trove::Instance'));
  });

  test('no token: 401', async () => {
    const res = await app.inject({ method: 'GET', url: '/image/v2/metadefs/namespaces' });
    assert.equal(res.statusCode, 401);
  });
});
