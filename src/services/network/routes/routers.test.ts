import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hostNetworkStates } from '../agent-state.ts';
import { l3Harness, type L3Fixture } from './l3-harness.ts';

describe('routers', () => {
  let f: L3Fixture;
  before(async () => { f = await l3Harness(); });
  after(async () => { await f.close(); });

  const mkRouter = async (body: object = {}, who: 'alice' | 'bob' | 'admin' = 'alice') => {
    const r = await f.call(who, 'POST', '/routers', { router: { name: 'r', ...body } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.router!;
  };
  const gwPortOf = async (routerId: string) => (await f.call('admin', 'GET', `/ports?device_id=${routerId}&device_owner=network:router_gateway`)).body.ports!;

  test('create: Neutron view, no gateway; DVR/HA attributes only for admins; list and show', async () => {
    f.changes.length = 0;
    const r = await mkRouter({ description: 'd' });
    assert.deepEqual(f.changes, ['router']);
    assert.equal(r.status, 'ACTIVE');
    assert.equal(r.admin_state_up, true);
    assert.equal(r.external_gateway_info, null);
    assert.deepEqual(r.routes, []);
    assert.deepEqual(r.tags, []);
    assert.equal(r.flavor_id, null);
    assert.deepEqual(r.availability_zone_hints, []);
    assert.deepEqual(r.availability_zones, ['nova']);
    assert.equal(r.revision_number, 1);
    assert.equal(r.project_id, 'p-one');
    assert.equal(r.tenant_id, 'p-one');
    assert.equal(r.description, 'd');
    assert.match(r.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(r.distributed, undefined, 'members do not see distributed');
    assert.equal(r.ha, undefined);
    const a = (await f.call('admin', 'GET', `/routers/${r.id}`)).body.router!;
    assert.equal(a.distributed, false);
    assert.equal(a.ha, false);
    assert.deepEqual((await f.call('alice', 'GET', `/routers/${r.id}?fields=name&fields=status`)).body.router, { name: 'r', status: 'ACTIVE' });
    assert.ok((await f.call('alice', 'GET', '/routers?name=r')).body.routers!.some((x) => x.id === r.id));
    assert.equal((await f.call('alice', 'DELETE', `/routers/${r.id}`)).status, 204);
    assert.equal((await f.call('alice', 'GET', `/routers/${r.id}`)).body.NeutronError?.message, `Router ${r.id} could not be found`);
  });

  test('bad creates change nothing: unknown/read-only attributes, routes in POST, DVR/HA, zones, flavors, gateway shape', async () => {
    await f.refused('alice', 'POST', '/routers', { router: { bogus: 1 } }, 400, 'HTTPBadRequest', "Unrecognized attribute(s) 'bogus'");
    await f.refused('alice', 'POST', '/routers', { router: { status: 'DOWN' } }, 400, 'HTTPBadRequest', "Attribute 'status' not allowed in POST");
    await f.refused('alice', 'POST', '/routers', { router: { routes: [] } }, 400, 'HTTPBadRequest', "Attribute 'routes' not allowed in POST");
    await f.refused('alice', 'POST', '/routers', { router: { distributed: true } }, 403, 'PolicyNotAuthorized', '(rule:create_router:distributed) is disallowed by policy');
    await f.refused('admin', 'POST', '/routers', { router: { ha: true } }, 400, 'BadRequest', 'Bad router request: HA routers are not supported.');
    await f.refused('alice', 'POST', '/routers', { router: { availability_zone_hints: ['mars'] } }, 404, 'AvailabilityZoneNotFound', 'AvailabilityZone mars could not be found.');
    await f.refused('alice', 'POST', '/routers', { router: { admin_state_up: 'maybe' } }, 400, 'HTTPBadRequest',
      "Invalid input for admin_state_up. Reason: 'maybe' cannot be converted to boolean.");
    await f.refused('alice', 'POST', '/routers', { router: { external_gateway_info: { enable_snat: true } } }, 400, 'HTTPBadRequest',
      "Invalid input for external_gateway_info. Reason: Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: {'enable_snat'}.");
    await f.refused('alice', 'POST', '/routers', { router: { external_gateway_info: { network_id: f.net } } }, 400, 'BadRequest',
      `Bad router request: Network ${f.net} is not an external network.`);
    const bobNet = (await f.call('bob', 'POST', '/networks', { network: { name: 'bobs' } })).body.network!.id;
    await f.refused('alice', 'POST', '/routers', { router: { external_gateway_info: { network_id: bobNet } } }, 404, 'NetworkNotFound',
      `Network ${bobNet} could not be found.`);
    await f.refused('rita', 'POST', '/routers', { router: {} }, 403, 'PolicyNotAuthorized', '(rule:create_router) is disallowed by policy');
    await f.refused('alice', 'POST', '/routers', { router: { project_id: 'p-two' } }, 403, 'PolicyNotAuthorized');
    await f.call('bob', 'DELETE', `/networks/${bobNet}`);
  });

  test('gateway: set on the external network (a hidden network:router_gateway port with the lowest pool address), moved, cleared', async () => {
    const r = await mkRouter({ external_gateway_info: { network_id: f.pub } });
    const info = r.external_gateway_info!;
    assert.equal(info.network_id, f.pub);
    assert.equal(info.enable_snat, true);
    assert.deepEqual(info.external_fixed_ips, [{ subnet_id: f.pubSub, ip_address: '172.24.4.10' }]);
    const [gw, ...more] = await gwPortOf(r.id);
    assert.equal(more.length, 0);
    assert.equal(gw!.project_id, '', "the gateway port has no project, as Neutron's");
    assert.equal(gw!.device_id, r.id);
    assert.equal(gw!.network_id, f.pub);
    assert.deepEqual(gw!.security_groups, []);
    assert.equal((await f.call('alice', 'GET', `/ports?device_id=${r.id}`)).body.ports!.length, 0, 'not visible to the project');
    const rp = await f.deps.db.selectFrom('router_ports').selectAll().where('router_id', '=', r.id).execute();
    assert.deepEqual(rp, [{ router_id: r.id, port_id: gw!.id, port_type: 'network:router_gateway' }]);
    const row = await f.deps.db.selectFrom('routers').select(['gw_network_id', 'gw_port_id', 'enable_snat']).where('id', '=', r.id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { gw_network_id: f.pub, gw_port_id: gw!.id, enable_snat: 1 });
    // The gateway port cannot be deleted through the port API.
    await f.refused('admin', 'DELETE', `/ports/${gw!.id}`, undefined, 409, 'ServicePortInUse',
      `Port ${gw!.id} cannot be deleted directly via the port API: has device owner network:router_gateway.`);

    // Same network again: nothing changes (no new port, no revision bump).
    const same = (await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub } } })).body.router!;
    assert.equal(same.revision_number, r.revision_number);
    assert.equal((await gwPortOf(r.id))[0]!.id, gw!.id);

    // SNAT: only an admin turns it off; asking for the default is fine.
    await f.refused('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub, enable_snat: false } } }, 403,
      'PolicyNotAuthorized', '(rule:update_router:external_gateway_info:enable_snat) is disallowed by policy');
    const off = await f.call('admin', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub, enable_snat: false } } });
    assert.equal(off.body.router!.external_gateway_info!.enable_snat, false);
    assert.equal(off.body.router!.revision_number, r.revision_number + 1);
    const on = await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub, enable_snat: true } } });
    assert.equal(on.body.router!.external_gateway_info!.enable_snat, true);

    // Fixed external addresses: admin only; not the subnet's gateway; the port keeps its id.
    await f.refused('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub, external_fixed_ips: [{ ip_address: '172.24.4.50' }] } } },
      403, 'PolicyNotAuthorized', '(rule:update_router:external_gateway_info:external_fixed_ips) is disallowed by policy');
    await f.refused('admin', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub, external_fixed_ips: [{ ip_address: '172.24.4.1' }] } } },
      400, 'BadRequest', 'Bad router request: External IP 172.24.4.1 is the same as the gateway IP.');
    await f.refused('admin', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub, external_fixed_ips: [{ ip_address: '10.9.9.9' }] } } },
      400, 'InvalidIpForNetwork');
    const fixed = (await f.call('admin', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub, external_fixed_ips: [{ ip_address: '172.24.4.50' }] } } })).body.router!;
    assert.deepEqual(fixed.external_gateway_info!.external_fixed_ips, [{ subnet_id: f.pubSub, ip_address: '172.24.4.50' }]);
    assert.equal((await gwPortOf(r.id))[0]!.id, gw!.id);
    const other = await mkRouter({ external_gateway_info: { network_id: f.pub } });
    assert.deepEqual(other.external_gateway_info!.external_fixed_ips, [{ subnet_id: f.pubSub, ip_address: '172.24.4.10' }], '.10 was released');
    await f.refused('admin', 'POST', '/routers', { router: { project_id: 'p-one', external_gateway_info: { network_id: f.pub, external_fixed_ips: [{ ip_address: '172.24.4.50' }] } } },
      409, 'IpAddressAlreadyAllocated', `IP address 172.24.4.50 already allocated in subnet ${f.pubSub}`);

    // Moving to another external network: the old port goes, a new one comes.
    const ext2 = (await f.call('admin', 'POST', '/networks', { network: { name: 'ext2', 'router:external': true } })).body.network!.id;
    const ext2Sub = (await f.call('admin', 'POST', '/subnets', { subnet: { network_id: ext2, ip_version: 4, cidr: '198.51.100.0/24', enable_dhcp: false } })).body.subnet!.id;
    const moved = (await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext2 } } })).body.router!;
    assert.deepEqual(moved.external_gateway_info, { network_id: ext2, enable_snat: true, external_fixed_ips: [{ subnet_id: ext2Sub, ip_address: '198.51.100.2' }] });
    assert.equal((await f.call('admin', 'GET', `/ports/${gw!.id}`)).status, 404, 'the old gateway port is gone');
    assert.equal((await gwPortOf(r.id)).length, 1);
    await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub } } });
    await f.call('admin', 'DELETE', `/networks/${ext2}`);

    // Clearing: null or {} deletes the gateway port and its address.
    const cleared = (await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: {} } })).body.router!;
    assert.equal(cleared.external_gateway_info, null);
    assert.deepEqual(await gwPortOf(r.id), []);
    assert.equal((await f.call('admin', 'GET', `/ports/${gw!.id}`)).status, 404);
    const again = (await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: f.pub } } })).body.router!;
    assert.deepEqual(again.external_gateway_info!.external_fixed_ips, [{ subnet_id: f.pubSub, ip_address: '172.24.4.11' }]);
    assert.equal((await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { external_gateway_info: null } })).body.router!.external_gateway_info, null);
    // The external network cannot lose router:external nor be deleted while a gateway is on it.
    await f.refused('admin', 'DELETE', `/networks/${f.pub}`, undefined, 409, 'NetworkInUse');
    for (const id of [r.id, other.id]) assert.equal((await f.call(id === r.id ? 'alice' : 'admin', 'DELETE', `/routers/${id}`)).status, 204);
    assert.equal((await f.call('admin', 'GET', `/ports?network_id=${f.pub}`)).body.ports!.length, 0, 'router delete took the gateway port');
  });

  test('interfaces by subnet: the gateway address on a network:router_interface port; duplicates, overlaps, no gateway refused', async () => {
    const r = await mkRouter();
    f.changes.length = 0;
    const add = await f.call('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.sub });
    assert.equal(add.status, 200, JSON.stringify(add.body));
    assert.deepEqual(f.changes, ['router']);
    const info = add.body;
    assert.equal(info.id, r.id);
    assert.equal(info.subnet_id, f.sub);
    assert.deepEqual(info.subnet_ids, [f.sub]);
    assert.equal(info.network_id, f.net);
    assert.equal(info.tenant_id, 'p-one');
    assert.equal(info.project_id, 'p-one');
    const port = (await f.call('alice', 'GET', `/ports/${info.port_id!}`)).body.port!;
    assert.equal(port.device_owner, 'network:router_interface');
    assert.equal(port.device_id, r.id);
    assert.equal(port.project_id, 'p-one');
    assert.deepEqual(port.fixed_ips, [{ subnet_id: f.sub, ip_address: '10.0.0.1' }]);
    assert.deepEqual(port.security_groups, []);
    assert.equal((await f.call('alice', 'GET', `/routers/${r.id}`)).body.router!.revision_number, r.revision_number + 1);

    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.sub }, 400, 'BadRequest',
      `Bad router request: Router already has a port on subnet ${f.sub}.`);
    const r2 = await mkRouter();
    await f.refused('alice', 'PUT', `/routers/${r2.id}/add_router_interface`, { subnet_id: f.sub }, 409, 'IpAddressAlreadyAllocated',
      `IP address 10.0.0.1 already allocated in subnet ${f.sub}`);
    const net2 = (await f.call('alice', 'POST', '/networks', { network: { name: 'n2' } })).body.network!.id;
    const wide = (await f.call('alice', 'POST', '/subnets', { subnet: { network_id: net2, ip_version: 4, cidr: '10.0.0.0/16', gateway_ip: '10.0.200.1' } })).body.subnet!.id;
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: wide }, 400, 'BadRequest',
      `Bad router request: Cidr 10.0.0.0/16 of subnet ${wide} overlaps with cidr 10.0.0.0/24 of subnet ${f.sub}.`);
    const nogw = (await f.call('alice', 'POST', '/subnets', { subnet: { network_id: net2, ip_version: 4, cidr: '192.168.9.0/24', gateway_ip: null } })).body.subnet!.id;
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: nogw }, 400, 'BadRequest',
      'Bad router request: Subnet for router interface must have a gateway IP.');
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, {}, 400, 'BadRequest', 'Bad router request: Either subnet_id or port_id must be specified.');
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.sub, port_id: info.port_id }, 400, 'BadRequest',
      'Bad router request: Cannot specify both subnet-id and port-id.');
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: 'nope' }, 400, 'BadRequest', "Bad router request: 'nope' is not a valid UUID.");
    const missing = '00000000-0000-4000-8000-000000000000';
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: missing }, 404, 'SubnetNotFound');
    await f.refused('alice', 'PUT', `/routers/${missing}/add_router_interface`, { subnet_id: f.sub }, 404, 'RouterNotFound', `Router ${missing} could not be found`);
    // A member does not even see the subnets of an external network it does not own (Neutron's).
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.pubSub }, 404, 'SubnetNotFound');

    // The subnet, its network and the interface port are protected while attached.
    await f.refused('alice', 'DELETE', `/subnets/${f.sub}`, undefined, 409, 'SubnetInUse');
    await f.refused('alice', 'DELETE', `/networks/${f.net}`, undefined, 409, 'NetworkInUse');
    await f.refused('alice', 'DELETE', `/ports/${info.port_id!}`, undefined, 409, 'ServicePortInUse',
      `Port ${info.port_id!} cannot be deleted directly via the port API: has device owner network:router_interface.`);
    await f.refused('alice', 'DELETE', `/routers/${r.id}`, undefined, 409, 'RouterInUse', `Router ${r.id} still has ports`);

    // Removal: by subnet; then it is gone (404s name the subnet / port).
    const rm = await f.call('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: f.sub });
    assert.equal(rm.status, 200, JSON.stringify(rm.body));
    assert.deepEqual({ ...rm.body }, { id: r.id, tenant_id: 'p-one', project_id: 'p-one', port_id: info.port_id, network_id: f.net, subnet_id: f.sub, subnet_ids: [f.sub] });
    assert.equal((await f.call('alice', 'GET', `/ports/${info.port_id!}`)).status, 404, 'the interface port is deleted');
    await f.refused('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: f.sub }, 404, 'RouterInterfaceNotFoundForSubnet',
      `Router ${r.id} has no interface on subnet ${f.sub}`);
    await f.refused('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { port_id: info.port_id }, 404, 'RouterInterfaceNotFound',
      `Router ${r.id} does not have an interface with id ${info.port_id!}`);
    for (const id of [r.id, r2.id]) assert.equal((await f.call('alice', 'DELETE', `/routers/${id}`)).status, 204);
    await f.call('alice', 'DELETE', `/networks/${net2}`);
  });

  test('interfaces by port: an unbound port is taken over; in use or without addresses refused; removal by port deletes it', async () => {
    const r = await mkRouter();
    const p = (await f.call('alice', 'POST', '/ports', { port: { network_id: f.net, fixed_ips: [{ ip_address: '10.0.0.254' }] } })).body.port!;
    const add = await f.call('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { port_id: p.id });
    assert.equal(add.status, 200, JSON.stringify(add.body));
    assert.deepEqual({ ...add.body }, { id: r.id, tenant_id: 'p-one', project_id: 'p-one', port_id: p.id, network_id: f.net, subnet_id: f.sub, subnet_ids: [f.sub] });
    const taken = (await f.call('alice', 'GET', `/ports/${p.id}`)).body.port!;
    assert.equal(taken.device_owner, 'network:router_interface');
    assert.equal(taken.device_id, r.id);
    assert.equal(taken.revision_number, p.revision_number + 1);

    const vm = (await f.call('alice', 'POST', '/ports', { port: { network_id: f.net, device_id: 'vm-1', device_owner: 'compute:nova' } })).body.port!;
    const r2 = await mkRouter();
    await f.refused('alice', 'PUT', `/routers/${r2.id}/add_router_interface`, { port_id: vm.id }, 409, 'PortInUse',
      `Unable to complete operation on port ${vm.id} for network ${f.net}. Port already has an attached device vm-1.`);
    const empty = (await f.call('alice', 'POST', '/ports', { port: { network_id: f.net, fixed_ips: [] } })).body.port!;
    await f.refused('alice', 'PUT', `/routers/${r2.id}/add_router_interface`, { port_id: empty.id }, 400, 'BadRequest',
      'Bad router request: Router port must have at least one fixed IP.');
    const p2 = (await f.call('alice', 'POST', '/ports', { port: { network_id: f.net } })).body.port!;
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { port_id: p2.id }, 400, 'BadRequest',
      `Bad router request: Router already has a port on subnet ${f.sub}.`);
    const bobs = (await f.call('bob', 'POST', '/networks', { network: {} })).body.network!.id;
    await f.call('bob', 'POST', '/subnets', { subnet: { network_id: bobs, ip_version: 4, cidr: '10.5.0.0/24' } });
    const bobPort = (await f.call('bob', 'POST', '/ports', { port: { network_id: bobs } })).body.port!;
    await f.refused('alice', 'PUT', `/routers/${r2.id}/add_router_interface`, { port_id: bobPort.id }, 404, 'PortNotFound');
    await f.refused('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { port_id: p.id, subnet_id: f.pubSub }, 400, 'SubnetMismatchForPort',
      `Subnet on port ${p.id} does not match the requested subnet ${f.pubSub}.`);

    const rm = await f.call('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { port_id: p.id });
    assert.equal(rm.status, 200, JSON.stringify(rm.body));
    assert.equal(rm.body.port_id, p.id);
    assert.equal((await f.call('alice', 'GET', `/ports/${p.id}`)).status, 404, "Neutron deletes the interface's port");
    for (const id of [vm.id, empty.id, p2.id]) await f.call('alice', 'DELETE', `/ports/${id}`);
    for (const id of [r.id, r2.id]) await f.call('alice', 'DELETE', `/routers/${id}`);
    await f.call('bob', 'DELETE', `/ports/${bobPort.id}`);
    await f.call('bob', 'DELETE', `/networks/${bobs}`);
  });

  test('extra routes: nexthop on a connected subnet, not the router itself, at most 30; atomic add/remove; an interface a route needs stays', async () => {
    const r = await mkRouter({ external_gateway_info: { network_id: f.pub } });
    await f.call('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.sub });
    const routes = [{ destination: '192.168.50.0/24', nexthop: '10.0.0.254' }, { destination: '0.0.0.0/0', nexthop: '172.24.4.99' }];
    const set = await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { routes } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.router!.routes, [routes[0], routes[1]]);
    const dbRoutes = await f.deps.db.selectFrom('router_routes').select(['destination', 'nexthop']).where('router_id', '=', r.id).orderBy('destination').execute();
    assert.deepEqual(dbRoutes, [routes[1], routes[0]]);

    const put = (_: number) => `/routers/${r.id}`;
    await f.refused('alice', 'PUT', put(0), { router: { routes: [{ destination: '10.1.0.0/24', nexthop: '10.9.9.9' }] } }, 400, 'InvalidRoutes',
      "Invalid format for routes: [{'destination': '10.1.0.0/24', 'nexthop': '10.9.9.9'}], the nexthop is not connected with router");
    await f.refused('alice', 'PUT', put(0), { router: { routes: [{ destination: '10.1.0.0/24', nexthop: '10.0.0.1' }] } }, 400, 'InvalidRoutes',
      "Invalid format for routes: [{'destination': '10.1.0.0/24', 'nexthop': '10.0.0.1'}], the nexthop is used by router");
    await f.refused('alice', 'PUT', put(0), { router: { routes: [{ destination: 'bogus', nexthop: '10.0.0.5' }] } }, 400, 'HTTPBadRequest',
      "Invalid input for routes. Reason: 'bogus' is not a valid IP subnet.");
    await f.refused('alice', 'PUT', put(0), { router: { routes: [{ destination: '10.1.0.0/24', nexthop: 'x' }] } }, 400, 'HTTPBadRequest',
      "Invalid input for routes. Reason: 'x' is not a valid IP address.");
    await f.refused('alice', 'PUT', put(0), { router: { routes: [{ destination: '10.1.0.0/24' }] } }, 400, 'HTTPBadRequest', /Validation of dictionary's keys failed/);
    await f.refused('alice', 'PUT', put(0), { router: { routes: [routes[0], routes[0]] } }, 400, 'HTTPBadRequest', /Duplicate hostroute/);
    const many = Array.from({ length: 31 }, (_, i) => ({ destination: `10.${100 + i}.0.0/16`, nexthop: '10.0.0.254' }));
    await f.refused('alice', 'PUT', put(0), { router: { routes: many } }, 400, 'RoutesExhausted',
      `Unable to complete operation for ${r.id}. The number of routes exceeds the maximum 30.`);
    assert.deepEqual((await f.call('alice', 'GET', `/routers/${r.id}`)).body.router!.routes, routes, 'unchanged by the refusals');

    await f.refused('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: f.sub }, 409, 'RouterInterfaceInUseByRoute',
      `Router interface for subnet ${f.sub} on router ${r.id} cannot be deleted, as it is required by one or more routes.`);

    const added = await f.call('alice', 'PUT', `/routers/${r.id}/add_extraroutes`, { router: { routes: [{ destination: '192.168.60.0/24', nexthop: '10.0.0.253' }, routes[0]] } });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.equal(added.body.router!.routes.length, 3);
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_extraroutes`, { router: { routes: [{ destination: '192.168.70.0/24', nexthop: '8.8.8.8' }] } }, 400, 'InvalidRoutes');
    await f.refused('alice', 'PUT', `/routers/${r.id}/add_extraroutes`, { routes: [] }, 400, 'HTTPBadRequest', "Unable to find 'router' in request body");
    const removed = await f.call('alice', 'PUT', `/routers/${r.id}/remove_extraroutes`, { router: { routes: [routes[0], { destination: '1.2.3.0/24', nexthop: '10.0.0.9' }] } });
    assert.deepEqual(removed.body.router!.routes.map((x) => x.destination).sort(), ['0.0.0.0/0', '192.168.60.0/24']);
    const cleared = await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { routes: null } });
    assert.deepEqual(cleared.body.router!.routes, []);
    // Host bits in a destination are normalised away, as for subnets' host routes.
    const norm = await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { routes: [{ destination: '192.168.50.7/24', nexthop: '10.0.0.254' }] } });
    assert.deepEqual(norm.body.router!.routes, [{ destination: '192.168.50.0/24', nexthop: '10.0.0.254' }]);
    await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { routes: [] } });
    await f.call('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: f.sub });
    await f.call('alice', 'DELETE', `/routers/${r.id}`);
  });

  test('policy and isolation: other projects get 404, readers read only, admins see all; If-Match; tags; quota', async () => {
    const r = await mkRouter({ name: 'mine' });
    for (const [m, p, b] of [['GET', `/routers/${r.id}`, undefined], ['PUT', `/routers/${r.id}`, { router: { name: 'x' } }], ['DELETE', `/routers/${r.id}`, undefined],
      ['PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.sub }], ['PUT', `/routers/${r.id}/add_extraroutes`, { router: { routes: [] } }],
      ['GET', `/routers/${r.id}/tags`, undefined]] as const) {
      await f.refused('bob', m, p, b, 404, 'RouterNotFound', `Router ${r.id} could not be found`);
    }
    assert.equal((await f.call('bob', 'GET', '/routers')).body.routers!.some((x) => x.id === r.id), false);
    assert.ok((await f.call('admin', 'GET', '/routers')).body.routers!.some((x) => x.id === r.id));
    assert.ok((await f.call('admin', 'GET', '/routers?project_id=p-one')).body.routers!.every((x) => x.project_id === 'p-one'));
    assert.equal((await f.call('rita', 'GET', `/routers/${r.id}`)).status, 200, 'a reader of the project sees it');
    await f.refused('rita', 'PUT', `/routers/${r.id}`, { router: { name: 'x' } }, 403, 'PolicyNotAuthorized', '(rule:update_router) is disallowed by policy');
    await f.refused('rita', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.sub }, 403, 'PolicyNotAuthorized', '(rule:add_router_interface) is disallowed by policy');
    await f.refused('rita', 'DELETE', `/routers/${r.id}`, undefined, 403, 'PolicyNotAuthorized');
    await f.refused('alice', 'PUT', `/routers/${r.id}`, { router: { availability_zone_hints: ['nova'] } }, 400, 'HTTPBadRequest', 'Cannot update read-only attribute availability_zone_hints');
    await f.refused('alice', 'GET', '/routers?external_gateway_info=x', undefined, 400, 'HTTPBadRequest', 'external_gateway_info is invalid attribute for filtering');

    const upd = await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { name: 'renamed', admin_state_up: false } }, { 'If-Match': 'revision_number=1' });
    assert.equal(upd.status, 200, JSON.stringify(upd.body));
    assert.equal(upd.body.router!.revision_number, 2);
    assert.equal(upd.body.router!.admin_state_up, false);
    const stale = await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { name: 'again' } }, { 'If-Match': 'revision_number=1' });
    assert.equal(stale.status, 412);
    assert.equal(stale.body.NeutronError?.message, 'Constrained to 1, but current revision is 2');
    assert.equal((await f.call('alice', 'GET', '/routers?admin_state_up=false&name=renamed')).body.routers!.length, 1);

    assert.equal((await f.call('alice', 'PUT', `/routers/${r.id}/tags`, { tags: ['b', 'a'] })).status, 200);
    assert.deepEqual((await f.call('alice', 'GET', `/routers/${r.id}`)).body.router!.tags, ['a', 'b']);
    assert.equal((await f.call('alice', 'GET', '/routers?tags=a')).body.routers!.length, 1);
    assert.equal((await f.call('rita', 'PUT', `/routers/${r.id}/tags/c`)).status, 403);
    const tagged = await mkRouter({ name: 'tagged', tags: ['t1'] });
    assert.deepEqual(tagged.tags, ['t1']);

    assert.equal((await f.call('admin', 'PUT', '/quotas/p-one', { quota: { router: 2 } })).status, 200);
    await f.refused('alice', 'POST', '/routers', { router: { name: 'third' } }, 409, 'OverQuota', "Quota exceeded for resources: ['router'].");
    assert.equal((await f.call('alice', 'GET', '/quotas/p-one/details')).body.quota!.router!.used, 2);
    await f.call('admin', 'DELETE', '/quotas/p-one');
    for (const id of [r.id, tagged.id]) assert.equal((await f.call('alice', 'DELETE', `/routers/${id}`, undefined, id === r.id ? { 'If-Match': 'revision_number=3' } : {})).status, 204);
    assert.equal(await f.deps.db.selectFrom('network_tags').select('tag').where('resource_type', '=', 'routers').execute().then((x) => x.length), 0, 'tags went with it');
  });

  test('the controller turns the API\'s routers into the agents\' desired state', async () => {
    const r = await mkRouter({ external_gateway_info: { network_id: f.pub } });
    const intf = (await f.call('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: f.sub })).body;
    await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { routes: [{ destination: '192.168.50.0/24', nexthop: '10.0.0.254' }] } });
    const states = await hostNetworkStates(f.deps.db, [{ host: 'h1', tunnelIp: '192.0.2.1' }], 1);
    const rs = states.get('h1')!.routers.find((x) => x.id === r.id)!;
    assert.ok(rs, 'the router is placed on the only host');
    assert.deepEqual(rs.interfaces.map((i) => [i.portId, i.subnetId, i.ip, i.cidr]), [[intf.port_id, f.sub, '10.0.0.1', '10.0.0.0/24']]);
    assert.equal(rs.gateway!.networkId, f.pub);
    assert.equal(rs.gateway!.snat, true);
    assert.deepEqual(rs.gateway!.fixedIps.map((x) => [x.ip, x.gatewayIp, x.cidr]), [['172.24.4.10', '172.24.4.1', '172.24.4.0/24']]);
    assert.deepEqual(rs.routes, [{ destination: '192.168.50.0/24', nexthop: '10.0.0.254' }]);
    await f.call('alice', 'PUT', `/routers/${r.id}`, { router: { routes: [] } });
    await f.call('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: f.sub });
    await f.call('alice', 'DELETE', `/routers/${r.id}`);
    assert.deepEqual(await f.counts().then((c) => [c.routers, c.router_ports, c.router_routes]), [0, 0, 0]);
  });
  test('an interface on a SLAAC subnet takes its gateway_ip (router ports may have chosen addresses there; other ports may not)', async () => {
    const net6 = (await f.call('alice', 'POST', '/networks', { network: { name: 'v6' } })).body.network!.id;
    const sub6 = (await f.call('alice', 'POST', '/subnets', { subnet: {
      network_id: net6, ip_version: 6, cidr: '2001:db8:5::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' } })).body.subnet!;
    await f.refused('alice', 'POST', '/ports', { port: { network_id: net6, fixed_ips: [{ subnet_id: sub6.id, ip_address: '2001:db8:5::9' }] } }, 400, 'HTTPBadRequest',
      /cannot be directly assigned to a port on subnet .* configured for automatic addresses/);
    const r = await mkRouter();
    const info = await f.call('alice', 'PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: sub6.id });
    assert.equal(info.status, 200, JSON.stringify(info.body));
    const port = (await f.call('alice', 'GET', `/ports/${info.body.port_id!}`)).body.port!;
    assert.deepEqual(port.fixed_ips, [{ subnet_id: sub6.id, ip_address: sub6.gateway_ip }]);
    await f.call('alice', 'PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: sub6.id });
    await f.call('alice', 'DELETE', `/routers/${r.id}`);
    await f.call('alice', 'DELETE', `/networks/${net6}`);
  });
});
