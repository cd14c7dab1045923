/**
 * Tempest's image API tests (Glance v2) (Debian's tempest package) against `gureum up`. Every
 * image test runs; the test fails if any test fails that tests/tempest/unsupported-image.txt
 * does not name (features Gureum does not have yet, each with its reason).
 */

import { test } from 'node:test';
import { startCloud } from './helpers/cloud.ts';
import { reportTempest, runTempest } from './helpers/tempest.ts';

test('tempest.api.image passes except the features listed as unsupported', { timeout: 20 * 60_000 }, async () => {
  const cloud = await startCloud();
  try {
    const r = await runTempest({
      label: 'image', conf: 'tempest-image.conf.in', regex: '^tempest\\.api\\.image', unsupported: 'unsupported-image.txt',
      vars: { ADMIN_PASSWORD: cloud.password, AUTH_URL: cloud.authUrl },
    });
    reportTempest(r, 30);
  } finally {
    await cloud.stop();
  }
});
