import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../db/index.ts';
import { networkSettings } from './config.ts';
import { caller, harness, USERS, type App } from './routes/test-harness.ts';
import { NetworkService } from './service.ts';
import * as store from './store.ts';
import { DEFAULT_NETWORK_CONFIG, type NetworkDeps } from './types.ts';

describe('network service (in-process use by the controller)', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: NetworkDeps;
  let svc: NetworkService;
  let call: ReturnType<typeof caller>;
  const changes: string[] = [];
  before(async () => {
    ({ app, dbh, deps } = await harness());
    deps.changed = (w) => changes.push(w);
    svc = new NetworkService(deps);
    call = caller(app);
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('ensureDhcpPort: one network:dhcp port with an address per DHCP subnet, following subnet changes', async () => {
    const net = await svc.createNetwork(USERS.alice, { name: 'dhcp' });
    await svc.ensureDhcpPort(net.id);
    assert.equal((await svc.listPorts(USERS.admin, { networkIds: [net.id] })).length, 0, 'no DHCP subnet, no port');
    const a = await svc.createSubnet(USERS.alice, { network_id: net.id, ip_version: 4, cidr: '10.1.0.0/24' });
    await svc.ensureDhcpPort(net.id);
    let ports = await svc.listPorts(USERS.admin, { networkIds: [net.id] });
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.device_owner, 'network:dhcp');
    assert.equal(ports[0]!.project_id, 'p-one');
    assert.deepEqual(ports[0]!.security_groups, []);
    assert.deepEqual(ports[0]!.fixed_ips, [{ subnet_id: a.id, ip_address: '10.1.0.2' }]);
    const b = await svc.createSubnet(USERS.alice, { network_id: net.id, ip_version: 4, cidr: '10.2.0.0/24' });
    await svc.createSubnet(USERS.alice, { network_id: net.id, ip_version: 4, cidr: '10.3.0.0/24', enable_dhcp: false });
    await svc.ensureDhcpPort(net.id);
    await svc.ensureDhcpPort(net.id);
    ports = await svc.listPorts(USERS.admin, { networkIds: [net.id] });
    assert.equal(ports.length, 1, 'still one');
    assert.deepEqual(ports[0]!.fixed_ips, [{ subnet_id: a.id, ip_address: '10.1.0.2' }, { subnet_id: b.id, ip_address: '10.2.0.2' }]);
    await call('alice', 'PUT', `/subnets/${a.id}`, { subnet: { enable_dhcp: false } });
    await svc.ensureDhcpPort(net.id);
    ports = await svc.listPorts(USERS.admin, { networkIds: [net.id] });
    assert.deepEqual(ports[0]!.fixed_ips.map((f) => f.subnet_id), [b.id], 'released where DHCP was switched off');
    await call('alice', 'PUT', `/subnets/${b.id}`, { subnet: { enable_dhcp: false } });
    await svc.ensureDhcpPort(net.id);
    assert.equal((await svc.listPorts(USERS.admin, { networkIds: [net.id] })).length, 0, 'no DHCP subnet left: the port goes');
    await svc.deleteNetwork(USERS.alice, net.id);
  });

  test('every committed change that matters to hosts is announced; refused ones are not', async () => {
    changes.length = 0;
    const net = (await call('alice', 'POST', '/networks', { network: {} })).body.network!;
    const sub = (await call('alice', 'POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.9.0.0/24' } })).body.subnet!;
    const port = (await call('alice', 'POST', '/ports', { port: { network_id: net.id } })).body.port!;
    const sg = (await call('alice', 'GET', '/security-groups')).body.security_groups![0]!;
    await call('alice', 'POST', '/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp' } });
    await call('alice', 'PUT', `/ports/${port.id}`, { port: { name: 'x' } });
    await call('alice', 'POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: '10.9.0.200' }, { ip_address: '10.9.0.200' }] } });
    await call('alice', 'DELETE', `/ports/${port.id}`);
    await call('alice', 'DELETE', `/subnets/${sub.id}`);
    await call('alice', 'DELETE', `/networks/${net.id}`);
    assert.deepEqual(changes, ['network', 'subnet', 'port', 'security_group_rule', 'port', 'port', 'subnet', 'network']);
  });

  test('setPortStatus: what the agents report, with a new revision per change', async () => {
    const net = await svc.createNetwork(USERS.alice, { name: 'st' });
    const [p] = await svc.createPorts(USERS.alice, [{ network_id: net.id }]);
    changes.length = 0;
    assert.deepEqual(await svc.setPortStatus([p!.id, 'no-such-port'], 'ACTIVE'), [p!.id]);
    assert.deepEqual(await svc.setPortStatus([p!.id], 'ACTIVE'), [], 'no change, no revision');
    const shown = await svc.showPort(USERS.alice, p!.id);
    assert.equal(shown.status, 'ACTIVE');
    assert.equal(shown.revision_number, p!.revision_number + 1);
    assert.deepEqual(changes, ['port_status']);
    await svc.deletePort(USERS.alice, p!.id);
    await svc.deleteNetwork(USERS.alice, net.id);
  });

  test('gureum.yaml network: settings', () => {
    assert.deepEqual(networkSettings(undefined), DEFAULT_NETWORK_CONFIG);
    const s = networkSettings({ vni_ranges: '1000:1999', physical_networks: ['public', 'lab'], dns_domain: 'cloud.example', quotas: { port: 50 } });
    assert.equal(s.vniMin, 1000);
    assert.equal(s.vniMax, 1999);
    assert.deepEqual(s.physicalNetworks, ['public', 'lab']);
    assert.equal(s.dnsDomain, 'cloud.example.');
    assert.equal(s.quotas.port, 50);
    assert.equal(s.quotas.network, 100);
    assert.equal(DEFAULT_NETWORK_CONFIG.quotas.port, 500, 'defaults untouched');
    for (const bad of [{ vni_ranges: '5:1' }, { vni_ranges: '0:10' }, { physical_networks: 'public' }, { quotas: { widgets: 1 } }, { colour: 'blue' }, []]) {
      assert.throws(() => networkSettings(bad), /network/);
    }
  });
});
