import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { NatsChild } from '../cli/nats.ts';
import { Bus, BusRemoteError } from '../bus/index.ts';
import type { ImageRef } from '../bus/compute.ts';
import { VolumePoolReported, volumeSubjects, type VolumePoolReport } from '../bus/volume.ts';
import { ImageCache } from './storage/image-cache.ts';
import { startVolumeAgent } from './volume-agent.ts';

const log = pino({ level: 'silent' });
let dir: string;
let nats: NatsChild;
let bus: Bus;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volagent-'));
  nats = new NatsChild(join(dir, 'nats'), log);
  bus = await Bus.connect(await nats.start(), log);
});
after(async () => {
  await bus.close();
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the volume agent serves its host\'s subjects and reports the pool', async () => {
  const reports: VolumePoolReport[] = [];
  const sub = bus.subscribe(VolumePoolReported, (r) => { if (r.host === 'hA') reports.push(r); });
  const dataDir = join(dir, 'data');
  const agent = await startVolumeAgent({
    bus, host: 'hA', hostIp: '127.0.0.1', dataDir, log, cache: new ImageCache({ dataDir }),
    source: (ref: ImageRef) => ({ localPath: ref.localPath! }),
    live: { holderOf: async () => undefined, snapshot: async () => undefined, resize: async () => undefined },
    reportEveryMs: 200,
  });
  try {
    const s = volumeSubjects('hA');
    assert.deepEqual(await bus.request(s.create, { volumeId: 'v1', sizeGb: 1, source: { kind: 'empty' } }, { requestId: 'req-1' }), { sizeGb: 1 });
    assert.deepEqual(await bus.request(s.snapshotCreate, { volumeId: 'v1', snapshotId: 's1' }), { sizeGb: 1, online: false });
    assert.deepEqual(await bus.request(s.extend, { volumeId: 'v1', sizeGb: 2 }), { sizeGb: 2, online: false });
    await assert.rejects(bus.request(s.extend, { volumeId: 'v1', sizeGb: 1 }),
      (e: unknown) => e instanceof BusRemoteError && /New size for extend must be greater than current size/.test(e.message));
    const conn = await bus.request(s.export, { volumeId: 'v1', attachmentId: 'a1', instanceHost: 'hB' }, { timeoutMs: 15_000 });
    assert.equal(conn.type, 'nbd');
    assert.deepEqual(await bus.request(s.unexport, { volumeId: 'v1', attachmentId: 'a1' }, { timeoutMs: 15_000 }), { removed: true });
    for (let i = 0; i < 50 && !reports.some((r) => r.volumes.includes('v1')); i++) await new Promise((r) => setTimeout(r, 50));
    const last = [...reports].reverse().find((r) => r.volumes.includes('v1'))!;
    assert.ok(last, 'a report lists the volume');
    assert.deepEqual(last.snapshots, ['s1']);
    assert.equal(last.provisionedGb, 2);
    assert.equal(last.backend, 'local-qcow2');
    assert.equal(last.backupDir, join(dataDir, 'backups'));
    assert.ok(last.totalGb > 0 && last.freeGb > 0);
    assert.deepEqual(await bus.request(s.snapshotDelete, { volumeId: 'v1', snapshotId: 's1' }), { deleted: true });
    assert.deepEqual(await bus.request(s.delete, { volumeId: 'v1' }), { deleted: true });
    assert.deepEqual(await bus.request(s.delete, { volumeId: 'v1' }), { deleted: false });
  } finally {
    sub.unsubscribe();
    await agent.stop();
  }
});
