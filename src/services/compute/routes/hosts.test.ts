import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isoNow, type Db, type OpenDatabase } from '../../../db/index.ts';
import { hostRoutes } from './hosts.ts';
import { caller, harness, type App } from './test-harness.ts';


async function addHost(db: Db, host: string, id: number, opts: { lastSeen?: string; vcpus?: number } = {}): Promise<void> {
  await db.insertInto('compute_hosts').values({
    host, id, uuid: randomUUID(), service_uuid: randomUUID(), host_ip: `10.0.0.${id}`, hypervisor_type: 'QEMU', hypervisor_version: 8002000,
    accel: 'tcg', cpu_model: 'qemu64', arch: 'x86_64', vcpus: opts.vcpus ?? 4, memory_mb: 8192, local_gb: 100, vcpus_used: 1, memory_mb_used: 512,
    local_gb_used: 1, running_vms: 1, availability_zone: 'nova', enabled: 1, disabled_reason: null, forced_down: 0, agent_version: '1',
    last_seen: opts.lastSeen ?? isoNow(), created_at: isoNow(),
  }).execute();
}
async function addInstance(db: Db, host: string, name: string): Promise<string> {
  const uuid = randomUUID();
  const now = isoNow();
  await db.insertInto('instances').values({
    uuid, id: Math.floor(Math.random() * 1e9), display_name: name, display_description: null, hostname: name, project_id: 'p-one', user_id: 'u-alice',
    image_ref: 'img', flavor: '{}', vcpus: 1, memory_mb: 512, root_gb: 1, ephemeral_gb: 0, swap_mb: 0, host, availability_zone: 'nova', requested_az: null,
    vm_state: 'active', task_state: null, power_state: 1, key_name: null, key_data: null, user_data: null, config_drive: '', access_ip_v4: '', access_ip_v6: '',
    networks: '"auto"', ssh_port: null, locked: 0, locked_by: null, locked_reason: null, server_group_id: null, reservation_id: 'r-1', launch_index: 0,
    progress: 0, fault: null, system_metadata: '{}', created_at: now, updated_at: now, launched_at: now, terminated_at: null, deleted: 0, deleted_at: null,
  }).execute();
  return uuid;
}

describe('hypervisors, services, availability zones, aggregates', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  let vm: string;
  before(async () => {
    ({ app, dbh } = await harness(hostRoutes));
    call = caller(app);
    await addHost(dbh.db, 'node1', 1);
    await addHost(dbh.db, 'node2', 2, { lastSeen: new Date(Date.now() - 3600_000).toISOString() });
    vm = await addInstance(dbh.db, 'node1', 'vm1');
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('hypervisors are admin only', async () => {
    assert.equal((await call('alice', 'GET', '/os-hypervisors')).status, 403);
    assert.equal((await call('alice', 'GET', '/os-services')).status, 403);
    assert.equal((await call('alice', 'GET', '/os-aggregates')).status, 403);
  });

  test('hypervisor list/detail/show: integer ids before 2.53, cpu_info string then object, state from last_seen', async () => {
    let r = await call('admin', 'GET', '/os-hypervisors');
    assert.deepEqual(r.body.hypervisors, [
      { id: 1, hypervisor_hostname: 'node1', state: 'up', status: 'enabled' },
      { id: 2, hypervisor_hostname: 'node2', state: 'down', status: 'enabled' },
    ]);
    r = await call('admin', 'GET', '/os-hypervisors/detail');
    const h = r.body.hypervisors[0];
    for (const k of ['vcpus', 'memory_mb', 'local_gb', 'vcpus_used', 'memory_mb_used', 'local_gb_used', 'free_ram_mb', 'free_disk_gb', 'current_workload',
      'running_vms', 'cpu_info', 'disk_available_least', 'hypervisor_type', 'hypervisor_version', 'host_ip', 'service']) assert.ok(k in h, k);
    assert.equal(h.free_ram_mb, 8192 - 512);
    assert.equal(typeof h.cpu_info, 'string');
    assert.equal(JSON.parse(h.cpu_info).arch, 'x86_64');
    assert.deepEqual(h.service, { host: 'node1', id: 3, disabled_reason: null });
    r = await call('admin', 'GET', '/os-hypervisors/1', undefined, '2.28');
    assert.equal(typeof r.body.hypervisor.cpu_info, 'object');
    assert.equal((await call('admin', 'GET', '/os-hypervisors/9')).status, 404);
    assert.equal((await call('admin', 'GET', '/os-hypervisors/node1')).status, 404);
    assert.equal((await call('admin', 'GET', '/os-hypervisors/1/uptime')).status, 501);
    r = await call('admin', 'GET', '/os-hypervisors/statistics');
    assert.equal(r.body.hypervisor_statistics.count, 2);
    assert.equal(r.body.hypervisor_statistics.vcpus, 8);
  });

  test('pre-2.53 search and servers; 2.33 paging', async () => {
    let r = await call('admin', 'GET', '/os-hypervisors/node1/servers');
    assert.deepEqual(r.body.hypervisors[0].servers, [{ name: 'vm1', uuid: vm }]);
    r = await call('admin', 'GET', '/os-hypervisors/node/search');
    assert.equal(r.body.hypervisors.length, 2);
    assert.equal((await call('admin', 'GET', '/os-hypervisors/zzz/search')).status, 404);
    r = await call('admin', 'GET', '/os-hypervisors?limit=1', undefined, '2.33');
    assert.equal(r.body.hypervisors.length, 1);
    assert.match(r.body.hypervisors_links[0].href, /os-hypervisors\?limit=1&marker=1$/);
    r = await call('admin', 'GET', '/os-hypervisors?limit=1&marker=1', undefined, '2.33');
    assert.equal(r.body.hypervisors[0].hypervisor_hostname, 'node2');
    assert.equal((await call('admin', 'GET', '/os-hypervisors?marker=77', undefined, '2.33')).status, 400);
  });

  test('2.53 uuids, hostname pattern, with_servers; 2.88 drops usage fields and statistics', async () => {
    let r = await call('admin', 'GET', '/os-hypervisors?hypervisor_hostname_pattern=ode1&with_servers=true', undefined, '2.53');
    assert.equal(r.body.hypervisors.length, 1);
    const h = r.body.hypervisors[0];
    assert.match(h.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(h.servers, [{ name: 'vm1', uuid: vm }]);
    assert.equal((await call('admin', 'GET', '/os-hypervisors?hypervisor_hostname_pattern=x&limit=1', undefined, '2.53')).status, 400);
    assert.equal((await call('admin', 'GET', '/os-hypervisors?hypervisor_hostname_pattern=nothing', undefined, '2.53')).status, 404);
    assert.equal((await call('admin', 'GET', '/os-hypervisors/node1/search', undefined, '2.53')).status, 404);
    assert.equal((await call('admin', 'GET', '/os-hypervisors/1', undefined, '2.53')).status, 400);
    r = await call('admin', 'GET', `/os-hypervisors/${h.id}`, undefined, '2.53');
    assert.match(r.body.hypervisor.service.id, /^[0-9a-f-]{36}$/);
    r = await call('admin', 'GET', `/os-hypervisors/${h.id}`, undefined, '2.88');
    assert.ok(!('vcpus' in r.body.hypervisor) && !('cpu_info' in r.body.hypervisor));
    assert.equal(r.body.hypervisor.uptime, null);
    assert.equal(r.body.hypervisor.hypervisor_type, 'QEMU');
    assert.equal((await call('admin', 'GET', '/os-hypervisors/statistics', undefined, '2.88')).status, 404);
  });

  test('services: list with controller loops, legacy enable/disable, 2.53 update, delete', async () => {
    let r = await call('admin', 'GET', '/os-services');
    const bins = r.body.services.map((s: { binary: string }) => s.binary);
    assert.deepEqual(bins, ['nova-scheduler', 'nova-conductor', 'nova-compute', 'nova-compute']);
    assert.deepEqual(Object.keys(r.body.services[2]).sort(), ['binary', 'disabled_reason', 'host', 'id', 'state', 'status', 'updated_at', 'zone']);
    assert.equal(r.body.services[0].zone, 'internal');
    assert.equal(r.body.services[0].state, 'up');
    assert.equal(r.body.services[3].state, 'down');
    r = await call('admin', 'GET', '/os-services?binary=nova-compute&host=node1', undefined, '2.11');
    assert.equal(r.body.services.length, 1);
    assert.equal(r.body.services[0].forced_down, false);

    r = await call('admin', 'PUT', '/os-services/disable-log-reason', { host: 'node1', binary: 'nova-compute', disabled_reason: 'maint' });
    assert.deepEqual(r.body, { service: { host: 'node1', binary: 'nova-compute', status: 'disabled', disabled_reason: 'maint' } });
    r = await call('admin', 'GET', '/os-hypervisors');
    assert.equal(r.body.hypervisors[0].status, 'disabled');
    r = await call('admin', 'PUT', '/os-services/enable', { host: 'node1', binary: 'nova-compute' });
    assert.deepEqual(r.body, { service: { host: 'node1', binary: 'nova-compute', status: 'enabled' } });
    r = await call('admin', 'PUT', '/os-services/force-down', { host: 'node1', binary: 'nova-compute', forced_down: true }, '2.11');
    assert.deepEqual(r.body, { service: { host: 'node1', binary: 'nova-compute', forced_down: true } });
    r = await call('admin', 'GET', '/os-services?host=node1', undefined, '2.11');
    assert.equal(r.body.services[0].state, 'down');
    assert.equal((await call('admin', 'PUT', '/os-services/disable', { host: 'nohost', binary: 'nova-compute' })).status, 404);
    assert.equal((await call('admin', 'PUT', '/os-services/disable', { host: 'node1' })).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-services/bogus', { host: 'node1', binary: 'nova-compute' })).status, 404);

    r = await call('admin', 'GET', '/os-services?host=node1', undefined, '2.53');
    const id = r.body.services[0].id;
    assert.match(id, /^[0-9a-f-]{36}$/);
    r = await call('admin', 'PUT', `/os-services/${id}`, { status: 'disabled', disabled_reason: 'why', forced_down: false }, '2.53');
    assert.equal(r.status, 200);
    assert.equal(r.body.service.status, 'disabled');
    assert.equal(r.body.service.disabled_reason, 'why');
    assert.equal(r.body.service.forced_down, false);
    assert.equal(r.body.service.state, 'up');
    r = await call('admin', 'PUT', `/os-services/${id}`, { status: 'enabled', disabled_reason: 'x' }, '2.53');
    assert.equal(r.body.badRequest.message, "Specifying 'disabled_reason' with status other than 'disabled' is invalid.");
    assert.equal((await call('admin', 'PUT', `/os-services/${id}`, { status: 'bogus' }, '2.53')).status, 400);
    assert.equal((await call('admin', 'PUT', `/os-services/${id}`, {}, '2.53')).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-services/disable', { host: 'node1', binary: 'nova-compute' }, '2.53')).status, 400);
    r = await call('admin', 'PUT', `/os-services/${id}`, { status: 'enabled' }, '2.53');
    assert.equal(r.body.service.disabled_reason, null);
    const sched = (await call('admin', 'GET', '/os-services?binary=nova-scheduler', undefined, '2.53')).body.services[0].id;
    assert.equal((await call('admin', 'PUT', `/os-services/${sched}`, { status: 'disabled' }, '2.53')).status, 400);

    // node1 hosts vm1: 409; node2 is empty: deleted (pre-2.53 by integer id).
    assert.equal((await call('admin', 'DELETE', `/os-services/${id}`, undefined, '2.53')).status, 409);
    assert.equal((await call('admin', 'DELETE', '/os-services/1')).status, 400);
    assert.equal((await call('admin', 'DELETE', '/os-services/4')).status, 204);
    assert.equal((await call('admin', 'GET', '/os-hypervisors')).body.hypervisors.length, 1);
    await addHost(dbh.db, 'node2', 2, { lastSeen: new Date(Date.now() - 3600_000).toISOString() });
  });

  test('availability zones: list of zones, admin detail with services', async () => {
    let r = await call('alice', 'GET', '/os-availability-zone');
    assert.deepEqual(r.body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }] });
    assert.equal((await call('alice', 'GET', '/os-availability-zone/detail')).status, 403);
    r = await call('admin', 'GET', '/os-availability-zone/detail');
    const [internal, nova] = r.body.availabilityZoneInfo;
    assert.equal(internal.zoneName, 'internal');
    const ctl = Object.values(internal.hosts)[0] as Record<string, { available: boolean; active: boolean }>;
    assert.deepEqual(Object.keys(ctl).sort(), ['nova-conductor', 'nova-scheduler']);
    assert.equal(nova.zoneName, 'nova');
    assert.equal(nova.hosts.node1['nova-compute'].active, true);
    assert.equal(nova.hosts.node2['nova-compute'].available, false);
  });

  test('aggregates: create, show, update, hosts, metadata; zones follow the aggregate', async () => {
    let r = await call('admin', 'POST', '/os-aggregates', { aggregate: { name: 'agg1' } }, '2.41');
    assert.equal(r.status, 200);
    const a = r.body.aggregate;
    assert.deepEqual(Object.keys(a).sort(), ['availability_zone', 'created_at', 'deleted', 'deleted_at', 'id', 'name', 'updated_at', 'uuid']);
    assert.equal((await call('admin', 'POST', '/os-aggregates', { aggregate: { name: 'agg1' } })).status, 409);
    assert.equal((await call('admin', 'POST', '/os-aggregates', { aggregate: { name: 'x', availability_zone: 'a:b' } })).status, 400);
    assert.equal((await call('admin', 'POST', '/os-aggregates', { aggregate: {} })).status, 400);

    r = await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { add_host: { host: 'node2' } });
    assert.deepEqual(r.body.aggregate.hosts, ['node2']);
    assert.equal((await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { add_host: { host: 'node2' } })).status, 409);
    assert.equal((await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { add_host: { host: 'ghost' } })).status, 404);

    // Zone via metadata: node2 (no instances) moves to az1, then back to nova when the key is removed.
    r = await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { set_metadata: { metadata: { availability_zone: 'az1', ssd: 'true' } } });
    assert.equal(r.body.aggregate.availability_zone, 'az1');
    assert.deepEqual(r.body.aggregate.metadata, { availability_zone: 'az1', ssd: 'true' });
    r = await call('alice', 'GET', '/os-availability-zone');
    assert.deepEqual(r.body.availabilityZoneInfo.map((z: { zoneName: string }) => z.zoneName), ['az1', 'nova']);
    // node1 has an instance in nova: joining az1 is refused.
    r = await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { add_host: { host: 'node1' } });
    assert.equal(r.status, 409);
    assert.match(r.body.conflictingRequest.message, /contain instances/);
    r = await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { set_metadata: { metadata: { availability_zone: null, ssd: null } } });
    assert.equal(r.body.aggregate.availability_zone, null);
    assert.deepEqual(r.body.aggregate.metadata, {});
    r = await call('alice', 'GET', '/os-availability-zone');
    assert.deepEqual(r.body.availabilityZoneInfo.map((z: { zoneName: string }) => z.zoneName), ['nova']);

    // Update name and zone (PUT), by uuid too.
    r = await call('admin', 'PUT', `/os-aggregates/${a.uuid}`, { aggregate: { name: 'agg1b', availability_zone: 'az2' } });
    assert.equal(r.body.aggregate.name, 'agg1b');
    assert.equal(r.body.aggregate.metadata.availability_zone, 'az2');
    assert.match(r.body.aggregate.updated_at, /^\d{4}-.*\.\d{6}$/);
    assert.equal((await call('admin', 'PUT', `/os-aggregates/${a.id}`, { aggregate: {} })).status, 400);
    assert.equal((await call('admin', 'PUT', `/os-aggregates/${a.id}`, { aggregate: { availability_zone: 'internal' } })).status, 400);
    r = await call('admin', 'GET', '/os-services?host=node2');
    assert.equal(r.body.services[0].zone, 'az2');

    // A host may not sit in two zones.
    const b = (await call('admin', 'POST', '/os-aggregates', { aggregate: { name: 'agg2', availability_zone: 'az3' } })).body.aggregate;
    r = await call('admin', 'POST', `/os-aggregates/${b.id}/action`, { add_host: { host: 'node2' } });
    assert.equal(r.status, 409);
    assert.match(r.body.conflictingRequest.message, /already in availability zone/);

    assert.equal((await call('admin', 'DELETE', `/os-aggregates/${a.id}`)).status, 400);
    r = await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { remove_host: { host: 'node2' } });
    assert.deepEqual(r.body.aggregate.hosts, []);
    assert.equal((await call('admin', 'GET', '/os-services?host=node2')).body.services[0].zone, 'nova');
    assert.equal((await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { remove_host: { host: 'node2' } })).status, 404);
    assert.equal((await call('admin', 'POST', `/os-aggregates/${a.id}/action`, { bogus: {} })).status, 400);
    r = await call('admin', 'GET', '/os-aggregates');
    assert.deepEqual(r.body.aggregates.map((x: { name: string }) => x.name), ['agg1b', 'agg2']);
    assert.equal((await call('admin', 'DELETE', `/os-aggregates/${a.id}`)).status, 200);
    assert.equal((await call('admin', 'GET', `/os-aggregates/${a.id}`)).status, 404);
  });
});
