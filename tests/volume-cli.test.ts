/**
 * The stock openstack CLI (python3-openstackclient 6 with cinderclient) against `gureum up`
 * with its real agent and volume pool: volumes (empty, from an image, from a snapshot),
 * list/show/set/extend/delete, types (private, with access), snapshots, backups (full,
 * incremental, restore), transfers between projects, quotas and limits, zones and
 * services — and the errors the CLI prints for bad input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { api, openstack, openstackFails, otherProject, startCloud, type Cloud } from './helpers/cloud.ts';

const run = promisify(execFile);
type Row = Record<string, unknown>;

describe('block storage with the openstack CLI', () => {
  let cloud: Cloud;
  let env: NodeJS.ProcessEnv;
  let other: { env: NodeJS.ProcessEnv; projectId: string };
  const os = (...a: string[]) => openstack(env, ...a);
  const json = async <T = Row>(...a: string[]) => (await os(...a, '-f', 'json')) as T;
  let token = '';
  const raw = (method: string, path: string, body?: unknown, version?: string) =>
    api(cloud, method, `/volume/v3${path}`, { token, body, headers: version ? { 'OpenStack-API-Version': `volume ${version}` } : {} });

  /** Poll `show` until the status leaves the transitional ones. */
  async function settled(kind: 'volume' | 'volume snapshot' | 'volume backup', id: string, e = env): Promise<Row> {
    for (let i = 0; i < 240; i++) {
      const r = (await openstack(e, ...kind.split(' '), 'show', id, '-f', 'json')) as Row;
      if (!['creating', 'downloading', 'extending', 'deleting', 'backing-up', 'restoring-backup', 'restoring'].includes(String(r.status))) return r;
      await new Promise((res) => setTimeout(res, 500));
    }
    throw new Error(`${kind} ${id} did not settle`);
  }
  async function gone(kind: string, id: string): Promise<void> {
    for (let i = 0; i < 120; i++) {
      try { await openstack(env, ...kind.split(' '), 'show', id, '-f', 'json'); } catch { return; }
      await new Promise((res) => setTimeout(res, 500));
    }
    throw new Error(`${kind} ${id} was not deleted`);
  }

  before(async () => {
    cloud = await startCloud();
    env = cloud.env;
    other = await otherProject(env, 'vol-other');
    token = String(((await os('token', 'issue', '-f', 'json')) as Row).id);
    // The pool reports within a heartbeat of the agent's start.
    for (let i = 0; i < 60; i++) {
      const zones = (await json<Row[]>('availability', 'zone', 'list', '--volume'));
      if (zones.some((z) => z['Zone Status'] === 'available')) break;
      await new Promise((res) => setTimeout(res, 1000));
    }
  });
  after(async () => { await cloud?.stop(); });

  test('the catalog publishes cinder; the zone, services and pool are up', async () => {
    const catalog = await json<Row[]>('catalog', 'list');
    assert.ok(catalog.some((c) => c.Type === 'block-storage'), JSON.stringify(catalog));
    assert.ok(catalog.some((c) => c.Type === 'volumev3'));
    const zones = await json<Row[]>('availability', 'zone', 'list', '--volume');
    assert.deepEqual(zones.map((z) => [z['Zone Name'], z['Zone Status']]), [['nova', 'available']]);
    const services = await json<Row[]>('volume', 'service', 'list');
    assert.ok(services.some((s) => s.Binary === 'cinder-volume' && String(s.Host).endsWith('@local') && s.State === 'up'), JSON.stringify(services));
    const versions = await fetch(`${cloud.url}/volume/`);
    assert.equal(versions.status, 300);
  });

  test('volume create, list, show, set, extend, delete', async () => {
    const made = await json('volume', 'create', '--size', '1', '--property', 'tier=gold', '--description', 'first', 'vol1');
    assert.equal(made.name, 'vol1');
    const v = await settled('volume', String(made.id));
    assert.equal(v.status, 'available');
    assert.equal(v.size, 1);
    assert.equal(v.type, '__DEFAULT__');
    assert.match(String(v['os-vol-host-attr:host']), /@local#/);
    const list = await json<Row[]>('volume', 'list');
    assert.ok(list.some((x) => x.Name === 'vol1' && x.Status === 'available' && x.Size === 1));
    await os('volume', 'set', '--name', 'vol1b', '--property', 'k=v', '--bootable', 'vol1');
    await os('volume', 'set', '--size', '2', 'vol1b');
    const after = await settled('volume', String(made.id));
    assert.equal(after.size, 2);
    assert.equal(after.bootable, 'true');
    assert.equal((after.properties as Row).k, 'v');
    // Cinder's own refusal (the CLI checks the size itself, so ask the API directly).
    const smaller = await raw('POST', `/volumes/${String(made.id)}/action`, { 'os-extend': { new_size: 1 } });
    assert.equal(smaller.status, 400);
    assert.match(smaller.text, /New size for extend must be greater than current size/);
    await os('volume', 'unset', '--property', 'k', 'vol1b');
    await os('volume', 'delete', 'vol1b');
    await gone('volume', String(made.id));
  });

  test('from an image: bootable with the image metadata; an image larger than the volume is refused', async () => {
    const v = await json('volume', 'create', '--image', 'gureum-tiny', '--size', '1', 'bootvol');
    const done = await settled('volume', String(v.id));
    assert.equal(done.status, 'available', JSON.stringify(done));
    assert.equal(done.bootable, 'true');
    assert.equal((done.volume_image_metadata as Row).image_name, 'gureum-tiny');
    const dir = mkdtempSync(join(tmpdir(), 'vol-big-'));
    await run('qemu-img', ['create', '-f', 'qcow2', join(dir, 'big.qcow2'), '3G']);
    await os('image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--file', join(dir, 'big.qcow2'), 'big-virtual');
    const err = await openstackFails(env, 'volume', 'create', '--image', 'big-virtual', '--size', '1', 'toosmall');
    assert.match(err, /Image virtual size is 3GB and doesn't fit in a volume of size 1GB.*HTTP 400/s);
    assert.ok(!(await json<Row[]>('volume', 'list')).some((x) => x.Name === 'toosmall'));
    await os('volume', 'delete', 'bootvol');
  });

  test('snapshots: create, list, a volume from one; delete refused with snapshots, allowed with cascade', async () => {
    const v = await json('volume', 'create', '--size', '1', 'snapsrc');
    await settled('volume', String(v.id));
    const s = await json('volume', 'snapshot', 'create', '--volume', 'snapsrc', '--property', 'when=now', 'snap1');
    const snap = await settled('volume snapshot', String(s.id));
    assert.equal(snap.status, 'available');
    assert.ok((await json<Row[]>('volume', 'snapshot', 'list')).some((x) => x.Name === 'snap1'));
    const clone = await json('volume', 'create', '--snapshot', 'snap1', 'fromsnap');
    const c = await settled('volume', String(clone.id));
    assert.equal(c.status, 'available');
    assert.equal(c.snapshot_id, s.id);
    const refused = await openstackFails(env, 'volume', 'delete', 'snapsrc');
    assert.match(refused, /Invalid volume: Volume status must be available.*have snapshots/s);
    await os('volume', 'delete', 'fromsnap');
    await os('volume', 'delete', '--purge', 'snapsrc');
    await gone('volume', String(v.id));
    await gone('volume snapshot', String(s.id));
  });

  test('backups: full, incremental, restore to an existing volume; a full with incrementals is not deleted', async () => {
    const v = await json('volume', 'create', '--size', '1', 'bsrc');
    await settled('volume', String(v.id));
    const full = await json('volume', 'backup', 'create', '--name', 'full1', 'bsrc');
    assert.equal((await settled('volume backup', String(full.id))).status, 'available');
    const inc = await json('volume', 'backup', 'create', '--incremental', '--name', 'inc1', 'bsrc');
    const incDone = await settled('volume backup', String(inc.id));
    assert.equal(incDone.status, 'available');
    assert.equal(incDone.is_incremental, true);
    const refused = await openstackFails(env, 'volume', 'backup', 'delete', 'full1');
    assert.match(refused, /Incremental backups exist for this backup/);
    const target = await json('volume', 'create', '--size', '1', 'btarget');
    await settled('volume', String(target.id));
    // OSC 6.0 sends the restore and then fails to print Cinder's answer (its take_action returns
    // the restore object itself): the restore happens all the same.
    assert.match(await openstackFails(env, 'volume', 'backup', 'restore', '--force', 'inc1', 'btarget'), /cannot unpack non-iterable VolumeBackupsRestore object/);
    assert.equal((await settled('volume', String(target.id))).status, 'available');
    assert.equal((await settled('volume backup', String(inc.id))).status, 'available');
    await os('volume', 'backup', 'delete', 'inc1');
    await gone('volume backup', String(inc.id));
    await os('volume', 'backup', 'delete', 'full1');
    await gone('volume backup', String(full.id));
    await os('volume', 'delete', 'bsrc', 'btarget');
  });

  test('types: private with access for another project; in use types are not deleted', async () => {
    await os('volume', 'type', 'create', '--private', '--property', 'speed=fast', '--description', 'fast disks', 'gold');
    assert.ok(!(await openstack(other.env, 'volume', 'type', 'list', '-f', 'json') as Row[]).some((t) => t.Name === 'gold'));
    await os('volume', 'type', 'set', '--project', 'vol-other', 'gold');
    const t = await json('volume', 'type', 'show', 'gold');
    assert.equal((t.properties as Row).speed, 'fast');
    assert.match(JSON.stringify(t.access_project_ids), new RegExp(other.projectId));
    const v = await openstack(other.env, 'volume', 'create', '--type', 'gold', '--size', '1', 'goldvol', '-f', 'json') as Row;
    assert.equal((await settled('volume', String(v.id), other.env)).type, 'gold');
    assert.match(await openstackFails(env, 'volume', 'type', 'delete', 'gold'), /deletion is not allowed with volumes present with the type/);
    await openstack(other.env, 'volume', 'delete', 'goldvol');
    await gone('volume', String(v.id)).catch(() => undefined);
  });

  test('transfers: the other project accepts with the key and owns the volume', async () => {
    const v = await json('volume', 'create', '--size', '1', 'gift');
    await settled('volume', String(v.id));
    const req = await json('volume', 'transfer', 'request', 'create', '--name', 'to-other', 'gift');
    assert.equal((await json('volume', 'show', 'gift')).status, 'awaiting-transfer');
    assert.ok((await json<Row[]>('volume', 'transfer', 'request', 'list')).some((x) => x.ID === req.id));
    const wrong = await openstackFails(other.env, 'volume', 'transfer', 'request', 'accept', '--auth-key', 'nope', String(req.id));
    assert.match(wrong, /Invalid auth key/);
    await openstack(other.env, 'volume', 'transfer', 'request', 'accept', '--auth-key', String(req.auth_key), String(req.id));
    const mine = await openstack(other.env, 'volume', 'show', String(v.id), '-f', 'json') as Row;
    assert.equal(mine.status, 'available');
    assert.equal(mine['os-vol-tenant-attr:tenant_id'], other.projectId);
    assert.ok(!(await json<Row[]>('volume', 'list')).some((x) => x.ID === v.id), 'gone from the source project');
    await openstack(other.env, 'volume', 'delete', String(v.id));
  });

  test('an attached volume is not deleted', async () => {
    const v = await json('volume', 'create', '--size', '1', 'held');
    await settled('volume', String(v.id));
    const a = await raw('POST', '/attachments', { attachment: { volume_uuid: v.id, instance_uuid: '0d9b4a3c-1b2c-4d5e-8f90-123456789abc' } }, '3.27');
    assert.equal(a.status, 200, a.text);
    assert.equal((await json('volume', 'show', 'held')).status, 'reserved');
    assert.match(await openstackFails(env, 'volume', 'delete', 'held'), /Invalid volume.*HTTP 400/s);
    const attachments = await openstack(env, '--os-volume-api-version', '3.27', 'volume', 'attachment', 'list', '-f', 'json') as Row[];
    assert.ok(attachments.some((x) => x['Volume ID'] === v.id), JSON.stringify(attachments));
    assert.equal((await raw('DELETE', `/attachments/${String(a.json.attachment.id)}`, undefined, '3.27')).status, 200);
    assert.equal((await json('volume', 'show', 'held')).status, 'available');
    await os('volume', 'delete', 'held');
  });

  test('clone, read-only flag, upload to an image, QoS on a type, pools (scheduler-stats)', async () => {
    const src = await json('volume', 'create', '--size', '1', 'clonesrc');
    await settled('volume', String(src.id));
    const clone = await json('volume', 'create', '--source', 'clonesrc', 'clone1');
    const c = await settled('volume', String(clone.id));
    assert.equal(c.status, 'available');
    assert.equal(c.source_volid, src.id);
    await os('volume', 'set', '--read-only', 'clone1');
    assert.equal(((await json('volume', 'show', 'clone1')).properties as Row).readonly, 'True');
    const up = await json('image', 'create', '--volume', 'clonesrc', '--disk-format', 'qcow2', 'fromvol');
    const imageId = String(up.image_id ?? up.id);
    let image: Row = {};
    for (let i = 0; i < 120; i++) {
      image = await json('image', 'show', imageId);
      if (image.status === 'active') break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal(image.status, 'active', JSON.stringify(image));
    assert.equal((await settled('volume', String(src.id))).status, 'available');
    await os('volume', 'qos', 'create', '--consumer', 'front-end', '--property', 'total_iops_sec=500', 'slow');
    await os('volume', 'type', 'create', 'limited');
    await os('volume', 'qos', 'associate', 'slow', 'limited');
    const qos = await json('volume', 'qos', 'show', 'slow');
    assert.equal((qos.properties as Row).total_iops_sec, '500');
    assert.match(JSON.stringify(qos.associations), /limited/);
    assert.match(await openstackFails(env, 'volume', 'qos', 'delete', 'slow'), /still associated/);
    await os('volume', 'qos', 'disassociate', '--all', 'slow');
    await os('volume', 'qos', 'delete', 'slow');
    // OSC 6 has no `volume backend pool list` for API v3: the API directly.
    const pools = await raw('GET', '/scheduler-stats/get_pools?detail=true');
    assert.equal(pools.status, 200);
    assert.match(String(pools.json.pools[0].name), /@local#/);
    assert.ok(pools.json.pools[0].capabilities.total_capacity_gb > 0);
    await os('volume', 'delete', 'clone1', 'clonesrc');
  });

  test('server add volume / remove volume: in-use with the server in its attachments, not deletable, available again', async () => {
    const srv = await json('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.tiny', 'volhost');
    for (let i = 0; i < 240 && (await json('server', 'show', String(srv.id))).status !== 'ACTIVE'; i++) await new Promise((res) => setTimeout(res, 500));
    const v = await json('volume', 'create', '--size', '1', 'data1');
    await settled('volume', String(v.id));
    await os('server', 'add', 'volume', 'volhost', 'data1');
    let shown: Row = {};
    for (let i = 0; i < 120; i++) {
      shown = await json('volume', 'show', 'data1');
      if (shown.status === 'in-use') break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal(shown.status, 'in-use', JSON.stringify(shown));
    const atts = shown.attachments as Row[];
    assert.equal(atts.length, 1);
    assert.equal(atts[0]!.server_id, srv.id);
    assert.match(String(atts[0]!.device), /^\/dev\/vd[b-z]$/);
    assert.match(await openstackFails(env, 'volume', 'delete', 'data1'), /Invalid volume.*HTTP 400/s);
    await os('server', 'remove', 'volume', 'volhost', 'data1');
    for (let i = 0; i < 120; i++) {
      shown = await json('volume', 'show', 'data1');
      if (shown.status === 'available') break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal(shown.status, 'available', JSON.stringify(shown));
    assert.deepEqual(shown.attachments, []);
    await os('server', 'delete', '--wait', 'volhost');
    await os('volume', 'delete', 'data1');
  });

  test('quotas: a create beyond the gigabytes quota is 413 with Cinder\'s message; limits show usage', async () => {
    await os('quota', 'set', '--gigabytes', '3', '--volumes', '5', 'vol-other');
    const q = await json('quota', 'show', 'vol-other');
    assert.equal(q.gigabytes, 3);
    const err = await openstackFails(other.env, 'volume', 'create', '--size', '4', 'huge');
    assert.match(err, /VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 4G, quota is 3G and 0G has been consumed.*HTTP 413/s);
    assert.match(await openstackFails(other.env, 'quota', 'set', '--gigabytes', '100', 'vol-other'), /HTTP 403|403/);
    const limits = await openstack(other.env, 'limits', 'show', '--absolute', '-f', 'json') as Row[];
    assert.ok(limits.some((l) => l.Name === 'maxTotalVolumeGigabytes' && l.Value === 3), JSON.stringify(limits));
  });
});
