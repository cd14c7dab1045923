import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, canonicalMac, cidrContains, cidrsOverlap, cidrText, eui64, formatIp, lastIp, parseCidr, parseIp } from './netaddr.ts';

describe('netaddr', () => {
  test('IPv4: dotted quads only, no leading zeros, canonical text', () => {
    assert.equal(canonicalIp('10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalIp('255.255.255.255'), '255.255.255.255');
    for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '10.0.0.1.2', 'a.b.c.d', '', ' 10.0.0.1', '10.0.0.1/24']) assert.equal(canonicalIp(bad), null, bad);
    assert.equal(parseIp('1.2.3.4')!.value, 0x01020304n);
  });

  test('IPv6: every spelling, RFC 5952 output', () => {
    assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(canonicalIp('2001:db8::'), '2001:db8::');
    assert.equal(canonicalIp('::'), '::');
    assert.equal(canonicalIp('::1'), '::1');
    assert.equal(canonicalIp('2001:0db8:0000:0001:0000:0000:0000:0001'), '2001:db8:0:1::1');
    assert.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'the first of two equal runs');
    assert.equal(canonicalIp('fe80::1:2:3:4:5:6'), 'fe80:0:1:2:3:4:5:6', 'a single zero group is not compressed');
    assert.equal(canonicalIp('::ffff:10.0.0.1'), '::ffff:a00:1');
    for (const bad of ['2001:db8:::1', '1:2:3:4:5:6:7:8:9', '2001:db8::1::2', 'g::1', '12345::1', '1:2:3:4:5:6:7']) assert.equal(canonicalIp(bad), null, bad);
  });

  test('CIDRs: normalised, containment, overlap', () => {
    const c = parseCidr('10.0.0.5/24')!;
    assert.equal(cidrText(c), '10.0.0.0/24');
    assert.equal(formatIp(4, c.address), '10.0.0.5', 'the given address is kept for remote prefixes');
    assert.equal(formatIp(4, lastIp(c)), '10.0.0.255');
    assert.equal(cidrText(parseCidr('2001:db8::1/64')!), '2001:db8::/64');
    assert.equal(parseCidr('10.0.0.0/33'), null);
    assert.equal(parseCidr('10.0.0.0', { requirePrefix: true }), null);
    assert.equal(cidrText(parseCidr('10.0.0.7')!), '10.0.0.7/32');
    assert.ok(cidrContains(c, parseIp('10.0.0.200')!));
    assert.ok(!cidrContains(c, parseIp('10.0.1.1')!));
    assert.ok(!cidrContains(c, parseIp('::1')!));
    assert.ok(cidrsOverlap(parseCidr('10.0.0.0/16')!, parseCidr('10.0.5.0/24')!));
    assert.ok(cidrsOverlap(parseCidr('10.0.5.0/24')!, parseCidr('10.0.0.0/16')!));
    assert.ok(!cidrsOverlap(parseCidr('10.0.0.0/25')!, parseCidr('10.0.0.128/25')!));
    assert.ok(!cidrsOverlap(parseCidr('10.0.0.0/8')!, parseCidr('::/0')!));
  });

  test('MAC addresses: lower-case colon form, unicast only', () => {
    assert.equal(canonicalMac('FA:16:3E:00:11:22'), 'fa:16:3e:00:11:22');
    assert.equal(canonicalMac('fa-16-3e-00-11-22'), 'fa:16:3e:00:11:22');
    for (const bad of ['00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', 'fa:16:3e:00:11', 'zz:16:3e:00:11:22']) assert.equal(canonicalMac(bad), null, bad);
  });

  test('EUI-64 addresses as Neutron computes them for SLAAC', () => {
    assert.equal(formatIp(6, eui64(parseCidr('2001:db8::/64')!, 'fa:16:3e:33:44:55')), '2001:db8::f816:3eff:fe33:4455');
  });
});
