import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import { EXTENSIONS } from './extensions.ts';
import { caller, harness, type App } from './test-harness.ts';

/** What every collection shares: discovery documents, filters, fields, sorting, paging, tags, If-Match, errors. */
describe('networking API conventions', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  const ids: Record<string, string> = {};
  before(async () => {
    ({ app, dbh } = await harness());
    call = caller(app);
    for (const [name, extra] of [['alpha', { admin_state_up: false }], ['bravo', {}], ['charlie', { description: 'c' }], ['delta', { admin_state_up: false }], ['echo', {}]] as const) {
      ids[name] = (await call('alice', 'POST', '/networks', { network: { name, ...extra } })).body.network!.id;
    }
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('versions document (no token) and the v2.0 resource list', async () => {
    const v = await call(null, 'GET', '/networking/');
    assert.equal(v.status, 200);
    assert.deepEqual(v.body, { versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ href: 'http://localhost:80/networking/v2.0/', rel: 'self' }] }] });
    assert.equal((await call(null, 'GET', '/networking')).status, 200);
    assert.equal((await call(null, 'GET', '/networking/v2.0/')).status, 401);
    const r = await call('alice', 'GET', '/networking/v2.0/');
    assert.ok(r.body.resources!.some((x) => x.name === 'network' && x.collection === 'networks' && x.links[0]!.href === 'http://localhost:80/networking/v2.0/networks'));
    const zones = (await call('alice', 'GET', '/availability_zones')).body.availability_zones;
    assert.deepEqual(zones, [{ name: 'nova', resource: 'network', state: 'available' }]);
  });

  test('extensions: the implemented ones, by alias; unknown 404', async () => {
    const list = (await call('alice', 'GET', '/extensions')).body.extensions!;
    assert.deepEqual(list.map((e) => e.alias), EXTENSIONS.map((e) => e.alias));
    for (const alias of ['provider', 'external-net', 'binding', 'security-group', 'port-security', 'allowed-address-pairs', 'quotas', 'quota_details',
      'standard-attr-tag', 'standard-attr-revisions', 'standard-attr-timestamp', 'standard-attr-description', 'revision-if-match', 'net-mtu',
      'extra_dhcp_opt', 'dns-integration', 'project-id', 'pagination', 'sorting']) {
      assert.equal((await call('alice', 'GET', `/extensions/${alias}`)).body.extension?.alias, alias);
    }
    const r = await call('alice', 'GET', '/extensions/qos');
    assert.equal(r.status, 404);
    assert.equal(r.body.NeutronError?.message, 'Extension with alias qos does not exist');
  });

  test('filters: any attribute, a repeated key is OR, different keys AND; booleans and numbers parsed; unknown ones 400', async () => {
    const names = async (q: string) => (await call('alice', 'GET', `/networks?${q}`)).body.networks!.map((n) => n.name).sort();
    assert.deepEqual(await names('name=alpha&name=charlie'), ['alpha', 'charlie']);
    assert.deepEqual(await names('admin_state_up=False'), ['alpha', 'delta']);
    assert.deepEqual(await names('admin_state_up=false&name=delta&name=echo'), ['delta']);
    assert.deepEqual(await names('description=c'), ['charlie']);
    assert.deepEqual(await names('description='), ['alpha', 'bravo', 'delta', 'echo'], 'empty-string filtering');
    assert.deepEqual(await names('mtu=1450&shared=false&router:external=false&status=ACTIVE'), ['alpha', 'bravo', 'charlie', 'delta', 'echo']);
    assert.deepEqual(await names(`id=${ids.echo}`), ['echo']);
    assert.deepEqual(await names(`project_id=p-one&tenant_id=p-one&name=bravo`), ['bravo']);
    assert.deepEqual(await names('provider:network_type=vxlan'), [], 'a member does not see provider attributes, so they match nothing');
    assert.equal((await call('admin', 'GET', '/networks?provider:network_type=vxlan')).body.networks!.length, 5);
    let r = await call('alice', 'GET', '/networks?colour=blue');
    assert.equal(r.status, 400);
    assert.equal(r.body.NeutronError?.message, 'colour is invalid attribute for filtering');
    r = await call('alice', 'GET', '/networks?admin_state_up=perhaps');
    assert.equal(r.body.NeutronError?.message, "Invalid input for admin_state_up. Reason: 'perhaps' cannot be converted to boolean.");
    r = await call('alice', 'GET', '/networks?mtu=big');
    assert.equal(r.status, 400);
  });

  test('fields: repeatable, projecting lists and shows', async () => {
    const r = await call('alice', 'GET', '/networks?fields=id&fields=name&name=alpha');
    assert.deepEqual(r.body.networks, [{ id: ids.alpha, name: 'alpha' }]);
    assert.deepEqual((await call('alice', 'GET', '/networks?fields=name,mtu&name=bravo')).body.networks, [{ name: 'bravo', mtu: 1450 }]);
    assert.deepEqual((await call('alice', 'GET', '/networks?fields=nothing&name=bravo')).body.networks, [{}]);
  });

  test('sorting: sort_key/sort_dir pairs, id last; bad keys and directions 400', async () => {
    const order = async (q: string) => (await call('alice', 'GET', `/networks?${q}`)).body.networks!.map((n) => n.name);
    assert.deepEqual(await order('sort_key=name&sort_dir=desc'), ['echo', 'delta', 'charlie', 'bravo', 'alpha']);
    assert.deepEqual(await order('sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=desc'), ['delta', 'alpha', 'echo', 'charlie', 'bravo']);
    assert.deepEqual(await order('sort_key=description&sort_dir=desc&sort_key=name&sort_dir=asc'), ['charlie', 'alpha', 'bravo', 'delta', 'echo']);
    let r = await call('alice', 'GET', '/networks?sort_key=name');
    assert.equal(r.body.NeutronError?.message, 'The number of sort_keys and sort_dirs must be same');
    r = await call('alice', 'GET', '/networks?sort_key=colour&sort_dir=asc');
    assert.equal(r.body.NeutronError?.message, "['colour'] is invalid attribute for sort_keys");
    r = await call('alice', 'GET', '/networks?sort_key=name&sort_dir=up');
    assert.equal(r.body.NeutronError?.message, "['up'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'");
  });

  test('paging: limit/marker/page_reverse with next and previous links, as Neutron builds them', async () => {
    const page = async (q: string) => {
      const r = await call('alice', 'GET', `/networks?${q}`);
      return { names: r.body.networks!.map((n) => n.name), links: Object.fromEntries((r.body.networks_links ?? []).map((l) => [l.rel, l.href])) };
    };
    const p1 = await page('sort_key=name&sort_dir=asc&limit=2');
    assert.deepEqual(p1.names, ['alpha', 'bravo']);
    assert.equal(p1.links.next, `http://localhost:80/networking/v2.0/networks?sort_key=name&sort_dir=asc&limit=2&marker=${ids.bravo}`);
    assert.equal(p1.links.previous, `http://localhost:80/networking/v2.0/networks?sort_key=name&sort_dir=asc&limit=2&marker=${ids.alpha}&page_reverse=True`);
    // Follow next links to the end, as openstacksdk does.
    const seen: string[] = [...p1.names];
    let next = p1.links.next;
    while (next) {
      const p = await page(next.split('?')[1]!);
      seen.push(...p.names);
      next = p.links.next;
    }
    assert.deepEqual(seen, ['alpha', 'bravo', 'charlie', 'delta', 'echo']);
    const last = await page(`sort_key=name&sort_dir=asc&limit=2&marker=${ids.delta}`);
    assert.deepEqual(last.names, ['echo']);
    assert.equal(last.links.next, undefined, 'the last page has no next link');
    const back = await page(`sort_key=name&sort_dir=asc&limit=2&marker=${ids.delta}&page_reverse=True`);
    assert.deepEqual(back.names, ['bravo', 'charlie']);
    assert.ok(back.links.previous && back.links.next);
    const first = await page(`sort_key=name&sort_dir=asc&limit=2&marker=${ids.bravo}&page_reverse=True`);
    assert.deepEqual(first.names, ['alpha']);
    assert.equal(first.links.previous, undefined, 'the first page (going back) has no previous link');
    assert.deepEqual((await page('limit=0')).names.length, 5, 'limit 0: no paging');
    assert.equal((await call('alice', 'GET', '/networks?limit=-1')).status, 400);
    const gone = await call('alice', 'GET', '/networks?limit=2&marker=00000000-0000-0000-0000-000000000000');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.NeutronError?.type, 'NetworkNotFound');
  });

  test('tags: the tags API, revisions move, and the four tag filters', async () => {
    const rev = (await call('alice', 'GET', `/networks/${ids.alpha}`)).body.network!.revision_number;
    let r = await call('alice', 'PUT', `/networks/${ids.alpha}/tags`, { tags: ['red', 'blue'] });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.tags, ['blue', 'red']);
    assert.equal((await call('alice', 'PUT', `/networks/${ids.bravo}/tags/red`)).status, 201);
    assert.equal((await call('alice', 'PUT', `/networks/${ids.charlie}/tags/green`)).status, 201);
    assert.equal((await call('alice', 'GET', `/networks/${ids.alpha}/tags/red`)).status, 204);
    r = await call('alice', 'GET', `/networks/${ids.alpha}/tags/green`);
    assert.equal(r.status, 404);
    assert.equal(r.body.NeutronError?.type, 'TagNotFound');
    assert.deepEqual((await call('alice', 'GET', `/networks/${ids.alpha}/tags`)).body.tags, ['blue', 'red']);
    assert.equal((await call('alice', 'GET', `/networks/${ids.alpha}`)).body.network!.revision_number, rev + 1);
    const names = async (q: string) => (await call('alice', 'GET', `/networks?${q}`)).body.networks!.map((n) => n.name).sort();
    assert.deepEqual(await names('tags=red'), ['alpha', 'bravo']);
    assert.deepEqual(await names('tags=red,blue'), ['alpha']);
    assert.deepEqual(await names('tags-any=blue,green'), ['alpha', 'charlie']);
    assert.deepEqual(await names('not-tags=red,blue'), ['bravo', 'charlie', 'delta', 'echo']);
    assert.deepEqual(await names('not-tags-any=red,green'), ['delta', 'echo']);
    assert.equal((await call('alice', 'DELETE', `/networks/${ids.alpha}/tags/red`)).status, 204);
    assert.equal((await call('alice', 'DELETE', `/networks/${ids.alpha}/tags/red`)).status, 404);
    assert.equal((await call('alice', 'DELETE', `/networks/${ids.bravo}/tags`)).status, 204);
    assert.deepEqual((await call('alice', 'GET', `/networks/${ids.bravo}/tags`)).body.tags, []);
    assert.equal((await call('alice', 'PUT', `/networks/${ids.alpha}/tags`, { tags: ['x'.repeat(61)] })).status, 400);
    assert.equal((await call('alice', 'PUT', `/networks/${ids.alpha}/tags`, { nope: 1 })).status, 400);
    assert.equal((await call('bob', 'GET', `/networks/${ids.alpha}/tags`)).status, 404, 'another project: not found');
    assert.equal((await call('bob', 'PUT', `/networks/${ids.alpha}/tags/x`)).status, 404);
    assert.equal((await call('rita', 'PUT', `/networks/${ids.alpha}/tags/x`)).status, 403, 'readers read tags, not write them');
    // Other taggable resources.
    const sg = (await call('alice', 'POST', '/security-groups', { security_group: { name: 'tagged' } })).body.security_group!;
    assert.equal((await call('alice', 'PUT', `/security-groups/${sg.id}/tags/web`)).status, 201);
    assert.deepEqual((await call('alice', 'GET', '/security-groups?tags=web')).body.security_groups!.map((g) => g.id), [sg.id]);
    const sub = (await call('alice', 'POST', '/subnets', { subnet: { network_id: ids.echo, ip_version: 4, cidr: '10.0.0.0/24', tags: ['s'] } })).body.subnet!;
    assert.deepEqual(sub.tags, ['s']);
    assert.deepEqual((await call('alice', 'PUT', `/subnets/${sub.id}/tags`, { tags: ['s', 't'] })).body.tags, ['s', 't']);
    const port = (await call('alice', 'POST', '/ports', { port: { network_id: ids.echo } })).body.port!;
    assert.equal((await call('alice', 'PUT', `/ports/${port.id}/tags/p`)).status, 201);
    assert.deepEqual((await call('alice', 'GET', `/ports?tags=p`)).body.ports!.map((p) => p.id), [port.id]);
  });

  test('If-Match: revision_number=N constrains updates and deletes (412 otherwise)', async () => {
    const n = (await call('alice', 'GET', `/networks/${ids.delta}`)).body.network!;
    const stale = { 'if-match': `revision_number=${n.revision_number - 1}` };
    let r = await call('alice', 'PUT', `/networks/${ids.delta}`, { network: { name: 'delta2' } }, stale);
    assert.equal(r.status, 412);
    assert.deepEqual(r.body.NeutronError, { type: 'RevisionNumberConstraintFailed', message: `Constrained to ${n.revision_number - 1}, but current revision is ${n.revision_number}`, detail: '' });
    assert.equal((await call('alice', 'GET', `/networks/${ids.delta}`)).body.network!.name, 'delta', 'unchanged');
    r = await call('alice', 'PUT', `/networks/${ids.delta}`, { network: { name: 'delta2' } }, { 'if-match': `revision_number=${n.revision_number}` });
    assert.equal(r.status, 200);
    assert.equal(r.body.network!.revision_number, n.revision_number + 1);
    assert.equal((await call('alice', 'DELETE', `/networks/${ids.delta}`, undefined, { 'if-match': `revision_number=${n.revision_number}` })).status, 412);
    assert.equal((await call('alice', 'PUT', `/networks/${ids.delta}`, { network: {} }, { 'if-match': 'etag-ish' })).status, 400);
    const sg = (await call('alice', 'POST', '/security-groups', { security_group: { name: 'im' } })).body.security_group!;
    assert.equal((await call('alice', 'PUT', `/security-groups/${sg.id}`, { security_group: { name: 'x' } }, { 'if-match': 'revision_number=99' })).status, 412);
    const sub = (await call('alice', 'GET', '/subnets')).body.subnets![0]!;
    assert.equal((await call('alice', 'DELETE', `/subnets/${sub.id}`, undefined, { 'if-match': 'revision_number=99' })).status, 412);
    const port = (await call('alice', 'GET', '/ports')).body.ports![0]!;
    assert.equal((await call('alice', 'PUT', `/ports/${port.id}`, { port: { name: 'x' } }, { 'if-match': `revision_number=${port.revision_number + 5}` })).status, 412);
    assert.equal((await call('alice', 'PUT', `/ports/${port.id}`, { port: { name: 'x' } }, { 'if-match': `revision_number=${port.revision_number}` })).status, 200);
    assert.equal((await call('alice', 'DELETE', `/networks/${ids.delta}`, undefined, { 'if-match': `revision_number=${n.revision_number + 1}` })).status, 204);
  });

  test('errors are NeutronError bodies: unknown URLs, bad JSON, no token', async () => {
    let r = await call('alice', 'GET', '/qos/policies');
    assert.equal(r.status, 404);
    assert.equal(r.body.NeutronError?.type, 'HTTPNotFound');
    r = await call(null, 'GET', '/networks');
    assert.equal(r.status, 401);
    assert.equal(r.body.NeutronError?.type, 'HTTPUnauthorized');
    const bad = await app.inject({ method: 'POST', url: '/networking/v2.0/networks', payload: '{nope', headers: { 'x-auth-token': 'tok-u-alice', 'content-type': 'application/json' } });
    assert.equal(bad.statusCode, 400);
    assert.equal((JSON.parse(bad.body) as { NeutronError: { type: string } }).NeutronError.type, 'HTTPBadRequest');
    r = await call('alice', 'GET', '/networks.json?name=echo');
    assert.deepEqual(r.body.networks!.map((n) => n.name), ['echo'], '.json on collections');
  });
});
