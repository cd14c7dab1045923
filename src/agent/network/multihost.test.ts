/**
 * 4. Two simulated hosts (namespaces, each with its own NetworkAgent) joined by an
 * underlay bridge in a third namespace; fake VMs on the same VXLAN network on either host
 * get DHCP from the one host that serves it (through the tunnel) and ping each other.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { deviceNames, type HostNetworkState, type NetworkState, type PortState } from '../../bus/network.ts';
import { NetworkAgent } from './agent.ts';
import { run } from './exec.ts';
import { listFdb } from './ip.ts';
import { canRunNetworkTests, dhcpClient, fakeVm, httpGet, ping, pingUntil, TestNamespaces } from './test-helpers.ts';

const skip = canRunNetworkTests();
const log = pino({ level: process.env.GUREUM_LOG_LEVEL ?? 'silent' });

const net = randomUUID(), sub = randomUUID(), pa = randomUUID(), pb = randomUUID(), dport = randomUUID(), sg = randomUUID();
const MAC_A = 'fa:16:3e:20:00:0a', MAC_B = 'fa:16:3e:20:00:0b', MAC_D = 'fa:16:3e:20:00:02';
const T1 = '10.250.0.1', T2 = '10.250.0.2';

let ns: TestNamespaces;
let H1: string, H2: string, VMA: string, VMB: string;
let a1: NetworkAgent, a2: NetworkAgent;
const servers: Server[] = [];

function network(peers: string[], remoteMacs: NetworkState['remoteMacs']): NetworkState {
  return {
    id: net, type: 'vxlan', vni: 2201, mtu: 1450, peers, remoteMacs,
    subnets: [{ id: sub, cidr: '10.20.0.0/24', ipVersion: 4, gatewayIp: '10.20.0.1', enableDhcp: true, dnsNameservers: ['10.20.0.53'], hostRoutes: [{ destination: '10.99.0.0/16', nexthop: '10.20.0.254' }], ipv6AddressMode: null, ipv6RaMode: null }],
  };
}

const UUID_A = randomUUID(), UUID_B = randomUUID();
function port(id: string, mac: string, ip: string): PortState {
  return { id, networkId: net, mac, fixedIps: [{ subnetId: sub, ip, prefixLen: 24 }], deviceId: id === pa ? UUID_A : UUID_B, portSecurity: true, securityGroupIds: [sg], allowedAddressPairs: [], mtu: 1450 };
}

const groups: HostNetworkState['securityGroups'] = [{
  id: sg, stateful: true, memberIps: ['10.20.0.10', '10.20.0.11'], rules: [
    { id: 'e', direction: 'egress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: null },
    { id: 'i', direction: 'ingress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: sg },
  ],
}];

function host1(gen: number, peers = [T2]): HostNetworkState {
  return {
    host: 'h1', generation: gen, networks: [network(peers, [{ mac: MAC_B, ip: T2, host: 'h2' }])], ports: [port(pa, MAC_A, '10.20.0.10')], routers: [], securityGroups: groups,
    dhcp: [{
      networkId: net, port: { id: dport, mac: MAC_D, fixedIps: [{ subnetId: sub, ip: '10.20.0.2', prefixLen: 24 }] }, domain: 'example.org', leaseSeconds: 3600, mtu: 1450,
      hosts: [{ portId: pa, mac: MAC_A, ip: '10.20.0.10', hostname: 'a', deviceId: UUID_A }, { portId: pb, mac: MAC_B, ip: '10.20.0.11', hostname: 'b', deviceId: UUID_B }],
    }],
  };
}

function host2(gen: number): HostNetworkState {
  return {
    host: 'h2', generation: gen, networks: [network([T1], [{ mac: MAC_A, ip: T1, host: 'h1' }, { mac: MAC_D, ip: T1, host: 'h1' }])],
    ports: [port(pb, MAC_B, '10.20.0.11')], dhcp: [], routers: [], securityGroups: groups,
  };
}

before(async () => {
  if (skip) return;
  ns = await TestNamespaces.create('mh');
  const U = await ns.add(ns.name('underlay'));
  H1 = await ns.add(ns.name('h1'));
  H2 = await ns.add(ns.name('h2'));
  await run('ip', ['-n', U, 'link', 'add', 'ul', 'type', 'bridge']);
  await run('ip', ['-n', U, 'link', 'set', 'ul', 'up']);
  for (const [h, ip, end] of [[H1, T1, 'u1'], [H2, T2, 'u2']] as const) {
    await run('ip', ['-n', U, 'link', 'add', end, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h]);
    await run('ip', ['-n', U, 'link', 'set', end, 'master', 'ul', 'up']);
    await run('ip', ['-n', h, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', h, 'link', 'set', 'eth0', 'up']);
  }
  VMA = ns.name('vma'); VMB = ns.name('vmb');
  await fakeVm(ns, H1, VMA, deviceNames.tap(pa), MAC_A);
  await fakeVm(ns, H2, VMB, deviceNames.tap(pb), MAC_B);
  // each host's agent knows only its own instance's metadata server
  const agent = async (h: string, tunnelIp: string, name: string, uuid: string) => {
    const dir = join(ns.dir, name);
    mkdirSync(dir);
    const sock = join(ns.dir, `${name}-md.sock`);
    const server = createServer((_req, res) => { res.end(`metadata of ${uuid} from ${name}`); });
    await new Promise<void>((r) => server.listen(sock, r));
    servers.push(server);
    return new NetworkAgent({ log, stateDir: dir, hostNamespace: h, tunnelIp, physicalBridges: {}, namespacePrefix: ns.prefix(name), metadata: { resolveSocket: (u) => (u === uuid ? sock : undefined) } });
  };
  a1 = await agent(H1, T1, 'h1', UUID_A);
  a2 = await agent(H2, T2, 'h2', UUID_B);
});

after(async () => {
  if (skip) return;
  try {
    await a1.apply({ host: 'h1', generation: 99, networks: [], ports: [], dhcp: [], routers: [], securityGroups: [] });
    await a2.apply({ host: 'h2', generation: 99, networks: [], ports: [], dhcp: [], routers: [], securityGroups: [] });
    await a1.close();
    await a2.close();
    for (const s of servers) s.close();
  } finally {
    await ns.cleanup();
  }
});

test('4. fake VMs on two hosts share a VXLAN network: DHCP across the tunnel, ping both ways', { skip }, async () => {
  const [r1, r2] = await Promise.all([a1.apply(host1(1)), a2.apply(host2(1))]);
  assert.deepEqual([r1.errors, r2.errors], [[], []]);
  const fdb = (await listFdb(H2)).filter((e) => e.dev === 'vxlan-2201' && e.self);
  assert.ok(fdb.some((e) => e.mac === '00:00:00:00:00:00' && e.dst === T1), 'flood entry to the peer');
  assert.ok(fdb.some((e) => e.mac === MAC_A && e.dst === T1), 'static entry of the remote VM');

  const la = await dhcpClient(ns, VMA);
  const lb = await dhcpClient(ns, VMB);
  assert.equal(la.ip, '10.20.0.10');
  assert.equal(lb.ip, '10.20.0.11', 'lease served from the other host through VXLAN');
  assert.equal(lb.dns, '10.20.0.53');
  assert.equal(lb.domain, 'example.org');
  assert.equal(lb.staticroutes, '169.254.169.254/32 10.20.0.2 10.99.0.0/16 10.20.0.254 0.0.0.0/0 10.20.0.1');
  assert.ok(await ping(VMA, '10.20.0.11'), 'A → B across hosts');
  assert.ok(await ping(VMB, '10.20.0.10'), 'B → A across hosts');
  // metadata: each VM is answered on its own host (the DHCP server, and its proxy, are on host 1)
  assert.equal((await httpGet(VMA, 'http://169.254.169.254/latest/meta-data/')).body, `metadata of ${UUID_A} from h1`);
  assert.equal((await httpGet(VMB, 'http://169.254.169.254/latest/meta-data/')).body, `metadata of ${UUID_B} from h2`);
  // a large packet fits the network MTU (1450 inside 1500 of underlay)
  const big = await run('ip', ['netns', 'exec', VMA, 'ping', '-c1', '-W1', '-M', 'do', '-s', '1422', '10.20.0.11'], { allowFailure: true });
  assert.equal(big.code, 0, big.stdout + big.stderr);

  // the peer goes away from host 1's view: its flood entry is removed (stale), and B unreachable
  const r3 = await a1.apply(host1(2, []));
  assert.deepEqual(r3.errors, []);
  assert.ok(!(await listFdb(H1)).some((e) => e.dev === 'vxlan-2201' && e.mac === '00:00:00:00:00:00'), 'stale flood entry removed');
  assert.ok(r3.changes.some((c) => c.includes('fdb del 00:00:00:00:00:00')));
  await run('ip', ['-n', VMA, 'neigh', 'flush', 'all']);
  // B's MAC still has its static entry: unicast works, broadcast (ARP) does not
  assert.equal(await ping(VMA, '10.20.0.11', { waitSec: 0.5 }), false, 'ARP needs the flood entry');
  await a1.apply(host1(3));
  assert.ok(await pingUntil(VMA, '10.20.0.11', 2000), 'back');
});
