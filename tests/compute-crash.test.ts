/**
 * kill -9 the compute agent in the middle of a build and in the middle of a delete.
 * `gureum up` restarts it; the restarted agent re-adopts its QEMU processes and the
 * controller settles the interrupted work: the instance ends ACTIVE or ERROR with a
 * fault (never stuck in a task state), a delete completes, and no QEMU process or disk
 * is left behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, openstack, passwordToken, startCloud, type Cloud, qemuProcesses } from './helpers/cloud.ts';

let cloud: Cloud;
let token: string;
let imageId: string;

const agentDir = () => join(cloud.dir, 'data', 'agent');
const instDir = (uuid: string) => join(agentDir(), 'instances', uuid);

function agentPid(): number {
  return Number(readFileSync(join(agentDir(), 'run', 'agent.pid'), 'utf8').trim());
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 120_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function show(id: string) {
  return api(cloud, 'GET', `/compute/v2.1/servers/${id}`, { token });
}

async function create(name: string): Promise<string> {
  const r = await api(cloud, 'POST', '/compute/v2.1/servers', { token, body: { server: { name, imageRef: imageId, flavorRef: '1' } } });
  assert.equal(r.status, 202, r.text);
  return r.json.server.id as string;
}

/** Kill the agent with SIGKILL and wait for the supervisor to have started a new one. */
async function killAgent(): Promise<void> {
  const pid = agentPid();
  process.kill(pid, 'SIGKILL');
  await until('the agent to die', () => !alive(pid));
  await until('the agent to be restarted', () => { const p = agentPid(); return p !== pid && alive(p); }, 30_000);
}

before(async () => {
  cloud = await startCloud();
  const admin = (await openstack(cloud.env, 'project', 'show', 'admin', '-f', 'json')) as { id: string };
  token = await passwordToken(cloud, { name: 'admin', password: cloud.password }, admin.id);
  imageId = ((await openstack(cloud.env, 'image', 'show', 'gureum-tiny', '-f', 'json')) as { id: string }).id;
});
after(async () => { await cloud?.stop(); });

test('agent killed mid-boot: the instance settles ACTIVE or ERROR with a fault, and deletes cleanly', { timeout: 300_000 }, async () => {
  const id = await create('crash-boot');
  // The agent is building once the instance directory appears: kill it right there.
  await until('the build to start on the agent', () => existsSync(instDir(id)), 60_000, 5);
  await killAgent();
  const settled = await until('the instance to leave its task state', async () => {
    const s = (await show(id)).json.server as Record<string, unknown>;
    return s['OS-EXT-STS:task_state'] === null && s.status !== 'BUILD' ? s : undefined;
  }, 120_000, 250);
  console.log(`after the agent was killed mid-boot the instance is ${String(settled.status)}${settled.fault ? ` (${JSON.stringify(settled.fault)})` : ''}`);
  assert.ok(settled.status === 'ACTIVE' || settled.status === 'ERROR', `status ${String(settled.status)}`);
  if (settled.status === 'ERROR') assert.ok((settled.fault as { message?: string } | undefined)?.message, 'an ERROR instance carries a fault');
  if (settled.status === 'ACTIVE') assert.equal(qemuProcesses(id), 1, 'the guest runs');

  const del = await api(cloud, 'DELETE', `/compute/v2.1/servers/${id}`, { token });
  assert.equal(del.status, 204);
  await until('the instance to be gone', async () => (await show(id)).status === 404, 60_000, 250);
  await until('its QEMU and files to be gone', () => qemuProcesses(id) === 0 && !existsSync(instDir(id)), 30_000, 250);
});

test('agent killed mid-delete: the delete completes and nothing is left on the host', { timeout: 300_000 }, async () => {
  const id = await create('crash-delete');
  await until('ACTIVE', async () => (await show(id)).json.server?.status === 'ACTIVE', 120_000, 250);
  assert.equal(qemuProcesses(id), 1);
  const pid = agentPid();
  const del = await api(cloud, 'DELETE', `/compute/v2.1/servers/${id}`, { token });
  assert.equal(del.status, 204);
  process.kill(pid, 'SIGKILL');
  await until('the agent to be restarted', () => { const p = agentPid(); return p !== pid && alive(p); }, 30_000);
  await until('the instance to be gone from the API', async () => (await show(id)).status === 404, 90_000, 250);
  await until('its QEMU and files to be gone from the host', () => qemuProcesses(id) === 0 && !existsSync(instDir(id)), 60_000, 250);
  const list = await api(cloud, 'GET', '/compute/v2.1/servers', { token });
  assert.deepEqual(list.json.servers, []);
});

test('an instance whose QEMU dies is reported SHUTOFF by the power sync', { timeout: 300_000 }, async () => {
  const id = await create('dies');
  await until('ACTIVE', async () => (await show(id)).json.server?.status === 'ACTIVE', 120_000, 250);
  const qpid = Number(readFileSync(join(instDir(id), 'qemu.pid'), 'utf8').trim());
  process.kill(qpid, 'SIGKILL');
  const s = await until('SHUTOFF', async () => {
    const srv = (await show(id)).json.server as Record<string, unknown>;
    return srv.status === 'SHUTOFF' ? srv : undefined;
  }, 60_000, 250);
  assert.ok([4, 6].includes(Number(s['OS-EXT-STS:power_state'])), `power state ${String(s['OS-EXT-STS:power_state'])}`);
  const start = await api(cloud, 'POST', `/compute/v2.1/servers/${id}/action`, { token, body: { 'os-start': null } });
  assert.equal(start.status, 202);
  await until('ACTIVE again', async () => (await show(id)).json.server?.status === 'ACTIVE', 60_000, 250);
  assert.equal(qemuProcesses(id), 1);
  await api(cloud, 'DELETE', `/compute/v2.1/servers/${id}`, { token });
  await until('gone', async () => (await show(id)).status === 404, 60_000, 250);
});

test('a stop right after ACTIVE (guest still booting) powers off gracefully within seconds', { timeout: 120_000 }, async () => {
  const id = await create('early-stop');
  await until('ACTIVE', async () => (await show(id)).json.server?.status === 'ACTIVE', 120_000, 50);
  const t0 = Date.now();
  const stop = await api(cloud, 'POST', `/compute/v2.1/servers/${id}/action`, { token, body: { 'os-stop': null } });
  assert.equal(stop.status, 202);
  await until('SHUTOFF', async () => (await show(id)).json.server?.status === 'SHUTOFF', 60_000, 100);
  const ms = Date.now() - t0;
  console.log(`stopped ${ms} ms after asking, while the guest was booting`);
  assert.ok(ms < 20_000, `the power button is pressed again until the guest listens (took ${ms} ms; the hard-stop fallback is 60 s)`);
  await api(cloud, 'DELETE', `/compute/v2.1/servers/${id}`, { token });
  await until('gone', async () => (await show(id)).status === 404, 60_000, 250);
});
