import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiate } from './microversion.ts';

const min = { major: 2, minor: 1 };
const max = { major: 2, minor: 90 };

test('absent header is the minimum, latest is the maximum', () => {
  assert.deepEqual(negotiate({}, 'compute', min, max), min);
  assert.deepEqual(negotiate({ 'openstack-api-version': 'compute latest' }, 'compute', min, max), max);
});

test('a version in range is honoured, also from the legacy header', () => {
  assert.deepEqual(negotiate({ 'openstack-api-version': 'compute 2.53' }, 'compute', min, max), { major: 2, minor: 53 });
  assert.deepEqual(negotiate({ 'x-openstack-nova-api-version': '2.10' }, 'compute', min, max, 'X-OpenStack-Nova-API-Version'), { major: 2, minor: 10 });
  assert.deepEqual(negotiate({ 'openstack-api-version': 'volume 3.5' }, 'compute', min, max), min, 'other services are ignored');
});

test('out of range or malformed is 406', () => {
  assert.throws(() => negotiate({ 'openstack-api-version': 'compute 2.91' }, 'compute', min, max), { status: 406 });
  assert.throws(() => negotiate({ 'openstack-api-version': 'compute two' }, 'compute', min, max), { status: 406 });
});
