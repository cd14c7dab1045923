import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isoNow, type Db, type OpenDatabase } from '../../../db/index.ts';
import { caller, harness, type App } from './test-harness.ts';
import { usageRoutes } from './usage.ts';

const HOUR = 3_600_000;
const T0 = Date.parse('2024-03-10T00:00:00Z');
const at = (h: number) => isoNow(new Date(T0 + h * HOUR));
/** Query-string times as clients send them (naive UTC, microseconds). */
const q = (h: number) => new Date(T0 + h * HOUR).toISOString().replace('Z', '000');

async function addInstance(db: Db, o: { project: string; name: string; created: number; launched: number | null; terminated?: number; vcpus?: number; ram?: number; disk?: number; ephemeral?: number }): Promise<string> {
  const uuid = randomUUID();
  const flavor = { id: 'f', name: 'm1.test', vcpus: o.vcpus ?? 1, ram: o.ram ?? 512, disk: o.disk ?? 1, ephemeral: o.ephemeral ?? 0, swap: 0, rxtx_factor: 1, is_public: true, disabled: false, description: null, extra_specs: {} };
  const gone = o.terminated !== undefined;
  await db.insertInto('instances').values({
    uuid, id: Math.floor(Math.random() * 1e9), display_name: o.name, display_description: null, hostname: o.name, project_id: o.project, user_id: 'u',
    image_ref: 'img', flavor: JSON.stringify(flavor), vcpus: flavor.vcpus, memory_mb: flavor.ram, root_gb: flavor.disk, ephemeral_gb: flavor.ephemeral, swap_mb: 0,
    host: 'node1', availability_zone: 'nova', requested_az: null, vm_state: gone ? 'deleted' : 'active', task_state: null, power_state: gone ? 0 : 1,
    key_name: null, key_data: null, user_data: null, config_drive: '', access_ip_v4: '', access_ip_v6: '', networks: '"auto"', ssh_port: null,
    locked: 0, locked_by: null, locked_reason: null, server_group_id: null, reservation_id: 'r', launch_index: 0, progress: 0, fault: null,
    system_metadata: '{}', created_at: at(o.created), updated_at: at(o.created), launched_at: o.launched === null ? null : at(o.launched),
    terminated_at: gone ? at(o.terminated!) : null, deleted: gone ? 1 : 0, deleted_at: gone ? at(o.terminated!) : null,
  }).execute();
  return uuid;
}

describe('os-simple-tenant-usage and os-instance_usage_audit_log', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  const vm: Record<string, string> = {};
  before(async () => {
    ({ app, dbh } = await harness(usageRoutes));
    call = caller(app);
    // p-one: a 2-vCPU server running since hour 1, and one deleted at hour 5 (launched at hour 2).
    vm.running = await addInstance(dbh.db, { project: 'p-one', name: 'running', created: 1, launched: 1, vcpus: 2, ram: 1024, disk: 10, ephemeral: 5 });
    vm.deleted = await addInstance(dbh.db, { project: 'p-one', name: 'deleted', created: 2, launched: 2, terminated: 5 });
    // Outside the window [4, 8]: terminated at hour 3.
    vm.old = await addInstance(dbh.db, { project: 'p-one', name: 'old', created: 0, launched: 0, terminated: 3 });
    // Never launched (failed build): no usage.
    vm.failed = await addInstance(dbh.db, { project: 'p-one', name: 'failed', created: 3, launched: null });
    vm.bobs = await addInstance(dbh.db, { project: 'p-two', name: 'bobs', created: 6, launched: 6 });
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('a project reads its own usage: hours within the period, deleted servers included', async () => {
    const r = await call('alice', 'GET', `/os-simple-tenant-usage/p-one?start=${q(4)}&end=${q(8)}`);
    assert.equal(r.status, 200);
    const u = r.body.tenant_usage;
    assert.equal(u.tenant_id, 'p-one');
    assert.equal(u.start, '2024-03-10T04:00:00.000000');
    assert.equal(u.stop, '2024-03-10T08:00:00.000000');
    const byName = Object.fromEntries(u.server_usages.map((s: { name: string }) => [s.name, s]));
    assert.deepEqual(Object.keys(byName).sort(), ['deleted', 'running']);
    const run = byName.running;
    assert.equal(run.hours, 4);
    assert.equal(run.vcpus, 2);
    assert.equal(run.memory_mb, 1024);
    assert.equal(run.local_gb, 15);
    assert.equal(run.flavor, 'm1.test');
    assert.equal(run.state, 'active');
    assert.equal(run.ended_at, null);
    assert.equal(run.started_at, '2024-03-10T01:00:00.000000');
    assert.equal(run.instance_id, vm.running);
    const del = byName.deleted;
    assert.equal(del.hours, 1);
    assert.equal(del.state, 'terminated');
    assert.equal(del.ended_at, '2024-03-10T05:00:00.000000');
    assert.equal(del.uptime, 3 * 3600);
    assert.equal(u.total_hours, 5);
    assert.equal(u.total_vcpus_usage, 2 * 4 + 1);
    assert.equal(u.total_memory_mb_usage, 1024 * 4 + 512);
    assert.equal(u.total_local_gb_usage, 15 * 4 + 1);
  });

  test("another project's usage: 403 for members, allowed for admins; no usage is {}", async () => {
    assert.equal((await call('bob', 'GET', `/os-simple-tenant-usage/p-one?start=${q(4)}&end=${q(8)}`)).status, 403);
    const r = await call('admin', 'GET', `/os-simple-tenant-usage/p-one?start=${q(4)}&end=${q(8)}`);
    assert.equal(r.body.tenant_usage.server_usages.length, 2);
    assert.deepEqual((await call('admin', 'GET', `/os-simple-tenant-usage/p-none?start=${q(4)}&end=${q(8)}`)).body, { tenant_usage: {} });
  });

  test('all projects: admin only; summaries unless detailed=1', async () => {
    assert.equal((await call('alice', 'GET', '/os-simple-tenant-usage')).status, 403);
    let r = await call('admin', 'GET', `/os-simple-tenant-usage?start=${q(4)}&end=${q(8)}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.tenant_usages.map((t: { tenant_id: string }) => t.tenant_id), ['p-one', 'p-two']);
    assert.equal(Object.keys(r.body.tenant_usages[0]).length, 7);
    assert.equal('server_usages' in r.body.tenant_usages[0], false);
    assert.equal(r.body.tenant_usages[1].total_hours, 2);
    r = await call('admin', 'GET', `/os-simple-tenant-usage?start=${q(4)}&end=${q(8)}&detailed=1`);
    assert.equal(Object.keys(r.body.tenant_usages[0]).length, 8);
    assert.equal(r.body.tenant_usages[1].server_usages[0].name, 'bobs');
  });

  test('bad periods are 400; the end is capped at now', async () => {
    assert.equal((await call('admin', 'GET', `/os-simple-tenant-usage?start=${q(8)}&end=${q(4)}`)).status, 400);
    const r = await call('admin', 'GET', '/os-simple-tenant-usage?start=yesterday');
    assert.equal(r.status, 400);
    assert.equal(r.body.badRequest.message, 'Invalid datetime string: Datetime is in invalid format');
    assert.equal((await call('admin', 'GET', '/os-simple-tenant-usage?start=2024-02-30T00:00:00')).status, 400);
    const later = await call('alice', 'GET', `/os-simple-tenant-usage/p-one?start=${q(4)}&end=2999-01-01T00:00:00`);
    assert.ok(Date.parse(`${later.body.tenant_usage.stop}Z`) <= Date.now());
  });

  test('2.40 pages by server with limit/marker and a next link; before 2.40 no links', async () => {
    let r = await call('admin', 'GET', `/os-simple-tenant-usage?start=${q(4)}&end=${q(8)}&detailed=1&limit=1`, undefined, '2.40');
    assert.equal(r.body.tenant_usages.length, 1);
    assert.equal(r.body.tenant_usages[0].server_usages.length, 1);
    const next = new URL(r.body.tenant_usages_links[0].href);
    assert.equal(next.pathname, '/compute/v2.1/os-simple-tenant-usage');
    assert.equal(next.searchParams.get('marker'), vm.running);
    r = await call('admin', 'GET', `/os-simple-tenant-usage/p-one?start=${q(4)}&end=${q(8)}&limit=1&marker=${vm.running}`, undefined, '2.40');
    assert.deepEqual(r.body.tenant_usage.server_usages.map((s: { name: string }) => s.name), ['deleted']);
    assert.match(r.body.tenant_usage_links[0].href, /\/os-simple-tenant-usage\/p-one\?/);
    r = await call('admin', 'GET', `/os-simple-tenant-usage?start=${q(4)}&end=${q(8)}&limit=1`);
    assert.equal('tenant_usages_links' in r.body, false);
    assert.equal(r.body.tenant_usages.length, 2);
    assert.equal((await call('admin', 'GET', `/os-simple-tenant-usage?marker=${randomUUID()}`, undefined, '2.40')).status, 400);
  });

  test('audit log: admin only; the last completed month with no host having run the audit', async () => {
    assert.equal((await call('alice', 'GET', '/os-instance_usage_audit_log')).status, 403);
    assert.equal((await call('alice', 'GET', `/os-instance_usage_audit_log/${encodeURIComponent('2024-03-10 12:00:00')}`)).status, 403);
    await dbh.db.insertInto('compute_hosts').values({
      host: 'node1', id: 1, uuid: randomUUID(), service_uuid: randomUUID(), host_ip: '127.0.0.1', hypervisor_type: 'QEMU', hypervisor_version: 8002000,
      accel: 'tcg', cpu_model: 'qemu64', arch: 'x86_64', vcpus: 4, memory_mb: 8192, local_gb: 100, vcpus_used: 0, memory_mb_used: 0, local_gb_used: 0,
      running_vms: 0, availability_zone: 'nova', enabled: 1, disabled_reason: null, forced_down: 0, agent_version: '1', last_seen: isoNow(), created_at: isoNow(),
    }).execute();
    let r = await call('admin', 'GET', `/os-instance_usage_audit_log/${encodeURIComponent('2024-03-10 12:00:00')}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.instance_usage_audit_log, {
      period_beginning: '2024-02-01 00:00:00', period_ending: '2024-03-01 00:00:00', num_hosts: 1, num_hosts_done: 0, num_hosts_running: 0,
      num_hosts_not_run: 1, hosts_not_run: ['node1'], total_instances: 0, total_errors: 0, overall_status: '0 of 1 hosts done. 0 errors.', log: {},
    });
    r = await call('admin', 'GET', `/os-instance_usage_audit_log/${encodeURIComponent('2024-01-15 08:30:00.250000')}`);
    assert.equal(r.body.instance_usage_audit_log.period_beginning, '2023-12-01 00:00:00');
    r = await call('admin', 'GET', `/os-instance_usage_audit_log/${encodeURIComponent('2024-03-01 00:00:00')}`);
    assert.equal(r.body.instance_usage_audit_log.period_ending, '2024-02-01 00:00:00');
    r = await call('admin', 'GET', '/os-instance_usage_audit_log');
    assert.equal(r.status, 200);
    assert.ok(r.body.instance_usage_audit_logs.period_ending.endsWith('-01 00:00:00'));
    r = await call('admin', 'GET', '/os-instance_usage_audit_log/invalid_time');
    assert.equal(r.status, 400);
    assert.equal(r.body.badRequest.message, 'Invalid timestamp for date invalid_time');
  });
});
