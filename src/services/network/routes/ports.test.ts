import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import type { NetworkDeps } from '../types.ts';
import { eui64, formatIp, parseCidr } from '../netaddr.ts';
import { caller, counts, harness, type App } from './test-harness.ts';

describe('ports', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: NetworkDeps;
  let call: ReturnType<typeof caller>;
  let net: string;
  let sub: string;
  before(async () => {
    ({ app, dbh, deps } = await harness());
    call = caller(app);
    net = (await call('alice', 'POST', '/networks', { network: { name: 'n' } })).body.network!.id;
    sub = (await call('alice', 'POST', '/subnets', { subnet: { network_id: net, ip_version: 4, cidr: '10.0.0.0/24', allocation_pools: [{ start: '10.0.0.10', end: '10.0.0.200' }] } })).body.subnet!.id;
  });
  after(async () => { await app.close(); await dbh.close(); });

  /** Run a request that must fail, and check it changed nothing. */
  async function refused(who: 'alice' | 'bob' | 'admin' | 'rita', method: string, path: string, body: unknown, status: number, type: string, message?: string | RegExp) {
    const before = await counts(deps);
    const r = await call(who, method, path, body);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.NeutronError?.type, type, JSON.stringify(r.body));
    if (typeof message === 'string') assert.equal(r.body.NeutronError?.message, message);
    else if (message) assert.match(r.body.NeutronError!.message, message);
    assert.deepEqual(await counts(deps), before, `nothing changed by ${method} ${path} ${JSON.stringify(body)}`);
  }

  test('create with defaults: lowest pool address, generated MAC, default group, DOWN; binding only for admins', async () => {
    const r = await call('alice', 'POST', '/ports', { port: { network_id: net, name: 'p1' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const p = r.body.port!;
    assert.match(p.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
    assert.deepEqual(p.fixed_ips, [{ subnet_id: sub, ip_address: '10.0.0.10' }]);
    assert.equal(p.status, 'DOWN');
    assert.equal(p.admin_state_up, true);
    assert.equal(p.port_security_enabled, true);
    assert.equal(p.revision_number, 1);
    const dflt = (await call('alice', 'GET', '/security-groups?name=default')).body.security_groups![0]!;
    assert.deepEqual(p.security_groups, [dflt.id]);
    assert.deepEqual(p.dns_assignment, [{ hostname: 'host-10-0-0-10', ip_address: '10.0.0.10', fqdn: 'host-10-0-0-10.openstacklocal.' }]);
    assert.equal(p['binding:host_id'], undefined, 'members do not see the binding');
    assert.equal(p['binding:vnic_type'], 'normal');
    const a = (await call('admin', 'GET', `/ports/${p.id}`)).body.port!;
    assert.equal(a['binding:host_id'], '');
    assert.equal(a['binding:vif_type'], 'unbound');
    assert.deepEqual(a['binding:vif_details'], {});
    assert.deepEqual(a['binding:profile'], {});
    assert.equal((await call('alice', 'DELETE', `/ports/${p.id}`)).status, 204);
    assert.equal((await call('alice', 'GET', `/ports/${p.id}`)).body.NeutronError?.message, `Port ${p.id} could not be found.`);
  });

  test('fixed_ips by subnet, by address, both; addresses outside a pool but inside the subnet are allowed, as in Neutron', async () => {
    const bySubnet = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ subnet_id: sub }] } })).body.port!;
    assert.equal(bySubnet.fixed_ips[0]!.ip_address, '10.0.0.10');
    const byIp = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '10.0.0.50' }] } })).body.port!;
    assert.deepEqual(byIp.fixed_ips, [{ subnet_id: sub, ip_address: '10.0.0.50' }]);
    const both = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ subnet_id: sub, ip_address: '10.0.0.5' }] } }));
    assert.equal(both.status, 201, 'outside the pools, inside the subnet');
    const none = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [] } })).body.port!;
    assert.deepEqual(none.fixed_ips, []);
    const next = (await call('alice', 'POST', '/ports', { port: { network_id: net } })).body.port!;
    assert.equal(next.fixed_ips[0]!.ip_address, '10.0.0.11', 'the lowest free one');
    for (const p of [bySubnet, byIp, both.body.port!, none, next]) await call('alice', 'DELETE', `/ports/${p.id}`);
  });

  test('bad addresses: outside the subnet 400, taken 409, not on the network 400, exhausted 409 — nothing left behind', async () => {
    const taken = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '10.0.0.77' }] } })).body.port!;
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ subnet_id: sub, ip_address: '10.9.9.9' }] } }, 400, 'InvalidIpForSubnet',
      'IP address 10.9.9.9 is not a valid IP for the specified subnet.');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ subnet_id: sub, ip_address: '10.0.0.255' }] } }, 400, 'InvalidIpForSubnet');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ subnet_id: sub, ip_address: '10.0.0.0' }] } }, 400, 'InvalidIpForSubnet');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '172.16.0.1' }] } }, 400, 'InvalidIpForNetwork',
      'IP address 172.16.0.1 is not a valid IP for any of the subnets on the specified network.');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '10.0.0.77' }] } }, 409, 'IpAddressAlreadyAllocated',
      `IP address 10.0.0.77 already allocated in subnet ${sub}`);
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: 'ten' }] } }, 400, 'HTTPBadRequest', "Invalid input for fixed_ips. Reason: 'ten' is not a valid IP address.");
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ subnet_id: 'other' }] } }, 400, 'InvalidInput',
      `Invalid input for operation: Failed to create port on network ${net}, because fixed_ips included invalid subnet other.`);
    // An allocation that fails after others succeeded in the same request rolls all back.
    await refused('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '10.0.0.78' }, { ip_address: '10.0.0.77' }] } }, 409, 'IpAddressAlreadyAllocated');
    const tiny = (await call('alice', 'POST', '/networks', { network: { name: 'tiny' } })).body.network!.id;
    await call('alice', 'POST', '/subnets', { subnet: { network_id: tiny, ip_version: 4, cidr: '10.3.0.0/30' } });
    assert.equal((await call('alice', 'POST', '/ports', { port: { network_id: tiny } })).body.port!.fixed_ips[0]!.ip_address, '10.3.0.2');
    await refused('alice', 'POST', '/ports', { port: { network_id: tiny } }, 409, 'IpAddressGenerationFailure', `No more IP addresses available on network ${tiny}.`);
    await refused('alice', 'POST', '/ports', { port: { network_id: 'nowhere' } }, 404, 'NetworkNotFound');
    await refused('alice', 'POST', '/ports', { port: { name: 'x' } }, 400, 'HTTPBadRequest', "Failed to parse request. Required attribute 'network_id' not specified");
    await call('alice', 'DELETE', `/ports/${taken.id}`);
  });

  test('several IPv4 subnets: one address from the first with room; dual stack adds a DHCPv6 address and SLAAC EUI-64', async () => {
    const n = (await call('alice', 'POST', '/networks', { network: { name: 'dual' } })).body.network!.id;
    const a = (await call('alice', 'POST', '/subnets', { subnet: { network_id: n, ip_version: 4, cidr: '10.4.0.0/30' } })).body.subnet!.id;
    const b = (await call('alice', 'POST', '/subnets', { subnet: { network_id: n, ip_version: 4, cidr: '10.5.0.0/24' } })).body.subnet!.id;
    const p1 = (await call('alice', 'POST', '/ports', { port: { network_id: n } })).body.port!;
    assert.deepEqual(p1.fixed_ips, [{ subnet_id: a, ip_address: '10.4.0.2' }], 'one IPv4 address, from the first subnet');
    const p2 = (await call('alice', 'POST', '/ports', { port: { network_id: n } })).body.port!;
    assert.deepEqual(p2.fixed_ips, [{ subnet_id: b, ip_address: '10.5.0.2' }], 'the first is full: the next subnet');
    const v6 = (await call('alice', 'POST', '/subnets', { subnet: { network_id: n, ip_version: 6, cidr: '2001:db8:5::/64', ipv6_address_mode: 'dhcpv6-stateful' } })).body.subnet!.id;
    const slaac = (await call('alice', 'POST', '/subnets', { subnet: { network_id: n, ip_version: 6, cidr: '2001:db8:6::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' } })).body.subnet!.id;
    const p1now = (await call('alice', 'GET', `/ports/${p1.id}`)).body.port!;
    const eui = (mac: string) => formatIp(6, eui64(parseCidr('2001:db8:6::/64')!, mac));
    assert.deepEqual(p1now.fixed_ips.map((f) => f.ip_address), ['10.4.0.2', eui(p1.mac_address)], 'a new SLAAC subnet gives existing ports their address');
    const p3 = (await call('alice', 'POST', '/ports', { port: { network_id: n } })).body.port!;
    assert.deepEqual(p3.fixed_ips.map((f) => f.subnet_id), [b, v6, slaac]);
    assert.equal(p3.fixed_ips[1]!.ip_address, '2001:db8:5::2');
    assert.equal(p3.fixed_ips[2]!.ip_address, eui(p3.mac_address));
    await refused('alice', 'POST', '/ports', { port: { network_id: n, fixed_ips: [{ subnet_id: slaac, ip_address: '2001:db8:6::5' }] } }, 400, 'HTTPBadRequest',
      `IPv6 address 2001:db8:6::5 cannot be directly assigned to a port on subnet ${slaac} since the subnet is configured for automatic addresses`);
    const r = await call('alice', 'DELETE', `/subnets/${slaac}`);
    assert.equal(r.status, 204, 'SLAAC addresses do not keep a subnet');
    for (const p of [p1, p2, p3]) await call('alice', 'DELETE', `/ports/${p.id}`);
  });

  test('MAC addresses: given, unique per network, valid; changed only by admins and only while unbound', async () => {
    const p = (await call('alice', 'POST', '/ports', { port: { network_id: net, mac_address: 'FA:16:3E:AA:BB:CC' } })).body.port!;
    assert.equal(p.mac_address, 'fa:16:3e:aa:bb:cc');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, mac_address: 'fa:16:3e:aa:bb:cc' } }, 409, 'MacAddressInUse',
      `Unable to complete operation for network ${net}. The mac address fa:16:3e:aa:bb:cc is in use.`);
    await refused('alice', 'POST', '/ports', { port: { network_id: net, mac_address: 'ff:ff:ff:ff:ff:ff' } }, 400, 'HTTPBadRequest', "Invalid input for mac_address. Reason: 'ff:ff:ff:ff:ff:ff' is not a valid MAC address.");
    const other = (await call('alice', 'POST', '/networks', { network: {} })).body.network!.id;
    assert.equal((await call('alice', 'POST', '/ports', { port: { network_id: other, mac_address: 'fa:16:3e:aa:bb:cc' } })).status, 201, 'unique per network only');
    assert.equal((await call('alice', 'PUT', `/ports/${p.id}`, { port: { mac_address: 'fa:16:3e:00:00:01' } })).status, 403);
    assert.equal((await call('admin', 'PUT', `/ports/${p.id}`, { port: { mac_address: 'fa:16:3e:00:00:01' } })).body.port!.mac_address, 'fa:16:3e:00:00:01');
    await call('admin', 'PUT', `/ports/${p.id}`, { port: { 'binding:host_id': 'host-1' } });
    await refused('admin', 'PUT', `/ports/${p.id}`, { port: { mac_address: 'fa:16:3e:00:00:02' } }, 409, 'PortBound');
    await call('admin', 'DELETE', `/ports/${p.id}`);
  });

  test('bindings: admins bind to a host (bridge), unbind, set a profile; members may not', async () => {
    const p = (await call('alice', 'POST', '/ports', { port: { network_id: net } })).body.port!;
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { 'binding:host_id': 'h1' } }, 403, 'PolicyNotAuthorized', '(rule:update_port:binding:host_id) is disallowed by policy');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, 'binding:profile': { a: 1 } } }, 403, 'PolicyNotAuthorized');
    const b = await call('admin', 'PUT', `/ports/${p.id}`, { port: { 'binding:host_id': 'h1', 'binding:profile': { migrating_to: 'h2' }, device_id: 'vm-9', device_owner: 'compute:nova' } });
    assert.equal(b.status, 200, JSON.stringify(b.body));
    const v = b.body.port!;
    assert.equal(v['binding:host_id'], 'h1');
    assert.equal(v['binding:vif_type'], 'bridge');
    assert.deepEqual(v['binding:vif_details'], { port_filter: true, connectivity: 'l2', bridge_name: `brq${net.slice(0, 11)}` });
    assert.deepEqual(v['binding:profile'], { migrating_to: 'h2' });
    assert.equal(v.revision_number, p.revision_number + 1);
    const byHost = (await call('admin', 'GET', '/ports?binding:host_id=h1')).body.ports!;
    assert.deepEqual(byHost.map((x) => x.id), [p.id]);
    const direct = await call('admin', 'PUT', `/ports/${p.id}`, { port: { 'binding:vnic_type': 'direct' } });
    assert.equal(direct.body.port!['binding:vif_type'], 'binding_failed');
    await refused('admin', 'PUT', `/ports/${p.id}`, { port: { 'binding:vnic_type': 'warp' } }, 400, 'HTTPBadRequest');
    const un = await call('admin', 'PUT', `/ports/${p.id}`, { port: { 'binding:host_id': '', 'binding:vnic_type': 'normal' } });
    assert.equal(un.body.port!['binding:vif_type'], 'unbound');
    const made = await call('admin', 'POST', '/ports', { port: { network_id: net, 'binding:host_id': 'h3', project_id: 'p-one' } });
    assert.equal(made.body.port!['binding:vif_type'], 'bridge');
    assert.equal(made.body.port!.project_id, 'p-one');
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { 'binding:vif_type': 'ovs' } }, 400, 'HTTPBadRequest', 'Cannot update read-only attribute binding:vif_type');
    for (const x of [p.id, made.body.port!.id]) await call('admin', 'DELETE', `/ports/${x}`);
  });

  test('security groups and port security: explicit groups, none, the rules of port security and address pairs', async () => {
    const g = (await call('alice', 'POST', '/security-groups', { security_group: { name: 'web' } })).body.security_group!;
    const bobs = (await call('bob', 'POST', '/security-groups', { security_group: { name: 'b' } })).body.security_group!;
    const p = (await call('alice', 'POST', '/ports', { port: { network_id: net, security_groups: [g.id] } })).body.port!;
    assert.deepEqual(p.security_groups, [g.id]);
    await refused('alice', 'POST', '/ports', { port: { network_id: net, security_groups: [bobs.id] } }, 404, 'SecurityGroupNotFound', `Security group ${bobs.id} does not exist`);
    await refused('alice', 'POST', '/ports', { port: { network_id: net, security_groups: ['nope'] } }, 404, 'SecurityGroupNotFound');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, port_security_enabled: false, security_groups: [g.id] } }, 400, 'PortSecurityAndIPRequiredForSecurityGroups');
    await refused('alice', 'POST', '/ports', { port: { network_id: net, port_security_enabled: false, allowed_address_pairs: [{ ip_address: '10.0.0.99' }] } }, 409, 'AddressPairAndPortSecurityRequired');
    const open = (await call('alice', 'POST', '/ports', { port: { network_id: net, port_security_enabled: false } })).body.port!;
    assert.deepEqual(open.security_groups, []);
    assert.equal(open.port_security_enabled, false);
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { port_security_enabled: false } }, 409, 'PortSecurityPortHasSecurityGroup');
    const cleared = await call('alice', 'PUT', `/ports/${p.id}`, { port: { port_security_enabled: false, security_groups: [] } });
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
    assert.deepEqual(cleared.body.port!.security_groups, []);
    const again = await call('alice', 'PUT', `/ports/${p.id}`, { port: { port_security_enabled: true, security_groups: [g.id] } });
    assert.deepEqual(again.body.port!.security_groups, [g.id]);
    // A network without port security gives its ports none.
    const insecure = (await call('alice', 'POST', '/networks', { network: { port_security_enabled: false } })).body.network!.id;
    const q = (await call('alice', 'POST', '/ports', { port: { network_id: insecure } })).body.port!;
    assert.equal(q.port_security_enabled, false);
    assert.deepEqual(q.security_groups, []);

    const pairs = await call('alice', 'PUT', `/ports/${p.id}`, { port: { allowed_address_pairs: [{ ip_address: '10.0.0.0/28' }, { ip_address: '192.168.1.1', mac_address: 'fa:16:3e:01:02:03' }] } });
    assert.deepEqual(pairs.body.port!.allowed_address_pairs, [
      { ip_address: '10.0.0.0/28', mac_address: p.mac_address }, { ip_address: '192.168.1.1', mac_address: 'fa:16:3e:01:02:03' },
    ]);
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { allowed_address_pairs: [{ ip_address: '1.1.1.1' }, { ip_address: '1.1.1.1' }] } }, 400, 'DuplicateAddressPairInRequest');
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { allowed_address_pairs: [{ ip_address: 'x' }] } }, 400, 'HTTPBadRequest');
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { allowed_address_pairs: Array.from({ length: 11 }, (_, i) => ({ ip_address: `1.1.1.${i}` })) } }, 400, 'AllowedAddressPairExhausted');
    await refused('alice', 'DELETE', `/security-groups/${g.id}`, undefined, 409, 'SecurityGroupInUse', `Security Group ${g.id} in use.`);
    for (const x of [p.id, open.id]) await call('alice', 'DELETE', `/ports/${x}`);
    await call('alice', 'DELETE', `/ports/${q.id}`);
    assert.equal((await call('alice', 'DELETE', `/security-groups/${g.id}`)).status, 204);
  });

  test('update: fixed IPs kept, swapped and refused atomically; name, admin state, dns_name, extra DHCP options', async () => {
    const p = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '10.0.0.20' }], extra_dhcp_opts: [{ opt_name: 'bootfile-name', opt_value: 'pxe.0' }] } })).body.port!;
    assert.deepEqual(p.extra_dhcp_opts, [{ opt_name: 'bootfile-name', opt_value: 'pxe.0', ip_version: 4 }]);
    const other = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '10.0.0.21' }] } })).body.port!;
    let r = await call('alice', 'PUT', `/ports/${p.id}`, { port: { fixed_ips: [{ ip_address: '10.0.0.20' }, { subnet_id: sub }] } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.port!.fixed_ips.map((f) => f.ip_address), ['10.0.0.10', '10.0.0.20']);
    r = await call('alice', 'PUT', `/ports/${p.id}`, { port: { fixed_ips: [{ ip_address: '10.0.0.30' }] } });
    assert.deepEqual(r.body.port!.fixed_ips.map((f) => f.ip_address), ['10.0.0.30']);
    const freed = (await call('alice', 'POST', '/ports', { port: { network_id: net, fixed_ips: [{ ip_address: '10.0.0.20' }] } }));
    assert.equal(freed.status, 201, 'the old address is free again');
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { name: 'x', fixed_ips: [{ ip_address: '10.0.0.21' }] } }, 409, 'IpAddressAlreadyAllocated');
    assert.equal((await call('alice', 'GET', `/ports/${p.id}`)).body.port!.name, '', 'the whole update was refused');
    r = await call('alice', 'PUT', `/ports/${p.id}`, { port: { name: 'web-0', admin_state_up: false, dns_name: 'Web-0', extra_dhcp_opts: [{ opt_name: 'bootfile-name', opt_value: null }, { opt_name: 'tftp-server', opt_value: '10.0.0.1' }] } });
    assert.equal(r.body.port!.name, 'web-0');
    assert.equal(r.body.port!.admin_state_up, false);
    assert.equal(r.body.port!.dns_name, 'web-0');
    assert.deepEqual(r.body.port!.dns_assignment, [{ hostname: 'web-0', ip_address: '10.0.0.30', fqdn: 'web-0.openstacklocal.' }]);
    assert.deepEqual(r.body.port!.extra_dhcp_opts, [{ opt_name: 'tftp-server', opt_value: '10.0.0.1', ip_version: 4 }]);
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { dns_name: 'bad_name!' } }, 400, 'HTTPBadRequest');
    await refused('alice', 'PUT', `/ports/${p.id}`, { port: { network_id: net } }, 400, 'HTTPBadRequest', 'Cannot update read-only attribute network_id');
    for (const x of [p.id, other.id, freed.body.port!.id]) await call('alice', 'DELETE', `/ports/${x}`);
  });

  test('policy: ports of other projects are 404; readers cannot write; the network owner sees ports others put on it', async () => {
    const p = (await call('alice', 'POST', '/ports', { port: { network_id: net } })).body.port!;
    for (const [m, body] of [['GET', undefined], ['PUT', { port: { name: 'x' } }], ['DELETE', undefined]] as const) {
      const r = await call('bob', m, `/ports/${p.id}`, body);
      assert.equal(r.status, 404, m);
      assert.equal(r.body.NeutronError?.type, 'PortNotFound');
    }
    assert.equal((await call('bob', 'GET', '/ports')).body.ports!.length, 0);
    await refused('bob', 'POST', '/ports', { port: { network_id: net } }, 404, 'NetworkNotFound');
    await refused('rita', 'POST', '/ports', { port: { network_id: net } }, 403, 'PolicyNotAuthorized', '(rule:create_port) is disallowed by policy');
    await refused('rita', 'DELETE', `/ports/${p.id}`, undefined, 403, 'PolicyNotAuthorized');
    assert.equal((await call('rita', 'GET', `/ports/${p.id}`)).status, 200);

    const shared = (await call('alice', 'POST', '/networks', { network: { name: 'alice-shared' } })).body.network!.id;
    await call('admin', 'PUT', `/networks/${shared}`, { network: { shared: true } });
    await call('alice', 'POST', '/subnets', { subnet: { network_id: shared, ip_version: 4, cidr: '10.44.0.0/24' } });
    const bp = await call('bob', 'POST', '/ports', { port: { network_id: shared } });
    assert.equal(bp.status, 201, JSON.stringify(bp.body));
    assert.equal(bp.body.port!.project_id, 'p-two');
    assert.equal((await call('alice', 'GET', `/ports/${bp.body.port!.id}`)).status, 200, 'the network owner sees it');
    assert.ok((await call('alice', 'GET', `/ports?network_id=${shared}`)).body.ports!.some((x) => x.id === bp.body.port!.id));
    await refused('bob', 'POST', '/ports', { port: { network_id: shared, device_owner: 'network:dhcp' } }, 403, 'PolicyNotAuthorized', '(rule:create_port:device_owner) is disallowed by policy');
    await refused('bob', 'POST', '/ports', { port: { network_id: shared, fixed_ips: [{ ip_address: '10.44.0.9' }] } }, 403, 'PolicyNotAuthorized');
    assert.equal((await call('bob', 'DELETE', `/ports/${bp.body.port!.id}`)).status, 204);
    await call('alice', 'DELETE', `/ports/${p.id}`);
  });

  test('bulk create is one transaction; over quota is 409 OverQuota', async () => {
    const before = await counts(deps);
    const bad = await call('alice', 'POST', '/ports', { ports: [{ network_id: net }, { network_id: net, fixed_ips: [{ ip_address: '172.16.0.1' }] }] });
    assert.equal(bad.status, 400);
    assert.deepEqual(await counts(deps), before, 'the first port was not kept');
    const ok = await call('alice', 'POST', '/ports', { ports: [{ network_id: net, name: 'b1', tags: ['t'] }, { network_id: net, name: 'b2' }] });
    assert.equal(ok.status, 201);
    assert.deepEqual(ok.body.ports!.map((p) => [p.name, p.tags]), [['b1', ['t']], ['b2', []]]);
    await call('admin', 'PUT', '/quotas/p-one', { quota: { port: 2 } });
    await refused('alice', 'POST', '/ports', { port: { network_id: net } }, 409, 'OverQuota', "Quota exceeded for resources: ['port'].");
    await call('admin', 'DELETE', '/quotas/p-one');
    for (const p of ok.body.ports!) await call('alice', 'DELETE', `/ports/${p.id}`);
  });
});
