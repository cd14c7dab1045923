/**
 * The stock openstack CLI (python3-openstackclient, through openstacksdk) and openstacksdk
 * itself against `gureum up`'s networking API: networks (tenant VXLAN and admin flat
 * external ones), subnets with pools, nameservers, host routes and no gateway, ports with
 * fixed IPs, security groups and rules, lists and filters, quotas, extensions, tags, the
 * errors the CLI prints, and projects kept apart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cleanEnv, openstack, openstackFails, otherProject, startCloud, type Cloud } from './helpers/cloud.ts';

const run = promisify(execFile);
type Row = Record<string, unknown>;

describe('networking with the openstack CLI', () => {
  let cloud: Cloud;
  let env: NodeJS.ProcessEnv;
  let other: { env: NodeJS.ProcessEnv; projectId: string };
  const os = (...a: string[]) => openstack(env, ...a);
  const json = async <T = Row>(...a: string[]) => (await os(...a, '-f', 'json')) as T;
  const ids: Record<string, string> = {};

  before(async () => {
    // A second physical network for a flat network of the test's own (gureum up may already use `public`).
    const dir = mkdtempSync(join(tmpdir(), 'gureum-network-cli-'));
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'data', 'gureum.yaml'), 'network:\n  physical_networks: [public, lab]\n  vni_ranges: "1000:1999"\n');
    cloud = await startCloud({ dir });
    env = cloud.env;
    other = await otherProject(env, 'net-other');
  });
  after(async () => { await cloud?.stop(); });

  test('the catalog publishes neutron; the extensions are listed', async () => {
    const catalog = await json<Row[]>('catalog', 'list');
    assert.ok(catalog.some((c) => c.Type === 'network' && c.Name === 'neutron'), JSON.stringify(catalog));
    const ext = (await json<Row[]>('extension', 'list', '--network')).map((e) => e.Alias);
    for (const a of ['provider', 'external-net', 'binding', 'security-group', 'port-security', 'allowed-address-pairs', 'quotas', 'standard-attr-tag', 'revision-if-match']) {
      assert.ok(ext.includes(a), a);
    }
    const one = await json('extension', 'show', 'quotas');
    assert.equal(one.alias, 'quotas');
    // The host's agent shows as Neutron's L2, DHCP, L3 and metadata agents, alive.
    const agents = await json<Row[]>('network', 'agent', 'list');
    assert.deepEqual(agents.map((a) => a['Agent Type']).sort(), ['DHCP agent', 'L3 agent', 'Linux bridge agent', 'Metadata agent']);
    assert.ok(agents.every((a) => a.Alive === true || a.Alive === ':-)'), JSON.stringify(agents));
  });

  test('network create, show, list, set --tag; admin flat external networks', async () => {
    const net = await json('network', 'create', '--description', 'made by the CLI', 'net1');
    ids.net1 = String(net.id);
    assert.equal(net.name, 'net1');
    assert.equal(net.mtu, 1450);
    assert.equal(net['provider:network_type'], 'vxlan', 'the admin sees provider attributes');
    assert.ok(Number(net['provider:segmentation_id']) >= 1000 && Number(net['provider:segmentation_id']) <= 1999, 'a VNI from the configured range');
    assert.equal(net.status, 'ACTIVE');

    const lab = await json('network', 'create', '--provider-network-type', 'flat', '--provider-physical-network', 'lab', '--external', 'ext-lab');
    ids.lab = String(lab.id);
    assert.equal(lab['provider:network_type'], 'flat');
    assert.equal(lab['provider:physical_network'], 'lab');
    assert.equal(lab['router:external'], true);
    assert.equal(lab.mtu, 1500);
    // `public` is the all-in-one's own external network when it runs as root; otherwise the test makes it.
    const existing = (await json<Row[]>('network', 'list', '--external')).find((n) => n.Name === 'public');
    if (existing) {
      const pub = await json('network', 'show', 'public');
      assert.equal(pub['provider:physical_network'], 'public');
      assert.match(await openstackFails(env, 'network', 'create', '--provider-network-type', 'flat', '--provider-physical-network', 'public', '--external', 'public2'),
        /Unable to create the flat network\. Physical network public is in use\./);
    } else {
      const pub = await json('network', 'create', '--provider-network-type', 'flat', '--provider-physical-network', 'public', '--external', 'public');
      assert.equal(pub['router:external'], true);
    }

    await os('network', 'set', '--tag', 'blue', '--tag', 'red', 'net1');
    const shown = await json('network', 'show', 'net1');
    assert.deepEqual(shown.tags, ['blue', 'red']);
    assert.deepEqual((await json<Row[]>('network', 'list', '--tags', 'blue')).map((n) => n.Name), ['net1']);
    assert.ok((await json<Row[]>('network', 'list')).some((n) => n.Name === 'net1'));
    assert.deepEqual((await json<Row[]>('network', 'list', '--provider-network-type', 'flat')).map((n) => n.Name).sort().filter((n) => n !== 'public'), ['ext-lab']);
    await os('network', 'unset', '--tag', 'red', 'net1');
    assert.deepEqual((await json('network', 'show', 'net1')).tags, ['blue']);
  });

  test('subnet create with pools, nameservers, host routes; --gateway none; errors the CLI prints', async () => {
    const s = await json('subnet', 'create', '--network', 'net1', '--subnet-range', '10.10.0.0/24', '--allocation-pool', 'start=10.10.0.50,end=10.10.0.99',
      '--dns-nameserver', '10.10.0.1', '--dns-nameserver', '9.9.9.9', '--host-route', 'destination=192.168.0.0/16,gateway=10.10.0.254', 'sub1');
    ids.sub1 = String(s.id);
    assert.equal(s.cidr, '10.10.0.0/24');
    assert.equal(s.gateway_ip, '10.10.0.1');
    assert.deepEqual(s.allocation_pools, [{ start: '10.10.0.50', end: '10.10.0.99' }]);
    assert.deepEqual(s.dns_nameservers, ['10.10.0.1', '9.9.9.9']);
    assert.deepEqual(s.host_routes, [{ destination: '192.168.0.0/16', nexthop: '10.10.0.254' }]);
    const none = await json('subnet', 'create', '--network', 'net1', '--subnet-range', '10.11.0.0/24', '--gateway', 'none', '--no-dhcp', 'sub2');
    assert.equal(none.gateway_ip, null);
    assert.deepEqual(none.allocation_pools, [{ start: '10.11.0.1', end: '10.11.0.254' }]);
    const v6 = await json('subnet', 'create', '--network', 'net1', '--ip-version', '6', '--subnet-range', '2001:db8:10::/64', '--ipv6-ra-mode', 'slaac', '--ipv6-address-mode', 'slaac', 'sub6');
    assert.equal(v6.gateway_ip, '2001:db8:10::1');

    assert.match(await openstackFails(env, 'subnet', 'create', '--network', 'net1', '--subnet-range', '10.10.0.128/25', 'bad'),
      new RegExp(`Invalid input for operation: Requested subnet with cidr: 10\\.10\\.0\\.128/25 for network: ${ids.net1} overlaps with another subnet\\.`));
    assert.match(await openstackFails(env, 'subnet', 'create', '--network', 'net1', '--subnet-range', '10.12.0.300/24', 'bad'), /Invalid input for cidr\. Reason: '10\.12\.0\.300\/24' is not a valid IP subnet\./);
    assert.match(await openstackFails(env, 'subnet', 'create', '--network', 'net1', '--subnet-range', '10.12.0.0/24', '--gateway', '10.13.0.1', 'bad'), /Gateway is not valid on subnet/);
    assert.match(await openstackFails(env, 'subnet', 'create', '--network', 'net1', '--subnet-range', '10.12.0.0/24', '--allocation-pool', 'start=10.12.1.1,end=10.12.1.9', 'bad'),
      /The allocation pool 10\.12\.1\.1-10\.12\.1\.9 spans beyond the subnet cidr 10\.12\.0\.0\/24\./);
    assert.ok(!(await json<Row[]>('subnet', 'list')).some((x) => x.Name === 'bad'), 'nothing half-made');
    const set = await os('subnet', 'set', '--dns-nameserver', '1.1.1.1', '--name', 'sub1-renamed', 'sub1');
    assert.equal(set, '');
    const after = await json('subnet', 'show', 'sub1-renamed');
    assert.deepEqual(after.dns_nameservers, ['1.1.1.1', '10.10.0.1', '9.9.9.9'], 'the CLI puts the new one first; the order sent is kept');
  });

  test('port create with --fixed-ip; port list --network; address errors', async () => {
    const p = await json('port', 'create', '--network', 'net1', '--fixed-ip', 'subnet=sub1-renamed,ip-address=10.10.0.60', 'p1');
    ids.p1 = String(p.id);
    const v4 = (p.fixed_ips as { ip_address: string; subnet_id: string }[]).filter((f) => !f.ip_address.includes(':'));
    assert.deepEqual(v4, [{ subnet_id: ids.sub1, ip_address: '10.10.0.60' }]);
    assert.match(String(p.mac_address), /^fa:16:3e:/);
    assert.equal(p.status, 'DOWN');
    const auto = await json('port', 'create', '--network', 'net1', 'p2');
    const autoIps = (auto.fixed_ips as { ip_address: string }[]).map((f) => f.ip_address);
    assert.ok(autoIps.some((ip) => /^10\.10\.0\.(5\d|6\d)$/.test(ip)), `an address from the pool: ${autoIps.join(',')}`);
    assert.ok(autoIps.some((ip) => ip.startsWith('2001:db8:10:0:f816:3eff:fe')), 'and its SLAAC address');
    const listed = await json<Row[]>('port', 'list', '--network', 'net1');
    assert.ok(listed.some((x) => x.Name === 'p1') && listed.some((x) => x.Name === 'p2'));
    assert.deepEqual((await json<Row[]>('port', 'list', '--fixed-ip', 'ip-address=10.10.0.60')).map((x) => x.Name), ['p1']);
    assert.match(await openstackFails(env, 'port', 'create', '--network', 'net1', '--fixed-ip', 'ip-address=10.10.0.60', 'dup'), /IP address 10\.10\.0\.60 already allocated in subnet/);
    assert.match(await openstackFails(env, 'port', 'create', '--network', 'net1', '--fixed-ip', 'subnet=sub1-renamed,ip-address=10.99.0.1', 'bad'),
      /IP address 10\.99\.0\.1 is not a valid IP for the specified subnet\./);
    assert.match(await openstackFails(env, 'network', 'delete', 'net1'), /Unable to complete operation on network .* There are one or more ports still in use on the network/);
    await os('port', 'set', '--name', 'p2-renamed', '--no-fixed-ip', '--fixed-ip', 'subnet=sub1-renamed,ip-address=10.10.0.99', 'p2');
    const p2 = await json('port', 'show', 'p2-renamed');
    assert.deepEqual((p2.fixed_ips as { ip_address: string }[]).map((f) => f.ip_address), ['10.10.0.99']);
    await os('port', 'delete', 'p2-renamed');
  });

  test('security groups: create, rules (icmp, tcp 22, remote group), duplicates and bad rules refused, in use', async () => {
    const g = await json('security', 'group', 'create', '--description', 'web servers', 'web');
    ids.web = String(g.id);
    assert.equal(g.description, 'web servers');
    const icmp = await json('security', 'group', 'rule', 'create', '--protocol', 'icmp', ids.web);
    assert.equal(icmp.protocol, 'icmp');
    const ssh = await json('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22:22', ids.web);
    assert.equal(ssh.port_range_min, 22);
    assert.equal(ssh.port_range_max, 22);
    const peer = await json('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '8080', '--remote-group', ids.web, ids.web);
    assert.equal(peer.remote_group_id, ids.web);
    const listed = await json<Row[]>('security', 'group', 'rule', 'list', ids.web);
    assert.equal(listed.length, 5, 'two egress rules and three made here');
    assert.match(await openstackFails(env, 'security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22:22', ids.web), /Security group rule already exists\. Rule id is /);
    assert.match(await openstackFails(env, 'security', 'group', 'rule', 'create', '--protocol', 'foo', ids.web), /Security group rule protocol foo not supported/);
    assert.match(await openstackFails(env, 'security', 'group', 'rule', 'create', '--protocol', 'tcp', '--remote-ip', '::/0', '--ethertype', 'IPv4', ids.web),
      /Conflicting value ethertype IPv4 for CIDR ::\/0/);
    await os('port', 'set', '--security-group', ids.web, 'p1');
    assert.match(await openstackFails(env, 'security', 'group', 'delete', ids.web), /Security Group .* in use/);
    const groups = await json<Row[]>('security', 'group', 'list', '--project', 'admin');
    assert.ok(groups.some((x) => x.Name === 'default') && groups.some((x) => x.Name === 'web'));
  });

  test('quota show and set', async () => {
    const q = await json('quota', 'show', 'admin');
    assert.equal(q.networks, 100);
    assert.equal(q.ports, 500);
    assert.equal(q['secgroup-rules'] ?? q.security_group_rules, 100);
    await os('quota', 'set', '--networks', '3', '--ports', '40', 'net-other');
    const o = await json('quota', 'show', 'net-other');
    assert.equal(o.networks, 3);
    assert.equal(o.ports, 40);
    const mine = (await openstack(other.env, 'quota', 'show', '-f', 'json')) as Row;
    assert.equal(mine.networks, 3, 'the project sees its own quotas');
    for (let i = 0; i < 3; i++) await openstack(other.env, 'network', 'create', `o${i}`);
    assert.match(await openstackFails(other.env, 'network', 'create', 'o3'), /Quota exceeded for resources: \['network'\]/);
  });

  test('projects are kept apart; members cannot set provider attributes', async () => {
    assert.match(await openstackFails(other.env, 'network', 'show', ids.net1!), /No Network found for/);
    assert.match(await openstackFails(other.env, 'port', 'show', ids.p1!), /No Port found for/);
    const theirs = ((await openstack(other.env, 'network', 'list', '-f', 'json')) as Row[]).map((n) => n.Name);
    assert.ok(!theirs.includes('net1'));
    assert.ok(theirs.includes('ext-lab'), 'external networks are visible to all');
    assert.match(await openstackFails(other.env, 'network', 'create', '--provider-network-type', 'vxlan', 'x'),
      /\(rule:create_network:provider:network_type\) is disallowed by policy/);
    assert.match(await openstackFails(other.env, 'network', 'create', '--share', 'x'), /\(rule:create_network:shared\) is disallowed by policy/);
    const own = (await openstack(other.env, 'network', 'show', 'o0', '-f', 'json')) as Row;
    assert.equal(own['provider:network_type'], null, 'no provider attributes in a member\'s view');
  });

  test('openstacksdk drives the API unmodified', async () => {
    const script = new URL('./sdk/network.py', import.meta.url).pathname;
    const e = { ...cleanEnv(), OS_CLIENT_CONFIG_FILE: join(cloud.dir, 'conf', 'clouds.yaml') };
    const { stdout } = await run('/usr/bin/python3', [script], { env: e });
    const seen = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(seen, {
      subnet_pools: [{ start: '10.70.0.10', end: '10.70.0.20' }], network_subnets: true,
      port_ips: ['10.70.0.10', '10.70.0.11', '10.70.0.12', '10.70.0.13', '10.70.0.14'],
      paged: ['sdk-port-0', 'sdk-port-1', 'sdk-port-2', 'sdk-port-3', 'sdk-port-4'], rule: ['tcp', 80, 80], port_groups: true,
      tagged: ['sdk-net'], found: true, missing: true, overlap: 400, quota_networks: 100, extensions: true, cleaned: true,
    });
  });

  test('clean up: ports, subnets and networks go; the project is left as found', async () => {
    await os('port', 'delete', 'p1');
    await os('security', 'group', 'delete', ids.web!);
    await os('network', 'delete', 'net1');
    await os('network', 'delete', 'ext-lab');
    assert.match(await openstackFails(env, 'network', 'show', 'net1'), /No Network found for net1/);
    assert.ok(!(await json<Row[]>('subnet', 'list')).some((s) => String(s.Name).startsWith('sub')), 'subnets went with the network');
  });
});
