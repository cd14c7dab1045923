/**
 * ensureGuestImages: builds with the real guest/build.sh (about 10 s a build here, from
 * the Debian mirror), skips when current, rebuilds when stale or asked, serializes
 * concurrent starts, and reports a failing build with its log tail.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/logger.ts';
import { ensureGuestImages, guestSourceStamp } from './guest-images.ts';

const GUEST = fileURLToPath(new URL('../../guest/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'guest-images-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A Logger that records its messages. */
function recorder(): Logger & { messages: string[] } {
  const messages: string[] = [];
  const log = (obj: unknown, msg?: string) => { messages.push(typeof obj === 'string' ? obj : msg ?? ''); };
  const l = { level: 'info', messages, fatal: log, error: log, warn: log, info: log, debug: log, trace: log, child: () => l };
  return l as unknown as Logger & { messages: string[] };
}
const builds = (l: { messages: string[] }) => l.messages.filter((m) => m === 'guest images: built').length;

test('the stamp is the one guest/build.sh computes', async () => {
  const fromShell = execFileSync('bash', ['-c', 'sha256sum build.sh init udhcpc.script | sha256sum'], { cwd: GUEST, encoding: 'utf8' });
  assert.equal(await guestSourceStamp(), fromShell.split(' ')[0]);
});

test('two concurrent starts build once; a later start does not build', { timeout: 600_000 }, async () => {
  const dir = join(work, 'fresh');
  const log = recorder();
  const [a, b] = await Promise.all([ensureGuestImages(dir, { log }), ensureGuestImages(dir, { log })]);
  assert.deepEqual(a, b);
  assert.equal(builds(log), 1, log.messages.join('\n'));
  assert.match(a.kernelVersion, /^\d+\.\d+\.\d+-\d+-amd64$/);
  for (const f of [a.vmlinux, a.initramfs, a.disk]) assert.ok(statSync(f).size > 1_000_000, f);
  assert.equal(readFileSync(a.disk).subarray(0, 4).toString('latin1'), 'QFI\xfb', 'disk.qcow2 is qcow2');
  assert.equal(readFileSync(join(dir, 'stamp'), 'utf8').trim(), await guestSourceStamp());

  const mtime = statSync(a.disk).mtimeMs;
  const t0 = Date.now();
  const again = await ensureGuestImages(dir, { log });
  assert.deepEqual(again, a);
  assert.ok(Date.now() - t0 < 1000, 'an up-to-date dir costs no build');
  assert.equal(statSync(a.disk).mtimeMs, mtime);
  assert.equal(builds(log), 1);
});

test('a stale stamp (guest sources changed) rebuilds; rebuild: true rebuilds', { timeout: 600_000 }, async () => {
  // The shared cached build as a fixture, copied so it is never touched.
  const dir = join(work, 'stale');
  const cache = fileURLToPath(new URL('../../.cache/guest/', import.meta.url));
  try { cpSync(cache, dir, { recursive: true }); } catch { /* no cache yet: an empty dir is stale too */ }
  writeFileSync(join(dir, 'stamp'), 'from-older-sources\n');
  const log = recorder();
  const images = await ensureGuestImages(dir, { log });
  assert.equal(builds(log), 1);
  assert.equal(readFileSync(join(dir, 'stamp'), 'utf8').trim(), await guestSourceStamp());

  const mtime = statSync(images.disk).mtimeMs;
  await ensureGuestImages(dir, { log, rebuild: true });
  assert.equal(builds(log), 2);
  assert.ok(statSync(images.disk).mtimeMs > mtime);
});

test('a failing build throws with the tail of its log', async () => {
  const guestDir = join(work, 'broken-guest');
  cpSync(GUEST, guestDir, { recursive: true });
  const script = readFileSync(join(guestDir, 'build.sh'), 'utf8').replace('\nwork=$(mktemp -d)', '\necho "cannot fetch the kernel package: boom" >&2; exit 3\nwork=$(mktemp -d)');
  writeFileSync(join(guestDir, 'build.sh'), script);
  await assert.rejects(ensureGuestImages(join(work, 'broken'), { guestDir }), (e: Error) => {
    assert.match(e.message, /failed \(3\)/);
    assert.match(e.message, /cannot fetch the kernel package: boom/);
    return true;
  });
});
