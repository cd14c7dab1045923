import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hostNetworkStates } from '../agent-state.ts';
import { NetworkService, systemAuth } from '../service.ts';
import { l3Harness, type L3Fixture } from './l3-harness.ts';

describe('floating IPs', () => {
  let f: L3Fixture;
  let router: string;
  let vm: { id: string; ip: string };
  before(async () => {
    f = await l3Harness();
    router = (await f.call('alice', 'POST', '/routers', { router: { name: 'r', external_gateway_info: { network_id: f.pub } } })).body.router!.id;
    assert.equal((await f.call('alice', 'PUT', `/routers/${router}/add_router_interface`, { subnet_id: f.sub })).status, 200);
    const p = (await f.call('alice', 'POST', '/ports', { port: { network_id: f.net, name: 'vm', device_id: 'vm-1', device_owner: 'compute:nova' } })).body.port!;
    vm = { id: p.id, ip: p.fixed_ips[0]!.ip_address };
  });
  after(async () => { await f.close(); });

  const mkFip = async (body: object = {}, who: 'alice' | 'bob' | 'admin' = 'alice') => {
    const r = await f.call(who, 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, ...body } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.floatingip!;
  };

  test('create: an address of the external network held by a hidden network:floatingip port; DOWN until associated; delete frees it', async () => {
    f.changes.length = 0;
    const fip = await mkFip({ description: 'd' });
    assert.deepEqual(f.changes, ['floatingip']);
    assert.equal(fip.floating_network_id, f.pub);
    assert.equal(fip.floating_ip_address, '172.24.4.11', '.10 is the router gateway');
    assert.equal(fip.status, 'DOWN');
    assert.equal(fip.port_id, null);
    assert.equal(fip.fixed_ip_address, null);
    assert.equal(fip.router_id, null);
    assert.equal(fip.port_details, null);
    assert.equal(fip.project_id, 'p-one');
    assert.equal(fip.tenant_id, 'p-one');
    assert.equal(fip.description, 'd');
    assert.equal(fip.dns_name, '');
    assert.equal(fip.dns_domain, '');
    assert.deepEqual(fip.tags, []);
    assert.equal(fip.revision_number, 1);
    const [port, ...more] = (await f.call('admin', 'GET', `/ports?device_id=${fip.id}`)).body.ports!;
    assert.equal(more.length, 0);
    assert.equal(port!.device_owner, 'network:floatingip');
    assert.equal(port!.project_id, '');
    assert.equal(port!.status, 'N/A');
    assert.deepEqual(port!.fixed_ips, [{ subnet_id: f.pubSub, ip_address: '172.24.4.11' }]);
    assert.equal((await f.call('alice', 'GET', `/ports?device_id=${fip.id}`)).body.ports!.length, 0, 'hidden from the project');
    await f.refused('admin', 'DELETE', `/ports/${port!.id}`, undefined, 409, 'ServicePortInUse');
    assert.equal((await f.call('alice', 'GET', `/floatingips/${fip.id}`)).body.floatingip!.floating_ip_address, '172.24.4.11');
    // The CLI finds a floating IP by address: GET by address is a 404, the filter finds it.
    assert.equal((await f.call('alice', 'GET', '/floatingips/172.24.4.11')).body.NeutronError?.message, 'Floating IP 172.24.4.11 could not be found');
    assert.deepEqual((await f.call('alice', 'GET', '/floatingips?floating_ip_address=172.24.4.11')).body.floatingips!.map((x) => x.id), [fip.id]);

    assert.equal((await f.call('alice', 'DELETE', `/floatingips/${fip.id}`)).status, 204);
    assert.equal((await f.call('admin', 'GET', `/ports/${port!.id}`)).status, 404, 'the port went with it');
    assert.equal((await f.call('alice', 'GET', `/floatingips/${fip.id}`)).body.NeutronError?.message, `Floating IP ${fip.id} could not be found`);
    const again = await mkFip();
    assert.equal(again.floating_ip_address, '172.24.4.11', 'the address is free again');
    await f.call('alice', 'DELETE', `/floatingips/${again.id}`);
  });

  test('deleting an external network takes its unassociated floating IPs with it; an associated one keeps it in use', async () => {
    const ext = (await f.call('admin', 'POST', '/networks', { network: { name: 'ext2', 'router:external': true } })).body.network!;
    const sub = (await f.call('admin', 'POST', '/subnets', { subnet: { network_id: ext.id, ip_version: 4, cidr: '198.51.100.0/24', enable_dhcp: false } })).body.subnet!;
    const loose = (await f.call('admin', 'POST', '/floatingips', { floatingip: { floating_network_id: ext.id } })).body.floatingip!;
    // a member sees the external network but not the subnets of a non-shared one (Neutron's)
    assert.equal((await f.call('alice', 'GET', `/networks/${ext.id}`)).status, 200);
    assert.deepEqual((await f.call('alice', 'GET', `/subnets?network_id=${ext.id}`)).body.subnets, []);
    assert.equal((await f.call('alice', 'GET', `/subnets/${sub.id}`)).status, 404);
    assert.equal((await f.call('admin', 'DELETE', `/networks/${ext.id}`)).status, 204);
    assert.equal((await f.call('admin', 'GET', `/floatingips/${loose.id}`)).status, 404, 'the floating IP went with its network');
    assert.equal((await f.call('admin', 'GET', `/ports?device_id=${loose.id}`)).body.ports!.length, 0, 'and its port');

    const fip = await mkFip();
    assert.equal((await f.call('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: vm.id } })).status, 200);
    await f.refused('admin', 'DELETE', `/networks/${f.pub}`, undefined, 409, 'NetworkInUse');
    assert.equal((await f.call('alice', 'GET', `/floatingips/${fip.id}`)).status, 200, 'an associated floating IP stays');
    await f.call('alice', 'DELETE', `/floatingips/${fip.id}`);
  });

  test('bad creates change nothing', async () => {
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.net } }, 400, 'BadRequest',
      `Bad floatingip request: Network ${f.net} is not a valid external network.`);
    const missing = '00000000-0000-4000-8000-000000000000';
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: missing } }, 404, 'NetworkNotFound');
    await f.refused('alice', 'POST', '/floatingips', { floatingip: {} }, 400, 'HTTPBadRequest', "Failed to parse request. Required attribute 'floating_network_id' not specified");
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, floating_ip_address: '172.24.4.77' } }, 403, 'PolicyNotAuthorized',
      '(rule:create_floatingip:floating_ip_address) is disallowed by policy');
    await f.refused('admin', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, floating_ip_address: 'bogus' } }, 400, 'HTTPBadRequest',
      "Invalid input for floating_ip_address. Reason: 'bogus' is not a valid IP address.");
    await f.refused('admin', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, floating_ip_address: '10.9.9.9' } }, 400, 'InvalidIpForNetwork');
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, fixed_ip_address: vm.ip } }, 400, 'BadRequest',
      'Bad floatingip request: fixed_ip_address cannot be specified without a port_id.');
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, subnet_id: f.sub } }, 400, 'InvalidInput',
      `Invalid input for operation: Failed to create port on network ${f.pub}, because fixed_ips included invalid subnet ${f.sub}.`);
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, status: 'ACTIVE' } }, 400, 'HTTPBadRequest', "Attribute 'status' not allowed in POST");
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, port_id: missing } }, 404, 'PortNotFound');
    await f.refused('rita', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub } }, 403, 'PolicyNotAuthorized', '(rule:create_floatingip) is disallowed by policy');
    const emptyExt = (await f.call('admin', 'POST', '/networks', { network: { name: 'ext2', 'router:external': true } })).body.network!.id;
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: emptyExt } }, 400, 'BadRequest',
      `Bad floatingip request: Network ${emptyExt} does not contain any IPv4 subnet.`);
    await f.call('admin', 'DELETE', `/networks/${emptyExt}`);
    // An admin picks the address (for alice's project); taken addresses are 409.
    const chosen = await mkFip({ floating_ip_address: '172.24.4.77', project_id: 'p-one' }, 'admin');
    assert.equal(chosen.floating_ip_address, '172.24.4.77');
    assert.equal(chosen.project_id, 'p-one');
    await f.refused('admin', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, floating_ip_address: '172.24.4.77' } }, 409, 'IpAddressAlreadyAllocated');
    const bySubnet = await mkFip({ subnet_id: f.pubSub });
    assert.equal(bySubnet.floating_ip_address, '172.24.4.11');
    for (const id of [chosen.id, bySubnet.id]) await f.call('alice', 'DELETE', `/floatingips/${id}`);
  });

  test('associate through the router: router_id, fixed IP, ACTIVE, port_details; disassociate; move; conflicts', async () => {
    const fip = await mkFip();
    f.changes.length = 0;
    const a = await f.call('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: vm.id } });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.deepEqual(f.changes, ['floatingip']);
    const v = a.body.floatingip!;
    assert.equal(v.port_id, vm.id);
    assert.equal(v.fixed_ip_address, vm.ip);
    assert.equal(v.router_id, router);
    assert.equal(v.status, 'ACTIVE');
    assert.equal(v.revision_number, 2);
    assert.deepEqual(v.port_details, {
      name: 'vm', network_id: f.net, mac_address: v.port_details!.mac_address, admin_state_up: true, status: 'DOWN', device_id: 'vm-1', device_owner: 'compute:nova',
    });
    const same = await f.call('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: vm.id } });
    assert.equal(same.body.floatingip!.revision_number, 2, 'no change, no new revision');

    // What the agents get: that floating IP NATed on that router.
    const states = await hostNetworkStates(f.deps.db, [{ host: 'h1', tunnelIp: '192.0.2.1' }], 1);
    const rs = states.get('h1')!.routers.find((x) => x.id === router)!;
    assert.deepEqual(rs.floatingIps, [{ id: fip.id, floatingIp: fip.floating_ip_address, fixedIp: vm.ip, portId: vm.id }]);

    // One floating IP per fixed IP and external network.
    const second = await mkFip();
    await f.refused('alice', 'PUT', `/floatingips/${second.id}`, { floatingip: { port_id: vm.id } }, 409, 'FloatingIPPortAlreadyAssociated',
      `Cannot associate floating IP ${second.floating_ip_address} (${second.id}) with port ${vm.id} using fixed IP ${vm.ip}, as that fixed IP already has a floating IP on external network ${f.pub}.`);
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, port_id: vm.id } }, 409, 'FloatingIPPortAlreadyAssociated');
    await f.refused('alice', 'PUT', `/floatingips/${second.id}`, { floatingip: { port_id: vm.id, fixed_ip_address: '10.0.0.99' } }, 400, 'BadRequest',
      `Bad floatingip request: Port ${vm.id} does not have fixed ip 10.0.0.99.`);
    await f.refused('alice', 'PUT', `/floatingips/${second.id}`, { floatingip: { fixed_ip_address: vm.ip } }, 400, 'BadRequest',
      'Bad floatingip request: fixed_ip_address cannot be specified without a port_id.');
    await f.refused('alice', 'PUT', `/floatingips/${second.id}`, { floatingip: { floating_ip_address: '172.24.4.200' } }, 400, 'HTTPBadRequest',
      'Cannot update read-only attribute floating_ip_address');

    // The interface and the gateway the floating IP needs stay.
    await f.refused('alice', 'PUT', `/routers/${router}/remove_router_interface`, { subnet_id: f.sub }, 409, 'RouterInterfaceInUseByFloatingIP',
      `Router interface for subnet ${f.sub} on router ${router} cannot be deleted, as it is required by one or more floating IPs.`);
    await f.refused('alice', 'PUT', `/routers/${router}`, { router: { external_gateway_info: null } }, 409, 'RouterExternalGatewayInUseByFloatingIp',
      `Gateway cannot be updated for router ${router}, since a gateway to external network ${f.pub} is required by one or more floating IPs.`);

    // Disassociate (port_id null): DOWN, nothing NATed any more.
    const d = (await f.call('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: null } })).body.floatingip!;
    assert.deepEqual([d.port_id, d.fixed_ip_address, d.router_id, d.status, d.port_details], [null, null, null, 'DOWN', null]);
    const row = await f.deps.db.selectFrom('floatingips').select('last_known_router_id').where('id', '=', fip.id).executeTakeFirstOrThrow();
    assert.equal(row.last_known_router_id, router);
    // Now the second one may take the fixed IP, with an explicit fixed_ip_address; then move it to another port.
    const moved = await f.call('alice', 'PUT', `/floatingips/${second.id}`, { floatingip: { port_id: vm.id, fixed_ip_address: vm.ip, description: 'web' } });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.floatingip!.description, 'web');
    const other = (await f.call('alice', 'POST', '/ports', { port: { network_id: f.net } })).body.port!;
    const m2 = (await f.call('alice', 'PUT', `/floatingips/${second.id}`, { floatingip: { port_id: other.id } })).body.floatingip!;
    assert.equal(m2.port_id, other.id);
    assert.equal(m2.fixed_ip_address, other.fixed_ips[0]!.ip_address);

    // The port may not lose the fixed address the floating IP is NATed to; other changes are fine.
    await f.refused('alice', 'PUT', `/ports/${other.id}`, { port: { fixed_ips: [{ subnet_id: f.sub, ip_address: '10.0.0.200' }] } }, 400, 'BadRequest',
      `Bad port request: Cannot update the fixed_ips of the port ${other.id}, because its original fixed_ip has been associated to a floating ip.`);
    const both = await f.call('alice', 'PUT', `/ports/${other.id}`, { port: { fixed_ips: [{ ip_address: m2.fixed_ip_address! }, { ip_address: '10.0.0.200' }] } });
    assert.equal(both.status, 200, JSON.stringify(both.body));
    assert.equal((await f.call('alice', 'PUT', `/ports/${other.id}`, { port: { fixed_ips: [{ ip_address: m2.fixed_ip_address! }] } })).status, 200);

    // Deleting the port disassociates its floating IP (Neutron's disassociate_floatingips).
    f.changes.length = 0;
    assert.equal((await f.call('alice', 'DELETE', `/ports/${other.id}`)).status, 204);
    assert.deepEqual(f.changes, ['port', 'floatingip']);
    const after = (await f.call('alice', 'GET', `/floatingips/${second.id}`)).body.floatingip!;
    assert.deepEqual([after.port_id, after.fixed_ip_address, after.router_id, after.status], [null, null, null, 'DOWN']);
    assert.equal(after.revision_number, m2.revision_number + 1);
    assert.equal((await f.call('alice', 'GET', `/ports/${other.id}`)).status, 404);
    for (const id of [fip.id, second.id]) await f.call('alice', 'DELETE', `/floatingips/${id}`);
  });

  test('no router between the port and the external network: 404 ExternalGatewayForFloatingIPNotFound, as Neutron words it', async () => {
    const net2 = (await f.call('alice', 'POST', '/networks', { network: { name: 'isolated' } })).body.network!.id;
    const sub2 = (await f.call('alice', 'POST', '/subnets', { subnet: { network_id: net2, ip_version: 4, cidr: '10.20.0.0/24' } })).body.subnet!.id;
    const p = (await f.call('alice', 'POST', '/ports', { port: { network_id: net2 } })).body.port!;
    const fip = await mkFip();
    const msg = `External network ${f.pub} is not reachable from subnet ${sub2}.  Therefore, cannot associate Port ${p.id} with a Floating IP.`;
    await f.refused('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: p.id } }, 404, 'ExternalGatewayForFloatingIPNotFound', msg);
    await f.refused('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub, port_id: p.id } }, 404, 'ExternalGatewayForFloatingIPNotFound');
    // A router with an interface there but no gateway is not enough either.
    const r2 = (await f.call('alice', 'POST', '/routers', { router: { name: 'nogw' } })).body.router!.id;
    await f.call('alice', 'PUT', `/routers/${r2}/add_router_interface`, { subnet_id: sub2 });
    await f.refused('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: p.id } }, 404, 'ExternalGatewayForFloatingIPNotFound', msg);
    // With the gateway it works.
    await f.call('alice', 'PUT', `/routers/${r2}`, { router: { external_gateway_info: { network_id: f.pub } } });
    const ok = await f.call('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: p.id } });
    assert.equal(ok.body.floatingip!.router_id, r2);
    const noV4 = (await f.call('alice', 'POST', '/ports', { port: { network_id: net2, fixed_ips: [] } })).body.port!;
    await f.refused('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: noV4.id } }, 400, 'BadRequest',
      `Bad floatingip request: Cannot add floating IP to port ${noV4.id} that has no fixed IPv4 addresses.`);
    await f.call('alice', 'PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: null } });
    await f.call('alice', 'DELETE', `/floatingips/${fip.id}`);
    await f.call('alice', 'PUT', `/routers/${r2}/remove_router_interface`, { subnet_id: sub2 });
    await f.call('alice', 'DELETE', `/routers/${r2}`);
    for (const id of [p.id, noV4.id]) await f.call('alice', 'DELETE', `/ports/${id}`);
    await f.call('alice', 'DELETE', `/networks/${net2}`);
  });

  test('isolation, filters, tags, If-Match, quota, the in-process service', async () => {
    const mine = await mkFip({ description: 'mine' });
    const bobs = await mkFip({}, 'bob');
    for (const [m, p, b] of [['GET', `/floatingips/${mine.id}`, undefined], ['PUT', `/floatingips/${mine.id}`, { floatingip: { port_id: null } }],
      ['DELETE', `/floatingips/${mine.id}`, undefined], ['PUT', `/floatingips/${mine.id}/tags/x`, undefined]] as const) {
      await f.refused('bob', m, p, b, 404, 'FloatingIPNotFound', `Floating IP ${mine.id} could not be found`);
    }
    // Bob cannot point his floating IP at alice's port (he cannot see it).
    await f.refused('bob', 'PUT', `/floatingips/${bobs.id}`, { floatingip: { port_id: vm.id } }, 404, 'PortNotFound', `Port ${vm.id} could not be found.`);
    assert.deepEqual((await f.call('bob', 'GET', '/floatingips')).body.floatingips!.map((x) => x.id), [bobs.id]);
    assert.equal((await f.call('admin', 'GET', '/floatingips')).body.floatingips!.length, 2);
    await f.refused('rita', 'PUT', `/floatingips/${mine.id}`, { floatingip: { description: 'x' } }, 403, 'PolicyNotAuthorized', '(rule:update_floatingip) is disallowed by policy');
    assert.equal((await f.call('rita', 'GET', `/floatingips/${mine.id}`)).status, 200);

    await f.call('alice', 'PUT', `/floatingips/${mine.id}`, { floatingip: { port_id: vm.id } });
    const q = async (query: string) => (await f.call('alice', 'GET', `/floatingips?${query}`)).body.floatingips!.map((x) => x.id);
    assert.deepEqual(await q(`port_id=${vm.id}`), [mine.id]);
    assert.deepEqual(await q(`router_id=${router}`), [mine.id]);
    assert.deepEqual(await q('status=ACTIVE'), [mine.id]);
    assert.deepEqual(await q('status=DOWN'), []);
    assert.deepEqual(await q(`fixed_ip_address=${vm.ip}`), [mine.id]);
    assert.deepEqual(await q(`floating_network_id=${f.pub}&description=mine`), [mine.id]);
    assert.equal((await f.call('alice', 'GET', '/floatingips?port_details=x')).status, 400);
    assert.deepEqual((await f.call('alice', 'GET', `/floatingips?fields=floating_ip_address&fields=status`)).body.floatingips, [{ floating_ip_address: mine.floating_ip_address, status: 'ACTIVE' }]);

    assert.equal((await f.call('alice', 'PUT', `/floatingips/${mine.id}/tags/web`)).status, 201);
    assert.deepEqual(await q('tags=web'), [mine.id]);
    const rev = (await f.call('alice', 'GET', `/floatingips/${mine.id}`)).body.floatingip!.revision_number;
    const stale = await f.call('alice', 'PUT', `/floatingips/${mine.id}`, { floatingip: { description: 'x' } }, { 'If-Match': `revision_number=${rev - 1}` });
    assert.equal(stale.status, 412);

    const svc = new NetworkService(f.deps);
    const inproc = await svc.listFloatingIps(systemAuth('p-one'), { fixedPortIds: [vm.id] });
    assert.deepEqual(inproc.map((x) => x.floating_ip_address), [mine.floating_ip_address]);

    assert.equal((await f.call('admin', 'PUT', '/quotas/p-two', { quota: { floatingip: 1 } })).status, 200);
    await f.refused('bob', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub } }, 409, 'OverQuota', "Quota exceeded for resources: ['floatingip'].");
    await f.call('admin', 'DELETE', '/quotas/p-two');
    await f.call('alice', 'DELETE', `/floatingips/${mine.id}`);
    await f.call('bob', 'DELETE', `/floatingips/${bobs.id}`);
    assert.equal(await f.deps.db.selectFrom('network_tags').select('tag').where('resource_type', '=', 'floatingips').execute().then((x) => x.length), 0);
  });

  test('concurrent creates never share an address, and two floating IPs racing for one fixed IP: one wins', async () => {
    const made = await Promise.all(Array.from({ length: 20 }, () => f.call('alice', 'POST', '/floatingips', { floatingip: { floating_network_id: f.pub } })));
    assert.ok(made.every((r) => r.status === 201));
    const addresses = made.map((r) => r.body.floatingip!.floating_ip_address);
    assert.equal(new Set(addresses).size, 20);
    const race = await Promise.all(made.slice(0, 5).map((r) => f.call('alice', 'PUT', `/floatingips/${r.body.floatingip!.id}`, { floatingip: { port_id: vm.id } })));
    assert.equal(race.filter((r) => r.status === 200).length, 1, JSON.stringify(race.map((r) => r.status)));
    assert.ok(race.filter((r) => r.status !== 200).every((r) => r.status === 409 && r.body.NeutronError?.type === 'FloatingIPPortAlreadyAssociated'));
    for (const r of made) assert.equal((await f.call('alice', 'DELETE', `/floatingips/${r.body.floatingip!.id}`)).status, 204);
    assert.equal((await f.counts()).floatingips, 0);
  });
});
