import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import type { NetworkDeps } from '../types.ts';
import { caller, counts, harness, type App } from './test-harness.ts';

describe('subnets', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: NetworkDeps;
  let call: ReturnType<typeof caller>;
  let net: string;
  before(async () => {
    ({ app, dbh, deps } = await harness());
    call = caller(app);
    net = (await call('alice', 'POST', '/networks', { network: { name: 'n' } })).body.network!.id;
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('IPv4 with defaults: gateway the first host, one pool of the rest; the network lists it and its revision moves', async () => {
    const rev = (await call('alice', 'GET', `/networks/${net}`)).body.network!.revision_number;
    const r = await call('alice', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, cidr: '10.0.0.0/24', name: 's4' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const s = r.body.subnet!;
    assert.deepEqual({ ...s, id: '', created_at: '', updated_at: '' }, {
      id: '', name: 's4', network_id: net, project_id: 'p-one', tenant_id: 'p-one', ip_version: 4, cidr: '10.0.0.0/24', gateway_ip: '10.0.0.1',
      allocation_pools: [{ start: '10.0.0.2', end: '10.0.0.254' }], dns_nameservers: [], host_routes: [], enable_dhcp: true,
      ipv6_ra_mode: null, ipv6_address_mode: null, subnetpool_id: null, description: '', tags: [], created_at: '', updated_at: '', revision_number: 1,
    });
    const n = (await call('alice', 'GET', `/networks/${net}`)).body.network!;
    assert.deepEqual(n.subnets, [s.id]);
    assert.equal(n.revision_number, rev + 1);
    assert.equal((await call('alice', 'GET', `/subnets/${s.id}`)).body.subnet!.cidr, '10.0.0.0/24');
    assert.deepEqual((await call('alice', 'GET', `/subnets?network_id=${net}`)).body.subnets!.map((x) => x.id), [s.id]);
  });

  test('everything given: normalised CIDR, no gateway, pools, nameservers, host routes', async () => {
    const r = await call('alice', 'POST', '/subnets', { subnet: {
      network_id: net, ip_version: 4, cidr: '10.1.0.77/24', gateway_ip: null, enable_dhcp: false, description: 'full',
      allocation_pools: [{ start: '10.1.0.100', end: '10.1.0.110' }, { start: '10.1.0.10', end: '10.1.0.20' }],
      dns_nameservers: ['8.8.8.8', '2001:4860:4860::8888'], host_routes: [{ destination: '192.168.7.9/16', nexthop: '10.1.0.5' }],
    } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const s = r.body.subnet!;
    assert.equal(s.cidr, '10.1.0.0/24');
    assert.equal(s.gateway_ip, null);
    assert.deepEqual(s.allocation_pools, [{ start: '10.1.0.10', end: '10.1.0.20' }, { start: '10.1.0.100', end: '10.1.0.110' }]);
    assert.deepEqual(s.dns_nameservers, ['8.8.8.8', '2001:4860:4860::8888'], 'in the order given');
    assert.deepEqual(s.host_routes, [{ destination: '192.168.0.0/16', nexthop: '10.1.0.5' }]);
    assert.equal(s.enable_dhcp, false);
    const none = (await call('alice', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, cidr: '10.2.0.0/24', gateway_ip: null } })).body.subnet!;
    assert.deepEqual(none.allocation_pools, [{ start: '10.2.0.1', end: '10.2.0.254' }], 'without a gateway the pool starts at the first host');
  });

  test('IPv6: SLAAC, DHCPv6 stateful and stateless', async () => {
    const n6 = (await call('alice', 'POST', '/networks', { network: { name: 'v6' } })).body.network!.id;
    const slaac = await call('alice', 'POST', '/subnets', { subnet: { network_id: n6, ip_version: 6, cidr: '2001:db8:1::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' } });
    assert.equal(slaac.status, 201, JSON.stringify(slaac.body));
    assert.equal(slaac.body.subnet!.gateway_ip, '2001:db8:1::1');
    assert.deepEqual(slaac.body.subnet!.allocation_pools, [{ start: '2001:db8:1::2', end: '2001:db8:1:0:ffff:ffff:ffff:ffff' }]);
    const stateful = await call('alice', 'POST', '/subnets', { subnet: { network_id: n6, ip_version: 6, cidr: '2001:DB8:2::/64', ipv6_address_mode: 'dhcpv6-stateful' } });
    assert.equal(stateful.body.subnet!.cidr, '2001:db8:2::/64');
    assert.equal((await call('alice', 'POST', '/subnets', { subnet: { network_id: n6, ip_version: 6, cidr: '2001:db8:3::/64', ipv6_address_mode: 'dhcpv6-stateless' } })).status, 201);
    const bad: [object, number, string][] = [
      [{ cidr: '2001:db8:4::/80', ipv6_address_mode: 'slaac' }, 400, 'Invalid input for operation: Invalid CIDR 2001:db8:4::/80 for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64.'],
      [{ cidr: '2001:db8:4::/64', ipv6_address_mode: 'slaac', ipv6_ra_mode: 'dhcpv6-stateful' }, 400,
        "Invalid input for operation: ipv6_ra_mode set to 'dhcpv6-stateful' with ipv6_address_mode set to 'slaac' is not valid. If both attributes are set, they must be the same value."],
      [{ cidr: '2001:db8:4::/64', ipv6_address_mode: 'slaac', enable_dhcp: false }, 400, 'Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False.'],
      [{ cidr: '2001:db8:4::/64', ipv6_address_mode: 'bogus' }, 400, "Invalid input for ipv6_address_mode. Reason: 'bogus' is not in ['slaac', 'dhcpv6-stateful', 'dhcpv6-stateless']."],
    ];
    for (const [body, status, message] of bad) {
      const r = await call('alice', 'POST', '/subnets', { subnet: { network_id: n6, ip_version: 6, ...body } });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.NeutronError?.message, message);
    }
    const v4modes = await call('alice', 'POST', '/subnets', { subnet: { network_id: n6, ip_version: 4, cidr: '10.6.0.0/24', ipv6_address_mode: 'slaac' } });
    assert.equal(v4modes.status, 400);
  });

  test('bad input is refused with Neutron messages and leaves nothing behind', async () => {
    const before = await counts(deps);
    const cases: [object, number, string | RegExp][] = [
      [{ cidr: '10.0.0.128/25' }, 400, `Invalid input for operation: Requested subnet with cidr: 10.0.0.128/25 for network: ${net} overlaps with another subnet.`],
      [{ cidr: '10.0.0.0/8' }, 400, `Invalid input for operation: Requested subnet with cidr: 10.0.0.0/8 for network: ${net} overlaps with another subnet.`],
      [{ cidr: '10.50.0.300/24' }, 400, "Invalid input for cidr. Reason: '10.50.0.300/24' is not a valid IP subnet."],
      [{ cidr: '10.50.0.0' }, 400, "Invalid input for cidr. Reason: '10.50.0.0' is not a valid IP subnet."],
      [{ cidr: 'banana' }, 400, "Invalid input for cidr. Reason: 'banana' is not a valid IP subnet."],
      [{ cidr: '2001:db8::/64' }, 400, "Invalid input for operation: cidr '2001:db8::/64' does not match the ip_version '4'."],
      [{ cidr: '10.50.0.0/24', gateway_ip: '10.51.0.1' }, 400, 'Invalid input for operation: Gateway is not valid on subnet.'],
      [{ cidr: '10.50.0.0/24', gateway_ip: '10.50.0.255' }, 400, 'Invalid input for operation: Gateway is not valid on subnet.'],
      [{ cidr: '10.50.0.0/24', gateway_ip: '10.50.0.0' }, 400, 'Invalid input for operation: Gateway is not valid on subnet.'],
      [{ cidr: '10.50.0.0/24', gateway_ip: 'nope' }, 400, "Invalid input for gateway_ip. Reason: 'nope' is not a valid IP address."],
      [{ cidr: '10.50.0.0/24', allocation_pools: [{ start: '10.50.1.1', end: '10.50.1.9' }] }, 400, 'The allocation pool 10.50.1.1-10.50.1.9 spans beyond the subnet cidr 10.50.0.0/24.'],
      [{ cidr: '10.50.0.0/24', allocation_pools: [{ start: '10.50.0.9', end: '10.50.0.2' }] }, 400, 'The allocation pool 10.50.0.9-10.50.0.2 is not valid.'],
      [{ cidr: '10.50.0.0/24', allocation_pools: [{ start: '10.50.0.2', end: '10.50.0.20' }, { start: '10.50.0.10', end: '10.50.0.30' }] }, 409,
        'Found overlapping allocation pools: 10.50.0.2-10.50.0.20 10.50.0.10-10.50.0.30 for subnet 10.50.0.0/24.'],
      [{ cidr: '10.50.0.0/24', allocation_pools: [{ start: '10.50.0.1', end: '10.50.0.20' }] }, 409, 'Gateway ip 10.50.0.1 conflicts with allocation pool 10.50.0.1-10.50.0.20.'],
      [{ cidr: '10.50.0.0/24', allocation_pools: [{ start: '10.50.0.2' }] }, 400,
        `Invalid input for allocation_pools. Reason: Validation of dictionary's keys failed. Provided keys: [{"start":"10.50.0.2"}] do not match the expected keys.`],
      [{ cidr: '10.50.0.0/24', dns_nameservers: ['1.1.1.1', '1.1.1.1'] }, 400, "Invalid input for dns_nameservers. Reason: Duplicate nameserver '1.1.1.1'."],
      [{ cidr: '10.50.0.0/24', dns_nameservers: ['dns.example'] }, 400, "Invalid input for dns_nameservers. Reason: 'dns.example' is not a valid nameserver. 'dns.example' is not a valid IP address."],
      [{ cidr: '10.50.0.0/24', dns_nameservers: ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4', '1.1.1.5', '1.1.1.6'] }, 400,
        /^Unable to complete operation for [0-9a-f-]{36}\. The number of DNS nameservers exceeds the limit 5\.$/],
      [{ cidr: '10.50.0.0/24', host_routes: [{ destination: '10.9.0.0/16', nexthop: 'x' }] }, 400, "Invalid input for host_routes. Reason: 'x' is not a valid IP address."],
      [{ cidr: '10.50.0.0/24', host_routes: [{ destination: '2001:db8::/64', nexthop: '10.50.0.1' }] }, 400, "Invalid input for operation: destination '2001:db8::/64' does not match the ip_version '4'."],
      [{ cidr: '10.50.0.0/24', ip_version: 5 }, 400, "Invalid input for ip_version. Reason: '5' is not in [4, 6]."],
      [{ cidr: '10.50.0.0/24', subnetpool_id: 'abc' }, 404, 'Subnet pool abc could not be found.'],
      [{ cidr: '0.0.0.0/0' }, 400, `Invalid input for operation: 0 is not allowed as CIDR prefix length.`],
      [{ cidr: '10.50.0.0/24', segment_id: 'x' }, 400, "Unrecognized attribute(s) 'segment_id'"],
    ];
    for (const [body, status, message] of cases) {
      const r = await call('alice', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, ...body } });
      if (typeof message === 'string') assert.equal(r.body.NeutronError?.message, message, JSON.stringify(body));
      else assert.match(r.body.NeutronError?.message ?? '', message);
      assert.equal(r.status, status, JSON.stringify(body));
    }
    const missing = await call('alice', 'POST', '/subnets', { subnet: { network_id: net, cidr: '10.50.0.0/24' } });
    assert.equal(missing.body.NeutronError?.message, "Failed to parse request. Required attribute 'ip_version' not specified");
    const nonet = await call('alice', 'POST', '/subnets', { subnet: { network_id: 'nope', ip_version: 4, cidr: '10.50.0.0/24' } });
    assert.equal(nonet.status, 404);
    assert.equal(nonet.body.NeutronError?.type, 'NetworkNotFound');
    assert.deepEqual(await counts(deps), before, 'nothing was created');
  });

  test('update: name, gateway, pools, nameservers, routes, with the same checks; read-only attributes refused', async () => {
    const s = (await call('alice', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, cidr: '10.20.0.0/24', allocation_pools: [{ start: '10.20.0.10', end: '10.20.0.50' }] } })).body.subnet!;
    let r = await call('alice', 'PUT', `/subnets/${s.id}`, { subnet: { name: 'renamed', gateway_ip: '10.20.0.254', dns_nameservers: ['9.9.9.9'], host_routes: [{ destination: '0.0.0.0/0', nexthop: '10.20.0.254' }] } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.subnet!.gateway_ip, '10.20.0.254');
    assert.deepEqual(r.body.subnet!.dns_nameservers, ['9.9.9.9']);
    assert.equal(r.body.subnet!.revision_number, 2);
    r = await call('alice', 'PUT', `/subnets/${s.id}`, { subnet: { gateway_ip: '10.20.0.20' } });
    assert.equal(r.status, 409, 'a gateway inside a pool');
    assert.equal(r.body.NeutronError?.message, 'Gateway ip 10.20.0.20 conflicts with allocation pool 10.20.0.10-10.20.0.50.');
    r = await call('alice', 'PUT', `/subnets/${s.id}`, { subnet: { allocation_pools: [{ start: '10.20.0.100', end: '10.20.0.254' }] } });
    assert.equal(r.status, 409, 'a pool over the gateway');
    r = await call('alice', 'PUT', `/subnets/${s.id}`, { subnet: { gateway_ip: '10.20.0.1', allocation_pools: [{ start: '10.20.0.100', end: '10.20.0.254' }] } });
    assert.equal(r.status, 200, 'both at once');
    assert.deepEqual(r.body.subnet!.allocation_pools, [{ start: '10.20.0.100', end: '10.20.0.254' }]);
    r = await call('alice', 'PUT', `/subnets/${s.id}`, { subnet: { gateway_ip: '10.99.0.1' } });
    assert.equal(r.status, 400);
    for (const attr of ['cidr', 'network_id', 'ip_version']) {
      r = await call('alice', 'PUT', `/subnets/${s.id}`, { subnet: { [attr]: 'x' } });
      assert.equal(r.body.NeutronError?.message, `Cannot update read-only attribute ${attr}`);
    }
    const shown = (await call('alice', 'GET', `/subnets/${s.id}`)).body.subnet!;
    assert.equal(shown.gateway_ip, '10.20.0.1');
    assert.equal(shown.name, 'renamed');
  });

  test('delete: refused while ordinary ports hold addresses (nothing changes), DHCP addresses released', async () => {
    const s = (await call('alice', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, cidr: '10.30.0.0/24' } })).body.subnet!;
    const dhcp = (await call('admin', 'POST', '/ports', { port: { network_id: net, device_owner: 'network:dhcp', fixed_ips: [{ subnet_id: s.id }] } })).body.port!;
    const vm = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ subnet_id: s.id }] } })).body.port!;
    const before = await counts(deps);
    const r = await call('alice', 'DELETE', `/subnets/${s.id}`);
    assert.equal(r.status, 409);
    assert.equal(r.body.NeutronError?.type, 'SubnetInUse');
    assert.equal(r.body.NeutronError?.message, `Unable to complete operation on subnet ${s.id}: One or more ports have an IP allocation from this subnet.`);
    assert.deepEqual(await counts(deps), before);
    await call('alice', 'DELETE', `/ports/${vm.id}`);
    assert.equal((await call('alice', 'DELETE', `/subnets/${s.id}`)).status, 204);
    const d = (await call('admin', 'GET', `/ports/${dhcp.id}`)).body.port!;
    assert.deepEqual(d.fixed_ips, [], 'the DHCP port lost its address on the subnet');
    assert.ok(!(await call('alice', 'GET', `/networks/${net}`)).body.network!.subnets.includes(s.id));
  });

  test('policy: subnets of other projects are 404; subnets of shared networks are visible; only the owner adds subnets', async () => {
    const mine = (await call('alice', 'GET', '/subnets')).body.subnets!;
    assert.ok(mine.length > 0);
    assert.equal((await call('bob', 'GET', '/subnets')).body.subnets!.length, 0);
    assert.equal((await call('bob', 'GET', `/subnets/${mine[0]!.id}`)).status, 404);
    assert.equal((await call('bob', 'PUT', `/subnets/${mine[0]!.id}`, { subnet: { name: 'x' } })).status, 404);
    assert.equal((await call('bob', 'DELETE', `/subnets/${mine[0]!.id}`)).status, 404);
    assert.equal((await call('bob', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, cidr: '10.88.0.0/24' } })).status, 404);
    assert.equal((await call('rita', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, cidr: '10.88.0.0/24' } })).status, 403);
    const shared = (await call('admin', 'POST', '/networks', { network: { shared: true } })).body.network!.id;
    const sub = (await call('admin', 'POST', '/subnets', { subnet: { network_id: shared, ip_version: 4, cidr: '10.89.0.0/24' } })).body.subnet!;
    assert.equal((await call('bob', 'GET', `/subnets/${sub.id}`)).status, 200);
    const add = await call('bob', 'POST', '/subnets', { subnet: { network_id: shared, ip_version: 4, cidr: '10.90.0.0/24' } });
    assert.equal(add.status, 403);
    assert.equal(add.body.NeutronError?.message, '(rule:create_subnet) is disallowed by policy');
  });
});
