import { test } from 'node:test';
import assert from 'node:assert/strict';
import { choosePool, type PoolState } from './scheduler.ts';
import { DEFAULT_VOLUME_CONFIG } from './types.ts';

const pool = (host: string, over: Partial<PoolState> = {}): PoolState => ({
  host, backend: 'local', pool: 'pool', host_ip: '127.0.0.1', total_gb: 100, free_gb: 90, provisioned_gb: 10, enabled: 1,
  disabled_reason: null, last_seen: new Date().toISOString(), pendingGb: 0, ...over,
});
const cfg = { ...DEFAULT_VOLUME_CONFIG, overSubscriptionRatio: 2 };

test('the pool with the most free virtual capacity wins', () => {
  assert.equal(choosePool([pool('a', { provisioned_gb: 50 }), pool('b')], { sizeGb: 1, availabilityZone: 'nova' }, cfg).host, 'b');
  assert.equal(choosePool([pool('a'), pool('b', { pendingGb: 60 })], { sizeGb: 1, availabilityZone: 'nova' }, cfg).host, 'a');
});

test('down, disabled and full pools are passed over; none left is NoValidBackend', () => {
  const old = new Date(Date.now() - 120_000).toISOString();
  assert.equal(choosePool([pool('a', { last_seen: old }), pool('b', { enabled: 0 }), pool('c')], { sizeGb: 1, availabilityZone: 'nova' }, cfg).host, 'c');
  // thin: 190 provisioned of 100 × 2
  assert.throws(() => choosePool([pool('a', { provisioned_gb: 190 })], { sizeGb: 20, availabilityZone: 'nova' }, cfg), /No valid backend.*over-subscription/);
  assert.throws(() => choosePool([pool('a', { free_gb: 5 })], { sizeGb: 11, availabilityZone: 'nova' }, cfg), /too little free space/);
  assert.throws(() => choosePool([], { sizeGb: 1, availabilityZone: 'nova' }, cfg), /No volume pools are reporting/);
});

test('zone and the source host constrain the choice', () => {
  assert.throws(() => choosePool([pool('a')], { sizeGb: 1, availabilityZone: 'elsewhere' }, cfg), /not in zone elsewhere/);
  assert.equal(choosePool([pool('a'), pool('b', { provisioned_gb: 90 })], { sizeGb: 1, availabilityZone: 'nova', requiredHost: 'b' }, cfg).host, 'b');
});
