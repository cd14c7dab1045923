import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { OpenDatabase } from '../../../db/index.ts';
import type { AgentView } from '../agents.ts';
import { caller, harness, type App } from './test-harness.ts';

describe('agents (read-only, from the compute hosts)', () => {
  let app: App;
  let dbh: OpenDatabase;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh } = await harness());
    call = caller(app);
    const now = new Date();
    for (const [host, id, seen] of [['h1', 1, now], ['h2', 2, new Date(now.getTime() - 600_000)]] as const) {
      await dbh.db.insertInto('compute_hosts').values({
        host, id, uuid: randomUUID(), service_uuid: randomUUID(), host_ip: `10.0.0.${id}`, hypervisor_type: 'QEMU', hypervisor_version: 8002000,
        accel: 'tcg', cpu_model: 'qemu64', arch: 'x86_64', vcpus: 4, memory_mb: 8192, local_gb: 100, vcpus_used: 0, memory_mb_used: 0,
        local_gb_used: 0, running_vms: 0, availability_zone: 'nova', enabled: 1, disabled_reason: null, forced_down: 0, agent_version: '1',
        last_seen: seen.toISOString(), created_at: now.toISOString(),
      }).execute();
    }
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('admins see four agents per host, alive by heartbeat; filters and show; members see none', async () => {
    const r = await call('admin', 'GET', '/agents');
    assert.equal(r.status, 200);
    const agents = (r.body as { agents: AgentView[] }).agents;
    assert.equal(agents.length, 8);
    const l3 = agents.filter((a) => a.agent_type === 'L3 agent');
    assert.deepEqual(l3.map((a) => [a.host, a.alive, a.binary, a.availability_zone]).sort(), [['h1', true, 'neutron-l3-agent', 'nova'], ['h2', false, 'neutron-l3-agent', 'nova']]);
    const f = await call('admin', 'GET', '/agents?agent_type=DHCP+agent&host=h1');
    const one = (f.body as { agents: AgentView[] }).agents;
    assert.deepEqual(one.map((a) => [a.agent_type, a.host]), [['DHCP agent', 'h1']]);
    const shown = await call('admin', 'GET', `/agents/${one[0]!.id}`);
    assert.equal((shown.body as { agent: AgentView }).agent.id, one[0]!.id, 'ids are stable');
    assert.deepEqual((await call('alice', 'GET', '/agents')).body, { agents: [] });
    assert.equal((await call('alice', 'GET', `/agents/${one[0]!.id}`)).status, 404);
  });
});
