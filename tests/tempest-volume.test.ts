/**
 * Tempest's block storage API tests (Cinder v3; Debian's tempest package) and the compute
 * tests that attach volumes to servers (tempest.api.compute.volumes) against `gureum up`,
 * with real QEMU guests from the built-in gureum-tiny image. The test fails if any test
 * fails that tests/tempest/unsupported-volume.txt does not name (features Gureum does not
 * have yet, each with its reason). The tempest workspace (tempest.log with every HTTP
 * request) is kept and its path printed.
 */

import { test } from 'node:test';
import { openstack, startCloud } from './helpers/cloud.ts';
import { reportTempest, runTempest } from './helpers/tempest.ts';

test('tempest.api.volume and the compute volume tests pass except the features listed as unsupported', { timeout: 25 * 60_000 }, async () => {
  const cloud = await startCloud();
  try {
    const image = (await openstack(cloud.env, 'image', 'show', 'gureum-tiny', '-f', 'json')) as { id: string };
    const versions = await (await fetch(`${cloud.url}/volume/`)).json() as { versions: { id: string; version: string }[] };
    const max = versions.versions.find((v) => v.id === 'v3.0')?.version;
    if (!max) throw new Error(`no v3.0 in the volume versions document: ${JSON.stringify(versions)}`);
    const r = await runTempest({
      label: 'volume', conf: 'tempest-volume.conf.in', regex: process.env.GUREUM_TEMPEST_REGEX ?? '^tempest\\.api\\.(volume|compute\\.volumes)\\.',
      unsupported: 'unsupported-volume.txt',
      vars: {
        ADMIN_PASSWORD: cloud.password, AUTH_URL: cloud.authUrl, IMAGE_REF: image.id, IMAGE_REF_ALT: image.id,
        VOLUME_MAX_MICROVERSION: max, STORAGE_PROTOCOL: 'file',
      },
      timeoutMs: 22 * 60_000,
    });
    reportTempest(r, 100);
  } finally {
    await cloud.stop();
  }
});
