/**
 * Tempest's identity API tests (Debian's tempest package) against `gureum up`. Every
 * identity test runs; the test fails if any test fails that tests/tempest/unsupported.txt
 * does not name (features Gureum does not have yet, each with its reason).
 */

import { test } from 'node:test';
import { startCloud } from './helpers/cloud.ts';
import { reportTempest, runTempest } from './helpers/tempest.ts';

test('tempest.api.identity passes except the features listed as unsupported', { timeout: 20 * 60_000 }, async () => {
  const cloud = await startCloud();
  try {
    const r = await runTempest({
      label: 'identity', conf: 'tempest.conf.in', regex: '^tempest\\.api\\.identity', unsupported: 'unsupported.txt',
      vars: { ADMIN_PASSWORD: cloud.password, AUTH_URL: cloud.authUrl },
    });
    reportTempest(r, 100);
  } finally {
    await cloud.stop();
  }
});
