/**
 * Tempest's image API tests (Glance v2) (Debian's tempest package) against `gureum up`. Every
 * image test runs; the test fails if any test fails that tests/tempest/unsupported-image.txt
 * does not name (features Gureum does not have yet, each with its reason).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cleanEnv, startCloud } from './helpers/cloud.ts';

const run = promisify(execFile);
const here = new URL('./tempest/', import.meta.url).pathname;

test('tempest.api.image passes except the features listed as unsupported', { timeout: 20 * 60_000 }, async () => {
  const cloud = await startCloud();
  try {
    const top = mkdtempSync(join(tmpdir(), 'tempest-'));
    const ws = join(top, 'ws');
    const env = { ...cleanEnv(), PATH: `/usr/bin:${process.env.PATH ?? ''}` };
    // Workspaces are registered by name in ~/.tempest; a unique name keeps runs apart.
    await run('tempest', ['init', '--name', `gureum-${top.slice(-6)}`, ws], { env });
    const conf = readFileSync(join(here, 'tempest-image.conf.in'), 'utf8')
      .replace('@ADMIN_PASSWORD@', cloud.password).replace('@AUTH_URL@', cloud.authUrl);
    writeFileSync(join(ws, 'etc', 'tempest.conf'), conf);
    await run('tempest', ['run', '--regex', '^tempest\\.api\\.image', '--concurrency', '2'], { cwd: ws, env, maxBuffer: 64 * 1024 * 1024 })
      .catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    // subunit2csv exits 1 when any test failed; the CSV is complete either way.
    const { stdout: csv } = await run('bash', ['-c', 'stestr last --subunit | subunit2csv || true'], { cwd: ws, env, maxBuffer: 64 * 1024 * 1024 });
    const rows = csv.trim().split(/\r?\n/).slice(1).map((l) => /^(?:"([^"]*)"|([^,]*)),(\w+),/.exec(l)).filter((m) => m !== null)
      .map((m) => ({ id: (m![1] ?? m![2]!).replace(/\[.*\]$/, ''), status: m![3]! }));
    const status = (s: string) => rows.filter((r) => r.status === s).map((r) => r.id);
    const passed = status('success');
    const failed = status('failure');
    const skipped = status('skip');
    const unsupported = readFileSync(join(here, 'unsupported-image.txt'), 'utf8').split('\n')
      .map((l) => l.replace(/#.*/, '').trim()).filter(Boolean).map((r) => new RegExp(r));
    const unexpected = failed.filter((id) => !unsupported.some((r) => r.test(id)));
    const ran = passed.length + failed.length;
    console.log(`tempest image: ${passed.length} passed, ${failed.length} failed (${failed.length - unexpected.length} of them unsupported features), ${skipped.length} skipped; ${(100 * passed.length / ran).toFixed(1)} % of the tests that ran passed`);
    for (const id of failed) console.log(`  failed: ${id}`);
    assert.ok(passed.length > 30, `tempest ran (${passed.length} passed)`);
    assert.deepEqual(unexpected, [], 'no failures beyond the documented unsupported features');
  } finally {
    await cloud.stop();
  }
});
