/**
 * Instance disk creation: a qcow2 overlay on a cached base (what spawn does) against a
 * full copy of the base, for a 20 MiB and a 2 GiB image.
 *   node --import tsx bench/compute/disk.ts [runs]      (default 20 runs; full copies: 3)
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRootOverlay, createEphemeral, createSwap } from '../../src/agent/storage/disks.ts';

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 20);

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return `median ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms (n=${s.length})`;
}

async function time(n: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}

const dir = await mkdtemp(join(tmpdir(), 'bench-disk-'));
try {
  for (const [label, size] of [['20 MiB', 20], ['2 GiB', 2048]] as const) {
    const base = join(dir, `base-${size}.qcow2`);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', base, `${size}M`]);
    // fill it (every byte allocated) so a full copy has real data to move
    for (let off = 0; off < size; off += 512) {
      const len = Math.min(512, size - off);
      await run('qemu-io', ['-c', `write -P 0x5a ${off}M ${len}M`, base], { maxBuffer: 1 << 20 });
    }
    const overlay = await time(N, async (i) => { await createRootOverlay(base, 'qcow2', join(dir, `o-${size}-${i}`)); });
    const grown = await time(N, async (i) => { await createRootOverlay(base, 'qcow2', join(dir, `g-${size}-${i}`), 20); });
    const copies = size > 100 ? 3 : N;
    const copy = await time(copies, async (i) => {
      const dest = join(dir, `c-${size}-${i}`);
      await copyFile(base, dest);
      await run('sync', ['-f', dest]);
      await rm(dest);
    });
    console.log(`${label} base:`);
    console.log(`  qcow2 overlay (image size)    ${stats(overlay)}`);
    console.log(`  qcow2 overlay grown to 20 GiB ${stats(grown)}`);
    console.log(`  full copy + sync              ${stats(copy)}`);
  }
  const eph = await time(N, async (i) => { await createEphemeral(join(dir, `e-${i}`), 20); });
  const swap = await time(N, async (i) => { await createSwap(join(dir, `s-${i}`), 1024); });
  console.log(`ephemeral qcow2 20 GiB          ${stats(eph)}`);
  console.log(`swap raw 1 GiB (+mkswap)        ${stats(swap)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
