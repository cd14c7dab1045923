import { test } from 'node:test';
import assert from 'node:assert/strict';
import { host, request } from '../fixtures.ts';
import { cpuWeigher, diskWeigher, numInstancesWeigher, ramWeigher, softAffinityWeigher, softAntiAffinityWeigher } from './index.ts';

test('ram, cpu, disk weigh free capacity; num-instances counts instances', () => {
  const h = host('a', { memoryMb: 8192, memoryMbUsed: 1024, vcpus: 4, vcpusUsed: 6, cpuAllocationRatio: 4, diskGb: 100, diskGbUsed: 40, instances: 3 });
  assert.equal(ramWeigher.weigh(h, request()), 7168);
  assert.equal(cpuWeigher.weigh(h, request()), 10);
  assert.equal(diskWeigher.weigh(h, request()), 60);
  assert.equal(numInstancesWeigher.weigh(h, request()), 3);
});

test('soft-affinity and soft-anti-affinity count group members, only for their policy', () => {
  const soft = request({ serverGroup: { policy: 'soft-affinity', memberHosts: ['a', 'a', 'b'] } });
  const softAnti = request({ serverGroup: { policy: 'soft-anti-affinity', memberHosts: ['a', 'a', 'b'] } });
  assert.equal(softAffinityWeigher.weigh(host('a'), soft), 2);
  assert.equal(softAffinityWeigher.weigh(host('c'), soft), 0);
  assert.equal(softAffinityWeigher.weigh(host('a'), softAnti), 0);
  assert.equal(softAntiAffinityWeigher.weigh(host('a'), softAnti), -2);
  assert.equal(softAntiAffinityWeigher.weigh(host('b'), softAnti), -1);
  assert.equal(softAntiAffinityWeigher.forRequest?.(soft), null);
  assert.equal(softAffinityWeigher.forRequest?.(soft)?.(host('a')), 2);
  assert.equal(softAffinityWeigher.forRequest?.(request()), null);
});
