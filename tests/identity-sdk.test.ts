/** openstacksdk (Debian's python3-openstacksdk) drives the identity API unmodified. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cleanEnv, startCloud } from './helpers/cloud.ts';

const run = promisify(execFile);

test('openstacksdk: domains, projects, users, roles, and a user logging in', async () => {
  const cloud = await startCloud();
  try {
    const script = new URL('./sdk/identity.py', import.meta.url).pathname;
    const env = { ...cleanEnv(), OS_CLIENT_CONFIG_FILE: join(cloud.dir, 'conf', 'clouds.yaml') };
    const { stdout } = await run('/usr/bin/python3', [script], { env });
    assert.deepEqual(JSON.parse(stdout), {
      token_project: true, has_role: true, projects: ['sdk-project'], user_email: 'sdk@example.org', services: ['block-storage', 'compute', 'identity', 'image', 'network', 'volumev3'],
      user_project: true, list_users_as_member: 403, domain_gone: true,
    });
    assert.ok(!cloud.output().includes('sdk-pass'), 'the password never reaches the logs');
  } finally {
    await cloud.stop();
  }
});
