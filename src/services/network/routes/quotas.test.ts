import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import { caller, harness, type App } from './test-harness.ts';

const DEFAULTS = { network: 100, subnet: 100, port: 500, router: 10, floatingip: 50, security_group: 10, security_group_rule: 100, rbac_policy: 10, subnetpool: -1 };

describe('quotas', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh } = await harness());
    call = caller(app);
  });
  after(async () => { await app.close(); await dbh.close(); });

  test("defaults, a project's own view, admin changes, details with usage, reset", async () => {
    assert.deepEqual((await call('alice', 'GET', '/quotas/p-one')).body.quota, DEFAULTS);
    assert.deepEqual((await call('rita', 'GET', '/quotas/p-one/default')).body.quota, DEFAULTS);
    assert.deepEqual((await call('alice', 'GET', '/quotas/tenant')).body.tenant, { tenant_id: 'p-one' });
    assert.deepEqual((await call('admin', 'GET', '/quotas')).body.quotas, [], 'no project has its own limits yet');

    const set = await call('admin', 'PUT', '/quotas/p-one', { quota: { network: 2, port: '7', subnet: -1 } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.quota, { ...DEFAULTS, network: 2, port: 7, subnet: -1 });
    assert.deepEqual((await call('alice', 'GET', '/quotas/p-one')).body.quota, { ...DEFAULTS, network: 2, port: 7, subnet: -1 });
    assert.deepEqual((await call('admin', 'GET', '/quotas')).body.quotas, [{ ...DEFAULTS, network: 2, port: 7, subnet: -1, project_id: 'p-one', tenant_id: 'p-one' }]);

    const n = (await call('alice', 'POST', '/networks', { network: { name: 'q1' } })).body.network!.id;
    await call('alice', 'POST', '/networks', { network: { name: 'q2' } });
    const over = await call('alice', 'POST', '/networks', { network: { name: 'q3' } });
    assert.equal(over.status, 409);
    assert.deepEqual(over.body.NeutronError, { type: 'OverQuota', message: "Quota exceeded for resources: ['network'].", detail: '' });
    assert.equal((await call('alice', 'GET', '/networks')).body.networks!.length, 2, 'the refused network was not made');
    await call('alice', 'POST', '/subnets', { subnet: { network_id: n, ip_version: 4, cidr: '10.0.0.0/24' } });
    await call('alice', 'POST', '/ports', { port: { network_id: n } });

    for (const path of ['/quotas/p-one/details.json', '/quotas/p-one/details']) {
      const d = (await call('alice', 'GET', path)).body.quota!;
      assert.deepEqual(d.network, { used: 2, limit: 2, reserved: 0 });
      assert.deepEqual(d.subnet, { used: 1, limit: -1, reserved: 0 });
      assert.deepEqual(d.port, { used: 1, limit: 7, reserved: 0 });
      assert.deepEqual(d.security_group, { used: 1, limit: 10, reserved: 0 }, 'the default group');
      assert.deepEqual(d.security_group_rule, { used: 4, limit: 100, reserved: 0 });
      assert.deepEqual(d.router, { used: 0, limit: 10, reserved: 0 });
    }

    let r = await call('admin', 'PUT', '/quotas/p-one', { quota: { network: 1, check_limit: true } });
    assert.equal(r.status, 400, 'check_limit refuses a limit under the usage');
    assert.equal(r.body.NeutronError?.message, 'Quota limit 1 for network must be greater than or equal to already used and reserved 2.');
    assert.equal((await call('admin', 'PUT', '/quotas/p-one', { quota: { network: 1 } })).body.quota!.network, 1, 'without it, the limit is just set');
    assert.equal((await call('admin', 'DELETE', '/quotas/p-one')).status, 204);
    assert.deepEqual((await call('alice', 'GET', '/quotas/p-one')).body.quota, DEFAULTS);
    r = await call('admin', 'DELETE', '/quotas/p-one');
    assert.equal(r.status, 404);
    assert.equal(r.body.NeutronError?.type, 'TenantQuotaNotFound');
  });

  test('bad values and callers', async () => {
    const bad: [object, string][] = [
      [{ network: 'lots' }, "Invalid input for network. Reason: 'lots' is not an integer."],
      [{ network: -2 }, "Invalid input for network. Reason: '-2' is too small - must be at least '-1'."],
      [{ widgets: 3 }, "Unrecognized attribute(s) 'widgets'"],
    ];
    for (const [quota, message] of bad) {
      const r = await call('admin', 'PUT', '/quotas/p-two', { quota });
      assert.equal(r.status, 400);
      assert.equal(r.body.NeutronError?.message, message);
    }
    assert.equal((await call('admin', 'PUT', '/quotas/p-two', { nope: {} })).status, 400);
    assert.deepEqual((await call('admin', 'GET', '/quotas')).body.quotas, [], 'nothing was stored');
    const mine = await call('alice', 'PUT', '/quotas/p-one', { quota: { network: 1000 } });
    assert.equal(mine.status, 403);
    assert.equal(mine.body.NeutronError?.message, '(rule:update_quota) is disallowed by policy');
    assert.equal((await call('alice', 'DELETE', '/quotas/p-one')).status, 403);
    assert.equal((await call('alice', 'GET', '/quotas/p-two')).status, 403, "another project's quotas");
    assert.equal((await call('alice', 'GET', '/quotas')).status, 403);
    assert.equal((await call('admin', 'GET', '/quotas/p-two')).status, 200);
  });
});
