import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSubnet, cloudId, hostsLayout, MAX_HOSTS, overlaps } from './hosts.ts';

test('cloudId: six hex digits, stable per data directory, different between directories', () => {
  assert.match(cloudId('/var/lib/a'), /^[0-9a-f]{6}$/);
  assert.equal(cloudId('/var/lib/a'), cloudId('/var/lib/a/'));
  assert.notEqual(cloudId('/var/lib/a'), cloudId('/var/lib/b'));
});

test('overlaps: IPv4 prefixes', () => {
  assert.ok(overlaps({ network: '10.1.2.0', prefixLen: 24 }, { network: '10.1.0.0', prefixLen: 16 }));
  assert.ok(overlaps({ network: '10.1.2.7', prefixLen: 32 }, { network: '10.1.2.0', prefixLen: 24 }));
  assert.ok(!overlaps({ network: '10.1.2.0', prefixLen: 24 }, { network: '10.1.3.0', prefixLen: 24 }));
  assert.ok(overlaps({ network: '0.0.0.0', prefixLen: 0 }, { network: '192.0.2.0', prefixLen: 24 }));
});

test('chooseSubnet: a /24 in 10.200-249, the same for a directory, moved past prefixes in use', () => {
  const a = chooseSubnet('/srv/cloud-a', []);
  assert.match(a, /^10\.(2[0-4]\d)\.\d+\.0\/24$/);
  assert.equal(chooseSubnet('/srv/cloud-a', []), a);
  assert.notEqual(chooseSubnet('/srv/cloud-b', []), a, 'two clouds get different underlays (for these two directories)');
  const [net] = a.split('/');
  const moved = chooseSubnet('/srv/cloud-a', [{ network: net!, prefixLen: 24 }]);
  assert.notEqual(moved, a);
  const wide = chooseSubnet('/srv/cloud-a', [{ network: net!.replace(/\.\d+\.0$/, '.0.0'), prefixLen: 16 }]);
  assert.ok(!overlaps({ network: wide.split('/')[0]!, prefixLen: 24 }, { network: net!.replace(/\.\d+\.0$/, '.0.0'), prefixLen: 16 }));
});

test('hostsLayout: names and addresses of the underlay and each host', () => {
  const l = hostsLayout({ id: 'abc123', subnet: '10.210.7.0/24' }, 3);
  assert.equal(l.bridge, 'gh-abc123');
  assert.equal(l.gateway, '10.210.7.1');
  assert.deepEqual(l.hosts.map((h) => [h.namespace, h.address, h.namespacePrefix, h.underlayVeth, h.externalVeth]), [
    ['gh-abc123-1', '10.210.7.11', 'gh-abc123-1-', 'gh-abc123-u1', 'gh-abc123-x1'],
    ['gh-abc123-2', '10.210.7.12', 'gh-abc123-2-', 'gh-abc123-u2', 'gh-abc123-x2'],
    ['gh-abc123-3', '10.210.7.13', 'gh-abc123-3-', 'gh-abc123-u3', 'gh-abc123-x3'],
  ]);
  // device names fit IFNAMSIZ even for the last host; namespace prefixes never start like an all-in-one agent's (qdhcp-)
  const last = hostsLayout({ id: 'abc123', subnet: '10.210.7.0/24' }, MAX_HOSTS).hosts.at(-1)!;
  assert.ok(last.underlayVeth.length <= 15 && last.externalVeth.length <= 15);
  assert.equal(last.address, `10.210.7.${10 + MAX_HOSTS}`);
  assert.throws(() => hostsLayout({ id: 'abc123', subnet: '10.210.7.0/24' }, MAX_HOSTS + 1), /--hosts/);
  assert.throws(() => hostsLayout({ id: 'abc123', subnet: '10.210.7.0/16' }, 2), /\/24/);
  assert.throws(() => hostsLayout({ id: 'x; rm', subnet: '10.210.7.0/24' }, 2), /invalid id/);
});
