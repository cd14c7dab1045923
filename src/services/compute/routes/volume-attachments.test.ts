import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { listBdms } from '../bdm.ts';
import { addInstance, until, volumeCloud, type VolumeCloud } from './volume-test-support.ts';

describe('os-volume_attachments: attach and detach through the volume API and the agent', () => {
  let c: VolumeCloud;
  before(async () => { c = await volumeCloud(); });
  after(async () => { await c.close(); });

  const status = (id: string) => c.volumes.volumes.get(id)?.status;

  test('attach: /dev/vdb, the agent hot-plugs it, volume in-use; server shows it; list/show; detach returns it to available', async () => {
    const vm = await addInstance(c.dbh.db);
    const vol = c.volumes.add('p-one');
    const r = await c.call('alice', 'POST', `/servers/${vm}/os-volume_attachments`, { volumeAttachment: { volumeId: vol, device: '/dev/vdz' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.volumeAttachment, { id: vol, serverId: vm, volumeId: vol, device: '/dev/vdb' });
    await until(() => status(vol) === 'in-use', 'volume in-use');
    assert.equal(c.agent.attachRequests.at(-1)!.volume.device, '/dev/vdb');
    assert.deepEqual(c.agent.attachRequests.at(-1)!.volume.connection, { type: 'file', path: `/pool/${vol}.qcow2`, format: 'qcow2' });
    assert.ok(c.agent.spec.get(vm)!.has(vol));

    const server = (await c.call('alice', 'GET', `/servers/${vm}`, undefined, '2.79')).body.server;
    assert.deepEqual(server['os-extended-volumes:volumes_attached'], [{ id: vol, delete_on_termination: false }]);
    assert.deepEqual((await c.call('alice', 'GET', `/servers/${vm}`)).body.server['os-extended-volumes:volumes_attached'], [{ id: vol }]);

    const list = await c.call('alice', 'GET', `/servers/${vm}/os-volume_attachments`, undefined, '2.89');
    assert.equal(list.body.volumeAttachments.length, 1);
    const a = list.body.volumeAttachments[0];
    assert.equal(a.id, undefined);
    assert.equal(a.device, '/dev/vdb');
    assert.equal(a.tag, null);
    assert.equal(a.delete_on_termination, false);
    assert.ok(a.attachment_id && a.bdm_uuid);
    const shown = await c.call('alice', 'GET', `/servers/${vm}/os-volume_attachments/${vol}`);
    assert.deepEqual(shown.body.volumeAttachment, { id: vol, serverId: vm, volumeId: vol, device: '/dev/vdb' });

    // A second volume takes the next letter.
    const vol2 = c.volumes.add('p-one');
    const r2 = await c.call('alice', 'POST', `/servers/${vm}/os-volume_attachments`, { volumeAttachment: { volumeId: vol2, tag: 'data', delete_on_termination: true } }, '2.79');
    assert.equal(r2.status, 200);
    assert.equal(r2.body.volumeAttachment.device, '/dev/vdc');
    assert.equal(r2.body.volumeAttachment.tag, 'data');
    assert.equal(r2.body.volumeAttachment.delete_on_termination, true);
    await until(() => status(vol2) === 'in-use', 'second volume in-use');

    const d = await c.call('alice', 'DELETE', `/servers/${vm}/os-volume_attachments/${vol}`);
    assert.equal(d.status, 202);
    await until(() => status(vol) === 'available', 'volume available after detach');
    assert.ok(!c.agent.spec.get(vm)!.has(vol));
    const after = (await c.call('alice', 'GET', `/servers/${vm}/os-volume_attachments`)).body.volumeAttachments;
    assert.deepEqual(after.map((x: { volumeId: string }) => x.volumeId), [vol2]);

    const actions = (await c.call('alice', 'GET', `/servers/${vm}/os-instance-actions`)).body.instanceActions.map((x: { action: string }) => x.action);
    assert.deepEqual(actions.sort(), ['attach_volume', 'attach_volume', 'detach_volume']);
  });

  test('bad requests change nothing: unknown volume 404, attached twice 400, in-use elsewhere 400, locked 409, bad state 409, bad device 400, old microversion fields 400', async () => {
    const vm = await addInstance(c.dbh.db);
    const other = await addInstance(c.dbh.db);
    const attach = (server: string, body: Record<string, unknown>, version?: string) =>
      c.call('alice', 'POST', `/servers/${server}/os-volume_attachments`, { volumeAttachment: body }, version);

    const missing = await attach(vm, { volumeId: randomUUID() });
    assert.equal(missing.status, 404);
    assert.match(missing.body.itemNotFound.message, /Volume .* could not be found/);

    const vol = c.volumes.add('p-one');
    assert.equal((await attach(vm, { volumeId: vol })).status, 200);
    await until(() => status(vol) === 'in-use', 'attached');
    const twice = await attach(vm, { volumeId: vol });
    assert.equal(twice.status, 400);
    assert.match(twice.body.badRequest.message, /already attached/);
    const elsewhere = await attach(other, { volumeId: vol });
    assert.equal(elsewhere.status, 400);
    assert.match(elsewhere.body.badRequest.message, /Invalid volume/);

    const free = c.volumes.add('p-one');
    assert.equal((await attach(vm, { volumeId: free, device: 'not a device' })).status, 400);
    assert.equal((await attach(vm, { volumeId: free, tag: 'x' }, '2.48')).status, 400);
    assert.equal((await attach(vm, { volumeId: free, delete_on_termination: true }, '2.78')).status, 400);
    assert.equal((await attach(vm, { volumeId: 'not-a-uuid' })).status, 400);

    const locked = await addInstance(c.dbh.db, { locked: true });
    const l = await attach(locked, { volumeId: free });
    assert.equal(l.status, 409);
    assert.match(l.body.conflictingRequest.message, /is locked/);
    const suspended = await addInstance(c.dbh.db, { vm: 'suspended' });
    const s = await attach(suspended, { volumeId: free });
    assert.equal(s.status, 409);
    assert.match(s.body.conflictingRequest.message, /Cannot 'attach_volume' instance .* while it is in vm_state suspended/);
    const busy = await addInstance(c.dbh.db, { task: 'rebooting' });
    assert.equal((await attach(busy, { volumeId: free })).status, 409);
    const shelved = await addInstance(c.dbh.db, { vm: 'shelved_offloaded', host: null });
    assert.equal((await attach(shelved, { volumeId: free }, '2.19')).status, 409);
    assert.equal(status(free), 'available');
    assert.equal([...c.volumes.attachments.values()].filter((a) => a.volumeId === free).length, 0);

    // Another project sees neither the server nor the volume.
    const vm2 = await addInstance(c.dbh.db);
    assert.equal((await c.call('bob', 'POST', `/servers/${vm2}/os-volume_attachments`, { volumeAttachment: { volumeId: free } })).status, 404);
    assert.equal((await c.call('bob', 'GET', `/servers/${vm}/os-volume_attachments`)).status, 404);
    assert.equal((await c.call('bob', 'DELETE', `/servers/${vm}/os-volume_attachments/${vol}`)).status, 404);

    // Detach of a volume the server does not hold: 404; of an unknown volume: 404.
    const notHere = await c.call('alice', 'DELETE', `/servers/${vm}/os-volume_attachments/${free}`);
    assert.equal(notHere.status, 404);
    assert.match(notHere.body.itemNotFound.message, /volume_id not found/);
    assert.equal((await c.call('alice', 'DELETE', `/servers/${vm}/os-volume_attachments/${randomUUID()}`)).status, 404);
  });

  test('shelved offloaded (2.20): the attachment completes without a host', async () => {
    const shelved = await addInstance(c.dbh.db, { vm: 'shelved_offloaded', host: null });
    const vol = c.volumes.add('p-one');
    const r = await c.call('alice', 'POST', `/servers/${shelved}/os-volume_attachments`, { volumeAttachment: { volumeId: vol } }, '2.20');
    assert.equal(r.status, 200);
    await until(() => status(vol) === 'in-use', 'in-use without a host');
    assert.equal(c.agent.attachRequests.some((a) => a.volume.volumeId === vol), false);
  });

  test('a failed hot-plug rolls back: the volume is available, no mapping, the action records the error', async () => {
    const vm = await addInstance(c.dbh.db);
    const vol = c.volumes.add('p-one');
    c.agent.failAttach = 'device_add failed: no free PCI slot';
    const r = await c.call('alice', 'POST', `/servers/${vm}/os-volume_attachments`, { volumeAttachment: { volumeId: vol } });
    assert.equal(r.status, 200);
    await until(async () => (await listBdms(c.dbh.db, vm)).length === 0, 'mapping removed');
    assert.equal(status(vol), 'available');
    const req = (await c.call('alice', 'GET', `/servers/${vm}/os-instance-actions`)).body.instanceActions[0];
    const act = (await c.call('admin', 'GET', `/servers/${vm}/os-instance-actions/${req.request_id}`)).body.instanceAction;
    assert.equal(act.action, 'attach_volume');
    assert.equal(act.events[0].event, 'compute_attach_volume');
    assert.equal(act.events[0].result, 'Error');
    assert.match(act.events[0].traceback, /no free PCI slot/);
  });

  test('a failed unplug rolls the detach back: in-use and still listed', async () => {
    const vm = await addInstance(c.dbh.db);
    const vol = c.volumes.add('p-one');
    await c.call('alice', 'POST', `/servers/${vm}/os-volume_attachments`, { volumeAttachment: { volumeId: vol } });
    await until(() => status(vol) === 'in-use', 'attached');
    c.agent.failDetach = 'the guest did not release the disk';
    assert.equal((await c.call('alice', 'DELETE', `/servers/${vm}/os-volume_attachments/${vol}`)).status, 202);
    await until(async () => (await listBdms(c.dbh.db, vm))[0]?.attachStatus === 'attached', 'detach rolled back');
    assert.equal(status(vol), 'in-use');
    // A detach while one is running is refused, not raced.
    assert.equal((await c.call('alice', 'DELETE', `/servers/${vm}/os-volume_attachments/${vol}`)).status, 202);
    const again = await c.call('alice', 'DELETE', `/servers/${vm}/os-volume_attachments/${vol}`);
    assert.ok(again.status === 400 || again.status === 404, `second detach: ${again.status}`);
    await until(() => status(vol) === 'available', 'detached');
  });

  test('concurrent attaches of two volumes get distinct devices; of one volume only one wins', async () => {
    const vm = await addInstance(c.dbh.db);
    const [v1, v2, v3] = [c.volumes.add('p-one'), c.volumes.add('p-one'), c.volumes.add('p-one')];
    const rs = await Promise.all([v1, v2, v3, v3].map((v) => c.call('alice', 'POST', `/servers/${vm}/os-volume_attachments`, { volumeAttachment: { volumeId: v } })));
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 200, 200, 400]);
    const devices = rs.filter((r) => r.status === 200).map((r) => r.body.volumeAttachment.device).sort();
    assert.deepEqual(devices, ['/dev/vdb', '/dev/vdc', '/dev/vdd']);
    await until(() => [v1, v2, v3].every((v) => status(v) === 'in-use'), 'all in-use');
  });

  test('PUT: swap is admin-only and refused; 2.85 updates delete_on_termination; other fields cannot change', async () => {
    const vm = await addInstance(c.dbh.db);
    const vol = c.volumes.add('p-one');
    const other = c.volumes.add('p-one');
    await c.call('alice', 'POST', `/servers/${vm}/os-volume_attachments`, { volumeAttachment: { volumeId: vol } });
    await until(() => status(vol) === 'in-use', 'attached');
    const path = `/servers/${vm}/os-volume_attachments/${vol}`;
    assert.equal((await c.call('alice', 'PUT', path, { volumeAttachment: { volumeId: other } })).status, 403);
    const swap = await c.call('admin', 'PUT', path, { volumeAttachment: { volumeId: other } });
    assert.equal(swap.status, 400);
    assert.match(swap.body.badRequest.message, /not supported/);
    assert.equal((await c.call('alice', 'PUT', path, { volumeAttachment: { volumeId: vol, delete_on_termination: true } }, '2.84')).status, 400);
    assert.equal((await c.call('alice', 'PUT', path, { volumeAttachment: { volumeId: vol, delete_on_termination: true } }, '2.85')).status, 202);
    const shown = await c.call('alice', 'GET', path, undefined, '2.85');
    assert.equal(shown.body.volumeAttachment.delete_on_termination, true);
    assert.equal((await c.call('alice', 'PUT', path, { volumeAttachment: { volumeId: vol, device: '/dev/vdq' } }, '2.85')).status, 400);
  });

  test('recovery: an agent report settles attaches and detaches left mid-way by a dead controller', async () => {
    const vm = await addInstance(c.dbh.db);
    const [inGuest, notInGuest, detachingGone, detachingStill] = [c.volumes.add('p-one'), c.volumes.add('p-one'), c.volumes.add('p-one'), c.volumes.add('p-one')];
    for (const v of [inGuest, notInGuest, detachingGone, detachingStill]) {
      await c.call('alice', 'POST', `/servers/${vm}/os-volume_attachments`, { volumeAttachment: { volumeId: v } });
    }
    await until(() => [inGuest, notInGuest, detachingGone, detachingStill].every((v) => status(v) === 'in-use'), 'attached');
    // What a controller killed mid-operation leaves: rows attaching/detaching from before this controller started, and the agent's truth.
    const old = new Date(Date.now() - 3_600_000).toISOString();
    const set = async (volumeId: string, attachStatus: string, cinder: () => Promise<void>) => {
      await c.dbh.db.updateTable('block_device_mappings').set({ attach_status: attachStatus, updated_at: old }).where('volume_id', '=', volumeId).execute();
      await cinder();
    };
    const att = (v: string) => [...c.volumes.attachments.values()].find((a) => a.volumeId === v)!;
    await set(inGuest, 'attaching', async () => { att(inGuest).status = 'attaching'; });
    await set(notInGuest, 'attaching', async () => { att(notInGuest).status = 'attaching'; c.agent.spec.get(vm)!.delete(notInGuest); });
    await set(detachingGone, 'detaching', async () => { await c.volumes.beginDetach(att(detachingGone).id); c.agent.spec.get(vm)!.delete(detachingGone); });
    await set(detachingStill, 'detaching', async () => { await c.volumes.beginDetach(att(detachingStill).id); });
    for (const v of [inGuest, notInGuest]) c.volumes.volumes.get(v)!.status = 'attaching';
    await c.agent.heartbeat();
    await until(async () => (await listBdms(c.dbh.db, vm)).every((b) => b.attachStatus === 'attached'), 'rows settled');
    assert.equal(status(inGuest), 'in-use');
    assert.equal(status(notInGuest), 'available');
    assert.equal(status(detachingGone), 'available');
    assert.equal(status(detachingStill), 'in-use');
    assert.deepEqual((await listBdms(c.dbh.db, vm)).map((b) => b.volumeId).sort(), [inGuest, detachingStill].sort());
  });
});
