import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildConfigDrive } from './config-drive.ts';

const run = promisify(execFile);
let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'cfgdrive-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

/** A file's content inside the ISO, read with isoinfo (Rock Ridge names), no mount. */
async function isoRead(iso: string, path: string): Promise<string> {
  const { stdout } = await run('isoinfo', ['-R', '-i', iso, '-x', path], { encoding: 'utf8' });
  return stdout;
}

test('ISO labelled config-2 with Nova’s layout', async () => {
  const iso = join(dir, 'disk.config');
  const meta = { uuid: 'u-1', name: 'vm1', hostname: 'vm1.novalocal', public_keys: { k: 'ssh-ed25519 AAAA me' } };
  await buildConfigDrive(iso, {
    metaData: meta, userData: Buffer.from('#!/bin/sh\necho hi\n'),
    networkData: { links: [], networks: [], services: [] }, ec2MetaData: { 'instance-id': 'i-1' },
  });
  const { stdout: pvd } = await run('isoinfo', ['-d', '-i', iso]);
  assert.match(pvd, /Volume id: config-2/);
  const { stdout: list } = await run('isoinfo', ['-R', '-f', '-i', iso]);
  for (const p of ['/openstack/latest/meta_data.json', '/openstack/latest/user_data', '/openstack/latest/network_data.json',
    '/openstack/latest/vendor_data.json', '/openstack/2018-08-27/meta_data.json', '/openstack/2012-08-10/meta_data.json',
    '/ec2/latest/meta-data.json']) {
    assert.ok(list.split('\n').includes(p), `${p} in the ISO`);
  }
  assert.ok(!list.includes('/openstack/2012-08-10/network_data.json'), 'no network_data before 2015-10-15');
  assert.deepEqual(JSON.parse(await isoRead(iso, '/openstack/latest/meta_data.json')), meta);
  assert.equal(await isoRead(iso, '/openstack/2018-08-27/user_data'), '#!/bin/sh\necho hi\n');
});
