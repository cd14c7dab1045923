import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MetadataDocument } from './document.ts';
import { lookup, pathTokens, type Lookup } from './routes.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me@host\n';
const doc: MetadataDocument = {
  metaData: {
    uuid: '8d0e6a47-2f1c-4c3e-9b0e-1f6d7f7c2a11', name: 'vm1', hostname: 'vm1', launch_index: 0, availability_zone: 'nova',
    project_id: 'p1', meta: { role: 'web' }, devices: [], public_keys: { me: KEY }, keys: [{ name: 'me', type: 'ssh', data: KEY }],
  },
  userData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
  networkData: { links: [], networks: [], services: [] },
  vendorData: { v: 1 },
};

function body(l: Lookup): string {
  assert.equal(l.kind, 'data', JSON.stringify(l));
  return l.kind === 'data' ? l.body.toString() : '';
}
function jsonAt(d: MetadataDocument, p: string): Record<string, unknown> {
  const l = lookup(d, p);
  assert.equal(l.kind === 'data' && l.contentType, 'application/json');
  return JSON.parse(body(l)) as Record<string, unknown>;
}

test('paths normalize like posixpath.normpath; undecodable ones are nothing', () => {
  assert.deepEqual(pathTokens('/openstack//latest/./meta_data.json?x=1'), ['openstack', 'latest', 'meta_data.json']);
  assert.deepEqual(pathTokens('/latest/meta-data/../user-data/'), ['latest', 'user-data']);
  assert.deepEqual(pathTokens('/../../etc/passwd'), ['etc', 'passwd']);
  assert.deepEqual(pathTokens('/%6fpenstack'), ['openstack']);
  assert.equal(pathTokens('/%E0%A4%A'), undefined);
  assert.equal(pathTokens('/a%00b'), undefined);
});

test('OpenStack: version list, per-version file list, meta_data.json with Nova\'s version gates', () => {
  assert.equal(body(lookup(doc, '/openstack')),
    '2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n2017-02-22\n2018-08-27\nlatest');
  assert.equal(body(lookup(doc, '/openstack/')), body(lookup(doc, '/openstack')));
  assert.equal(body(lookup(doc, '/openstack/latest')),
    'meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json');
  assert.equal(body(lookup(doc, '/openstack/2012-08-10')), 'meta_data.json\nuser_data');
  assert.equal(body(lookup({ metaData: {} }, '/openstack/2015-10-15/')), 'meta_data.json\npassword\nvendor_data.json\nnetwork_data.json');

  const latest = jsonAt(doc, '/openstack/latest/meta_data.json');
  assert.equal(latest.hostname, 'vm1');
  assert.deepEqual(latest.public_keys, { me: KEY });
  assert.equal(latest.project_id, 'p1');
  assert.deepEqual(latest.devices, []);
  assert.equal(Buffer.from(latest.random_seed as string, 'base64').length, 512);
  assert.notEqual(jsonAt(doc, '/openstack/latest/meta_data.json').random_seed, latest.random_seed, 'a fresh seed each read');
  const folsom = jsonAt(doc, '/openstack/2012-08-10/meta_data.json');
  assert.equal(folsom.random_seed, undefined);
  assert.equal(folsom.project_id, undefined);
  assert.equal(folsom.devices, undefined);
  assert.equal(folsom.uuid, doc.metaData.uuid);
  const liberty = jsonAt(doc, '/openstack/2015-10-15/meta_data.json');
  assert.equal(liberty.project_id, 'p1');
  assert.equal(liberty.devices, undefined);
});

test('OpenStack: user_data raw (404 without), network/vendor data, password, and what older versions lack', () => {
  assert.equal(body(lookup(doc, '/openstack/latest/user_data')), '#!/bin/sh\necho hi\n');
  assert.equal(lookup({ metaData: {} }, '/openstack/latest/user_data').kind, 'not-found');
  assert.deepEqual(jsonAt(doc, '/openstack/latest/network_data.json'), { links: [], networks: [], services: [] });
  assert.deepEqual(jsonAt({ metaData: {} }, '/openstack/latest/network_data.json'), {});
  assert.deepEqual(jsonAt(doc, '/openstack/2018-08-27/vendor_data.json'), { v: 1 });
  assert.deepEqual(jsonAt(doc, '/openstack/latest/vendor_data2.json'), {});
  assert.deepEqual(lookup(doc, '/openstack/latest/password'), { kind: 'password' });
  for (const p of ['/openstack/2012-08-10/password', '/openstack/2013-04-04/vendor_data.json', '/openstack/2013-10-17/network_data.json',
    '/openstack/2016-06-30/vendor_data2.json', '/openstack/2019-01-01/meta_data.json', '/openstack/latest/nope',
    '/openstack/latest/meta_data.json/x', '/openstack/content/0000']) {
    assert.equal(lookup(doc, p).kind, 'not-found', p);
  }
});

test('EC2: versions, listings, keys, placement, user-data', () => {
  assert.equal(body(lookup(doc, '/')),
    '1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest');
  assert.equal(body(lookup(doc, '/latest')), 'meta-data/\nuser-data');
  assert.equal(body(lookup({ metaData: {} }, '/latest/')), 'meta-data/');
  assert.equal(body(lookup(doc, '/latest/meta-data/')), [
    'ami-id', 'ami-launch-index', 'ami-manifest-path', 'block-device-mapping/', 'hostname', 'instance-action', 'instance-id',
    'instance-type', 'local-hostname', 'local-ipv4', 'placement/', 'public-hostname', 'public-ipv4', 'public-keys/',
    'reservation-id', 'security-groups',
  ].join('\n'));
  assert.equal(body(lookup(doc, '/latest/meta-data/public-keys')), '0=me');
  assert.equal(body(lookup(doc, '/latest/meta-data/public-keys/0/')), 'openssh-key');
  assert.equal(body(lookup(doc, '/latest/meta-data/public-keys/0/openssh-key')), KEY);
  assert.equal(body(lookup(doc, '/latest/meta-data/hostname')), 'vm1');
  assert.equal(body(lookup(doc, '/latest/meta-data/local-hostname')), 'vm1');
  assert.equal(body(lookup(doc, '/latest/meta-data/instance-id')), 'i-8d0e6a47');
  assert.equal(body(lookup(doc, '/latest/meta-data/placement/')), 'availability-zone');
  assert.equal(body(lookup(doc, '/latest/meta-data/placement/availability-zone')), 'nova');
  assert.equal(body(lookup(doc, '/latest/meta-data/block-device-mapping')), 'ami\nroot');
  assert.equal(body(lookup(doc, '/latest/meta-data/block-device-mapping/root')), '/dev/vda');
  assert.equal(body(lookup(doc, '/latest/meta-data/instance-action')), 'none');
  assert.equal(body(lookup(doc, '/latest/meta-data/security-groups')), '');
  assert.equal(body(lookup(doc, '/latest/user-data')), '#!/bin/sh\necho hi\n');
  assert.equal(body(lookup(doc, '/ec2/2009-04-04/meta-data/hostname')), 'vm1');
  // 1.0 has neither local-hostname nor placement
  assert.equal(body(lookup(doc, '/1.0/meta-data')).split('\n').includes('local-hostname'), false);
  assert.equal(lookup(doc, '/1.0/meta-data/placement/availability-zone').kind, 'not-found');
  for (const p of ['/2010-01-01/meta-data', '/latest/meta-data/nope', '/latest/meta-data/hostname/x', '/latest/user-data/x',
    '/latest/meta-data/public-keys/1', '/latest/meta-data/__proto__', '/latest/meta-data/constructor']) {
    assert.equal(lookup(doc, p).kind, 'not-found', p);
  }
  assert.equal(lookup({ metaData: {} }, '/latest/user-data').kind, 'not-found');
  assert.equal(lookup({ metaData: {} }, '/latest/meta-data/public-keys').kind, 'not-found');
});

test('EC2: facts from the document override the defaults', () => {
  const d: MetadataDocument = {
    ...doc,
    ec2: {
      instanceId: 'i-0000002a', amiId: 'ami-0000000b', kernelId: 'aki-00000001', instanceType: 'm1.tiny', reservationId: 'r-1cnh08js',
      localIpv4: '169.254.169.15', publicIpv4: '', securityGroups: ['default', 'web'], blockDeviceMapping: { ami: 'vda', root: '/dev/vda', ephemeral0: 'vdb' },
    },
  };
  const at = (p: string) => body(lookup(d, `/latest/meta-data/${p}`));
  assert.equal(at('instance-id'), 'i-0000002a');
  assert.equal(at('ami-id'), 'ami-0000000b');
  assert.equal(at('kernel-id'), 'aki-00000001');
  assert.equal(at('instance-type'), 'm1.tiny');
  assert.equal(at('reservation-id'), 'r-1cnh08js');
  assert.equal(at('local-ipv4'), '169.254.169.15');
  assert.equal(at('security-groups'), 'default\nweb');
  assert.equal(at('block-device-mapping'), 'ami\nephemeral0\nroot');
  assert.ok(at('').split('\n').includes('kernel-id'));
  assert.ok(!at('').split('\n').includes('ramdisk-id'));
});
