import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { pino } from 'pino';
import type { ImageRef } from '../../../bus/compute.ts';
import type { BackupTarget } from '../../../bus/volume.ts';
import { ImageCache } from '../image-cache.ts';
import { LocalQcow2Pool } from './local-pool.ts';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const log = pino({ level: 'silent' });
let dir: string;
let pool: LocalQcow2Pool;
let target: BackupTarget;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volbak-'));
  const dataDir = join(dir, 'data');
  pool = new LocalQcow2Pool({
    dataDir, host: 'h1', hostIp: '127.0.0.1', cache: new ImageCache({ dataDir }), source: (ref: ImageRef) => ({ localPath: ref.localPath! }),
    live: { holderOf: async () => undefined, snapshot: async () => undefined, resize: async () => undefined }, log,
  });
  await pool.start();
  target = { kind: 'directory', path: join(dir, 'backups') };
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function io(path: string, cmd: string, format = 'qcow2'): Promise<string> {
  return (await run('qemu-io', ['-f', format, '-c', cmd, path])).stdout;
}
async function holds(path: string, off: string, len: string, pattern: number, format = 'qcow2'): Promise<boolean> {
  return !/verification failed/.test(await io(path, `read -P 0x${pattern.toString(16)} ${off} ${len}`, format));
}

test('full and incremental backups store only what changed; restores rebuild each point in time', async () => {
  await pool.create('v1', 2, { kind: 'empty' }, log);
  const v1 = pool.topPath('v1');
  await io(v1, 'write -P 0xa1 0 1M');
  await io(v1, 'write -P 0xb2 1G 1M');
  const full = await pool.backup({ volumeId: 'v1', backupId: 'b1', target }, log);
  assert.equal(full.objectCount, 2, 'two 4 MiB objects hold data; the other 510 are zero and cost nothing');
  assert.ok(full.sizeBytes < 64 * 1024, `compressed patterns are small (${full.sizeBytes})`);
  assert.deepEqual(await pool.backup({ volumeId: 'v1', backupId: 'b1', target }, log), full, 'a retry answers the same');

  await io(v1, 'write -P 0xc3 0 64k');
  await io(v1, 'write -z 1G 1M');
  const inc = await pool.backup({ volumeId: 'v1', backupId: 'b2', parentId: 'b1', target }, log);
  assert.equal(inc.objectCount, 1);
  const meta = JSON.parse(readFileSync(join(target.kind === 'directory' ? target.path : '', 'b2', 'metadata.json'), 'utf8')) as {
    objects: { blocks: number[] }[]; zeros: number[]; parentId: string;
  };
  assert.deepEqual(meta.objects.map((o) => o.blocks), [[0]], 'only the one changed 64 KiB block is stored');
  assert.equal(meta.zeros.length, 16, 'the zeroed MiB is listed, not stored');
  assert.equal(meta.parentId, 'b1');

  // A new volume from the full backup: the content at b1.
  assert.deepEqual(await pool.create('r1', 0, { kind: 'backup', chain: [{ backupId: 'b1' }], target }, log), { sizeGb: 2 });
  const r1 = pool.topPath('r1');
  assert.ok(await holds(r1, '0', '1M', 0xa1));
  assert.ok(await holds(r1, '1G', '1M', 0xb2));
  const map = JSON.parse((await run('qemu-img', ['map', '--output=json', r1])).stdout) as { data: boolean; length: number }[];
  assert.ok(map.filter((e) => e.data).reduce((a, e) => a + e.length, 0) <= 4 * 1024 * 1024, 'the restored volume stays sparse');

  // The chain onto an existing (larger) volume: the content at b2, the volume keeps its size.
  await pool.create('v2', 3, { kind: 'empty' }, log);
  await io(pool.topPath('v2'), 'write -P 0xee 0 1M');
  await io(pool.topPath('v2'), 'write -P 0xee 1536M 1M');
  assert.deepEqual(await pool.restore({ volumeId: 'v2', chain: [{ backupId: 'b1' }, { backupId: 'b2' }], target }, log), { sizeGb: 3 });
  const v2 = pool.topPath('v2');
  assert.ok(await holds(v2, '0', '64k', 0xc3));
  assert.ok(await holds(v2, '64k', '960k', 0xa1));
  assert.ok(await holds(v2, '1G', '1M', 0));
  assert.ok(await holds(v2, '1536M', '1M', 0), 'old content outside the backup is gone');

  await assert.rejects(pool.restore({ volumeId: 'v2', chain: [{ backupId: 'b2' }], target }, log), /not a full backup/);
  await assert.rejects(pool.backup({ volumeId: 'v1', backupId: 'b3', parentId: 'nope', target }, log), /Parent backup nope could not be found/);
  await assert.rejects(pool.backup({ volumeId: 'v1', backupId: 'b4', target: { kind: 'swift', url: 'http://x', container: 'c', token: 't' } }, log), /not available/);

  // A corrupt object is detected, and the volume is left as it was.
  const objDir = join(dir, 'backups', 'b1');
  const obj = readdirSync(objDir).find((n) => n.startsWith('obj-'))!;
  const saved = readFileSync(join(objDir, obj));
  writeFileSync(join(objDir, obj), Buffer.concat([saved, Buffer.from('x')]));
  await assert.rejects(pool.restore({ volumeId: 'v2', chain: [{ backupId: 'b1' }], target }, log), /corrupt/);
  assert.ok(await holds(v2, '0', '64k', 0xc3));
  writeFileSync(join(objDir, obj), saved);
  assert.ok(!readdirSync(pool.dir).some((n) => n.startsWith('.tmp-')), 'no temporary files left');

  assert.equal(await pool.backupDelete('b2', target, log), true);
  assert.equal(await pool.backupDelete('b2', target, log), false);
  assert.ok(!existsSync(join(dir, 'backups', 'b2')));
});

test('a backup of a snapshot holds the snapshot content', async () => {
  await pool.create('v3', 1, { kind: 'empty' }, log);
  await io(pool.topPath('v3'), 'write -P 0x11 0 1M');
  await pool.snapshotCreate('v3', 's3', log);
  await io(pool.topPath('v3'), 'write -P 0x22 0 1M');
  await pool.backup({ volumeId: 'v3', snapshotId: 's3', backupId: 'b3', target }, log);
  await pool.create('r3', 1, { kind: 'backup', chain: [{ backupId: 'b3' }], target }, log);
  assert.ok(await holds(pool.topPath('r3'), '0', '1M', 0x11));
});

test('upload to image: the volume chain converted and PUT with the token', async () => {
  await pool.create('v4', 1, { kind: 'empty' }, log);
  await io(pool.topPath('v4'), 'write -P 0x44 0 1M');
  await pool.snapshotCreate('v4', 's4', log); // a chain, not a single file
  const got = join(dir, 'uploaded.qcow2');
  let token = '';
  const srv = createServer((req, res) => {
    token = String(req.headers['x-auth-token']);
    void pipeline(req, createWriteStream(got)).then(() => { res.statusCode = 204; res.end(); });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  try {
    const r = await pool.uploadImage({ volumeId: 'v4', uploadUrl: `http://127.0.0.1:${port}/v2/images/x/file`, token: 'tok', diskFormat: 'qcow2' }, log);
    assert.ok(r.size > 1024 * 1024 && r.size < 4 * 1024 * 1024, `a sparse qcow2 (${r.size} bytes)`);
    assert.equal(token, 'tok');
    assert.ok(await holds(got, '0', '1M', 0x44));
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', got])).stdout) as { 'virtual-size': number; 'backing-filename'?: string };
    assert.equal(info['virtual-size'], GiB);
    assert.equal(info['backing-filename'], undefined, 'standalone: no backing file');
  } finally {
    srv.close();
  }
});
