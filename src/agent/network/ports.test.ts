/**
 * Port devices and the apply queue on a real kernel: taps the agent creates for QEMU
 * (persistent, vnet_hdr, one queue), ensurePortDevice/unplug, what happens to taps that are
 * no longer listed, invalid items reported without stopping the rest, and queued applies
 * replacing each other.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { deviceNames, type HostNetworkState, type PortState } from '../../bus/network.ts';
import { NetworkAgent } from './agent.ts';
import { run } from './exec.ts';
import { getLink } from './ip.ts';
import { canRunNetworkTests, fakeVm, TestNamespaces } from './test-helpers.ts';

const skip = canRunNetworkTests();
const log = pino({ level: process.env.GUREUM_LOG_LEVEL ?? 'silent' });
const net = randomUUID();

let ns: TestNamespaces;
let H: string;
let agent: NetworkAgent;
let dir: string;

const port = (id: string, n: number): PortState => ({
  id, networkId: net, mac: `fa:16:3e:30:00:${n.toString(16).padStart(2, '0')}`, fixedIps: [{ subnetId: 's', ip: `10.30.0.${n}`, prefixLen: 24 }],
  deviceId: '', portSecurity: true, securityGroupIds: [], allowedAddressPairs: [], mtu: 1400,
});

function state(generation: number, ports: PortState[], extra: Partial<HostNetworkState> = {}): HostNetworkState {
  return {
    host: 'h', generation, ports, dhcp: [], routers: [], securityGroups: [],
    networks: [{ id: net, type: 'vxlan', vni: 3001, mtu: 1400, subnets: [], peers: [], remoteMacs: [] }], ...extra,
  };
}

function newAgent(): NetworkAgent {
  return new NetworkAgent({ log, stateDir: dir, hostNamespace: H, tunnelIp: '10.250.9.1', physicalBridges: {}, namespacePrefix: ns.prefix('p'), metadata: { resolveSocket: () => undefined } });
}

before(async () => {
  if (skip) return;
  ns = await TestNamespaces.create('pt');
  H = await ns.add(ns.name('host'));
  dir = join(ns.dir, 'agent');
  mkdirSync(dir);
  agent = newAgent();
});

after(async () => {
  if (skip) return;
  await agent.close();
  await ns.cleanup();
});

test('a listed port without a device gets a persistent tap (vnet_hdr, single queue) on its bridge', { skip }, async () => {
  const p = port(randomUUID(), 5);
  const rep = await agent.apply(state(1, [p]));
  assert.deepEqual(rep.errors, []);
  const tap = await getLink(H, deviceNames.tap(p.id));
  assert.equal(tap?.kind, 'tun');
  assert.deepEqual(tap?.tun, { type: 'tap', vnetHdr: true, multiQueue: false, persist: true });
  assert.equal(tap?.master, deviceNames.bridge(net));
  assert.equal(tap?.mtu, 1400);
  assert.equal(tap?.addrGenMode, 'none');
  // no longer listed: the agent made it and nobody holds it → deleted
  await agent.apply(state(2, []));
  assert.equal(await getLink(H, deviceNames.tap(p.id)), undefined);
});

test('ensurePortDevice creates and plugs before the state lists the port; unplug removes it', { skip }, async () => {
  const p = port(randomUUID(), 6);
  await agent.apply(state(3, []));
  const dev = await agent.ensurePortDevice(p);
  assert.equal(dev, deviceNames.tap(p.id));
  assert.equal((await getLink(H, dev))?.master, deviceNames.bridge(net));
  assert.equal(await agent.ensurePortDevice(p), dev, 'idempotent');
  // an apply that does not list it yet keeps it (QEMU is about to attach)
  await agent.apply(state(4, []));
  assert.ok(await getLink(H, dev));
  await agent.unplug(p.id);
  assert.equal(await getLink(H, dev), undefined);
  await agent.unplug(p.id);
});

test('a device someone else made (veth of a fake VM) is plugged, and only detached when no longer listed', { skip }, async () => {
  const p = port(randomUUID(), 7);
  const vm = await ns.add(ns.name('vm'));
  await run('ip', ['-n', H, 'link', 'add', deviceNames.tap(p.id), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm]);
  await agent.apply(state(5, [p]));
  assert.equal((await getLink(H, deviceNames.tap(p.id)))?.master, deviceNames.bridge(net));
  await agent.apply(state(6, []));
  const l = await getLink(H, deviceNames.tap(p.id));
  assert.ok(l, 'not deleted');
  assert.equal(l.master, undefined, 'detached');
});

test('portStatus: a tap nobody holds is wired, a held one up (carrier), admin_state_up false keeps it down', { skip }, async () => {
  const held = port(randomUUID(), 12);
  const idle = port(randomUUID(), 13);
  const vm = ns.name('vm2');
  await fakeVm(ns, H, vm, deviceNames.tap(held.id), held.mac, 1400);
  assert.deepEqual((await agent.apply(state(20, [held, idle]))).errors, []);
  assert.deepEqual(await agent.portStatus(), new Map([[held.id, 'up'], [idle.id, 'wired']]));
  // the "instance" stops: its end goes down, the host end loses carrier
  await run('ip', ['-n', vm, 'link', 'set', 'eth0', 'down']);
  assert.equal((await agent.portStatus()).get(held.id), 'wired');
  await run('ip', ['-n', vm, 'link', 'set', 'eth0', 'up']);
  // admin_state_up false: the device is kept down (no traffic) and the port is down
  await agent.apply(state(21, [{ ...held, adminStateUp: false }, idle]));
  assert.equal((await getLink(H, deviceNames.tap(held.id)))?.up, false);
  assert.equal((await agent.portStatus()).get(held.id), 'down');
  await agent.apply(state(22, [held, idle]));
  assert.equal((await getLink(H, deviceNames.tap(held.id)))?.up, true);
  assert.equal((await agent.portStatus()).get(held.id), 'up');
  await agent.apply(state(23, []));
  assert.deepEqual(await agent.portStatus(), new Map(), 'ports no longer listed are not reported');
});

test('a restarted agent with an empty state file removes an unused tap left on its bridge', { skip }, async () => {
  const p = port(randomUUID(), 8);
  await agent.apply(state(7, [p]));
  await agent.close();
  const { rmSync } = await import('node:fs');
  rmSync(join(dir, 'network-agent.json'));
  agent = newAgent();
  await agent.apply(state(8, []));
  assert.equal(await getLink(H, deviceNames.tap(p.id)), undefined);
});

test('invalid items are reported, the rest is applied', { skip }, async () => {
  const good = port(randomUUID(), 9);
  const badMac = { ...port(randomUUID(), 10), mac: 'zz:16:3e:00:00:01' };
  const orphan = { ...port(randomUUID(), 11), networkId: randomUUID() };
  const rep = await agent.apply(state(9, [good, badMac, orphan], {
    networks: [
      { id: net, type: 'vxlan', vni: 3001, mtu: 1400, subnets: [], peers: [], remoteMacs: [] },
      { id: randomUUID(), type: 'flat', physicalNetwork: 'nowhere', mtu: 1500, subnets: [], peers: [], remoteMacs: [] },
    ],
  }));
  assert.equal(rep.errors.length, 3, JSON.stringify(rep.errors));
  assert.ok(rep.errors.some((e) => /invalid MAC/.test(e.error)));
  assert.ok(rep.errors.some((e) => /not in the state/.test(e.error)));
  assert.ok(rep.errors.some((e) => /no bridge for/.test(e.error)));
  assert.ok(await getLink(H, deviceNames.tap(good.id)));
  assert.equal(await getLink(H, deviceNames.tap(badMac.id)), undefined);
});

test('applies are serialized; a state queued behind a running one is replaced by a newer one', { skip }, async () => {
  const ports = [port(randomUUID(), 20), port(randomUUID(), 21), port(randomUUID(), 22)];
  const first = agent.apply(state(10, [ports[0]!]));
  const second = agent.apply(state(11, [ports[1]!]));
  const third = agent.apply(state(12, [ports[2]!]));
  const [r1, r2, r3] = await Promise.all([first, second, third]);
  assert.equal(r1.generation, 10);
  assert.equal(r1.superseded, false);
  assert.equal(r2.generation, 12, 'the queued state was replaced');
  assert.equal(r2.superseded, true);
  assert.equal(r3.generation, 12);
  assert.equal(r3.superseded, false);
  assert.equal(await getLink(H, deviceNames.tap(ports[1]!.id)), undefined, 'the replaced state never applied');
  assert.ok(await getLink(H, deviceNames.tap(ports[2]!.id)));
  await agent.apply(state(13, []));
});
