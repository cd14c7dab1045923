/**
 * The pure planners: names and address helpers, dnsmasq files, router routes and NAT,
 * namespace interface plans, bridge/VXLAN/FDB lines, tap decisions, number allocation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DhcpState, NetworkState, RouterState } from '../../bus/network.ts';
import { bridgeLines, attachLines } from './bridge.ts';
import { renderDnsmasq } from './dhcp.ts';
import type { Link } from './ip.ts';
import { renderFirewall } from './firewall.ts';
import { metaMac, neighborLines, planMeta } from './metadata-local.ts';
import { renderHaproxy } from './metadata-proxy.ts';
import { agentNames, checkMac, formatIp, ipToBigInt, linkLocalFromMac, netmask, parseCidr } from './names.ts';
import { buildModel } from './model.ts';
import { planNamespace, type NsSpec } from './netns.ts';
import { planRouter } from './router.ts';
import { allocate } from './state-file.ts';
import { staleTapAction, portLines } from './tap.ts';
import { fdbLines, vxlanLines, type VxlanSpec } from './vxlan.ts';

const link = (o: Partial<Link> & { name: string }): Link => ({ index: 1, mtu: 1500, up: true, noCarrier: false, ...o });

test('addresses: prefixes normalised, IPv6 compressed, netmasks, EUI-64 link-local, MAC checks', () => {
  assert.deepEqual(parseCidr('t', '10.1.2.3/8'), { network: '10.0.0.0', prefixLen: 8, version: 4 });
  assert.deepEqual(parseCidr('t', 'FD00:0:0:1::5/64'), { network: 'fd00:0:0:1::', prefixLen: 64, version: 6 });
  assert.equal(parseCidr('t', '192.168.1.1').prefixLen, 32);
  assert.throws(() => parseCidr('t', '10.0.0.0/33'));
  assert.throws(() => parseCidr('t', '10.0.0/8'));
  assert.throws(() => parseCidr('t', '10.0.0.0/8/1'));
  assert.equal(formatIp(ipToBigInt('2001:db8:0:0:1:0:0:1'), 6), '2001:db8::1:0:0:1');
  assert.equal(formatIp(ipToBigInt('::ffff:10.0.0.1'), 6), '::ffff:a00:1');
  assert.equal(netmask(24), '255.255.255.0');
  assert.equal(netmask(0), '0.0.0.0');
  assert.equal(linkLocalFromMac('fa:16:3e:00:00:01'), 'fe80::f816:3eff:fe00:1');
  assert.equal(checkMac('m', 'FA:16:3E:00:00:01'), 'fa:16:3e:00:00:01');
  assert.throws(() => checkMac('m', '01:00:5e:00:00:01'), /unicast/);
  assert.throws(() => checkMac('m', 'fa:16:3e:00:00:01 up'));
  const n = agentNames('h1-');
  assert.equal(n.dhcpNamespace('abc'), 'h1-qdhcp-abc');
  assert.ok(n.isRouterNamespace('h1-qrouter-x'));
  assert.ok(!n.isRouterNamespace('h2-qrouter-x'));
  assert.throws(() => agentNames('bad prefix'));
});

const net: NetworkState = {
  id: 'net1', type: 'vxlan', vni: 5, mtu: 1450, peers: [], remoteMacs: [],
  subnets: [
    { id: 's4', cidr: '10.0.0.0/24', ipVersion: 4, gatewayIp: '10.0.0.1', enableDhcp: true, dnsNameservers: [], hostRoutes: [{ destination: '10.9.0.0/16', nexthop: '10.0.0.254' }], ipv6AddressMode: null, ipv6RaMode: null },
    { id: 'sx', cidr: '10.1.0.0/24', ipVersion: 4, gatewayIp: null, enableDhcp: true, dnsNameservers: ['8.8.8.8', '1.1.1.1'], hostRoutes: [{ destination: '0.0.0.0/0', nexthop: '10.1.0.9' }], ipv6AddressMode: null, ipv6RaMode: null },
    { id: 'off', cidr: '10.2.0.0/24', ipVersion: 4, gatewayIp: '10.2.0.1', enableDhcp: false, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: null, ipv6RaMode: null },
    { id: 's6', cidr: 'fd00::/64', ipVersion: 6, gatewayIp: 'fd00::1', enableDhcp: true, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: 'dhcpv6-stateful', ipv6RaMode: 'dhcpv6-stateful' },
  ],
};
const dhcp: DhcpState = {
  networkId: 'net1', domain: 'openstacklocal', leaseSeconds: 86400, mtu: 1450,
  port: { id: 'dp', mac: 'fa:16:3e:00:00:02', fixedIps: [{ subnetId: 's4', ip: '10.0.0.2', prefixLen: 24 }, { subnetId: 'sx', ip: '10.1.0.2', prefixLen: 24 }, { subnetId: 's6', ip: 'fd00::2', prefixLen: 64 }] },
  hosts: [
    { portId: 'a', mac: 'fa:16:3e:00:00:0a', ip: '10.0.0.10', hostname: 'VM-One', deviceId: 'u1' },
    { portId: 'a', mac: 'fa:16:3e:00:00:0a', ip: 'fd00::a', hostname: 'VM-One', deviceId: 'u1' },
    { portId: 'b', mac: 'fa:16:3e:00:00:0b', ip: '10.1.0.11', hostname: 'bad name!', deviceId: 'u2' },
    { portId: 'c', mac: 'nope', ip: '10.0.0.12', hostname: 'c', deviceId: 'u3' },
  ],
};

test('dnsmasq: static ranges per enabled subnet, options per subnet tag, hosts', () => {
  const f = renderDnsmasq(dhcp, net, 'ns-dp', '/var/lib/x/dhcp/net1');
  assert.ok(f.argv.includes('--dhcp-range=set:subnet-s4,10.0.0.0,static,255.255.255.0,86400s'));
  assert.ok(f.argv.includes('--dhcp-range=set:subnet-sx,10.1.0.0,static,255.255.255.0,86400s'));
  assert.ok(f.argv.includes('--dhcp-range=set:subnet-s6,fd00::,static,64,86400s'));
  assert.ok(!f.argv.some((a) => a.includes('subnet-off')));
  for (const a of ['--no-resolv', '--no-hosts', '--bind-interfaces', '--interface=ns-dp', '--except-interface=lo', '--dhcp-authoritative', '--enable-ra',
    '--dhcp-hostsfile=/var/lib/x/dhcp/net1/host', '--dhcp-optsfile=/var/lib/x/dhcp/net1/opts', '--dhcp-leasefile=/var/lib/x/dhcp/net1/leases', '--pid-file=/var/lib/x/dhcp/net1/pid']) {
    assert.ok(f.argv.includes(a), a);
  }
  assert.equal(f.opts, [
    'tag:subnet-s4,option:dns-server,10.0.0.2',
    'tag:subnet-s4,option:classless-static-route,169.254.169.254/32,10.0.0.2,10.9.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1',
    'tag:subnet-s4,249,169.254.169.254/32,10.0.0.2,10.9.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1',
    'tag:subnet-s4,option:router,10.0.0.1',
    'tag:subnet-s4,option:mtu,1450',
    'tag:subnet-sx,option:dns-server,8.8.8.8,1.1.1.1',
    'tag:subnet-sx,option:classless-static-route,169.254.169.254/32,10.1.0.2,0.0.0.0/0,10.1.0.9',
    'tag:subnet-sx,249,169.254.169.254/32,10.1.0.2,0.0.0.0/0,10.1.0.9',
    'tag:subnet-sx,option:router',
    'tag:subnet-sx,option:mtu,1450',
    'tag:subnet-s6,option6:dns-server,[fd00::2]',
    'tag:subnet-s6,option6:domain-search,openstacklocal',
    '',
  ].join('\n'));
  assert.equal(f.hosts, [
    'fa:16:3e:00:00:0a,vm-one.openstacklocal,10.0.0.10',
    'fa:16:3e:00:00:0a,vm-one.openstacklocal,[fd00::a]',
    'fa:16:3e:00:00:0b,host-10-1-0-11.openstacklocal,10.1.0.11',
    '',
  ].join('\n'));
  assert.match(f.addnHosts, /^10\.0\.0\.10\tvm-one\.openstacklocal vm-one$/m);
  assert.equal(f.warnings.length, 1, f.warnings.join());
  assert.throws(() => renderDnsmasq({ ...dhcp, domain: 'bad domain' }, net, 'ns-dp', '/x'));
});

test('haproxy: listens on the metadata address, replaces X-Forwarded-For, names the network, unix socket', () => {
  const cfg = renderHaproxy('net1', '/var/lib/x/metadata.sock', '/var/lib/x/dhcp/net1/haproxy.pid', { user: 'nobody', group: 'nogroup', gid: 65534 });
  assert.match(cfg, /bind 169\.254\.169\.254:80/);
  assert.match(cfg, /http-request del-header X-Forwarded-For\n.*set-header X-Gureum-Network-Id net1\n\s+option forwardfor\n\s+server agent unix@\/var\/lib\/x\/metadata\.sock/);
  assert.match(cfg, /user nobody\n\s+group nogroup/);
});

const routerState: RouterState = {
  id: 'r1',
  interfaces: [
    { portId: 'qr1', networkId: 'n1', subnetId: 's1', mac: 'fa:16:3e:00:01:01', ip: '10.0.0.1', prefixLen: 24, cidr: '10.0.0.0/24', mtu: 1450 },
    { portId: 'qr2', networkId: 'n2', subnetId: 's2', mac: 'fa:16:3e:00:01:02', ip: '10.1.0.1', prefixLen: 24, cidr: '10.1.0.0/24', mtu: 1450 },
  ],
  gateway: {
    portId: 'gwport12345xyz', networkId: 'ext', mac: 'fa:16:3e:00:01:03', snat: true, mtu: 1500,
    fixedIps: [{ subnetId: 'e', ip: '172.24.4.10', prefixLen: 24, gatewayIp: '172.24.4.1', cidr: '172.24.4.0/24' }],
  },
  routes: [{ destination: '192.168.50.0/24', nexthop: '10.0.0.254' }, { destination: 'bogus', nexthop: '10.0.0.254' }],
  floatingIps: [{ id: 'f', floatingIp: '172.24.4.100', fixedIp: '10.0.0.5', portId: 'p' }],
};

test('router: default route via the external gateway, static routes, floating IP DNAT/SNAT, SNAT, hairpin', () => {
  const p = planRouter(routerState);
  assert.deepEqual(p.routes, [
    { dst: '192.168.50.0/24', via: '10.0.0.254', dev: undefined },
    { dst: '0.0.0.0/0', via: '172.24.4.1', dev: 'qg-gwport12345' },
  ]);
  assert.equal(p.warnings.length, 1);
  assert.match(p.nat, /chain prerouting \{\n.*\n {4}ip daddr 172\.24\.4\.100 dnat to 10\.0\.0\.5\n/);
  assert.match(p.nat, /chain output \{\n.*\n {4}ip daddr 172\.24\.4\.100 dnat to 10\.0\.0\.5\n/);
  const post = /chain postrouting \{\n.*\n([\s\S]*?)\n {2}\}/.exec(p.nat)![1]!.split('\n').map((l) => l.trim());
  assert.deepEqual(post, [
    'ip saddr { 10.0.0.0/24, 10.1.0.0/24 } ct status dnat oifname != "qg-gwport12345" masquerade',
    'oifname "qg-gwport12345" ip saddr 10.0.0.5 snat to 172.24.4.100',
    'oifname "qg-gwport12345" ip saddr { 10.0.0.0/24, 10.1.0.0/24 } snat to 172.24.4.10',
  ]);
  const noSnat = planRouter({ ...routerState, gateway: { ...routerState.gateway!, snat: false }, floatingIps: [] });
  assert.doesNotMatch(noSnat.nat, /snat to/);
  const noGw = planRouter({ ...routerState, gateway: undefined });
  assert.doesNotMatch(noGw.nat, /dnat|snat to/);
  assert.equal(noGw.routes.length, 1);
});

test('namespace plan: MAC/MTU/up, missing and extra addresses, foreign links removed, link-local kept', () => {
  const spec: NsSpec = { ns: 'x', sysctls: {}, interfaces: [{ name: 'ns-a', hostEnd: 'vns-a', bridge: 'b', mac: 'fa:16:3e:00:00:02', mtu: 1450, addresses: ['10.0.0.2/24', '169.254.169.254/32', 'fd00::2/64'] }] };
  const lines = planNamespace(spec, [
    { name: 'lo', mtu: 65536, up: false, addresses: [] },
    { name: 'ns-a', mtu: 1500, mac: 'fa:16:3e:00:00:02', up: false, addresses: [
      { ip: '10.0.0.2', prefixLen: 24, family: 4, scope: 'global' },
      { ip: '10.0.0.3', prefixLen: 24, family: 4, scope: 'global' },
      { ip: 'fd00:0::2', prefixLen: 64, family: 6, scope: 'global' },
      { ip: 'fe80::1', prefixLen: 64, family: 6, scope: 'link' },
    ] },
    { name: 'old', mtu: 1500, up: true, addresses: [] },
  ]);
  assert.deepEqual(lines, [
    'link set lo up',
    'link set ns-a mtu 1450 up',
    'addr del 10.0.0.3/24 dev ns-a',
    'addr add 169.254.169.254/32 dev ns-a',
    'link del old',
  ]);
});

test('bridge, VXLAN and port lines: create when missing, fix what differs, nothing when right', () => {
  assert.deepEqual(bridgeLines({ name: 'brq1', mtu: 1450 }, undefined), [
    'link add brq1 type bridge stp_state 0 forward_delay 0 mcast_snooping 0', 'link set brq1 addrgenmode none', 'link set brq1 mtu 1450 up',
  ]);
  assert.deepEqual(bridgeLines({ name: 'brq1', mtu: 1450 }, link({ name: 'brq1', kind: 'bridge', mtu: 1450 })), []);
  assert.deepEqual(bridgeLines({ name: 'brq1', mtu: 1450 }, link({ name: 'brq1', kind: 'bridge', mtu: 1500, up: false })), ['link set brq1 mtu 1450 up']);
  const v: VxlanSpec = { name: 'vxlan-5', vni: 5, local: '10.250.0.1', bridge: 'brq1', mtu: 1450, peers: ['10.250.0.2', '10.250.0.1'], remoteMacs: [{ mac: 'FA:16:3E:00:00:0B', ip: '10.250.0.2' }] };
  assert.deepEqual(vxlanLines(v, undefined), [
    'link add vxlan-5 type vxlan id 5 local 10.250.0.1 dstport 4789 nolearning', 'link set vxlan-5 addrgenmode none', 'link set vxlan-5 master brq1 mtu 1450 up',
  ]);
  const good = link({ name: 'vxlan-5', kind: 'vxlan', vxlan: { id: 5, local: '10.250.0.1', port: 4789, learning: false }, master: 'brq1', mtu: 1450 });
  assert.deepEqual(vxlanLines(v, good), []);
  assert.equal(vxlanLines(v, { ...good, vxlan: { id: 5, local: '10.250.0.9', port: 4789, learning: false } })[0], 'link del vxlan-5', 'other local address: re-created');
  assert.deepEqual(fdbLines([v], [
    { mac: '00:00:00:00:00:00', dev: 'vxlan-5', dst: '10.250.0.3', self: true, permanent: true },
    { mac: 'fa:16:3e:00:00:0c', dev: 'vxlan-5', dst: '10.250.0.3', self: true, permanent: true },
    { mac: 'aa:aa:aa:aa:aa:aa', dev: 'vxlan-5', self: false, permanent: true },
  ]), [
    'fdb del 00:00:00:00:00:00 dev vxlan-5 dst 10.250.0.3 self',
    'fdb del fa:16:3e:00:00:0c dev vxlan-5 dst 10.250.0.3 self',
    'fdb append 00:00:00:00:00:00 dev vxlan-5 dst 10.250.0.2 self permanent',
    'fdb replace fa:16:3e:00:00:0b dev vxlan-5 dst 10.250.0.2 self permanent',
  ]);
  assert.deepEqual(portLines({ name: 'tapx', bridge: 'brq1', mtu: 1450 }, undefined), {
    created: true, lines: ['tuntap add dev tapx mode tap vnet_hdr', 'link set tapx addrgenmode none', 'link set tapx master brq1 mtu 1450 up'],
  });
  assert.deepEqual(attachLines('tapx', 'brq1', 1450, link({ name: 'tapx', master: 'brq1', mtu: 1450 })), []);
});

test('stale taps: delete only unused tun devices the agent made or left on its bridges; never one in use', () => {
  const own = new Set(['brq1']);
  const tun = link({ name: 'tapx', kind: 'tun', noCarrier: true, master: 'brq1' });
  assert.equal(staleTapAction(tun, false, own), 'delete');
  assert.equal(staleTapAction({ ...tun, master: undefined }, true, own), 'delete');
  assert.equal(staleTapAction({ ...tun, master: undefined }, false, own), 'leave');
  assert.equal(staleTapAction({ ...tun, noCarrier: false }, true, own), 'detach', 'QEMU still holds it');
  assert.equal(staleTapAction(link({ name: 'tapx', kind: 'veth', master: 'brq1' }), false, own), 'detach');
  assert.equal(staleTapAction(link({ name: 'tapx', kind: 'veth', master: 'docker0' }), false, own), 'leave');
});

test('allocate keeps numbers, frees unlisted ones, fills the lowest gaps', () => {
  assert.deepEqual(allocate({ a: 1, b: 2, c: 3 }, ['a', 'c', 'd']), { a: 1, c: 3, d: 2 });
  assert.deepEqual(allocate({}, ['x', 'y']), { x: 1, y: 2 });
  assert.deepEqual(allocate({ a: 5, b: 5 }, ['a', 'b']), { a: 5, b: 1 });
  assert.throws(() => allocate({}, ['a', 'b', 'c'], 2));
});

test('nothing unvalidated reaches a file or ruleset: injected ids and addresses are refused', () => {
  const bad: NetworkState = { ...net, subnets: [{ ...net.subnets[0]!, gatewayIp: '10.0.0.1\ndhcp-script=/tmp/x' }, { ...net.subnets[1]!, id: 'x,tag:y' }] };
  const f = renderDnsmasq(dhcp, bad, 'ns-dp', '/x');
  assert.doesNotMatch(f.opts + f.argv.join(' '), /dhcp-script|tag:y/);
  assert.equal(f.warnings.filter((w) => /not served/.test(w)).length, 2);
  const fw = renderFirewall({
    bridges: [], ports: [{ device: 'tapx', index: 1, mac: 'fa:16:3e:00:00:01', ips: ['10.0.0.1'], allowedAddressPairs: [], securityGroupIds: ['g; flush ruleset'] }],
    securityGroups: [{ id: 'g; flush ruleset', stateful: true, memberIps: [], rules: [] }],
  });
  assert.doesNotMatch(fw.text, /flush ruleset/);
  assert.ok(fw.warnings.some((w) => /invalid id/.test(w)));
});

test('model: bridges per network type, names with the prefix, bad items reported and left out', () => {
  const rep = { errors: [] as { what: string; error: string }[], warnings: [] as string[] };
  const ctx = { tunnelIp: '10.250.0.1', physicalBridges: { public: 'br-ex' }, stateDir: '/s', names: agentNames('h1-') };
  const m = buildModel({
    host: 'h', generation: 1, securityGroups: [],
    networks: [
      { id: 'aaaaaaaaaaaa-1', type: 'vxlan', vni: 7, mtu: 1450, subnets: [], peers: ['10.250.0.2', 'bogus'], remoteMacs: [] },
      { id: 'ext', type: 'flat', physicalNetwork: 'public', mtu: 1500, subnets: [], peers: [], remoteMacs: [] },
      { id: 'dup', type: 'vxlan', vni: 7, mtu: 1450, subnets: [], peers: [], remoteMacs: [] },
      { id: 'nowhere', type: 'flat', physicalNetwork: 'other', mtu: 1500, subnets: [], peers: [], remoteMacs: [] },
    ],
    ports: [
      { id: 'p1', networkId: 'ext', mac: 'fa:16:3e:00:00:01', fixedIps: [], deviceId: '', portSecurity: false, securityGroupIds: [], allowedAddressPairs: [], mtu: 0 },
      { id: 'p2', networkId: 'dup', mac: 'fa:16:3e:00:00:02', fixedIps: [], deviceId: '', portSecurity: false, securityGroupIds: [], allowedAddressPairs: [], mtu: 1400 },
    ],
    dhcp: [],
    routers: [{ id: 'r', interfaces: [], routes: [], floatingIps: [{ id: 'f', floatingIp: '172.24.4.9', fixedIp: '10.0.0.5', portId: 'p' }],
      gateway: { portId: 'g', networkId: 'missing', mac: 'fa:16:3e:00:00:03', snat: true, mtu: 1500, fixedIps: [] } }],
  }, ctx, rep);
  assert.deepEqual([...m.nets.values()].map((n) => [n.bridge, n.managed]), [['brqaaaaaaaaaaa', true], ['br-ex', false]]);
  assert.deepEqual(m.vxlans[0]!.peers, ['10.250.0.2']);
  assert.deepEqual(m.ports.map((p) => [p.dev, p.bridge, p.mtu]), [['tapp1', 'br-ex', 1500]]);
  assert.equal(m.routers[0]!.spec.ns, 'h1-qrouter-r');
  assert.equal(m.routers[0]!.spec.interfaces.length, 0, 'no gateway without its network');
  assert.doesNotMatch(m.routers[0]!.plan.nat, /dnat/);
  const errs = rep.errors.map((e) => `${e.what}: ${e.error}`).join('\n');
  assert.match(errs, /network dup: VNI 7 used twice/);
  assert.match(errs, /network nowhere: .*no bridge for/);
  assert.match(errs, /port p2: network dup is not in the state/);
  assert.match(errs, /router r gateway: external network missing is not in the state/);
  assert.equal(rep.warnings.length, 1);
});

test('host-local metadata: one namespace per network with local VM ports, stable MAC, neighbours, redirect rule', () => {
  const n: NetworkState = { ...net, subnets: [net.subnets[0]!, net.subnets[3]!] };
  const p = (id: string, ip: string, deviceId: string) => ({
    dev: `tap${id}`, port: { id, networkId: 'net1', mac: 'FA:16:3E:00:00:0A', fixedIps: [{ subnetId: 's4', ip, prefixLen: 24 }, { subnetId: 's6', ip: 'fd00::a', prefixLen: 64 }], deviceId, portSecurity: true, securityGroupIds: [], allowedAddressPairs: [], mtu: 1450 },
  });
  const w: string[] = [];
  const m = planMeta(n, 'brq1', [p('a', '10.0.0.10', 'u1'), p('b', '10.0.0.11', '')], 'x-qmeta-net1', '/s/meta/net1', '10.250.0.1', w)!;
  assert.equal(m.mac, metaMac('net1', '10.250.0.1'));
  assert.match(m.mac, /^02(:[0-9a-f]{2}){5}$/);
  assert.notEqual(metaMac('net1', '10.250.0.2'), m.mac, 'another host, another MAC');
  assert.deepEqual(m.taps, ['tapa'], 'ports without an instance need no metadata');
  assert.deepEqual(m.neighbors, [{ ip: '10.0.0.10', mac: 'fa:16:3e:00:00:0a' }]);
  assert.deepEqual(m.routes, [{ dst: '10.0.0.0/24', dev: 'mt-net1' }]);
  assert.deepEqual(m.spec.interfaces[0]!.addresses, ['169.254.169.254/32']);
  assert.equal(m.spec.interfaces[0]!.hostEnd, 'vmt-net1');
  assert.equal(planMeta(n, 'brq1', [p('b', '10.0.0.11', '')], 'x', '/s', '10.250.0.1', w), undefined);
  assert.deepEqual(neighborLines('mt-x', [{ ip: '10.0.0.10', mac: 'fa:16:3e:00:00:0a' }, { ip: '10.0.0.12', mac: 'fa:16:3e:00:00:0c' }], [
    { ip: '10.0.0.10', mac: 'fa:16:3e:00:00:0a', dev: 'mt-x', permanent: true },
    { ip: '10.0.0.11', mac: 'fa:16:3e:00:00:0b', dev: 'mt-x', permanent: true },
    { ip: '10.0.0.99', mac: 'fa:16:3e:00:00:99', dev: 'mt-x', permanent: false },
  ]), ['neigh del 10.0.0.11 dev mt-x', 'neigh replace 10.0.0.12 lladdr fa:16:3e:00:00:0c dev mt-x nud permanent']);
  const fw = renderFirewall({ ports: [], bridges: [], securityGroups: [], metadataRedirects: [{ devices: ['tapa', 'tapb'], mac: m.mac }] });
  assert.match(fw.text, new RegExp(`iifname \\{ "tapa", "tapb" \\} ip daddr 169\\.254\\.169\\.254 tcp dport 80 ether daddr set ${m.mac}`));
});
