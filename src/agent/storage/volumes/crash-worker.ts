/**
 * Test helper for crash.test.ts: runs pool operations on `<dataDir>` in a loop until it is
 * killed (kill -9 at a random moment), printing each step it has finished.
 */
import { pino } from 'pino';
import { ImageCache } from '../image-cache.ts';
import { LocalQcow2Pool } from './local-pool.ts';

const dataDir = process.argv[2]!;
const round = Number(process.argv[3] ?? 0);
const log = pino({ level: 'silent' });
const pool = new LocalQcow2Pool({
  dataDir, host: 'h1', hostIp: '127.0.0.1', cache: new ImageCache({ dataDir }), source: () => ({ localPath: '/nonexistent' }),
  live: { holderOf: async () => undefined, snapshot: async () => undefined, resize: async () => undefined }, log,
});
await pool.start();
for (let i = 0; ; i++) {
  const n = `${round}-${i}`;
  await pool.snapshotCreate('v1', `s${n}`, log);
  await pool.create(`c${n}`, 1, { kind: 'snapshot', snapshotId: `s${n}` }, log);
  await pool.create(`k${n}`, 0, { kind: 'volume', volumeId: 'v1' }, log);
  await pool.snapshotDelete('v1', `s${n}`, log);
  await pool.delete(`c${n}`, log);
  if (i % 2) await pool.delete(`k${n}`, log);
  process.stdout.write(`${n}\n`);
}
