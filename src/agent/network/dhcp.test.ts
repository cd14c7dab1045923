/**
 * dnsmasq under the agent, against a real DHCP client: host changes are a SIGHUP (same
 * process, leases kept, the new address served), range changes a restart; IPv6 SLAAC via
 * router advertisements from the DHCP namespace, and ping6 through the firewall.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { deviceNames, type HostNetworkState, type SubnetState } from '../../bus/network.ts';
import { NetworkAgent, type ApplyReport } from './agent.ts';
import { run, runIn } from './exec.ts';
import { linkLocalFromMac } from './names.ts';
import { canRunNetworkTests, dhcpClient, fakeVm, httpGet, sleep, TestNamespaces } from './test-helpers.ts';

const skip = canRunNetworkTests();
const log = pino({ level: process.env.GUREUM_LOG_LEVEL ?? 'silent' });
const net = randomUUID(), s4 = randomUUID(), s4b = randomUUID(), s6 = randomUUID(), pa = randomUUID(), pb = randomUUID(), dp = randomUUID(), sg = randomUUID();
const MAC_A = 'fa:16:3e:40:00:0a', MAC_B = 'fa:16:3e:40:00:0b';
const v6 = (mac: string) => linkLocalFromMac(mac).replace(/^fe80::/, 'fd40::');

let ns: TestNamespaces;
let H: string, VMA: string, VMB: string;
let agent: NetworkAgent;
let dir: string;
const knobs = { ipA: '10.40.0.10', ipB: '10.40.0.11', secondSubnet: false, ipv6: false };

function state(generation: number): HostNetworkState {
  const subnet = (id: string, cidr: string, gw: string): SubnetState => ({ id, cidr, ipVersion: 4, gatewayIp: gw, enableDhcp: true, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: null, ipv6RaMode: null });
  const subnets: SubnetState[] = [subnet(s4, '10.40.0.0/24', '10.40.0.1')];
  if (knobs.secondSubnet) subnets.push(subnet(s4b, '10.41.0.0/24', '10.41.0.1'));
  if (knobs.ipv6) subnets.push({ id: s6, cidr: 'fd40::/64', ipVersion: 6, gatewayIp: 'fd40::1', enableDhcp: true, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: 'slaac', ipv6RaMode: 'slaac' });
  const fixed = (ip: string, mac: string) => [{ subnetId: s4, ip, prefixLen: 24 }, ...(knobs.ipv6 ? [{ subnetId: s6, ip: v6(mac), prefixLen: 64 }] : [])];
  const port = (id: string, mac: string, ip: string) => ({ id, networkId: net, mac, fixedIps: fixed(ip, mac), deviceId: '', portSecurity: true, securityGroupIds: [sg], allowedAddressPairs: [], mtu: 1450 });
  return {
    host: 'h', generation, routers: [],
    networks: [{ id: net, type: 'vxlan', vni: 4001, mtu: 1450, subnets, peers: [], remoteMacs: [] }],
    ports: [port(pa, MAC_A, knobs.ipA), port(pb, MAC_B, knobs.ipB)],
    securityGroups: [{
      id: sg, stateful: true, memberIps: [], rules: [
        { id: '1', direction: 'egress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: null },
        { id: '2', direction: 'egress', ethertype: 'IPv6', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: null },
        { id: '3', direction: 'ingress', ethertype: 'IPv6', protocol: 'ipv6-icmp', portRangeMin: null, portRangeMax: null, remoteIpPrefix: 'fd40::/64', remoteGroupId: null },
      ],
    }],
    dhcp: [{
      networkId: net, domain: 'openstacklocal', leaseSeconds: 600, mtu: 1450,
      port: { id: dp, mac: 'fa:16:3e:40:00:02', fixedIps: [
        { subnetId: s4, ip: '10.40.0.2', prefixLen: 24 },
        ...(knobs.secondSubnet ? [{ subnetId: s4b, ip: '10.41.0.2', prefixLen: 24 }] : []),
        ...(knobs.ipv6 ? [{ subnetId: s6, ip: 'fd40::2', prefixLen: 64 }] : []),
      ] },
      hosts: [
        { portId: pa, mac: MAC_A, ip: knobs.ipA, hostname: 'a', deviceId: '' },
        { portId: pb, mac: MAC_B, ip: knobs.ipB, hostname: 'b', deviceId: '' },
      ],
    }],
  };
}

let gen = 0;
async function apply(): Promise<ApplyReport> {
  const rep = await agent.apply(state(++gen));
  assert.deepEqual(rep.errors, []);
  return rep;
}
const pid = () => Number(readFileSync(join(dir, 'dhcp', net, 'pid'), 'utf8'));
const leases = () => readFileSync(join(dir, 'dhcp', net, 'leases'), 'utf8');

before(async () => {
  if (skip) return;
  ns = await TestNamespaces.create('dh');
  H = await ns.add(ns.name('host'));
  VMA = ns.name('vma'); VMB = ns.name('vmb');
  await fakeVm(ns, H, VMA, deviceNames.tap(pa), MAC_A);
  await fakeVm(ns, H, VMB, deviceNames.tap(pb), MAC_B);
  dir = join(ns.dir, 'agent');
  mkdirSync(dir);
  agent = new NetworkAgent({ log, stateDir: dir, hostNamespace: H, tunnelIp: '10.250.0.1', physicalBridges: {}, namespacePrefix: ns.prefix('d'), metadata: { resolveSocket: () => undefined } });
});

after(async () => {
  if (skip) return;
  try {
    await agent.apply({ host: 'h', generation: 1000, networks: [], ports: [], dhcp: [], routers: [], securityGroups: [] });
    await agent.close();
  } finally {
    await ns.cleanup();
  }
});

test('host changes reload dnsmasq (SIGHUP: same process, leases kept); range changes restart it', { skip }, async () => {
  await apply();
  assert.equal((await dhcpClient(ns, VMA)).ip, '10.40.0.10');
  assert.equal((await dhcpClient(ns, VMB)).ip, '10.40.0.11');
  const before = pid();
  assert.match(leases(), /fa:16:3e:40:00:0b 10\.40\.0\.11/);
  assert.match(readFileSync(`/proc/${before}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'dnsmasq dropped to nobody');

  knobs.ipA = '10.40.0.20';
  const rep = await apply();
  assert.ok(rep.changes.includes(`dnsmasq reloaded ${net}`), JSON.stringify(rep.changes));
  assert.equal(pid(), before, 'not restarted');
  await sleep(50);
  assert.equal((await dhcpClient(ns, VMA)).ip, '10.40.0.20', 'the re-read hosts file is served');
  assert.match(leases(), /fa:16:3e:40:00:0b 10\.40\.0\.11/, 'the other lease survived the reload');

  knobs.secondSubnet = true;
  const rep2 = await apply();
  assert.ok(rep2.changes.includes(`dnsmasq restarted ${net}`), JSON.stringify(rep2.changes));
  assert.notEqual(pid(), before);
  assert.match(leases(), /fa:16:3e:40:00:0b 10\.40\.0\.11/, 'leases file kept across the restart');
  assert.equal((await dhcpClient(ns, VMB)).ip, '10.40.0.11');
});

test('an address that moves to another MAC is released first (a deleted port\'s address given to a new port)', { skip }, async () => {
  // Both leases are live; now each address goes to the other MAC.
  [knobs.ipA, knobs.ipB] = [knobs.ipB, knobs.ipA];
  await apply();
  await sleep(50);
  assert.equal((await dhcpClient(ns, VMA)).ip, knobs.ipA, 'the address leased to the other MAC is served to its new owner');
  assert.equal((await dhcpClient(ns, VMB)).ip, knobs.ipB);
  [knobs.ipA, knobs.ipB] = [knobs.ipB, knobs.ipA];
  await apply();
  await sleep(50);
  assert.equal((await dhcpClient(ns, VMA)).ip, knobs.ipA);
  assert.equal((await dhcpClient(ns, VMB)).ip, knobs.ipB);
});

test('IPv6 SLAAC: router advertisements from the DHCP namespace, EUI-64 addresses pass anti-spoofing, ping6', { skip }, async () => {
  knobs.ipv6 = true;
  await apply();
  const want = v6(MAC_A);
  const deadline = Date.now() + 15_000;
  let addrs = '';
  while (Date.now() < deadline) {
    // ask for an RA now instead of waiting for the periodic one
    await runIn(VMA, 'sysctl', ['-q', '-w', 'net.ipv6.conf.eth0.disable_ipv6=0']);
    addrs = (await run('ip', ['-n', VMA, '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).stdout;
    if (addrs.includes(want)) break;
    await sleep(200);
  }
  assert.ok(addrs.includes(want), `SLAAC address ${want} in:\n${addrs}`);
  // B's address (its SLAAC too, past duplicate address detection), then ping6 A → B through the firewall
  const wantB = v6(MAC_B);
  for (let i = 0; i < 75; i++) {
    const [a, b] = await Promise.all([VMA, VMB].map((vm) => run('ip', ['-n', vm, '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global', '-tentative'])));
    if (a!.stdout.includes(want) && b!.stdout.includes(wantB)) break;
    await sleep(200);
  }
  const r = await runIn(VMA, 'ping', ['-6', '-c', '1', '-W', '2', wantB], { allowFailure: true });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // a forged IPv6 source is dropped
  await run('ip', ['-n', VMA, '-6', 'addr', 'add', 'fd40::bad/64', 'dev', 'eth0', 'nodad']);
  const forged = await runIn(VMA, 'ping', ['-6', '-c', '1', '-W', '1', '-I', 'fd40::bad', wantB], { allowFailure: true });
  assert.notEqual(forged.code, 0, 'forged IPv6 source');
});

test('a stateDir nobody can reach: dnsmasq and haproxy stay root, reloads and metadata still work', { skip }, async () => {
  const { chmodSync } = await import('node:fs');
  const { createServer } = await import('node:http');
  const locked = join(ns.dir, 'locked');
  mkdirSync(join(locked, 'agent'), { recursive: true });
  chmodSync(locked, 0o700);
  const md = join(ns.dir, 'md.sock');
  const server = createServer((_req, res) => { res.end('hello from the instance'); });
  await new Promise<void>((r) => server.listen(md, r));
  const net2 = randomUUID(), sub2 = randomUUID(), pc = randomUUID(), dp2 = randomUUID(), uuid = randomUUID();
  const MAC_C = 'fa:16:3e:41:00:0c';
  const VMC = ns.name('vmc');
  await fakeVm(ns, H, VMC, deviceNames.tap(pc), MAC_C);
  const other = new NetworkAgent({
    log, stateDir: join(locked, 'agent'), hostNamespace: H, tunnelIp: '10.250.0.1', physicalBridges: {}, namespacePrefix: ns.prefix('l'),
    metadata: { resolveSocket: (u) => (u === uuid ? md : undefined) },
  });
  const st = (ip: string): HostNetworkState => ({
    host: 'h', generation: 1, routers: [], securityGroups: [],
    networks: [{ id: net2, type: 'vxlan', vni: 4002, mtu: 1450, peers: [], remoteMacs: [], subnets: [{ id: sub2, cidr: '10.42.0.0/24', ipVersion: 4, gatewayIp: '10.42.0.1', enableDhcp: true, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: null, ipv6RaMode: null }] }],
    ports: [{ id: pc, networkId: net2, mac: MAC_C, fixedIps: [{ subnetId: sub2, ip, prefixLen: 24 }], deviceId: uuid, portSecurity: false, securityGroupIds: [], allowedAddressPairs: [], mtu: 1450 }],
    dhcp: [{ networkId: net2, domain: 'openstacklocal', leaseSeconds: 600, mtu: 1450, port: { id: dp2, mac: 'fa:16:3e:41:00:02', fixedIps: [{ subnetId: sub2, ip: '10.42.0.2', prefixLen: 24 }] },
      hosts: [{ portId: pc, mac: MAC_C, ip, hostname: 'c', deviceId: uuid }] }],
  });
  try {
    assert.deepEqual((await other.apply(st('10.42.0.10'))).errors, []);
    const pidFile = join(locked, 'agent', 'dhcp', net2, 'pid');
    const pid1 = Number(readFileSync(pidFile, 'utf8'));
    assert.match(readFileSync(`/proc/${pid1}/status`, 'utf8'), /^Uid:\s+0\s/m, 'dnsmasq runs as root');
    assert.equal((await dhcpClient(ns, VMC)).ip, '10.42.0.10');
    assert.equal((await httpGet(VMC, 'http://169.254.169.254/latest/meta-data/')).body, 'hello from the instance');
    const rep = await other.apply({ ...st('10.42.0.20'), generation: 2 });
    assert.ok(rep.changes.includes(`dnsmasq reloaded ${net2}`));
    await sleep(50);
    assert.equal((await dhcpClient(ns, VMC)).ip, '10.42.0.20', 'reload re-read the hosts file');
    assert.equal(Number(readFileSync(pidFile, 'utf8')), pid1);
  } finally {
    await other.apply({ host: 'h', generation: 3, networks: [], ports: [], dhcp: [], routers: [], securityGroups: [] });
    await other.close();
    server.close();
  }
});
