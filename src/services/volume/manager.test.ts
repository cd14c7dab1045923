import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../common/logger.ts';
import { computeVolumeApi } from '../../cli/compute-volume.ts';
import { VolumeService } from './service.ts';
import { harness, USERS, type Harness } from './test-harness.ts';

let h: Harness;
before(async () => { h = await harness(); });
after(async () => { await h.close(); });
const log = createLogger('silent');

test('work a killed controller left is resumed: unscheduled creates at start, sent ones on the pool\'s report', async () => {
  // What a controller killed mid-create leaves: one row not yet scheduled, one sent to the pool whose answer was lost.
  const base = { project_id: 'p-one', user_id: 'u-alice', description: '', previous_status: null, attach_status: 'detached', migration_status: null,
    availability_zone: 'nova', bootable: 0, multiattach: 0, encrypted: 0, metadata: '{}', admin_metadata: '{}', image_metadata: '{}', source_volid: null,
    snapshot_id: null, image_id: null, backup_id: null, group_id: null, fail_reason: null, created_at: new Date().toISOString(), updated_at: new Date().toISOString(), launched_at: null };
  const type = (await h.svc.deps.db.selectFrom('volume_types').select('id').executeTakeFirstOrThrow()).id;
  await h.svc.deps.db.insertInto('volumes').values([
    { ...base, id: 'a0000000-0000-0000-0000-000000000001', name: 'unscheduled', size: 1, status: 'creating', host: null, volume_type_id: type },
    { ...base, id: 'a0000000-0000-0000-0000-000000000002', name: 'sent', size: 2, status: 'creating', host: 'host1', volume_type_id: type },
  ]).execute();
  const next = new VolumeService(h.svc.deps);
  await next.start();
  await next.manager.idle();
  assert.equal((await next.getVolume('a0000000-0000-0000-0000-000000000001'))?.status, 'available');
  assert.equal((await next.getVolume('a0000000-0000-0000-0000-000000000002'))?.status, 'creating', 'waits for its pool');
  h.pool.report();
  for (let i = 0; i < 50 && (await next.getVolume('a0000000-0000-0000-0000-000000000002'))?.status === 'creating'; i++) await new Promise((res) => setTimeout(res, 50));
  await next.manager.idle();
  assert.equal((await next.getVolume('a0000000-0000-0000-0000-000000000002'))?.status, 'available');
  assert.equal(h.pool.volumes.get('a0000000-0000-0000-0000-000000000002'), 2);
  await next.stop();
});

test('a delete the pool never answered is finished when the pool reports the volume gone', async () => {
  const r = await h.call('alice', 'POST', '/volumes', { volume: { size: 1 } });
  await h.settle();
  const id = r.body.volume.id as string;
  await h.svc.deps.db.updateTable('volumes').set({ status: 'deleting' }).where('id', '=', id).execute();
  h.pool.volumes.delete(id);
  await h.svc.manager.onReport({ host: 'host1', backend: 'local', pool: 'pool', hostIp: '127.0.0.1', totalGb: 100, freeGb: 90, provisionedGb: 0, volumes: [...h.pool.volumes.keys()], snapshots: [], backupDir: '/data/backups' });
  await h.settle();
  assert.equal((await h.call('alice', 'GET', `/volumes/${id}`)).status, 404);
});

test('compute\'s VolumeApi: reserve, connect (file on the pool host, NBD elsewhere, front-end QoS), complete, detach, delete', async () => {
  const api = computeVolumeApi(h.svc);
  const r = await h.call('alice', 'POST', '/volumes', { volume: { size: 1 } });
  await h.settle();
  const id = r.body.volume.id as string;
  // a QoS spec on the default type
  const q = await h.call('admin', 'POST', '/qos-specs', { qos_specs: { name: 'fast', consumer: 'front-end', total_iops_sec: '500', read_bytes_sec: '1048576' } });
  assert.equal(q.status, 200, JSON.stringify(q.body));
  const types = await h.call('admin', 'GET', '/types');
  const def = types.body.volume_types.find((t: { name: string }) => t.name === '__DEFAULT__');
  assert.equal((await h.call('admin', 'GET', `/qos-specs/${q.body.qos_specs.id}/associate?vol_type_id=${def.id}`)).status, 202);

  await assert.rejects(api.reserve(USERS.bob, id, { uuid: 'i-1', projectId: 'p-two' }), /could not be found/);
  const att = await api.reserve(USERS.alice, id, { uuid: 'inst-1', projectId: 'p-one' });
  assert.equal((await api.get(USERS.alice, id)).status, 'reserved');
  await assert.rejects(api.reserve(USERS.alice, id, { uuid: 'inst-1', projectId: 'p-one' }), /already attached|status must be available/);
  const remote = await api.connect(att, 'host2', '/dev/vdb', log);
  assert.equal(remote.connection.type, 'nbd');
  assert.deepEqual(remote.qos, { totalIopsSec: 500, readBytesSec: 1048576 });
  assert.equal((await api.get(USERS.alice, id)).status, 'attaching');
  await api.complete(att);
  const inUse = await api.get(USERS.alice, id);
  assert.equal(inUse.status, 'in-use');
  assert.deepEqual(inUse.attachments, [{ attachmentId: att, instanceUuid: 'inst-1', device: '/dev/vdb' }]);
  assert.deepEqual(await api.attachmentsOf('inst-1'), [{ attachmentId: att, volumeId: id, device: '/dev/vdb', status: 'attached' }]);
  // the API view shows the attachment; a tenant does not see the NBD key
  const shown = await h.call('alice', 'GET', `/attachments/${att}`, undefined, '3.27');
  assert.equal(shown.body.attachment.connection_info.data.tls.psk, undefined);
  const snap = await api.snapshot(id, 'vbs', log);
  assert.equal(snap.size, 1);
  await api.beginDetach(att);
  assert.equal((await api.get(USERS.alice, id)).status, 'detaching');
  await api.rollDetach(att);
  assert.equal((await api.get(USERS.alice, id)).status, 'in-use');
  await api.beginDetach(att);
  await api.deleteAttachment(att, log);
  await api.deleteAttachment(att, log);
  assert.equal((await api.get(USERS.alice, id)).status, 'available');
  assert.equal(h.pool.exports.size, 0, 'the export is gone');
  const local = await api.reserve(USERS.alice, id, { uuid: 'inst-2', projectId: 'p-one' });
  assert.equal((await api.connect(local, 'host1', '/dev/vdc', log)).connection.type, 'file');
  await api.deleteAttachment(local, log);
});

test('boot from volume: createForInstance waits for available; a too-small size is a BadRequest; delete is idempotent', async () => {
  const api = computeVolumeApi(h.svc);
  const id = await api.createForInstance({ projectId: 'p-one', userId: 'u-alice', sizeGb: 1, name: 'root', imageId: 'img-tiny', log });
  const v = await api.getInternal(id);
  assert.equal(v?.status, 'available');
  assert.equal(v?.bootable, true);
  assert.equal(v?.imageMetadata.kernel_id, 'k-1');
  await assert.rejects(api.createForInstance({ projectId: 'p-one', userId: 'u-alice', sizeGb: 1, name: 'root', imageId: 'img-big', log }),
    (e: Error & { status?: number }) => e.status === 400 && /doesn't fit/.test(e.message));
  await api.delete(id, log);
  await h.settle();
  await api.delete(id, log);
  assert.equal(await api.getInternal(id), undefined);
});
