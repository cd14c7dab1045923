import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isoNow, type Db, type OpenDatabase } from '../../../db/index.ts';
import { extensionRoutes } from './extensions.ts';
import { hostRoutes, uptimeLine } from './hosts.ts';
import { osHostRoutes } from './os-hosts.ts';
import { quotaClassRoutes } from './quota-classes.ts';
import { quotaRoutes } from './quotas.ts';
import { caller, harness, type App } from './test-harness.ts';

async function addHost(db: Db, host: string, id: number, opts: { ip?: string; lastSeen?: string; zone?: string } = {}): Promise<void> {
  await db.insertInto('compute_hosts').values({
    host, id, uuid: randomUUID(), service_uuid: randomUUID(), host_ip: opts.ip ?? '127.0.0.1', hypervisor_type: 'QEMU', hypervisor_version: 8002000,
    accel: 'tcg', cpu_model: 'qemu64', arch: 'x86_64', vcpus: 4, memory_mb: 8192, local_gb: 100, vcpus_used: 3, memory_mb_used: 1536,
    local_gb_used: 4, running_vms: 2, availability_zone: opts.zone ?? 'nova', enabled: 1, disabled_reason: null, forced_down: 0, agent_version: '1',
    last_seen: opts.lastSeen ?? isoNow(), created_at: isoNow(),
  }).execute();
}
async function addInstance(db: Db, host: string, project: string, vcpus: number, ram: number, disk: number): Promise<void> {
  const now = isoNow();
  await db.insertInto('instances').values({
    uuid: randomUUID(), id: Math.floor(Math.random() * 1e9), display_name: 'vm', display_description: null, hostname: 'vm', project_id: project, user_id: 'u',
    image_ref: 'img', flavor: '{}', vcpus, memory_mb: ram, root_gb: disk, ephemeral_gb: 1, swap_mb: 0, host, availability_zone: 'nova', requested_az: null,
    vm_state: 'active', task_state: null, power_state: 1, key_name: null, key_data: null, user_data: null, config_drive: '', access_ip_v4: '', access_ip_v6: '',
    networks: '"auto"', ssh_port: null, locked: 0, locked_by: null, locked_reason: null, server_group_id: null, reservation_id: 'r-1', launch_index: 0,
    progress: 0, fault: null, system_metadata: '{}', created_at: now, updated_at: now, launched_at: now, terminated_at: null, deleted: 0, deleted_at: null,
  }).execute();
}

describe('os-hosts, hypervisor uptime, quota classes, extensions', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh } = await harness((a, deps) => {
      hostRoutes(a, deps); osHostRoutes(a, deps); quotaRoutes(a, deps); quotaClassRoutes(a, deps); extensionRoutes(a);
    }));
    call = caller(app);
    await addHost(dbh.db, 'node1', 1);
    await addHost(dbh.db, 'node2', 2, { ip: '10.0.0.2', zone: 'az2' });
    await addHost(dbh.db, 'node3', 3, { lastSeen: new Date(Date.now() - 3600_000).toISOString() });
    await addInstance(dbh.db, 'node1', 'p-one', 1, 512, 1);
    await addInstance(dbh.db, 'node1', 'p-one', 2, 1024, 2);
    await addInstance(dbh.db, 'node1', 'p-two', 1, 256, 1);
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('os-hosts list: controller services in the internal zone and enabled compute hosts; zone filter', async () => {
    assert.equal((await call('alice', 'GET', '/os-hosts')).status, 403);
    let r = await call('admin', 'GET', '/os-hosts');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.hosts, [
      { host_name: hostname(), service: 'scheduler', zone: 'internal' },
      { host_name: hostname(), service: 'conductor', zone: 'internal' },
      { host_name: 'node1', service: 'compute', zone: 'nova' },
      { host_name: 'node2', service: 'compute', zone: 'az2' },
      { host_name: 'node3', service: 'compute', zone: 'nova' },
    ]);
    r = await call('admin', 'GET', '/os-hosts?zone=az2');
    assert.deepEqual(r.body.hosts, [{ host_name: 'node2', service: 'compute', zone: 'az2' }]);
    assert.deepEqual((await call('admin', 'GET', '/os-hosts?zone=xxx')).body.hosts, []);
    assert.equal((await call('admin', 'GET', '/os-hosts?zone=')).body.hosts.length, 5);
    assert.equal((await call('admin', 'GET', '/os-hosts', undefined, '2.43')).status, 404);
  });

  test('os-hosts show: totals, used now, used by instances, then per project', async () => {
    const r = await call('admin', 'GET', '/os-hosts/node1');
    assert.equal(r.status, 200);
    const rows = r.body.host.map((x: { resource: Record<string, unknown> }) => x.resource);
    assert.deepEqual(rows[0], { host: 'node1', project: '(total)', cpu: 4, memory_mb: 8192, disk_gb: 100 });
    assert.deepEqual(rows[1], { host: 'node1', project: '(used_now)', cpu: 3, memory_mb: 1536, disk_gb: 4 });
    assert.deepEqual(rows[2], { host: 'node1', project: '(used_max)', cpu: 4, memory_mb: 1792, disk_gb: 7 });
    assert.deepEqual(rows.slice(3), [
      { host: 'node1', project: 'p-one', cpu: 3, memory_mb: 1536, disk_gb: 5 },
      { host: 'node1', project: 'p-two', cpu: 1, memory_mb: 256, disk_gb: 2 },
    ]);
    assert.equal((await call('admin', 'GET', '/os-hosts/nonexistent_hostname')).status, 404);
    assert.equal((await call('admin', 'GET', `/os-hosts/${hostname()}`)).status, 404);
    assert.equal((await call('alice', 'GET', '/os-hosts/node1')).status, 403);
  });

  test('os-hosts update: status and maintenance mode switch the compute service', async () => {
    let r = await call('admin', 'PUT', '/os-hosts/node2', { status: 'disable' });
    assert.deepEqual(r.body, { host: 'node2', status: 'disabled' });
    let svc = (await call('admin', 'GET', '/os-services?host=node2')).body.services[0];
    assert.equal(svc.status, 'disabled');
    assert.equal((await call('admin', 'GET', '/os-hosts')).body.hosts.some((h: { host_name: string }) => h.host_name === 'node2'), false);
    r = await call('admin', 'PUT', '/os-hosts/node2', { status: 'Enable', maintenance_mode: 'enable' });
    assert.deepEqual(r.body, { host: 'node2', status: 'enabled', maintenance_mode: 'on_maintenance' });
    svc = (await call('admin', 'GET', '/os-services?host=node2')).body.services[0];
    assert.equal(svc.status, 'disabled');
    assert.equal(svc.disabled_reason, 'maintenance');
    r = await call('admin', 'PUT', '/os-hosts/node2', { maintenance_mode: 'DISABLE' });
    assert.deepEqual(r.body, { host: 'node2', maintenance_mode: 'off_maintenance' });
    assert.equal((await call('admin', 'GET', '/os-services?host=node2')).body.services[0].status, 'enabled');
  });

  test('os-hosts update: 400 for bad or missing values, 404 unknown host, 403 non-admin', async () => {
    assert.equal((await call('admin', 'PUT', '/os-hosts/node1', { status: 'invalid', maintenance_mode: 'enable' })).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-hosts/node1', { status: 'enable', maintenance_mode: 'invalid' })).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-hosts/node1', {})).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-hosts/node1', { host: 'x' })).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-hosts/nonexistent_hostname', { status: 'enable', maintenance_mode: 'enable' })).status, 404);
    assert.equal((await call('alice', 'PUT', '/os-hosts/node1', { status: 'enable', maintenance_mode: 'enable' })).status, 403);
  });

  test('os-hosts power actions: 501 (not supported), 404 unknown host, 403 non-admin', async () => {
    for (const action of ['startup', 'shutdown', 'reboot']) {
      const r = await call('admin', 'GET', `/os-hosts/node1/${action}`);
      assert.equal(r.status, 501, action);
      assert.deepEqual(r.body, { notImplemented: { code: 501, message: 'The requested functionality is not supported.' } });
      assert.equal((await call('admin', 'GET', `/os-hosts/nonexistent_hostname/${action}`)).status, 404);
      assert.equal((await call('alice', 'GET', `/os-hosts/node1/${action}`)).status, 403);
    }
  });

  test('hypervisor uptime: this machine for a local agent, 501 for a remote one, 400 when down', async () => {
    let r = await call('admin', 'GET', '/os-hypervisors/1/uptime');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body.hypervisor).sort(), ['hypervisor_hostname', 'id', 'state', 'status', 'uptime']);
    assert.match(r.body.hypervisor.uptime, /^ \d\d:\d\d:\d\d up .+,  load average: \d+\.\d\d, \d+\.\d\d, \d+\.\d\d$/);
    assert.equal((await call('admin', 'GET', '/os-hypervisors/2/uptime')).status, 501);
    r = await call('admin', 'GET', '/os-hypervisors/3/uptime');
    assert.equal(r.status, 400);
    assert.equal(r.body.badRequest.message, 'Compute service of node3 is unavailable at this time.');
    assert.equal((await call('admin', 'GET', '/os-hypervisors/9/uptime')).status, 404);
    assert.equal((await call('alice', 'GET', '/os-hypervisors/1/uptime')).status, 403);
  });

  test('2.88: uptime is in the hypervisor show (null when unknown), the uptime route is gone', async () => {
    const list = (await call('admin', 'GET', '/os-hypervisors', undefined, '2.88')).body.hypervisors;
    const id = (name: string) => list.find((h: { hypervisor_hostname: string }) => h.hypervisor_hostname === name).id;
    let r = await call('admin', 'GET', `/os-hypervisors/${id('node1')}`, undefined, '2.88');
    assert.match(r.body.hypervisor.uptime, / up /);
    r = await call('admin', 'GET', `/os-hypervisors/${id('node2')}`, undefined, '2.88');
    assert.equal(r.body.hypervisor.uptime, null);
    r = await call('admin', 'GET', `/os-hypervisors/${id('node3')}`, undefined, '2.88');
    assert.equal(r.body.hypervisor.uptime, null);
    assert.equal((await call('admin', 'GET', `/os-hypervisors/${id('node1')}/uptime`, undefined, '2.88')).status, 404);
  });

  test('uptimeLine formats like uptime(1)', () => {
    const now = new Date(2024, 0, 1, 8, 32, 11);
    assert.equal(uptimeLine(now, 93 * 86400 + 18 * 3600 + 25 * 60, [0.2, 0.16, 0.2]), ' 08:32:11 up 93 days, 18:25,  load average: 0.20, 0.16, 0.20');
    assert.equal(uptimeLine(now, 86400 + 300, [1, 2, 3]), ' 08:32:11 up 1 day, 5 min,  load average: 1.00, 2.00, 3.00');
    assert.equal(uptimeLine(now, 42 * 60, [0, 0, 0]), ' 08:32:11 up 42 min,  load average: 0.00, 0.00, 0.00');
  });

  test('quota classes: admin only; the default class shows the defaults per microversion', async () => {
    assert.equal((await call('alice', 'GET', '/os-quota-class-sets/default')).status, 403);
    assert.equal((await call('alice', 'PUT', '/os-quota-class-sets/default', { quota_class_set: { instances: 5 } })).status, 403);
    let r = await call('admin', 'GET', '/os-quota-class-sets/default');
    assert.deepEqual(r.body.quota_class_set, {
      id: 'default', instances: 10, cores: 20, ram: 51200, metadata_items: 128, key_pairs: 100, injected_files: 5,
      injected_file_content_bytes: 10240, injected_file_path_bytes: 255, fixed_ips: -1, floating_ips: 10, security_groups: 10, security_group_rules: 20,
    });
    r = await call('admin', 'GET', '/os-quota-class-sets/default', undefined, '2.50');
    assert.deepEqual(Object.keys(r.body.quota_class_set).sort(), ['cores', 'id', 'injected_file_content_bytes', 'injected_file_path_bytes', 'injected_files',
      'instances', 'key_pairs', 'metadata_items', 'ram', 'server_group_members', 'server_groups']);
    r = await call('admin', 'GET', '/os-quota-class-sets/default', undefined, '2.57');
    assert.deepEqual(Object.keys(r.body.quota_class_set).sort(), ['cores', 'id', 'instances', 'key_pairs', 'metadata_items', 'ram', 'server_group_members', 'server_groups']);
  });

  test('quota classes: updating the default class changes every project default; no id in the answer', async () => {
    const body = { quota_class_set: { instances: 110, cores: 120, ram: 51300, metadata_items: 228, key_pairs: 200, injected_files: 105,
      injected_file_content_bytes: 10340, injected_file_path_bytes: 355, fixed_ips: 99, floating_ips: 110, security_groups: 110, security_group_rules: 120 } };
    let r = await call('admin', 'PUT', '/os-quota-class-sets/default', body);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, body);
    r = await call('admin', 'GET', '/os-quota-class-sets/default');
    assert.equal(r.body.quota_class_set.instances, 110);
    assert.equal((await call('alice', 'GET', '/os-quota-sets/p-one')).body.quota_set.instances, 110);
    assert.equal((await call('alice', 'GET', '/os-quota-sets/p-one/defaults')).body.quota_set.cores, 120);
    r = await call('admin', 'PUT', '/os-quota-class-sets/default', { quota_class_set: { server_groups: 12 } });
    assert.equal(r.status, 200);
    assert.equal((await call('admin', 'GET', '/os-quota-class-sets/default', undefined, '2.50')).body.quota_class_set.server_groups, 12);
    // Put the defaults back for the other tests.
    await dbh.db.deleteFrom('quotas').where('project_id', '=', '__default__').execute();
  });

  test('quota classes: other classes keep their own values over the defaults; bad input 400', async () => {
    let r = await call('admin', 'PUT', '/os-quota-class-sets/gold', { quota_class_set: { instances: 50, cores: '60' } }, '2.57');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.quota_class_set, { instances: 50, cores: 60, ram: 51200, metadata_items: 128, key_pairs: 100, server_groups: 10, server_group_members: 10 });
    r = await call('admin', 'GET', '/os-quota-class-sets/gold', undefined, '2.57');
    assert.equal(r.body.quota_class_set.id, 'gold');
    assert.equal(r.body.quota_class_set.instances, 50);
    assert.equal((await call('admin', 'GET', '/os-quota-class-sets/default')).body.quota_class_set.instances, 10);
    const longName = 'x'.repeat(90); // longer than the quota rows' 64-character key
    assert.equal((await call('admin', 'PUT', `/os-quota-class-sets/${longName}`, { quota_class_set: { instances: 3 } })).status, 200);
    assert.equal((await call('admin', 'GET', `/os-quota-class-sets/${longName}`)).body.quota_class_set.instances, 3);
    assert.equal((await call('admin', 'PUT', '/os-quota-class-sets/gold', { quota_class_set: { instances: -2 } })).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-quota-class-sets/gold', { quota_class_set: { instances: 'many' } })).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-quota-class-sets/gold', { quota_class_set: { floating_ips: 1 } }, '2.50')).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-quota-class-sets/gold', { quota_class_set: { injected_files: 1 } }, '2.57')).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-quota-class-sets/gold', { quota_set: { instances: 1 } })).status, 400);
  });

  test('extensions: the fixed list for anyone; one by alias; unknown alias 404', async () => {
    const r = await call('bob', 'GET', '/extensions');
    assert.equal(r.status, 200);
    assert.ok(r.body.extensions.some((e: { name: string }) => e.name === 'Hosts'));
    for (const e of r.body.extensions) {
      assert.deepEqual(Object.keys(e).sort(), ['alias', 'description', 'links', 'name', 'namespace', 'updated']);
    }
    assert.equal(new Set(r.body.extensions.map((e: { alias: string }) => e.alias)).size, r.body.extensions.length);
    const one = await call('bob', 'GET', '/extensions/os-consoles');
    assert.equal(one.body.extension.alias, 'os-consoles');
    assert.equal((await call('bob', 'GET', '/extensions/os-nothing')).status, 404);
  });
});
