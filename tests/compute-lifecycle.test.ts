/**
 * The lifecycle actions through the stock openstack CLI on one real guest: resize (revert
 * and confirm), rebuild (to the whole-disk image and while stopped), rescue/unrescue,
 * shelve/unshelve and the admin resetState. Each step is checked in the API (status,
 * flavor, image, migration records, the shelved image) and on the host (QEMU's command
 * line and run state, the disk files, what the guest itself sees over SSH: vCPUs, RAM,
 * disks, a file written before the action).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { api, openstackFails, otherProject, passwordToken, qemuProcesses, startCloud, type Cloud } from './helpers/cloud.ts';
import { computeTools, ssh, until, type Server } from './helpers/compute.ts';

const run = promisify(execFile);
let cloud: Cloud;
let t: ReturnType<typeof computeTools>;
let key: string;
let vm: Server;
let port: string;

/** Wait for the guest's ready marker (the console is fresh after each boot) and SSH. */
async function guestUp(id: string): Promise<string> {
  const log = await t.consoleMatch(id, /GUREUM-GUEST-READY /, 120_000);
  const p = /gureum: SSH to this guest: ssh -p (\d+) root@127\.0\.0\.1/.exec(log)?.[1];
  assert.ok(p, 'the console log names the SSH port');
  await until('SSH into the guest', () => ssh(p, key, 'true').then(() => true), 60_000, 1000);
  return p;
}

const inGuest = (cmd: string) => ssh(port, key, cmd);

// The tiny guest runs from its initramfs, so what persists is what is written to the disk
// device itself: a marker in a sector near the end of the 1 GiB root disk.
const SECTOR = 2_000_000;
const writeMark = (text: string, dev = 'vda') => inGuest(`printf '%-32s' '${text}' | dd of=/dev/${dev} bs=512 seek=${SECTOR} conv=notrunc 2>/dev/null; sync`);
const readMark = async (dev = 'vda') => (await inGuest(`dd if=/dev/${dev} bs=512 skip=${SECTOR} count=1 2>/dev/null | head -c 32`)).replace(/\0/g, '').trim();

before(async () => {
  cloud = await startCloud();
  t = computeTools(cloud);
  key = join(cloud.dir, 'key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await t.os('keypair', 'create', '--public-key', `${key}.pub`, 'k1');
  await t.os('flavor', 'create', '--vcpus', '2', '--ram', '192', '--disk', '2', '--ephemeral', '1', '--swap', '64', 't.bigger');
  const created = await t.json<Server>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.nano', '--key-name', 'k1', 'life1');
  vm = await t.waitStatus(created.id, 'ACTIVE', 120_000);
  port = await guestUp(vm.id);
});
after(async () => { await cloud?.stop(); });

test('resize: VERIFY_RESIZE with the new vCPUs, RAM and disks in the guest; revert restores the old flavor and disks; confirm keeps the new', { timeout: 420_000 }, async () => {
  const id = vm.id;
  await writeMark('kept-across-resize');
  await t.os('server', 'resize', '--flavor', 't.bigger', '--wait', id);
  let s = await t.waitStatus(id, 'VERIFY_RESIZE');
  assert.equal(s.flavor, 't.bigger (' + String((await t.json<{ id: string }>('flavor', 'show', 't.bigger')).id) + ')');
  const argv = t.qemuArgv(id);
  assert.equal(argv[argv.indexOf('-m') + 1], '192');
  assert.equal(argv[argv.indexOf('-smp') + 1], '2');
  assert.ok(existsSync(join(t.instDir(id), 'resize-backup', 'disk')), 'the old root disk is kept until confirm or revert');
  port = await guestUp(id);
  assert.equal(await readMark(), 'kept-across-resize', 'the root disk survives a resize');
  assert.equal((await inGuest('grep -c ^processor /proc/cpuinfo')).trim(), '2');
  const disks = await inGuest('cat /sys/block/vda/size /sys/block/vdb/size /sys/block/vdc/size');
  assert.deepEqual(disks.trim().split('\n').map(Number), [2 * 1024 ** 3 / 512, 1024 ** 3 / 512, 64 * 1024 ** 2 / 512], 'root grown to 2 GiB, 1 GiB ephemeral, 64 MiB swap');

  const migs = await t.json<Record<string, unknown>[]>('server', 'migration', 'list', '--server', id);
  assert.equal(migs.length, 1);
  assert.equal(migs[0]!.Status, 'finished');
  const adminToken = await passwordToken(cloud, { name: 'admin', password: cloud.password }, String((await t.json<{ id: string }>('project', 'show', 'admin')).id));
  const raw = await api(cloud, 'GET', `/compute/v2.1/os-migrations?instance_uuid=${id}`, { token: adminToken, headers: { 'OpenStack-API-Version': 'compute 2.80' } });
  assert.equal(raw.json.migrations[0].migration_type, 'resize');
  assert.equal(raw.json.migrations[0].source_compute, raw.json.migrations[0].dest_compute, 'a resize on the same host');
  assert.equal(raw.json.migrations[0].old_instance_type_id, 42, 'm1.nano');
  assert.equal(raw.json.migrations[0].new_instance_type_id, null, 't.bigger has a UUID id: not an integer, shown as null');

  await t.os('server', 'resize', 'revert', id);
  s = await t.waitStatus(id, 'ACTIVE');
  assert.equal(s.flavor, 'm1.nano (42)');
  const back = t.qemuArgv(id);
  assert.equal(back[back.indexOf('-m') + 1], '128');
  assert.ok(!existsSync(join(t.instDir(id), 'resize-backup')), 'the backup is gone after the revert');
  assert.ok(!existsSync(join(t.instDir(id), 'disk.eph0')) && !existsSync(join(t.instDir(id), 'disk.swap')), 'disks the new flavor added are gone');
  port = await guestUp(id);
  assert.equal((await inGuest('cat /sys/block/vda/size')).trim(), String(1024 ** 3 / 512), 'the root disk is the old 1 GiB one again');
  assert.equal(await readMark(), 'kept-across-resize');

  await t.os('server', 'resize', '--flavor', 't.bigger', '--wait', id);
  await t.waitStatus(id, 'VERIFY_RESIZE');
  await t.os('server', 'resize', 'confirm', id);
  s = await t.waitStatus(id, 'ACTIVE');
  assert.match(String(s.flavor), /^t\.bigger/);
  assert.ok(!existsSync(join(t.instDir(id), 'resize-backup')), 'confirm drops the old disks');
  const statuses = (await t.json<{ Status: string }[]>('server', 'migration', 'list', '--server', id)).map((m) => m.Status).sort();
  assert.deepEqual(statuses, ['confirmed', 'reverted']);
  port = await guestUp(id);

  // Bad input changes nothing.
  assert.match(await openstackFails(cloud.env, 'server', 'resize', '--flavor', 't.bigger', id), /must change flavor|HTTP 400/);
  assert.match(await openstackFails(cloud.env, 'server', 'resize', '--flavor', 'm1.nano', id), /smaller disk|HTTP 400/);
  assert.match(await openstackFails(cloud.env, 'server', 'resize', 'confirm', id), /Cannot 'confirmResize' instance .* while it is in vm_state active/);
  assert.equal((await t.server(id)).status, 'ACTIVE');
});

test('rebuild: a new root disk from another image (whole-disk form), same address and SSH port; a stopped server stays stopped', { timeout: 300_000 }, async () => {
  const id = vm.id;
  await writeMark('gone-after-rebuild');
  const disk = await t.json<{ id: string }>('image', 'show', 'gureum-tiny-disk');
  await t.os('server', 'rebuild', '--image', 'gureum-tiny-disk', '--property', 'rebuilt=yes', id);
  const s = await t.waitStatus(id, 'ACTIVE', 120_000);
  assert.match(String(s.image), new RegExp(disk.id));
  assert.match(JSON.stringify(s.properties), /rebuilt\W+yes/);
  const argv = t.qemuArgv(id);
  assert.ok(!argv.includes('-kernel'), 'the whole-disk image boots through the BIOS');
  const newPort = await guestUp(id);
  assert.equal(newPort, port, 'the SSH port is kept');
  assert.equal(await readMark(), '', 'the root disk is new');

  await t.os('server', 'stop', id);
  await t.waitStatus(id, 'SHUTOFF');
  await t.os('server', 'rebuild', '--image', 'gureum-tiny', id);
  await t.waitStatus(id, 'SHUTOFF', 120_000);
  assert.equal(t.qemuPid(id), undefined, 'no QEMU runs for the stopped server');
  await t.os('server', 'start', id);
  await t.waitStatus(id, 'ACTIVE');
  assert.ok(t.qemuArgv(id).includes('-kernel'), 'started from the rebuilt (kernel boot) spec');
  port = await guestUp(id);

  const adminToken = await passwordToken(cloud, { name: 'admin', password: cloud.password }, String((await t.json<{ id: string }>('project', 'show', 'admin')).id));
  const r = await api(cloud, 'POST', `/compute/v2.1/servers/${id}/action`, { token: adminToken, body: { rebuild: { imageRef: '00000000-0000-0000-0000-000000000000' } } });
  assert.equal(r.status, 400);
  assert.match(JSON.stringify(r.json), /Image 00000000-0000-0000-0000-000000000000 could not be found/);
  assert.equal((await t.server(id)).status, 'ACTIVE', 'a refused rebuild changes nothing');
});

test('rescue boots the image with the server disk second; unrescue boots the server again', { timeout: 300_000 }, async () => {
  const id = vm.id;
  await writeMark('rescue-me');
  await t.os('server', 'rescue', id);
  await t.waitStatus(id, 'RESCUE', 120_000);
  const argv = t.qemuArgv(id).join(' ');
  assert.match(argv, /disk\.rescue.*\/disk,/, 'the rescue disk first, the server root disk after it');
  const rport = await guestUp(id);
  assert.equal(rport, port);
  // In the rescue system the server's own root disk is vdb, and the rescue disk (vda) is a fresh one.
  assert.equal(await readMark('vdb'), 'rescue-me');
  assert.equal(await readMark('vda'), '');
  assert.match(await openstackFails(cloud.env, 'server', 'rescue', id), /while it is in vm_state rescued/);
  await t.os('server', 'unrescue', id);
  await t.waitStatus(id, 'ACTIVE', 120_000);
  assert.ok(!existsSync(join(t.instDir(id), 'disk.rescue')), 'the rescue disk is removed');
  port = await guestUp(id);
  assert.equal(await readMark(), 'rescue-me');
  assert.match(await openstackFails(cloud.env, 'server', 'unrescue', id), /while it is in vm_state active/);
});

test('createBackup keeps the newest `rotation` backups of a type', { timeout: 240_000 }, async () => {
  const id = vm.id;
  const backups = async () => (await t.json<{ Name: string; Status: string }[]>('image', 'list')).filter((i) => i.Name.startsWith('life1-daily-'));
  await t.os('server', 'backup', 'create', '--name', 'life1-daily-1', '--type', 'daily', '--rotate', '2', '--wait', id);
  await t.waitStatus(id, 'ACTIVE');
  await t.os('server', 'backup', 'create', '--name', 'life1-daily-2', '--type', 'daily', '--rotate', '2', '--wait', id);
  await t.waitStatus(id, 'ACTIVE');
  assert.deepEqual((await backups()).map((b) => b.Name).sort(), ['life1-daily-1', 'life1-daily-2']);
  await t.os('server', 'backup', 'create', '--name', 'life1-daily-3', '--type', 'daily', '--rotate', '2', '--wait', id);
  await t.waitStatus(id, 'ACTIVE');
  const left = await until('the oldest backup to be rotated out', async () => {
    const b = (await backups()).map((x) => x.Name).sort();
    return b.length === 2 ? b : undefined;
  }, 30_000, 1000);
  assert.deepEqual(left, ['life1-daily-2', 'life1-daily-3']);
  const img = await t.json<Record<string, unknown>>('image', 'show', 'life1-daily-3');
  assert.match(JSON.stringify(img.properties), /backup_type\W+daily/);
  for (const b of left) await t.os('image', 'delete', b);
});

test('shelve offloads (no QEMU, no files, no host resources, a -shelved image); unshelve boots it again with its data and drops the image', { timeout: 420_000 }, async () => {
  const id = vm.id;
  await writeMark('survives-shelve');
  const hyp = async () => (await t.json<Record<string, unknown>[]>('hypervisor', 'list', '--long'))[0]!;
  const usedBefore = Number((await hyp())['vCPUs Used']);
  await t.os('server', 'shelve', id);
  const s = await t.waitStatus(id, 'SHELVED_OFFLOADED', 180_000);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], null);
  assert.equal(qemuProcesses(id), 0, 'no QEMU process left');
  assert.ok(!existsSync(t.instDir(id)), 'the instance directory is gone from the host');
  const images = await t.json<{ Name: string; Status: string }[]>('image', 'list');
  assert.ok(images.some((i) => i.Name === 'life1-shelved' && i.Status === 'active'), 'the shelved image exists');
  await until('host usage to drop', async () => Number((await hyp())['vCPUs Used']) === usedBefore - 2, 30_000, 1000);

  await t.os('server', 'unshelve', id);
  await t.waitStatus(id, 'ACTIVE', 180_000);
  port = await guestUp(id);
  assert.equal(await readMark(), 'survives-shelve');
  await until('the shelved image to be deleted', async () => !(await t.json<{ Name: string }[]>('image', 'list')).some((i) => i.Name === 'life1-shelved'), 30_000, 1000);
  const actions = (await t.json<{ Action: string }[]>('server', 'event', 'list', id)).map((a) => a.Action);
  for (const a of ['create', 'resize', 'confirmResize', 'revertResize', 'rebuild', 'rescue', 'unrescue', 'shelve', 'unshelve']) assert.ok(actions.includes(a), `action ${a} recorded`);
});

test('resetState is for admins only; another project cannot act on the server', { timeout: 120_000 }, async () => {
  const id = vm.id;
  const other = await otherProject(cloud.env, 'life-other');
  assert.match(await openstackFails(other.env, 'server', 'rebuild', '--image', 'gureum-tiny', id), /No server with a name or ID|could not be found/);
  const projectId = String((await t.json<{ id: string }>('project', 'show', 'admin')).id);
  const adminToken = await passwordToken(cloud, { name: 'admin', password: cloud.password }, projectId);
  const memberToken = await passwordToken(cloud, { name: 'user-life-other', password: 'pw-life-other' }, other.projectId);
  let r = await api(cloud, 'POST', `/compute/v2.1/servers/${id}/action`, { token: memberToken, body: { 'os-resetState': { state: 'error' } } });
  assert.equal(r.status, 404, 'another project does not even see the server');
  r = await api(cloud, 'POST', `/compute/v2.1/servers/${id}/action`, { token: adminToken, body: { 'os-resetState': { state: 'bogus' } } });
  assert.equal(r.status, 400);
  r = await api(cloud, 'POST', `/compute/v2.1/servers/${id}/action`, { token: adminToken, body: { 'os-resetState': { state: 'error' } } });
  assert.equal(r.status, 202);
  assert.equal((await t.server(id)).status, 'ERROR');
  await t.os('server', 'set', '--state', 'active', id);
  assert.equal((await t.server(id)).status, 'ACTIVE');
  assert.equal(await t.qemuStatus(id), 'running', 'resetState does not touch the guest');
});
