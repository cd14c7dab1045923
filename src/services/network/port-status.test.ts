/**
 * The port status protocol (bus/network.ts PortStatusRequest) end to end over a real
 * nats-server: the agent's NetworkLink (with a stand-in data plane that says which ports
 * work) reports to the controller's AgentSync, which sets the ports' status in the
 * database — only changes travel, only the host's own ports are taken, and ports nobody
 * hosts any more go DOWN.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { NetworkLink, type DataPlane } from '../../agent/network-link.ts';
import type { PortLinkState } from '../../agent/network/agent.ts';
import { NatsChild } from '../../cli/nats.ts';
import { Bus, subject } from '../../bus/index.ts';
import type { HostNetworkState, PortStatusReport } from '../../bus/network.ts';
import { createLogger } from '../../common/logger.ts';
import type { OpenDatabase } from '../../db/index.ts';
import { AgentSync, portsOfState } from './agent-sync.ts';
import { caller, harness, USERS, type App } from './routes/test-harness.ts';
import { NetworkService } from './service.ts';
import type { NetworkDeps } from './types.ts';

const log = createLogger('silent');

/** Stands in for NetworkAgent: remembers the applied state; `plugged` says which of its ports work, `wired` which are plugged without carrier. */
class FakePlane implements DataPlane {
  state?: HostNetworkState;
  readonly plugged = new Set<string>();
  readonly wired = new Set<string>();
  async apply(state: HostNetworkState): Promise<void> { this.state = state; }
  async portStatus(): Promise<Map<string, PortLinkState>> {
    const out = new Map<string, PortLinkState>();
    if (this.state) for (const id of portsOfState(this.state)) out.set(id, this.plugged.has(id) ? 'up' : this.wired.has(id) ? 'wired' : 'down');
    return out;
  }
}

describe('port status reports from the agents', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: NetworkDeps;
  let nats: NatsChild;
  let bus: Bus;
  let sync: AgentSync;
  let svc: NetworkService;
  let call: ReturnType<typeof caller>;
  const reports: PortStatusReport[] = [];

  const addHost = (host: string, id: number) => dbh.db.insertInto('compute_hosts').values({
    host, id, uuid: randomUUID(), service_uuid: randomUUID(), host_ip: `10.0.0.${id}`, hypervisor_type: 'QEMU', hypervisor_version: 8002000,
    accel: 'tcg', cpu_model: 'qemu64', arch: 'x86_64', vcpus: 4, memory_mb: 8192, local_gb: 100, vcpus_used: 0, memory_mb_used: 0,
    local_gb_used: 0, running_vms: 0, availability_zone: 'nova', enabled: 1, disabled_reason: null, forced_down: 0, agent_version: '1',
    last_seen: new Date().toISOString(), created_at: new Date().toISOString(),
  }).execute();
  const status = (id: string) => svc.showPort(USERS.admin, id);

  before(async () => {
    ({ app, dbh, deps } = await harness());
    svc = new NetworkService(deps);
    call = caller(app);
    nats = new NatsChild(mkdtempSync(join(tmpdir(), 'port-status-')), log);
    bus = await Bus.connect(await nats.start(), log);
    sync = new AgentSync({ db: dbh.db, bus, log, hostDownAfterSec: 60, ensureDhcpPort: (id) => svc.ensureDhcpPort(id), setPortStatus: (ids, s) => svc.setPortStatus(ids, s) });
    sync.start();
    // every report that travels, as the controller receives it
    bus.subscribe(subject<PortStatusReport>('gureum.network.port-status'), (r) => reports.push(r));
    await addHost('h1', 1);
    await addHost('h2', 2);
  });
  after(async () => { sync.stop(); await bus.close(); await nats.stop(); await app.close(); await dbh.close(); });

  test('plugged ports go ACTIVE, unplugged DOWN; only changes travel; other hosts\' ports are ignored', async () => {
    const net = (await call('admin', 'POST', '/networks', { network: { name: 'st' } })).body.network!;
    await call('admin', 'POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.77.0.0/24' } });
    const bound = async (host: string) => (await call('admin', 'POST', '/ports', { port: {
      network_id: net.id, device_owner: 'compute:nova', device_id: randomUUID(), 'binding:host_id': host } })).body.port!;
    const p1 = await bound('h1');
    const p2 = await bound('h2');
    await sync.flushNow(); // makes the DHCP port
    assert.equal(p1.status, 'DOWN', 'a new port is DOWN');

    const plane = new FakePlane();
    const link = new NetworkLink({ bus, host: 'h1', plane, log, statusPollMs: 3_600_000 });
    await link.sync('test');
    const dhcp = plane.state!.dhcp.find((d) => d.networkId === net.id);
    const h1Ports = plane.state!.ports.map((p) => p.id);
    assert.ok(h1Ports.includes(p1.id) && !h1Ports.includes(p2.id));
    await link.reportStatus();
    assert.equal((await status(p1.id)).status, 'DOWN', 'nothing plugged yet');
    const rev = (await status(p1.id)).revision_number;

    plane.plugged.add(p1.id);
    if (dhcp) plane.plugged.add(dhcp.port.id);
    reports.length = 0;
    await link.reportStatus();
    await bus.rtt();
    assert.equal(reports.length, 1, 'one batched report');
    assert.deepEqual(reports[0]!.up.sort(), [p1.id, ...(dhcp ? [dhcp.port.id] : [])].sort());
    assert.deepEqual(reports[0]!.down, []);
    const shown = await status(p1.id);
    assert.equal(shown.status, 'ACTIVE');
    assert.equal(shown.revision_number, rev + 1);
    if (dhcp) assert.equal((await status(dhcp.port.id)).status, 'ACTIVE', 'the DHCP port too');

    reports.length = 0;
    await link.reportStatus();
    await link.reportStatus();
    await bus.rtt();
    assert.equal(reports.length, 0, 'nothing changed, nothing sent');

    plane.plugged.delete(p1.id); // the instance stopped: its tap lost its carrier
    await link.reportStatus();
    await bus.rtt();
    assert.deepEqual(reports.map((r) => [r.up, r.down]), [[[], [p1.id]]]);
    assert.equal((await status(p1.id)).status, 'DOWN');

    // h1 cannot set h2's port; a report of unknown ids changes nothing
    const r = await sync.portStatus({ host: 'h1', up: [p2.id, 'no-such-port'], down: [] });
    assert.deepEqual(r, { changed: 0, ignored: [p2.id, 'no-such-port'] });
    assert.equal((await status(p2.id)).status, 'DOWN');
    await assert.rejects(sync.portStatus({ host: 'h1', up: 'x' }), /malformed/);
  });

  test('an instance start reports its wired ports ACTIVE before QEMU runs; carrier decides after the grace', async () => {
    const net = (await call('admin', 'POST', '/networks', { network: { name: 'st3' } })).body.network!;
    await call('admin', 'POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.79.0.0/24', enable_dhcp: false } });
    const p = (await call('admin', 'POST', '/ports', { port: { network_id: net.id, device_owner: 'compute:nova', device_id: randomUUID(), 'binding:host_id': 'h1' } })).body.port!;
    const plane = new FakePlane();
    const link = new NetworkLink({ bus, host: 'h1', plane, log, statusPollMs: 3_600_000, startGraceMs: 300 });
    await link.sync('test');
    await link.reportStatus();
    plane.wired.add(p.id);
    await link.reportStatus();
    assert.equal((await status(p.id)).status, 'DOWN', 'a wired tap nobody holds is not ACTIVE');
    await link.preparePorts([{ portId: p.id, networkId: net.id, mac: p.mac_address, mtu: 1450, ips: [] }], log);
    assert.equal((await status(p.id)).status, 'ACTIVE', 'ACTIVE when preparePorts returns, before QEMU starts');
    await new Promise((r) => setTimeout(r, 400));
    await link.reportStatus();
    assert.equal((await status(p.id)).status, 'DOWN', 'QEMU never took the tap: DOWN after the grace');
    await link.preparePorts([{ portId: p.id, networkId: net.id, mac: p.mac_address, mtu: 1450, ips: [] }], log);
    plane.plugged.add(p.id); // QEMU opened the tap
    await link.reportStatus();
    await new Promise((r) => setTimeout(r, 400));
    await link.reportStatus();
    assert.equal((await status(p.id)).status, 'ACTIVE', 'carrier keeps it ACTIVE');
    plane.plugged.delete(p.id); // the instance stopped
    await link.reportStatus();
    assert.equal((await status(p.id)).status, 'DOWN');
  });

  test('a port that leaves its host goes DOWN; ACTIVE ports no host lists are swept DOWN', async () => {
    const net = (await call('admin', 'POST', '/networks', { network: { name: 'st2' } })).body.network!;
    await call('admin', 'POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.78.0.0/24', enable_dhcp: false } });
    const p = (await call('admin', 'POST', '/ports', { port: { network_id: net.id, device_owner: 'compute:nova', device_id: randomUUID(), 'binding:host_id': 'h1' } })).body.port!;
    assert.deepEqual(await svc.setPortStatus([p.id], 'ACTIVE'), [p.id]);
    await call('admin', 'PUT', `/ports/${p.id}`, { port: { 'binding:host_id': 'h2' } });
    assert.equal((await status(p.id)).status, 'DOWN', 'moved to h2: DOWN until h2 reports');

    const loose = (await call('admin', 'POST', '/ports', { port: { network_id: net.id } })).body.port!;
    await svc.setPortStatus([loose.id, p.id], 'ACTIVE');
    await sync.flushNow();
    assert.equal((await status(loose.id)).status, 'DOWN', 'unbound: nobody reports it, the sweep sets it DOWN');
    assert.equal((await status(p.id)).status, 'ACTIVE', 'still bound to a live host: left to its agent');
  });
});
