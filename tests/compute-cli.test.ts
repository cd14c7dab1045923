/**
 * Real VMs through the stock openstack CLI: boot the built-in gureum-tiny image (direct
 * kernel boot) and gureum-tiny-disk (BIOS + bootloader), check what the guest did
 * (console marker, hostname and SSH key from metadata, user_data), drive every power
 * action and check QEMU's own view (QMP query-status, process gone), refuse bad input
 * with Nova's errors, keep projects apart, and delete without leaving anything behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { api, openstack, openstackFails, passwordToken, startCloud, type Cloud, qemuProcesses } from './helpers/cloud.ts';
import { computeTools, ssh, until, type Server } from './helpers/compute.ts';

const run = promisify(execFile);
let cloud: Cloud;
let token: string;
let t: ReturnType<typeof computeTools>;
const os = (...args: string[]) => t.os(...args);
const json = <T = Record<string, unknown>>(...args: string[]) => t.json<T>(...args);
const instDir = (uuid: string) => t.instDir(uuid);
const server = (id: string) => t.server(id);
const waitStatus = (id: string, status: string) => t.waitStatus(id, status);
const qemuStatus = (uuid: string) => t.qemuStatus(uuid);
const qemuPid = (uuid: string) => t.qemuPid(uuid);

before(async () => {
  cloud = await startCloud();
  t = computeTools(cloud);
  token = await passwordToken(cloud, { name: 'admin', password: cloud.password }, (await json<{ id: string }>('project', 'show', 'admin')).id);
});
after(async () => { await cloud?.stop(); });

let vm1: Server;
let key: string;

test('boot gureum-tiny with a key and user_data: ACTIVE, marker on the console, metadata and user_data in the guest', { timeout: 240_000 }, async () => {
  key = join(cloud.dir, 'key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await os('keypair', 'create', '--public-key', `${key}.pub`, 'k1');
  writeFileSync(join(cloud.dir, 'ud.sh'), '#!/bin/sh\necho "user-data says hello from $(hostname)"\n');
  const images = await json<{ Name: string }[]>('image', 'list');
  assert.ok(images.some((i) => i.Name === 'gureum-tiny') && images.some((i) => i.Name === 'gureum-tiny-disk'), 'built-in images registered');
  const created = await json<Server>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.tiny', '--key-name', 'k1',
    '--user-data', join(cloud.dir, 'ud.sh'), '--property', 'role=test', '--config-drive', 'true', 'vm1');
  assert.match(created.id, /^[0-9a-f-]{36}$/);
  vm1 = await waitStatus(created.id, 'ACTIVE');
  assert.equal(vm1['OS-EXT-STS:power_state'], 1, 'power state RUNNING');
  assert.equal(vm1.key_name, 'k1');
  assert.equal(vm1.flavor, 'm1.tiny (1)');
  const log = await until('the ready marker', async () => {
    const out = String(await os('console', 'log', 'show', 'vm1'));
    return /GUREUM-GUEST-READY vm1 /.test(out) ? out : undefined;
  });
  assert.match(log, /GUREUM-GUEST-READY vm1 169\.254\.169\.15/);
  assert.ok(existsSync(join(instDir(created.id), 'disk.config')), 'config_drive=true attaches a config drive');
  assert.equal(await qemuStatus(vm1.id), 'running');
  const withUserData = await until('user_data output on the console', async () => {
    const out = String(await os('console', 'log', 'show', 'vm1'));
    return out.includes('user-data: user-data says hello from vm1') ? out : undefined;
  }, 30_000, 500);
  assert.ok(withUserData);
  const port = /gureum: SSH to this guest: ssh -p (\d+) root@127\.0\.0\.1/.exec(log)?.[1];
  assert.ok(port, 'the console log says how to reach the guest');
  const out = await until('ssh into the guest', async () => ssh(port, key, 'hostname; cat /tmp/user-data.log'), 60_000, 1000);
  assert.deepEqual(out.trim().split('\n'), ['vm1', 'user-data says hello from vm1']);
});

test('power actions change the API state and QEMU state', { timeout: 300_000 }, async () => {
  const id = vm1.id;
  await os('server', 'pause', id);
  await waitStatus(id, 'PAUSED');
  assert.equal(await qemuStatus(id), 'paused');
  await os('server', 'unpause', id);
  await waitStatus(id, 'ACTIVE');
  assert.equal(await qemuStatus(id), 'running');

  await os('server', 'stop', id);
  const stopped = await waitStatus(id, 'SHUTOFF');
  assert.equal(stopped['OS-EXT-STS:power_state'], 4, 'power state SHUTDOWN');
  assert.equal(qemuPid(id), undefined, 'QEMU exited');
  assert.match(await openstackFails(cloud.env, 'server', 'stop', id), /Cannot 'stop' instance .* while it is in vm_state stopped/);
  await os('server', 'start', id);
  await waitStatus(id, 'ACTIVE');
  assert.equal(await qemuStatus(id), 'running');
  assert.match(await openstackFails(cloud.env, 'server', 'start', id), /Cannot 'start' instance .* while it is in vm_state active \(HTTP 409\)/);

  await os('server', 'suspend', id);
  await waitStatus(id, 'SUSPENDED');
  assert.equal(qemuPid(id), undefined, 'QEMU stopped after saving the state');
  await os('server', 'resume', id);
  await waitStatus(id, 'ACTIVE');
  assert.equal(await qemuStatus(id), 'running');

  const before = qemuPid(id);
  const boots = async () => String(await os('console', 'log', 'show', id)).split('GUREUM-GUEST-READY').length - 1;
  const booted = await boots();
  await os('server', 'reboot', '--hard', id);
  await waitStatus(id, 'ACTIVE');
  assert.equal(await qemuStatus(id), 'running');
  // A microvm is never reset in place (QEMU 7.2 hangs one that was resumed or had hotplug):
  // a fresh QEMU on the saved spec, and the guest boots again (the console log is kept).
  assert.notEqual(qemuPid(id), before, 'a hard reboot of a microvm starts a fresh QEMU');
  await until('the guest to boot again after the hard reboot that followed a resume', async () => (await boots()) > booted, 90_000, 500);

  const events = await json<{ Action: string }[]>('server', 'event', 'list', id);
  const actions = events.map((e) => e.Action);
  for (const a of ['create', 'pause', 'unpause', 'stop', 'start', 'suspend', 'resume', 'reboot']) assert.ok(actions.includes(a), `instance action ${a} recorded`);
});

test('createImage snapshots a running server into Glance, and the snapshot boots', { timeout: 240_000 }, async () => {
  await os('server', 'image', 'create', '--name', 'vm1-snap', '--wait', vm1.id);
  const img = await json<{ id: string; status: string; properties: Record<string, string>; disk_format: string; min_disk: number; visibility: string }>('image', 'show', 'vm1-snap');
  assert.equal(img.status, 'active');
  assert.equal(img.disk_format, 'qcow2');
  assert.equal(img.visibility, 'private');
  assert.equal(img.properties.image_type, 'snapshot');
  assert.equal(img.properties.instance_uuid, vm1.id);
  assert.ok(img.properties.kernel_id, 'the snapshot keeps the kernel it boots with');
  assert.equal((await server(vm1.id)).status, 'ACTIVE', 'the source kept running');
  const s = await json<Server>('server', 'create', '--image', 'vm1-snap', '--flavor', 'm1.tiny', 'from-snap');
  await waitStatus(s.id, 'ACTIVE');
  await until('the snapshot guest to boot', async () => /GUREUM-GUEST-READY from-snap /.test(String(await os('console', 'log', 'show', s.id))), 120_000, 500);
  await os('server', 'delete', '--wait', s.id);
  const events = await json<{ Action: string }[]>('server', 'event', 'list', vm1.id);
  assert.ok(events.some((e) => e.Action === 'createImage'));
});

test('bad input is refused with Nova errors and creates nothing', { timeout: 120_000 }, async () => {
  const count = async () => (await json<unknown[]>('server', 'list')).length;
  const n = await count();
  assert.match(await openstackFails(cloud.env, 'server', 'create', '--image', 'no-such-image', '--flavor', 'm1.tiny', 'x'), /No Image found|could not be found/i);
  assert.match(await openstackFails(cloud.env, 'server', 'create', '--image', 'gureum-tiny', '--flavor', 'no-such-flavor', 'x'), /No Flavor found|No flavor with a name or ID/i);
  // An image that needs a bigger disk than the flavor has.
  writeFileSync(join(cloud.dir, 'blob.raw'), Buffer.alloc(4096));
  await os('image', 'create', '--file', join(cloud.dir, 'blob.raw'), '--disk-format', 'raw', '--container-format', 'bare', '--min-disk', '5', 'needs-5g');
  assert.match(await openstackFails(cloud.env, 'server', 'create', '--image', 'needs-5g', '--flavor', 'm1.tiny', 'x'),
    /Flavor's disk is too small for requested image\. Flavor disk is 1073741824 bytes, minimum size is 5368709120 bytes\. \(HTTP 400\)/);
  // Quota: 10 instances by default.
  assert.match(await openstackFails(cloud.env, 'server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.tiny', '--min', '20', '--max', '20', 'many'),
    /Quota exceeded for instances: Requested 20, but already used 1 of 10 instances \(HTTP 403\)/);
  const image = await json<{ id: string }>('image', 'show', 'gureum-tiny');
  const bad = await api(cloud, 'POST', '/compute/v2.1/servers', { token, body: { server: { name: 'x', imageRef: image.id, flavorRef: '1', user_data: '!!! not base64 !!!' } } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.badRequest.message, /user_data/);
  const net = await api(cloud, 'POST', '/compute/v2.1/servers', { token, body: { server: { name: 'x', imageRef: image.id, flavorRef: '1', networks: [{ uuid: '3cb9bc59-5699-4588-a4b1-b87f96708bc6' }] } } });
  assert.equal(net.status, 400);
  assert.equal(net.json.badRequest.message, 'Network 3cb9bc59-5699-4588-a4b1-b87f96708bc6 could not be found.');
  const extra = await api(cloud, 'POST', '/compute/v2.1/servers', { token, body: { server: { name: 'x', imageRef: image.id, flavorRef: '1', bogus: 1 } } });
  assert.equal(extra.status, 400);
  const missing = await api(cloud, 'GET', '/compute/v2.1/servers/00000000-0000-0000-0000-000000000000', { token });
  assert.equal(missing.status, 404);
  assert.equal(missing.json.itemNotFound.message, 'Instance 00000000-0000-0000-0000-000000000000 could not be found.');
  const noAction = await api(cloud, 'POST', `/compute/v2.1/servers/${vm1.id}/action`, { token, body: { 'os-explode': null } });
  assert.equal(noAction.status, 400);
  assert.equal(await count(), n, 'nothing was created');
});

test('another project cannot see or touch the server; a locked server refuses its members', { timeout: 120_000 }, async () => {
  await os('project', 'create', 'other');
  await os('user', 'create', '--password', 'pw-other-1', '--project', 'other', 'bob');
  await os('role', 'add', '--project', 'other', '--user', 'bob', 'member');
  const bob = { ...cloud.env, OS_USERNAME: 'bob', OS_PASSWORD: 'pw-other-1', OS_PROJECT_NAME: 'other' };
  assert.deepEqual(await openstack(bob, 'server', 'list', '-f', 'json'), []);
  assert.match(await openstackFails(bob, 'server', 'show', vm1.id), /No server with a name or ID|could not be found/);
  assert.match(await openstackFails(bob, 'server', 'delete', vm1.id), /No server with a name or ID|could not be found/);
  const bobToken = await passwordToken(cloud, { name: 'bob', password: 'pw-other-1' }, (await json<{ id: string }>('project', 'show', 'other')).id);
  const r = await api(cloud, 'POST', `/compute/v2.1/servers/${vm1.id}/action`, { token: bobToken, body: { 'os-stop': null } });
  assert.equal(r.status, 404);

  // A member of the owning project, and a lock.
  await os('user', 'create', '--password', 'pw-carol-1', '--project', 'admin', 'carol');
  await os('role', 'add', '--project', 'admin', '--user', 'carol', 'member');
  const carol = { ...cloud.env, OS_USERNAME: 'carol', OS_PASSWORD: 'pw-carol-1' };
  await os('--os-compute-api-version', '2.73', 'server', 'lock', '--reason', 'maintenance window', vm1.id);
  assert.equal((await json<Server>('--os-compute-api-version', '2.73', 'server', 'show', vm1.id)).locked_reason, 'maintenance window');
  assert.match(await openstackFails(carol, 'server', 'stop', vm1.id), /Instance .* is locked \(HTTP 409\)/);
  await os('server', 'unlock', vm1.id);
  assert.equal((await server(vm1.id)).status, 'ACTIVE');
});

test('the whole-disk image boots through the BIOS and a bootloader; without a config drive the metadata service configures it', { timeout: 240_000 }, async () => {
  const s = await json<Server>('server', 'create', '--image', 'gureum-tiny-disk', '--flavor', 'm1.tiny', '--key-name', 'k1', 'diskvm');
  await waitStatus(s.id, 'ACTIVE');
  // No config drive asked for: the hostname in the marker came from the metadata service (169.254.169.254).
  await until('the ready marker from the disk image', async () => /GUREUM-GUEST-READY diskvm /.test(String(await os('console', 'log', 'show', s.id))), 180_000, 1000);
  assert.ok(!existsSync(join(instDir(s.id), 'disk.config')), 'no config drive unless asked for');
  const log = String(await os('console', 'log', 'show', s.id));
  const port = /ssh -p (\d+) root@127\.0\.0\.1/.exec(log)?.[1];
  assert.ok(port);
  assert.equal((await until('ssh with the key from the metadata service', () => ssh(port, key, 'hostname'), 60_000, 1000)).trim(), 'diskvm');
  // A guest posts its (encrypted) password to the metadata service; the API shows it, DELETE clears it.
  await ssh(port, key, 'wget -q -O - --post-data=ZW5jcnlwdGVk http://169.254.169.254/openstack/latest/password');
  const pw = await api(cloud, 'GET', `/compute/v2.1/servers/${s.id}/os-server-password`, { token });
  assert.deepEqual(pw.json, { password: 'ZW5jcnlwdGVk' });
  assert.equal((await api(cloud, 'DELETE', `/compute/v2.1/servers/${s.id}/os-server-password`, { token })).status, 204);
  assert.deepEqual((await api(cloud, 'GET', `/compute/v2.1/servers/${s.id}/os-server-password`, { token })).json, { password: '' });
  await os('server', 'delete', '--wait', s.id);
});

test('delete stops QEMU and removes the instance files', { timeout: 120_000 }, async () => {
  const id = vm1.id;
  assert.ok(existsSync(instDir(id)));
  await os('server', 'delete', '--wait', id);
  assert.match(await openstackFails(cloud.env, 'server', 'show', id), /No server with a name or ID/);
  assert.equal(qemuProcesses(id), 0, 'no QEMU left for the instance');
  assert.equal(existsSync(instDir(id)), false, 'instance directory removed');
  const hv = await api(cloud, 'GET', '/compute/v2.1/servers/detail?all_tenants=1', { token });
  assert.deepEqual(hv.json.servers.filter((x: { id: string }) => x.id === id), []);
});
