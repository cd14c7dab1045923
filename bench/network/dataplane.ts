/**
 * Data-plane benchmark on the real kernel (as root), all inside throw-away namespaces:
 *
 *   node --import tsx bench/network/dataplane.ts [--ports 20] [--rounds 15] [--seconds 3]
 *
 * A simulated host with one VXLAN network (DHCP + metadata), `--ports` ports already
 * applied (taps the agent creates) plus two fake VMs, then:
 *   - apply time for adding one port (median/p90 of --rounds adds, each a new state),
 *   - time from apply() to a DHCP lease served to a fake VM (busybox udhcpc, new port each round),
 *   - time from a security-group rule change (apply) until a ping that was dropped is answered,
 *   - an unchanged apply (the periodic pull with nothing to do),
 *   - TCP throughput fake VM ↔ fake VM (iperf3) through bridge + nftables firewall, through
 *     the bridge with port security off, and over a plain veth pair between two namespaces.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { deviceNames, type HostNetworkState, type PortState } from '../../src/bus/network.ts';
import { NetworkAgent } from '../../src/agent/network/agent.ts';
import { run, runIn } from '../../src/agent/network/exec.ts';
import { canRunNetworkTests, dhcpClient, fakeVm, ping, sleep, TestNamespaces } from '../../src/agent/network/test-helpers.ts';

const { values: args } = parseArgs({
  options: { ports: { type: 'string', default: '20' }, rounds: { type: 'string', default: '15' }, seconds: { type: 'string', default: '3' } },
});
const BASE_PORTS = Number(args.ports);
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);

const why = canRunNetworkTests();
if (why) { console.error(`cannot run: ${why}`); process.exit(1); }
for (const t of ['iperf3']) {
  try { await run(t, ['--version']); } catch { console.error(`cannot run: ${t} is missing (Debian: iperf3)`); process.exit(1); }
}

const log = pino({ level: process.env.GUREUM_LOG_LEVEL ?? 'silent' });
const net = randomUUID(), sub = randomUUID(), sg = randomUUID(), dport = randomUUID();
const mac = (n: number) => `fa:16:3e:50:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
const ip = (n: number) => `10.50.${n >> 8}.${n & 0xff}`;

interface P { id: string; n: number; security: boolean }
const ports: P[] = [];
const groupRules = { icmp: true };

function portState(p: P): PortState {
  return {
    id: p.id, networkId: net, mac: mac(p.n), fixedIps: [{ subnetId: sub, ip: ip(p.n), prefixLen: 16 }], deviceId: randomUUID(),
    portSecurity: p.security, securityGroupIds: p.security ? [sg] : [], allowedAddressPairs: [], mtu: 1450,
  };
}

let gen = 0;
function state(): HostNetworkState {
  return {
    host: 'bench', generation: ++gen, routers: [],
    networks: [{ id: net, type: 'vxlan', vni: 5001, mtu: 1450, peers: [], remoteMacs: [], subnets: [{ id: sub, cidr: '10.50.0.0/16', ipVersion: 4, gatewayIp: '10.50.0.1', enableDhcp: true, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: null, ipv6RaMode: null }] }],
    ports: ports.map(portState),
    dhcp: [{
      networkId: net, port: { id: dport, mac: mac(2), fixedIps: [{ subnetId: sub, ip: ip(2), prefixLen: 16 }] }, domain: 'openstacklocal', leaseSeconds: 3600, mtu: 1450,
      hosts: ports.map((p) => ({ portId: p.id, mac: mac(p.n), ip: ip(p.n), hostname: `vm${p.n}`, deviceId: '' })),
    }],
    securityGroups: [{
      id: sg, stateful: true, memberIps: ports.map((p) => ip(p.n)), rules: [
        { id: 'e', direction: 'egress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: null },
        { id: 't', direction: 'ingress', ethertype: 'IPv4', protocol: '6', portRangeMin: 5201, portRangeMax: 5201, remoteIpPrefix: null, remoteGroupId: null },
        { id: 's', direction: 'ingress', ethertype: 'IPv4', protocol: '6', portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: '0.0.0.0/0', remoteGroupId: null },
        ...(groupRules.icmp ? [{ id: 'i', direction: 'ingress' as const, ethertype: 'IPv4' as const, protocol: '1', portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: null }] : []),
      ],
    }],
  };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { median: q(0.5), p90: q(0.9), min: s[0]!, max: s[s.length - 1]! };
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function iperf(server: string, client: string, dst: string): Promise<number> {
  const srv = spawn('ip', ['netns', 'exec', server, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
  try {
    await sleep(300);
    const r = await runIn(client, 'iperf3', ['-c', dst, '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 });
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e9;
  } finally {
    if (srv.pid) { try { process.kill(srv.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}

const ns = await TestNamespaces.create('bench');
let agent: NetworkAgent | undefined;
const rows: [string, string][] = [];
try {
  const H = await ns.add(ns.name('host'));
  const dir = join(ns.dir, 'agent');
  mkdirSync(dir);
  agent = new NetworkAgent({ log, stateDir: dir, hostNamespace: H, tunnelIp: '10.250.0.1', physicalBridges: {}, namespacePrefix: ns.prefix('b'), metadata: { resolveSocket: () => undefined } });

  let n = 10;
  const vm1: P = { id: randomUUID(), n: n++, security: true };
  const vm2: P = { id: randomUUID(), n: n++, security: true };
  ports.push(vm1, vm2);
  for (let i = 0; i < BASE_PORTS; i++) ports.push({ id: randomUUID(), n: n++, security: true });
  const VM1 = ns.name('vm1'), VM2 = ns.name('vm2');
  await fakeVm(ns, H, VM1, deviceNames.tap(vm1.id), mac(vm1.n));
  await fakeVm(ns, H, VM2, deviceNames.tap(vm2.id), mac(vm2.n));
  const first = await agent.apply(state());
  if (first.errors.length) throw new Error(JSON.stringify(first.errors));
  await dhcpClient(ns, VM1);
  await dhcpClient(ns, VM2);

  // 1. adding one port (a tap the agent creates), each round a new state
  const add: number[] = [];
  const phases = new Map<string, number[]>();
  for (let i = 0; i < ROUNDS; i++) {
    ports.push({ id: randomUUID(), n: n++, security: true });
    const s = state();
    const t = performance.now();
    const rep = await agent.apply(s);
    add.push(performance.now() - t);
    if (rep.errors.length) throw new Error(JSON.stringify(rep.errors));
    for (const [k, v] of Object.entries(rep.phases)) phases.set(k, [...(phases.get(k) ?? []), v]);
  }
  const a = stats(add);
  rows.push([`apply: add one port (${BASE_PORTS + 2}+ ports on the host)`, `median ${ms(a.median)}, p90 ${ms(a.p90)}, max ${ms(a.max)}`]);
  rows.push(['  of which (medians)', [...phases].map(([k, v]) => `${k} ${stats(v).median.toFixed(1)}`).join(', ')]);

  // 2. apply → DHCP lease for a new fake VM
  const lease: number[] = [];
  for (let i = 0; i < Math.min(ROUNDS, 8); i++) {
    const p: P = { id: randomUUID(), n: n++, security: true };
    const vm = ns.name(`lease${i}`);
    await fakeVm(ns, H, vm, deviceNames.tap(p.id), mac(p.n));
    ports.push(p);
    const t = performance.now();
    await agent.apply(state());
    const l = await dhcpClient(ns, vm, { tries: 20, timeoutSec: 1 });
    lease.push(performance.now() - t);
    if (l.ip !== ip(p.n)) throw new Error(`lease ${l.ip} != ${ip(p.n)}`);
  }
  const l = stats(lease);
  rows.push(['apply → DHCP lease (new port, udhcpc)', `median ${ms(l.median)}, p90 ${ms(l.p90)}, max ${ms(l.max)}`]);

  // 3. rule change → effect: ICMP rule removed (ping dropped), then added back; time until answered
  const eff: number[] = [];
  const app: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    groupRules.icmp = false;
    await agent.apply(state());
    if (await ping(VM1, ip(vm2.n), { waitSec: 0.3 })) throw new Error('ping passed without an ICMP rule');
    groupRules.icmp = true;
    const t = performance.now();
    await agent.apply(state());
    app.push(performance.now() - t);
    for (;;) {
      if (await ping(VM1, ip(vm2.n), { waitSec: 0.05 })) break;
      if (performance.now() - t > 5000) throw new Error('rule never took effect');
    }
    eff.push(performance.now() - t);
  }
  const e = stats(eff), ap = stats(app);
  rows.push(['security-group rule change: apply()', `median ${ms(ap.median)}, p90 ${ms(ap.p90)}`]);
  rows.push(['rule change → first ping answered', `median ${ms(e.median)}, p90 ${ms(e.p90)} (includes one ping's own run time)`]);

  // 4. unchanged apply
  const same: number[] = [];
  const s = state();
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    await agent.apply({ ...s, generation: ++gen });
    same.push(performance.now() - t);
  }
  rows.push(['apply: nothing changed', `median ${ms(stats(same).median)}`]);
  rows.push(['ports on the host at the end', String(ports.length)]);

  // 5. throughput
  const fw = await iperf(VM2, VM1, ip(vm2.n));
  rows.push([`TCP VM↔VM, bridge + firewall (iperf3 ${SECONDS}s)`, `${fw.toFixed(2)} Gbit/s`]);
  vm1.security = false; vm2.security = false;
  await agent.apply(state());
  const br = await iperf(VM2, VM1, ip(vm2.n));
  rows.push(['TCP VM↔VM, bridge, port security off', `${br.toFixed(2)} Gbit/s`]);
  const RA = await ns.add(ns.name('rawa')), RB = await ns.add(ns.name('rawb'));
  await run('ip', ['-n', RA, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', RB]);
  for (const [x, addr] of [[RA, '10.60.0.1/24'], [RB, '10.60.0.2/24']] as const) {
    await run('ip', ['-n', x, 'addr', 'add', addr, 'dev', 'eth0']);
    await run('ip', ['-n', x, 'link', 'set', 'eth0', 'up']);
  }
  const raw = await iperf(RB, RA, '10.60.0.2');
  rows.push(['TCP raw veth pair (baseline)', `${raw.toFixed(2)} Gbit/s`]);
  rows.push(['firewall path vs raw veth', `${((fw / raw) * 100).toFixed(0)} %`]);
} finally {
  try {
    await agent?.apply({ host: 'bench', generation: ++gen, networks: [], ports: [], dhcp: [], routers: [], securityGroups: [] });
    await agent?.close();
  } finally {
    await ns.cleanup();
  }
}

const w = Math.max(...rows.map((r) => r[0].length));
console.log(`\nGureum network data plane (${new Date().toISOString()}, kernel ${(await run('uname', ['-r'])).stdout.trim()})\n`);
console.log(`${'measure'.padEnd(w)}  result`);
console.log(`${'-'.repeat(w)}  ${'-'.repeat(40)}`);
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
