import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { listBdms } from '../bdm.ts';
import * as store from '../store.ts';
import { until, volumeCloud, type VolumeCloud } from './volume-test-support.ts';

describe('boot from volume (block_device_mapping_v2)', () => {
  let c: VolumeCloud;
  before(async () => { c = await volumeCloud(); });
  after(async () => { await c.close(); });

  const create = (server: Record<string, unknown>, version = '2.67') =>
    c.call('alice', 'POST', '/servers', { server: { name: 'bfv', flavorRef: '1', networks: 'none', ...server } }, version);
  const active = async (id: string) => {
    await until(async () => ['active', 'error'].includes((await store.getInstance(c.dbh.db, id))?.vmState ?? ''), 'server settled');
    const inst = (await store.getInstance(c.dbh.db, id))!;
    assert.equal(inst.vmState, 'active', JSON.stringify(inst.fault));
    return inst;
  };
  const deleted = async (id: string) => {
    assert.equal((await c.call('alice', 'DELETE', `/servers/${id}`)).status, 204);
    await until(async () => (await store.getInstance(c.dbh.db, id)) === undefined, 'server deleted');
  };

  test('--boot-from-volume: an image → volume root of the size asked, the agent boots it with the image\'s kernel; image ""; delete removes the volume', async () => {
    const r = await create({ block_device_mapping_v2: [{ uuid: 'image-1', source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 2, delete_on_termination: true }] });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.server.id as string;
    await active(id);
    const build = c.agent.builds.find((b) => b.uuid === id)!;
    assert.equal(build.volumes?.length, 1);
    const root = build.volumes![0]!;
    assert.equal(root.bootIndex, 0);
    assert.equal(root.device, '/dev/vda');
    assert.equal(build.kernel?.id, 'kernel-1');
    assert.equal(build.ramdisk?.id, 'ramdisk-1');
    assert.equal(c.volumes.sources.get(root.volumeId)?.imageId, 'image-1');
    assert.equal(c.volumes.volumes.get(root.volumeId)!.size, 2);
    assert.equal(c.volumes.volumes.get(root.volumeId)!.status, 'in-use');

    const server = (await c.call('alice', 'GET', `/servers/${id}`, undefined, '2.79')).body.server;
    assert.equal(server.image, '');
    assert.deepEqual(server['os-extended-volumes:volumes_attached'], [{ id: root.volumeId, delete_on_termination: true }]);
    // The root volume cannot be detached.
    const d = await c.call('alice', 'DELETE', `/servers/${id}/os-volume_attachments/${root.volumeId}`);
    assert.equal(d.status, 400);
    // No local root disk is claimed for it.
    const host = await store.getHost(c.dbh.db, 'node1');
    assert.equal(host!.localGbUsed, 0);

    await deleted(id);
    assert.ok(c.volumes.deleted.includes(root.volumeId));
  });

  test('--volume: the user\'s bootable volume is the root (kernel from its image metadata); kept on delete; extra volumes attached at build', async () => {
    const rootVol = c.volumes.add('p-one', { size: 1, bootable: true, imageMetadata: { image_id: 'image-1', kernel_id: 'kernel-1', ramdisk_id: 'ramdisk-1', os_type: 'linux' } });
    const r = await create({
      block_device_mapping_v2: [
        { uuid: rootVol, source_type: 'volume', destination_type: 'volume', boot_index: '0' },
        { source_type: 'blank', destination_type: 'volume', volume_size: 1, boot_index: -1, delete_on_termination: true },
      ],
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.server.id as string;
    await active(id);
    const build = c.agent.builds.find((b) => b.uuid === id)!;
    assert.deepEqual(build.volumes!.map((v) => [v.device, v.bootIndex]), [['/dev/vda', 0], ['/dev/vdb', undefined]]);
    assert.equal(build.volumes![0]!.volumeId, rootVol);
    assert.equal(build.kernel?.id, 'kernel-1');
    const blank = build.volumes![1]!.volumeId;
    assert.equal(c.volumes.volumes.get(rootVol)!.status, 'in-use');
    assert.equal(c.volumes.volumes.get(blank)!.status, 'in-use');
    const list = (await c.call('alice', 'GET', `/servers/${id}/os-volume_attachments`)).body.volumeAttachments;
    assert.deepEqual(list.map((a: { volumeId: string; device: string }) => [a.volumeId, a.device]), [[rootVol, '/dev/vda'], [blank, '/dev/vdb']]);

    await deleted(id);
    assert.equal(c.volumes.volumes.get(rootVol)!.status, 'available');
    assert.ok(c.volumes.deleted.includes(blank));
    assert.deepEqual(await listBdms(c.dbh.db, id), []);
  });

  test('bad mappings are 400 and create nothing', async () => {
    const before = (await c.dbh.db.selectFrom('instances').select('uuid').execute()).length;
    const bad = async (server: Record<string, unknown>, re: RegExp) => {
      const r = await create(server);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.badRequest.message, re);
    };
    await bad({}, /Boot sequence/);
    await bad({ block_device_mapping_v2: [{ uuid: 'image-1', source_type: 'image', destination_type: 'volume', boot_index: 0 }] }, /non-zero size/);
    await bad({ block_device_mapping_v2: [{ source_type: 'blank', destination_type: 'volume', boot_index: 0 }] }, /non-zero size/);
    await bad({ block_device_mapping_v2: [{ uuid: randomUUID(), source_type: 'volume', destination_type: 'volume', boot_index: 0 }] }, /failed to get volume/);
    await bad({ block_device_mapping_v2: [{ uuid: 'image-1', source_type: 'image', destination_type: 'volume', boot_index: 1, volume_size: 1 }] }, /Boot sequence/);
    await bad({ block_device_mapping_v2: [{ uuid: 'nope', source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 1 }] }, /Image nope could not be found/);
    const inUse = c.volumes.add('p-one', { status: 'in-use' });
    await bad({ block_device_mapping_v2: [{ uuid: inUse, source_type: 'volume', destination_type: 'volume', boot_index: 0 }] }, /Invalid volume/);
    c.images.images.set('big', { ...c.images.images.get('image-1')!, id: 'big', virtualSize: 3 * 1024 ** 3 });
    await bad({ block_device_mapping_v2: [{ uuid: 'big', source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 2 }] }, /Volume is smaller than the minimum size/);
    // Another project's volume is invisible.
    const bobs = c.volumes.add('p-two');
    await bad({ block_device_mapping_v2: [{ uuid: bobs, source_type: 'volume', destination_type: 'volume', boot_index: 0 }] }, /failed to get volume/);
    assert.equal((await c.dbh.db.selectFrom('instances').select('uuid').execute()).length, before);
    assert.equal(c.volumes.volumes.get(bobs)!.status, 'available');
  });

  test('a volume that cannot be exported fails the build to ERROR and leaves no volume attaching', async () => {
    c.volumes.failConnect = true;
    try {
      const r = await create({ block_device_mapping_v2: [{ uuid: 'image-1', source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 1 }] });
      const id = r.body.server.id as string;
      await until(async () => (await store.getInstance(c.dbh.db, id))?.vmState === 'error', 'ERROR');
      const rows = await listBdms(c.dbh.db, id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.attachStatus, null);
      assert.equal(c.volumes.volumes.get(rows[0]!.volumeId!)!.status, 'available');
      await deleted(id);
      // delete_on_termination was not asked: the volume the build made stays, free.
      assert.equal(c.volumes.volumes.get(rows[0]!.volumeId!)!.status, 'available');
    } finally {
      c.volumes.failConnect = false;
    }
  });

  test('createImage of a volume-backed server: snapshots of its volumes in the image\'s block_device_mapping; booting that image makes volumes from them', async () => {
    const r = await create({ block_device_mapping_v2: [{ uuid: 'image-1', source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 1, delete_on_termination: true }] });
    const id = r.body.server.id as string;
    const inst = await active(id);
    assert.equal(inst.imageRef, '');
    const rootVol = (await listBdms(c.dbh.db, id))[0]!.volumeId!;
    const snap = await c.call('alice', 'POST', `/servers/${id}/action`, { createImage: { name: 'bfv-snap', metadata: { purpose: 'test' } } }, '2.45');
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    const imageId = snap.body.image_id as string;
    const image = c.images.images.get(imageId)!;
    assert.equal(image.status, 'active');
    assert.equal(image.properties.bdm_v2, 'True');
    assert.equal(image.properties.root_device_name, '/dev/vda');
    assert.equal(image.properties.purpose, 'test');
    assert.equal(image.properties.kernel_id, 'kernel-1');
    const mappings = JSON.parse(image.properties.block_device_mapping!) as { snapshot_id: string; boot_index: number; volume_size: number; source_type: string }[];
    assert.equal(mappings.length, 1);
    assert.equal(mappings[0]!.boot_index, 0);
    assert.equal(mappings[0]!.source_type, 'snapshot');
    assert.equal(c.volumes.snapshots.get(mappings[0]!.snapshot_id)!.volumeId, rootVol);

    const again = await create({ imageRef: imageId });
    assert.equal(again.status, 202, JSON.stringify(again.body));
    const id2 = again.body.server.id as string;
    await active(id2);
    const build = c.agent.builds.find((b) => b.uuid === id2)!;
    assert.equal(build.volumes![0]!.bootIndex, 0);
    assert.equal(c.volumes.sources.get(build.volumes![0]!.volumeId)?.snapshotId, mappings[0]!.snapshot_id);
    assert.equal(build.kernel?.id, 'kernel-1');
    const shown = (await c.call('alice', 'GET', `/servers/${id2}`)).body.server;
    assert.equal(shown.image.id, imageId);
    await deleted(id2);
    await deleted(id);
  });
});
