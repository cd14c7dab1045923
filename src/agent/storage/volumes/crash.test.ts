import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { ImageCache } from '../image-cache.ts';
import { LocalQcow2Pool } from './local-pool.ts';

const run = promisify(execFile);
const log = pino({ level: 'silent' });
const worker = join(dirname(fileURLToPath(import.meta.url)), 'crash-worker.ts');
let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'volcrash-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

const poolAt = (dataDir: string) => new LocalQcow2Pool({
  dataDir, host: 'h1', hostIp: '127.0.0.1', cache: new ImageCache({ dataDir }), source: () => ({ localPath: '/nonexistent' }),
  live: { holderOf: async () => undefined, snapshot: async () => undefined, resize: async () => undefined }, log,
});

test('kill -9 at random moments during snapshots, clones and deletes: start-up leaves a consistent pool', async () => {
  const dataDir = join(dir, 'data');
  const pool = poolAt(dataDir);
  await pool.start();
  await pool.create('v1', 1, { kind: 'empty' }, log);
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 0 1M', pool.topPath('v1')]);
  let steps = 0;
  for (let round = 0; round < 6; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', worker, dataDir, String(round)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    // Let it get going (tsx start-up) and run a while, then kill it wherever it is.
    for (let i = 0; i < 200 && !out; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    steps += out.split('\n').filter(Boolean).length;

    const again = poolAt(dataDir);
    await again.start();
    const vdir = join(dataDir, 'volumes');
    assert.deepEqual(readdirSync(join(vdir, 'journal')), [], 'no freeze left in flight');
    assert.deepEqual(readdirSync(vdir).filter((n) => n.startsWith('.tmp-')), [], 'no temporary files');
    const cap = await again.capacity();
    assert.ok(cap.volumes.includes('v1'));
    // Every volume and snapshot opens with its whole chain; v1 still holds its data.
    for (const v of cap.volumes) await run('qemu-img', ['info', '--backing-chain', again.topPath(v)]);
    for (const s of cap.snapshots) await again.create(`check-${s}`, 1, { kind: 'snapshot', snapshotId: s }, log);
    const { stdout } = await run('qemu-io', ['-r', '-f', 'qcow2', '-c', 'read -P 0x77 0 1M', again.topPath('v1')]);
    assert.doesNotMatch(stdout, /verification failed/);
    // No layer is kept that nothing reaches.
    const layers = readdirSync(vdir).filter((n) => n.startsWith('layer-'));
    const reached = new Set<string>();
    for (const v of (await again.capacity()).volumes) {
      const chain = JSON.parse((await run('qemu-img', ['info', '--backing-chain', '--output=json', again.topPath(v)])).stdout) as { filename: string }[];
      for (const c of chain) reached.add(c.filename.split('/').pop()!);
    }
    for (const s of cap.snapshots) reached.add(`layer-${s}.qcow2`);
    assert.deepEqual(layers.filter((l) => !reached.has(l)), []);
  }
  assert.ok(steps > 0, 'the worker made progress between kills');
});
