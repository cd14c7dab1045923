import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isoNow, type OpenDatabase } from '../../../db/index.ts';
import type { ComputeDeps } from '../deps.ts';
import * as store from '../store.ts';
import { effectiveQuotas, quotaRoutes } from './quotas.ts';
import { caller, harness, type App } from './test-harness.ts';


describe('quotas and limits', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: ComputeDeps;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh, deps } = await harness(quotaRoutes));
    call = caller(app);
    // Two instances (3 cores, 1536 MB) and a server group in p-one, a keypair for alice.
    for (const [vcpus, ram] of [[1, 512], [2, 1024]]) {
      const now = isoNow();
      await dbh.db.insertInto('instances').values({
        uuid: randomUUID(), id: vcpus, display_name: 'vm', display_description: null, hostname: 'vm', project_id: 'p-one', user_id: 'u-alice',
        image_ref: 'img', flavor: '{}', vcpus, memory_mb: ram, root_gb: 1, ephemeral_gb: 0, swap_mb: 0, host: 'h', availability_zone: 'nova', requested_az: null,
        vm_state: 'active', task_state: null, power_state: 1, key_name: null, key_data: null, user_data: null, config_drive: '', access_ip_v4: '', access_ip_v6: '',
        networks: '"auto"', ssh_port: null, locked: 0, locked_by: null, locked_reason: null, server_group_id: null, reservation_id: 'r', launch_index: 0,
        progress: 0, fault: null, system_metadata: '{}', created_at: now, updated_at: now, launched_at: now, terminated_at: null, deleted: 0, deleted_at: null,
      }).execute();
    }
    await store.insertServerGroup(dbh.db, { id: randomUUID(), name: 'g', project_id: 'p-one', user_id: 'u-alice', policy: 'affinity', rules: '{}', created_at: isoNow() });
    await store.insertKeypair(dbh.db, { user_id: 'u-alice', name: 'k', type: 'ssh', public_key: 'x', fingerprint: 'f', created_at: isoNow() });
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('show: defaults with id; fields per microversion (2.36 network, 2.57 injected files)', async () => {
    let r = await call('alice', 'GET', '/os-quota-sets/p-one');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.quota_set, {
      id: 'p-one', instances: 10, cores: 20, ram: 51200, metadata_items: 128, key_pairs: 100, server_groups: 10, server_group_members: 10,
      injected_files: 5, injected_file_content_bytes: 10240, injected_file_path_bytes: 255,
      fixed_ips: -1, floating_ips: 10, security_groups: 10, security_group_rules: 20,
    });
    r = await call('alice', 'GET', '/os-quota-sets/p-one', undefined, '2.36');
    assert.ok(!('floating_ips' in r.body.quota_set) && 'injected_files' in r.body.quota_set);
    r = await call('alice', 'GET', '/os-quota-sets/p-one', undefined, '2.57');
    assert.deepEqual(Object.keys(r.body.quota_set).sort(), ['cores', 'id', 'instances', 'key_pairs', 'metadata_items', 'ram', 'server_group_members', 'server_groups']);
    r = await call('bob', 'GET', '/os-quota-sets/p-two/defaults', undefined, '2.57');
    assert.equal(r.body.quota_set.id, 'p-two');
    assert.equal(r.body.quota_set.instances, 10);
  });

  test('detail has in_use/limit/reserved from usage', async () => {
    const r = await call('alice', 'GET', '/os-quota-sets/p-one/detail', undefined, '2.57');
    assert.deepEqual(r.body.quota_set.instances, { in_use: 2, limit: 10, reserved: 0 });
    assert.deepEqual(r.body.quota_set.cores, { in_use: 3, limit: 20, reserved: 0 });
    assert.deepEqual(r.body.quota_set.ram, { in_use: 1536, limit: 51200, reserved: 0 });
    assert.deepEqual(r.body.quota_set.server_groups, { in_use: 1, limit: 10, reserved: 0 });
    assert.deepEqual(r.body.quota_set.key_pairs, { in_use: 1, limit: 100, reserved: 0 });
  });

  test('policy: members read their own project only; updates are admin only', async () => {
    assert.equal((await call('bob', 'GET', '/os-quota-sets/p-one')).status, 403);
    assert.equal((await call('bob', 'GET', '/os-quota-sets/p-one/detail')).status, 403);
    assert.equal((await call('admin', 'GET', '/os-quota-sets/p-one')).status, 200);
    assert.equal((await call('alice', 'PUT', '/os-quota-sets/p-one', { quota_set: { instances: 50 } })).status, 403);
    assert.equal((await call('alice', 'DELETE', '/os-quota-sets/p-one')).status, 403);
  });

  test('update: validation, refusal below usage unless force, revert', async () => {
    let r = await call('admin', 'PUT', '/os-quota-sets/p-one', { quota_set: { instances: 50, cores: '40', ram: -1 } }, '2.57');
    assert.equal(r.status, 200);
    assert.ok(!('id' in r.body.quota_set));
    assert.equal(r.body.quota_set.instances, 50);
    assert.equal(r.body.quota_set.cores, 40);
    assert.equal(r.body.quota_set.ram, -1);
    assert.equal((await effectiveQuotas(deps, 'p-one')).instances, 50);
    assert.equal((await effectiveQuotas(deps, 'p-two')).instances, 10);
    for (const bad of [{ instances: -2 }, { instances: 'x' }, { instances: 1.5 }, { bogus: 1 }]) {
      r = await call('admin', 'PUT', '/os-quota-sets/p-one', { quota_set: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.badRequest.code, 400);
    }
    assert.equal((await call('admin', 'PUT', '/os-quota-sets/p-one', { quota_set: { floating_ips: 3 } }, '2.36')).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-quota-sets/p-one', { quota_set: { injected_files: 3 } }, '2.57')).status, 400);
    assert.equal((await call('admin', 'PUT', '/os-quota-sets/p-one', { quota_set: { injected_files: 3 } }, '2.56')).status, 200);
    r = await call('admin', 'PUT', '/os-quota-sets/p-one', { quota_set: { instances: 1 } });
    assert.equal(r.body.badRequest.message, 'Quota limit 1 for instances must be greater than or equal to already used and reserved 2.');
    assert.equal((await call('admin', 'PUT', '/os-quota-sets/p-one', { quota_set: { instances: 1, force: true } })).status, 200);
    assert.equal((await effectiveQuotas(deps, 'p-one')).instances, 1);
    assert.equal((await call('admin', 'DELETE', '/os-quota-sets/p-one')).status, 202);
    assert.equal((await effectiveQuotas(deps, 'p-one')).instances, 10);
  });

  test('__default__ rows override configured defaults', async () => {
    await store.setQuotas(deps.db, '__default__', { cores: 33 });
    assert.equal((await effectiveQuotas(deps, 'p-two')).cores, 33);
    assert.equal((await call('bob', 'GET', '/os-quota-sets/p-two/defaults')).body.quota_set.cores, 33);
    await store.setQuotas(deps.db, 'p-two', { cores: 7 });
    assert.equal((await effectiveQuotas(deps, 'p-two')).cores, 7);
    await store.deleteQuotas(deps.db, '__default__');
    await store.deleteQuotas(deps.db, 'p-two');
  });

  test('limits: absolute per microversion, usage, tenant_id for admins', async () => {
    let r = await call('alice', 'GET', '/limits');
    assert.deepEqual(r.body.limits.rate, []);
    assert.deepEqual(r.body.limits.absolute, {
      maxTotalInstances: 10, maxTotalCores: 20, maxTotalRAMSize: 51200, maxServerMeta: 128, maxImageMeta: 128, maxPersonality: 5,
      maxPersonalitySize: 10240, maxTotalKeypairs: 100, maxServerGroups: 10, maxServerGroupMembers: 10, maxSecurityGroups: 10,
      maxSecurityGroupRules: 20, maxTotalFloatingIps: 10, totalInstancesUsed: 2, totalCoresUsed: 3, totalRAMUsed: 1536,
      totalServerGroupsUsed: 1, totalSecurityGroupsUsed: 0, totalFloatingIpsUsed: 0,
    });
    r = await call('alice', 'GET', '/limits', undefined, '2.36');
    assert.ok(!('maxSecurityGroups' in r.body.limits.absolute) && 'maxImageMeta' in r.body.limits.absolute);
    r = await call('alice', 'GET', '/limits', undefined, '2.39');
    assert.ok(!('maxImageMeta' in r.body.limits.absolute) && 'maxPersonality' in r.body.limits.absolute);
    r = await call('alice', 'GET', '/limits', undefined, '2.57');
    assert.deepEqual(Object.keys(r.body.limits.absolute).sort(), [
      'maxServerGroupMembers', 'maxServerGroups', 'maxServerMeta', 'maxTotalCores', 'maxTotalInstances', 'maxTotalKeypairs', 'maxTotalRAMSize',
      'totalCoresUsed', 'totalInstancesUsed', 'totalRAMUsed', 'totalServerGroupsUsed',
    ]);
    assert.equal((await call('bob', 'GET', '/limits?tenant_id=p-one')).status, 403);
    r = await call('admin', 'GET', '/limits?tenant_id=p-one');
    assert.equal(r.body.limits.absolute.totalInstancesUsed, 2);
    assert.equal((await call('bob', 'GET', '/limits')).body.limits.absolute.totalInstancesUsed, 0);
  });
});
