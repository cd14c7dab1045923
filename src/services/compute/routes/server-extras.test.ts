import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isoNow, type Db, type OpenDatabase } from '../../../db/index.ts';
import type { AgentQueries, LiveInstanceState } from '../agent-queries.ts';
import { addresses } from '../render.ts';
import * as store from '../store.ts';
import { externalEventRoutes } from './external-events.ts';
import { serverExtraRoutes } from './server-extras.ts';
import { caller, harness, type App } from './test-harness.ts';

const FLAVOR = { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0, rxtx_factor: 1, is_public: true, disabled: false, description: null, extra_specs: {} };

async function addInstance(db: Db, opts: { project?: string; host?: string | null; networks?: string; vcpus?: number; sys?: Record<string, string>; vm?: string } = {}): Promise<string> {
  const uuid = randomUUID();
  const now = isoNow();
  const flavor = { ...FLAVOR, vcpus: opts.vcpus ?? 1 };
  await db.insertInto('instances').values({
    uuid, id: Math.floor(Math.random() * 1e9), display_name: 'vm', display_description: null, hostname: 'vm', project_id: opts.project ?? 'p-one', user_id: 'u-alice',
    image_ref: 'img', flavor: JSON.stringify(flavor), vcpus: flavor.vcpus, memory_mb: 512, root_gb: 1, ephemeral_gb: 0, swap_mb: 0,
    host: opts.host === undefined ? 'node1' : opts.host, availability_zone: 'nova', requested_az: null,
    vm_state: opts.vm ?? 'active', task_state: null, power_state: 1, key_name: null, key_data: null, user_data: null, config_drive: '', access_ip_v4: '', access_ip_v6: '',
    networks: opts.networks ?? '"auto"', ssh_port: null, locked: 0, locked_by: null, locked_reason: null, server_group_id: null, reservation_id: 'r-1', launch_index: 0,
    progress: 0, fault: null, system_metadata: JSON.stringify(opts.sys ?? {}), created_at: now, updated_at: now,
    launched_at: new Date(Date.now() - 120_000).toISOString(), terminated_at: null, deleted: 0, deleted_at: null,
  }).execute();
  return uuid;
}

describe('server ips, password, diagnostics and external events', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  const live = new Map<string, LiveInstanceState>();
  const posted = new Map<string, string>();
  const agents: AgentQueries = {
    async instanceState(_host, uuid) {
      const s = live.get(uuid);
      if (!s) throw new Error('no reply on gureum.agent.node1.state within 5000 ms');
      return s;
    },
    async password(_host, uuid) { return posted.get(uuid) ?? ''; },
    async clearPassword(_host, uuid) { posted.delete(uuid); },
  };
  let vm: string;
  before(async () => {
    ({ app, dbh } = await harness((a, deps) => { serverExtraRoutes(a, deps, agents); externalEventRoutes(a, deps); }));
    call = caller(app);
    vm = await addInstance(dbh.db, { sys: { password: 'c2VjcmV0' } });
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('ips lists the addresses by network; one network by label; unknown label 404', async () => {
    // The same addresses the server document shows, without the OS-EXT-IPS extensions.
    const shown = addresses((await store.getInstance(dbh.db, vm))!).user!;
    assert.equal(shown.length, 1);
    const user = [{ version: 4, addr: shown[0]!.addr }];
    let r = await call('alice', 'GET', `/servers/${vm}/ips`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { addresses: { user } });
    r = await call('alice', 'GET', `/servers/${vm}/ips/user`);
    assert.deepEqual(r.body, { user });
    r = await call('alice', 'GET', `/servers/${vm}/ips/private`);
    assert.equal(r.status, 404);
    assert.equal(r.body.itemNotFound.message, 'Instance is not a member of specified network');
    const none = await addInstance(dbh.db, { networks: '"none"' });
    assert.deepEqual((await call('alice', 'GET', `/servers/${none}/ips`)).body, { addresses: {} });
  });

  test("another project's server is 404; an unknown one too", async () => {
    for (const path of ['ips', 'ips/user', 'os-server-password']) {
      const r = await call('bob', 'GET', `/servers/${vm}/${path}`);
      assert.equal(r.status, 404, path);
      assert.match(r.body.itemNotFound.message, /could not be found/);
    }
    assert.equal((await call('bob', 'DELETE', `/servers/${vm}/os-server-password`)).status, 404);
    assert.equal((await call('alice', 'GET', `/servers/${randomUUID()}/ips`)).status, 404);
  });

  test('os-server-password: the stored password, cleared by DELETE (204), then ""', async () => {
    let r = await call('alice', 'GET', `/servers/${vm}/os-server-password`);
    assert.deepEqual(r.body, { password: 'c2VjcmV0' });
    r = await call('alice', 'DELETE', `/servers/${vm}/os-server-password`);
    assert.equal(r.status, 204);
    r = await call('alice', 'GET', `/servers/${vm}/os-server-password`);
    assert.deepEqual(r.body, { password: '' });
    assert.equal((await call('alice', 'DELETE', `/servers/${vm}/os-server-password`)).status, 204);
    const row = await dbh.db.selectFrom('instances').select('system_metadata').where('uuid', '=', vm).executeTakeFirstOrThrow();
    assert.deepEqual(JSON.parse(row.system_metadata), {});
    // What the guest posted to its metadata service (kept on its host) wins; DELETE clears it there too.
    posted.set(vm, 'ZnJvbS1ndWVzdA==');
    assert.deepEqual((await call('alice', 'GET', `/servers/${vm}/os-server-password`)).body, { password: 'ZnJvbS1ndWVzdA==' });
    assert.equal((await call('alice', 'DELETE', `/servers/${vm}/os-server-password`)).status, 204);
    assert.equal(posted.has(vm), false);
    assert.deepEqual((await call('alice', 'GET', `/servers/${vm}/os-server-password`)).body, { password: '' });
  });

  test('diagnostics are admin only (403 even for the owner)', async () => {
    const r = await call('alice', 'GET', `/servers/${vm}/diagnostics`);
    assert.equal(r.status, 403);
    assert.ok(r.body.forbidden);
    assert.equal((await call('admin', 'GET', `/servers/${randomUUID()}/diagnostics`)).status, 404);
  });

  test('diagnostics before 2.48: libvirt-style keys with what is measured', async () => {
    live.set(vm, { exists: true, power: 1, cpuTimeNs: 17_300_000_000, memoryKb: 204_800 });
    const r = await call('admin', 'GET', `/servers/${vm}/diagnostics`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { memory: 524288, 'memory-actual': 524288, 'memory-rss': 204800, cpu0_time: 17_300_000_000 });
  });

  test('diagnostics at 2.48: the standard format, every field present', async () => {
    const r = await call('admin', 'GET', `/servers/${vm}/diagnostics`, undefined, '2.48');
    assert.equal(r.status, 200);
    const d = r.body;
    assert.deepEqual(Object.keys(d).sort(), ['config_drive', 'cpu_details', 'disk_details', 'driver', 'hypervisor', 'hypervisor_os', 'memory_details',
      'nic_details', 'num_cpus', 'num_disks', 'num_nics', 'state', 'uptime'].sort());
    assert.equal(d.state, 'running');
    assert.equal(d.driver, 'libvirt');
    assert.equal(d.config_drive, false);
    assert.equal(d.num_cpus, 1);
    assert.equal(d.num_nics, 1);
    assert.equal(d.num_disks, 1);
    assert.deepEqual(d.memory_details, { maximum: 512, used: 200 });
    assert.deepEqual(d.cpu_details, [{ id: 0, time: 17_300_000_000, utilisation: null }]);
    assert.equal(d.nic_details[0].mac_address, null);
    assert.equal(d.disk_details.length, 1);
    assert.ok(d.uptime >= 119 && d.uptime < 3600, String(d.uptime));
  });

  test('diagnostics with several vCPUs give no per-vCPU time (only the whole process is measured)', async () => {
    const two = await addInstance(dbh.db, { vcpus: 2 });
    live.set(two, { exists: true, power: 1, cpuTimeNs: 5e9, memoryKb: 1024 });
    const d = (await call('admin', 'GET', `/servers/${two}/diagnostics`, undefined, '2.48')).body;
    assert.deepEqual(d.cpu_details, [{ id: 0, time: null, utilisation: null }, { id: 1, time: null, utilisation: null }]);
    assert.equal('cpu0_time' in (await call('admin', 'GET', `/servers/${two}/diagnostics`)).body, false);
  });

  test('diagnostics of a guest not running, not scheduled or unreachable: 409', async () => {
    const off = await addInstance(dbh.db, { vm: 'stopped' });
    live.set(off, { exists: true, power: 4 });
    let r = await call('admin', 'GET', `/servers/${off}/diagnostics`);
    assert.equal(r.status, 409);
    assert.equal(r.body.conflictingRequest.message, `Cannot 'get_diagnostics' instance ${off} while it is in power state shutdown`);
    const unscheduled = await addInstance(dbh.db, { host: null, vm: 'building' });
    r = await call('admin', 'GET', `/servers/${unscheduled}/diagnostics`);
    assert.equal(r.status, 409);
    const silent = await addInstance(dbh.db);
    r = await call('admin', 'GET', `/servers/${silent}/diagnostics`);
    assert.equal(r.status, 409);
    assert.match(r.body.conflictingRequest.message, /not available/);
  });

  test('external events: admin only; 200 when every event is accepted', async () => {
    const events = [{ name: 'network-changed', server_uuid: vm }];
    assert.equal((await call('alice', 'POST', '/os-server-external-events', { events })).status, 403);
    const r = await call('admin', 'POST', '/os-server-external-events', { events });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { events: [{ name: 'network-changed', server_uuid: vm, status: 'completed', code: 200 }] });
  });

  test('external events: per-event 404/422/400 and an overall 207', async () => {
    const unknown = randomUUID();
    const unscheduled = await addInstance(dbh.db, { host: null, vm: 'building' });
    const r = await call('admin', 'POST', '/os-server-external-events', {
      events: [
        { name: 'network-vif-plugged', server_uuid: vm, tag: 'port-1' },
        { name: 'network-vif-plugged', server_uuid: unknown },
        { name: 'network-changed', server_uuid: unscheduled },
        { name: 'power-update', server_uuid: vm },
      ],
    }, '2.76');
    assert.equal(r.status, 207);
    assert.deepEqual(r.body.events.map((e: { code: number; status: string }) => [e.code, e.status]),
      [[200, 'completed'], [404, 'failed'], [422, 'failed'], [400, 'failed']]);
    assert.equal(r.body.events[0].tag, 'port-1');
  });

  test('external events: names by microversion, body validated', async () => {
    let r = await call('admin', 'POST', '/os-server-external-events', { events: [{ name: 'power-update', server_uuid: vm, tag: 'POWER_ON' }] });
    assert.equal(r.status, 400);
    r = await call('admin', 'POST', '/os-server-external-events', { events: [] });
    assert.equal(r.status, 400);
    r = await call('admin', 'POST', '/os-server-external-events', { events: [{ name: 'network-changed', server_uuid: vm, extra: 1 }] });
    assert.equal(r.status, 400);
    r = await call('admin', 'POST', '/os-server-external-events', { events: [{ name: 'network-changed', server_uuid: 'not-a-uuid' }] });
    assert.equal(r.status, 400);
  });

  test('a power-update event is recorded as an instance action (start) with its event', async () => {
    const r = await call('admin', 'POST', '/os-server-external-events', { events: [{ name: 'power-update', server_uuid: vm, tag: 'POWER_ON' }] }, '2.76');
    assert.equal(r.status, 200);
    const action = await dbh.db.selectFrom('instance_actions').selectAll().where('instance_uuid', '=', vm).where('action', '=', 'start').executeTakeFirst();
    assert.ok(action);
    const ev = await dbh.db.selectFrom('instance_action_events').selectAll().where('action_id', '=', action.id).execute();
    assert.deepEqual(ev.map((e) => e.event), ['compute_power_update']);
    assert.equal(ev[0]!.host, 'node1');
  });
});
