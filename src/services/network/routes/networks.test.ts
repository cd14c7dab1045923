import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import type { NetworkDeps } from '../types.ts';
import { caller, counts, harness, type App } from './test-harness.ts';

describe('networks', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: NetworkDeps;
  let call: ReturnType<typeof caller>;
  const changes: string[] = [];
  before(async () => {
    ({ app, dbh, deps } = await harness({ vniMin: 100, vniMax: 103 }));
    deps.changed = (what) => changes.push(what);
    call = caller(app);
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('create, show, list, update, delete; Neutron attributes; the project gets its default group', async () => {
    const c = await call('alice', 'POST', '/networks', { network: { name: 'net-a', description: 'd', tags: ['x'] } });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    const n = c.body.network!;
    assert.match(n.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.deepEqual(
      { ...n, id: '', created_at: '', updated_at: '' },
      {
        id: '', name: 'net-a', project_id: 'p-one', tenant_id: 'p-one', status: 'ACTIVE', admin_state_up: true, shared: false, 'router:external': false,
        is_default: false, mtu: 1450, port_security_enabled: true, availability_zone_hints: [], availability_zones: ['nova'], dns_domain: '', subnets: [],
        description: 'd', tags: ['x'], created_at: '', updated_at: '', revision_number: 1,
      },
      'a member sees no provider attributes',
    );
    assert.match(n.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(changes.includes('network'), 'agents are told');
    const groups = (await call('alice', 'GET', '/security-groups')).body.security_groups!;
    assert.deepEqual(groups.map((g) => g.name), ['default']);

    const shown = await call('admin', 'GET', `/networks/${n.id}`);
    assert.equal(shown.body.network!['provider:network_type'], 'vxlan');
    assert.equal(shown.body.network!['provider:segmentation_id'], 100, 'the lowest VNI of the range');
    assert.equal(shown.body.network!['provider:physical_network'], null);
    assert.equal((await call('alice', 'GET', `/networks/${n.id}.json`)).status, 200, '.json suffix');
    assert.deepEqual((await call('alice', 'GET', `/networks/${n.id}?fields=name&fields=mtu`)).body.network, { name: 'net-a', mtu: 1450 });

    const u = await call('alice', 'PUT', `/networks/${n.id}`, { network: { name: 'net-a2', admin_state_up: false, mtu: 1400, dns_domain: 'example.org' } });
    assert.equal(u.status, 200, JSON.stringify(u.body));
    assert.equal(u.body.network!.name, 'net-a2');
    assert.equal(u.body.network!.admin_state_up, false);
    assert.equal(u.body.network!.mtu, 1400);
    assert.equal(u.body.network!.dns_domain, 'example.org.');
    assert.equal(u.body.network!.revision_number, 2);
    assert.equal((await call('alice', 'PUT', `/networks/${n.id}`, { network: { name: 'net-a2' } })).body.network!.revision_number, 2, 'no change, no new revision');
    const listed = (await call('alice', 'GET', '/networks')).body.networks!;
    assert.deepEqual(listed.map((x) => x.name), ['net-a2']);
    assert.equal((await call('alice', 'DELETE', `/networks/${n.id}`)).status, 204);
    assert.equal((await call('alice', 'GET', `/networks/${n.id}`)).body.NeutronError?.type, 'NetworkNotFound');
    const gone = await call('alice', 'DELETE', `/networks/${n.id}`);
    assert.deepEqual(gone.body, { NeutronError: { type: 'NetworkNotFound', message: `Network ${n.id} could not be found.`, detail: '' } });
    assert.equal(gone.status, 404);
  });

  test('VNIs: lowest free first, reused after delete, admin may pick one, taken → 409, range exhausted → 503', async () => {
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await call('alice', 'POST', '/networks', { network: { name: `v${i}` } })).body.network!.id);
    const vni = async (id: string) => (await call('admin', 'GET', `/networks/${id}`)).body.network!['provider:segmentation_id'];
    assert.deepEqual([await vni(made[0]!), await vni(made[1]!), await vni(made[2]!)], [100, 101, 102]);
    await call('alice', 'DELETE', `/networks/${made[1]}`);
    const again = (await call('alice', 'POST', '/networks', { network: { name: 'again' } })).body.network!.id;
    assert.equal(await vni(again), 101, 'the freed VNI comes back');
    const pick = await call('admin', 'POST', '/networks', { network: { name: 'pick', 'provider:network_type': 'vxlan', 'provider:segmentation_id': 5000 } });
    assert.equal(pick.body.network!['provider:segmentation_id'], 5000);
    const taken = await call('admin', 'POST', '/networks', { network: { 'provider:network_type': 'vxlan', 'provider:segmentation_id': 5000 } });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.NeutronError?.type, 'TunnelIdInUse');
    assert.equal((await call('alice', 'POST', '/networks', { network: { name: 'last' } })).status, 201);
    const before = await counts(deps);
    const full = await call('alice', 'POST', '/networks', { network: { name: 'one too many' } });
    assert.equal(full.status, 503);
    assert.equal(full.body.NeutronError?.type, 'NoNetworkAvailable');
    assert.deepEqual(await counts(deps), before, 'nothing half-made');
    for (const id of [made[0], made[2], again, pick.body.network!.id]) await call('admin', 'DELETE', `/networks/${id}`);
    for (const n of (await call('alice', 'GET', '/networks?name=last')).body.networks!) await call('alice', 'DELETE', `/networks/${n.id}`);
  });

  test('provider attributes: flat on a known physnet (one network each), admin only; bad ones are 400', async () => {
    const flat = await call('admin', 'POST', '/networks', {
      network: { name: 'public', 'provider:network_type': 'flat', 'provider:physical_network': 'public', 'router:external': true, shared: false },
    });
    assert.equal(flat.status, 201, JSON.stringify(flat.body));
    assert.equal(flat.body.network!.mtu, 1500);
    assert.equal(flat.body.network!['provider:physical_network'], 'public');
    assert.equal(flat.body.network!['provider:segmentation_id'], null);
    assert.equal(flat.body.network!['router:external'], true);
    const dup = await call('admin', 'POST', '/networks', { network: { 'provider:network_type': 'flat', 'provider:physical_network': 'public' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.NeutronError?.message, 'Unable to create the flat network. Physical network public is in use.');
    const bad: [object, string][] = [
      [{ 'provider:network_type': 'vlan' }, "Invalid input for operation: network_type value 'vlan' not supported."],
      [{ 'provider:network_type': 'flat' }, 'Invalid input for operation: physical_network required for flat provider network.'],
      [{ 'provider:network_type': 'flat', 'provider:physical_network': 'nope' }, "Invalid input for operation: physical_network 'nope' unknown for flat provider network."],
      [{ 'provider:network_type': 'flat', 'provider:physical_network': 'public', 'provider:segmentation_id': 3 }, 'Invalid input for operation: segmentation_id not allowed for flat network type.'],
      [{ 'provider:network_type': 'vxlan', 'provider:physical_network': 'public' }, 'Invalid input for operation: provider:physical_network specified for VXLAN network.'],
      [{ 'provider:segmentation_id': 16777216 }, 'Invalid input for operation: segmentation_id out of range (1 through 16777215).'],
      [{ mtu: 9000 }, 'Invalid input for operation: Requested MTU is too big, maximum is 1450.'],
      [{ mtu: 'big' }, "Invalid input for mtu. Reason: 'big' is not an integer."],
      [{ admin_state_up: 'maybe' }, "Invalid input for admin_state_up. Reason: 'maybe' cannot be converted to boolean."],
      [{ name: 'x'.repeat(256) }, `Invalid input for name. Reason: '${'x'.repeat(256)}' exceeds maximum length of 255.`],
      [{ bogus: 1 }, "Unrecognized attribute(s) 'bogus'"],
      [{ status: 'DOWN' }, "Attribute 'status' not allowed in POST"],
      [{ availability_zone_hints: ['mars'] }, 'AvailabilityZone mars could not be found.'],
      [{ is_default: true }, 'Invalid input for operation: is_default can only be set on an external network.'],
    ];
    const before = await counts(deps);
    for (const [body, message] of bad) {
      const r = await call('admin', 'POST', '/networks', { network: body });
      assert.equal(r.body.NeutronError?.message, message, JSON.stringify(body));
      assert.ok(r.status === 400 || r.status === 404, JSON.stringify(r.body));
    }
    assert.equal((await call('admin', 'POST', '/networks', {})).body.NeutronError?.message, "Unable to find 'network' in request body");
    assert.deepEqual(await counts(deps), before, 'nothing was created');

    for (const body of [{ 'provider:network_type': 'vxlan' }, { 'provider:segmentation_id': 7 }, { shared: true }, { 'router:external': true }]) {
      const r = await call('alice', 'POST', '/networks', { network: body });
      assert.equal(r.status, 403, JSON.stringify(body));
      assert.equal(r.body.NeutronError?.type, 'PolicyNotAuthorized');
      assert.match(r.body.NeutronError!.message, /^\(rule:create_network:.+\) is disallowed by policy$/);
    }
    const mine = (await call('alice', 'POST', '/networks', { network: { name: 'mine' } })).body.network!;
    assert.equal((await call('alice', 'PUT', `/networks/${mine.id}`, { network: { shared: true } })).status, 403);
    assert.equal((await call('admin', 'PUT', `/networks/${mine.id}`, { network: { 'provider:segmentation_id': 9 } })).body.NeutronError?.message,
      'Invalid input for operation: Plugin does not support updating provider attributes.');
    assert.equal((await call('alice', 'PUT', `/networks/${mine.id}`, { network: { status: 'DOWN' } })).body.NeutronError?.message, 'Cannot update read-only attribute status');
    assert.deepEqual(await counts(deps), { ...before, networks: before.networks! + 1, network_segments: before.network_segments! + 1 });
    await call('alice', 'DELETE', `/networks/${mine.id}`);
    await call('admin', 'DELETE', `/networks/${flat.body.network!.id}`);
  });

  test('policy: other projects get 404, readers may not write, shared and external networks are visible to all', async () => {
    const a = (await call('alice', 'POST', '/networks', { network: { name: 'a-private' } })).body.network!;
    for (const [m, body] of [['GET', undefined], ['PUT', { network: { name: 'hijack' } }], ['DELETE', undefined]] as const) {
      const r = await call('bob', m, `/networks/${a.id}`, body);
      assert.equal(r.status, 404, m);
      assert.equal(r.body.NeutronError?.type, 'NetworkNotFound');
    }
    assert.ok(!(await call('bob', 'GET', '/networks')).body.networks!.some((n) => n.id === a.id));
    assert.equal((await call('rita', 'GET', `/networks/${a.id}`)).status, 200, 'a reader of the project reads');
    const w = await call('rita', 'POST', '/networks', { network: { name: 'r' } });
    assert.equal(w.status, 403);
    assert.equal(w.body.NeutronError?.message, '(rule:create_network) is disallowed by policy');
    assert.equal((await call('rita', 'PUT', `/networks/${a.id}`, { network: { name: 'r' } })).status, 403);
    assert.equal((await call('rita', 'DELETE', `/networks/${a.id}`)).status, 403);
    assert.equal((await call('alice', 'POST', '/networks', { network: { project_id: 'p-two' } })).status, 403, 'a member cannot create for another project');
    assert.equal((await call('alice', 'POST', '/networks', { network: { project_id: 'p-one', tenant_id: 'p-two' } })).status, 400);
    assert.equal((await call(null, 'GET', '/networks')).status, 401);

    const shared = (await call('admin', 'POST', '/networks', { network: { name: 'shared', shared: true, project_id: 'p-admin' } })).body.network!;
    const ext = (await call('admin', 'POST', '/networks', { network: { name: 'ext', 'router:external': true } })).body.network!;
    const seen = (await call('bob', 'GET', '/networks')).body.networks!.map((n) => n.name).sort();
    assert.deepEqual(seen, ['ext', 'shared']);
    assert.equal((await call('bob', 'PUT', `/networks/${shared.id}`, { network: { name: 'x' } })).status, 403, 'visible but not his');
    assert.equal((await call('bob', 'DELETE', `/networks/${ext.id}`)).status, 403);
    const made = await call('admin', 'POST', '/networks', { network: { name: 'for-bob', project_id: 'p-two' } });
    assert.equal(made.body.network!.project_id, 'p-two', 'an admin creates for any project');
    for (const id of [a.id, shared.id, ext.id, made.body.network!.id]) await call('admin', 'DELETE', `/networks/${id}`);
  });

  test('delete: DHCP ports go with the network, any other port keeps it (409 NetworkInUse, nothing deleted)', async () => {
    const n = (await call('alice', 'POST', '/networks', { network: { name: 'busy' } })).body.network!;
    const s = (await call('alice', 'POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.9.0.0/24' } })).body.subnet!;
    const dhcp = await call('admin', 'POST', '/ports', { port: { network_id: n.id, device_owner: 'network:dhcp', project_id: 'p-one' } });
    assert.equal(dhcp.status, 201, JSON.stringify(dhcp.body));
    assert.deepEqual(dhcp.body.port!.security_groups, [], 'the network\'s own ports get no security groups');
    const vm = (await call('alice', 'POST', '/ports', { port: { network_id: n.id, device_owner: 'compute:nova', device_id: 'vm-1' } })).body.port!;
    const before = await counts(deps);
    const r = await call('alice', 'DELETE', `/networks/${n.id}`);
    assert.equal(r.status, 409);
    assert.equal(r.body.NeutronError?.type, 'NetworkInUse');
    assert.equal(r.body.NeutronError?.message,
      `Unable to complete operation on network ${n.id}. There are one or more ports still in use on the network, id for these ports is: ${vm.id}.`);
    assert.deepEqual(await counts(deps), before, 'nothing deleted');
    const intf = await call('admin', 'POST', '/ports', { port: { network_id: n.id, device_owner: 'network:router_interface', fixed_ips: [{ subnet_id: s.id, ip_address: '10.9.0.1' }] } });
    assert.equal(intf.body.port!.fixed_ips[0]!.ip_address, '10.9.0.1', 'the gateway address for the router');
    await call('alice', 'DELETE', `/ports/${vm.id}`);
    assert.equal((await call('alice', 'DELETE', `/networks/${n.id}`)).status, 409, 'a router interface keeps it too');
    await call('admin', 'DELETE', `/ports/${intf.body.port!.id}`);
    assert.equal((await call('alice', 'DELETE', `/networks/${n.id}`)).status, 204);
    const after = await counts(deps);
    assert.equal(after.ports, before.ports! - 2, 'the DHCP port went with it');
    assert.equal(after.subnets, before.subnets! - 1);
    assert.equal(after.ip_allocations, before.ip_allocations! - 2);
    assert.equal((await call('admin', 'GET', `/ports/${dhcp.body.port!.id}`)).status, 404);
  });

  test('shared/external switches: unsharing a network others use is refused; is_default on one external network only', async () => {
    const n = (await call('admin', 'POST', '/networks', { network: { name: 'sh', shared: true } })).body.network!;
    await call('admin', 'POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.77.0.0/24' } });
    const p = await call('bob', 'POST', '/ports', { port: { network_id: n.id } });
    assert.equal(p.status, 201, 'any project may put a port on a shared network');
    const un = await call('admin', 'PUT', `/networks/${n.id}`, { network: { shared: false } });
    assert.equal(un.status, 409);
    assert.equal(un.body.NeutronError?.type, 'InvalidSharedSetting');
    await call('bob', 'DELETE', `/ports/${p.body.port!.id}`);
    assert.equal((await call('admin', 'PUT', `/networks/${n.id}`, { network: { shared: false } })).body.network!.shared, false);
    const e1 = (await call('admin', 'POST', '/networks', { network: { 'router:external': true, is_default: true } })).body.network!;
    assert.equal(e1.is_default, true);
    const e2 = (await call('admin', 'POST', '/networks', { network: { 'router:external': true } })).body.network!;
    assert.equal((await call('admin', 'PUT', `/networks/${e2.id}`, { network: { is_default: true } })).body.NeutronError?.type, 'DefaultExternalNetworkExists');
    for (const id of [n.id, e1.id, e2.id]) assert.equal((await call('admin', 'DELETE', `/networks/${id}`)).status, 204);
  });

  test('bulk create is all or nothing', async () => {
    const before = await counts(deps);
    const bad = await call('admin', 'POST', '/networks', { networks: [{ name: 'b1' }, { name: 'b2', 'provider:network_type': 'flat', 'provider:physical_network': 'nope' }] });
    assert.equal(bad.status, 400);
    assert.deepEqual(await counts(deps), before);
    const ok = await call('alice', 'POST', '/networks', { networks: [{ name: 'b1' }, { name: 'b2' }] });
    assert.equal(ok.status, 201);
    assert.deepEqual(ok.body.networks!.map((n) => n.name), ['b1', 'b2']);
    for (const n of ok.body.networks!) await call('alice', 'DELETE', `/networks/${n.id}`);
  });
});
