import { test } from 'node:test';
import assert from 'node:assert/strict';
import { host, request } from '../fixtures.ts';
import type { Filter, HostState, RequestSpec } from '../types.ts';
import {
  aggregateInstanceExtraSpecsFilter as aggSpecs, aggregateMultiTenancyIsolationFilter as tenancy, availabilityZoneFilter as az,
  computeFilter as compute, coresFilter as cores, diskFilter as disk, forceHostsFilter as force, imagePropertiesFilter as image,
  ramFilter as ram, serverGroupAffinityFilter as affinity, serverGroupAntiAffinityFilter as anti,
} from './index.ts';
import { compileMatcher } from './extra-specs-ops.ts';

/** passes and the forRequest fast path must agree. */
function check(f: Filter, h: HostState, spec: RequestSpec): boolean {
  const slow = f.passes(h, spec) === true;
  const pred = f.forRequest ? f.forRequest(spec) : undefined;
  const fast = pred === undefined ? slow : pred === null ? true : pred(h) === true;
  assert.equal(fast, slow, `${f.name}: forRequest and passes disagree`);
  return slow;
}

test('compute: enabled and up', () => {
  assert.equal(check(compute, host('a'), request()), true);
  assert.equal(check(compute, host('a', { enabled: false }), request()), false);
  assert.equal(check(compute, host('a', { up: false }), request()), false);
  assert.equal(compute.explain?.(host('a', { up: false }), request()), 'down');
});

test('ram: allocation ratio applies, exact fit passes', () => {
  const h = host('a', { memoryMb: 4096, memoryMbUsed: 2048 });
  assert.equal(check(ram, h, request({ memoryMb: 2048 })), true);
  assert.equal(check(ram, h, request({ memoryMb: 2049 })), false);
  assert.equal(check(ram, { ...h, ramAllocationRatio: 1.5 }, request({ memoryMb: 4096 })), true);
  assert.equal(ram.explain?.(h, request()), 'free 2048 MB');
  assert.equal(ram.need?.(request({ memoryMb: 2049 })), 'need 2049 MB');
});

test('cores: vcpus * cpu_allocation_ratio', () => {
  const h = host('a', { vcpus: 2, vcpusUsed: 7, cpuAllocationRatio: 4 });
  assert.equal(check(cores, h, request({ vcpus: 1 })), true);
  assert.equal(check(cores, h, request({ vcpus: 2 })), false);
  assert.equal(check(cores, { ...h, cpuAllocationRatio: 1 }, request({ vcpus: 1 })), false);
});

test('disk: diskGb * disk_allocation_ratio', () => {
  const h = host('a', { diskGb: 100, diskGbUsed: 90 });
  assert.equal(check(disk, h, request({ diskGb: 10 })), true);
  assert.equal(check(disk, h, request({ diskGb: 11 })), false);
  assert.equal(check(disk, { ...h, diskAllocationRatio: 2 }, request({ diskGb: 100 })), true);
});

test('availability-zone: only when a zone is requested', () => {
  assert.equal(check(az, host('a', { availabilityZone: 'az1' }), request()), true);
  assert.equal(check(az, host('a', { availabilityZone: 'az1' }), request({ availabilityZone: 'az1' })), true);
  assert.equal(check(az, host('a', { availabilityZone: 'az2' }), request({ availabilityZone: 'az1' })), false);
  assert.equal(az.forRequest?.(request()), null);
});

test('image-properties: architecture, hypervisor type, vm mode, version', () => {
  const kvm = host('k', { hypervisorType: 'KVM', arch: 'x86_64', hypervisorVersion: 8002001 });
  const tcg = host('q', { hypervisorType: 'QEMU', arch: 'aarch64', hypervisorVersion: '7.2.0' });
  const props = (p: Record<string, string>) => request({ imageProperties: p });
  assert.equal(check(image, kvm, props({})), true);
  assert.equal(check(image, kvm, props({ hw_architecture: 'amd64' })), true);
  assert.equal(check(image, tcg, props({ hw_architecture: 'x86_64' })), false);
  assert.equal(check(image, tcg, props({ architecture: 'arm64' })), true);
  assert.equal(check(image, kvm, props({ img_hv_type: 'qemu' })), true, 'KVM hosts run qemu guests');
  assert.equal(check(image, tcg, props({ img_hv_type: 'kvm' })), false);
  assert.equal(check(image, kvm, props({ hw_vm_mode: 'hvm' })), true);
  assert.equal(check(image, kvm, props({ hw_vm_mode: 'xen' })), false);
  assert.equal(check(image, kvm, props({ img_hv_requested_version: '>= 8.0' })), true);
  assert.equal(check(image, kvm, props({ img_hv_requested_version: '>=8.3' })), false);
  assert.equal(check(image, tcg, props({ img_hv_requested_version: '< 8' })), true);
  assert.equal(check(image, tcg, props({ img_hv_requested_version: '7.2.0' })), true);
  assert.equal(check(image, host('x'), props({ img_hv_requested_version: '>= 99' })), true, 'no version reported: passes');
  assert.equal(image.explain?.(tcg, props({ hw_architecture: 'x86_64' })), 'arch aarch64');
});

test('server-group-affinity: first member anywhere, then only member hosts', () => {
  const g = (memberHosts: string[]) => request({ serverGroup: { policy: 'affinity', memberHosts } });
  assert.equal(check(affinity, host('a'), g([])), true);
  assert.equal(check(affinity, host('a'), g(['a', 'a'])), true);
  assert.equal(check(affinity, host('b'), g(['a'])), false);
  assert.equal(check(affinity, host('b'), request({ serverGroup: { policy: 'anti-affinity', memberHosts: ['a'] } })), true);
});

test('server-group-anti-affinity: respects maxServerPerHost', () => {
  const g = (memberHosts: string[], maxServerPerHost?: number) =>
    request({ serverGroup: { policy: 'anti-affinity', memberHosts, maxServerPerHost } });
  assert.equal(check(anti, host('a'), g([])), true);
  assert.equal(check(anti, host('a'), g(['a'])), false);
  assert.equal(check(anti, host('b'), g(['a'])), true);
  assert.equal(check(anti, host('a'), g(['a'], 2)), true);
  assert.equal(check(anti, host('a'), g(['a', 'b', 'a'], 2)), false);
  const many = Array.from({ length: 40 }, (_, i) => `h${i % 20}`);
  assert.equal(check(anti, host('h3'), g(many, 2)), false);
  assert.equal(check(anti, host('h3'), g(many, 3)), true);
  assert.equal(anti.explain?.(host('a'), g(['a', 'b', 'a'], 2)), '2 member(s) already');
});

test('aggregate-instance-extra-specs: scoped and legacy keys vs aggregate metadata', () => {
  const ssd = host('a', { aggregates: [{ name: 'fast', metadata: { disk: 'ssd', gen: '3' } }] });
  const plain = host('b', { aggregates: [{ name: 'slow', metadata: { disk: 'hdd' } }] });
  const none = host('c');
  const specs = (s: Record<string, string>) => request({ flavorExtraSpecs: s });
  const scoped = specs({ 'aggregate_instance_extra_specs:disk': 'ssd', 'hw:cpu_policy': 'dedicated' });
  assert.equal(check(aggSpecs, ssd, scoped), true);
  assert.equal(check(aggSpecs, plain, scoped), false);
  assert.equal(check(aggSpecs, none, scoped), false);
  assert.equal(check(aggSpecs, none, specs({ 'hw:cpu_policy': 'dedicated' })), true, 'other scopes ignored');
  assert.equal(check(aggSpecs, plain, specs({ disk: 'hdd' })), true, 'legacy unscoped key');
  assert.equal(check(aggSpecs, plain, specs({ 'aggregate_instance_extra_specs:disk': '<or> ssd <or> hdd' })), true);
  assert.equal(check(aggSpecs, ssd, specs({ 'aggregate_instance_extra_specs:gen': '>= 2' })), true);
  assert.equal(check(aggSpecs, ssd, specs({ 'aggregate_instance_extra_specs:gen': '>= 4' })), false);
  assert.equal(aggSpecs.explain?.(plain, scoped), 'disk=hdd');
  assert.equal(aggSpecs.explain?.(none, scoped), 'no disk');
});

test('extra spec operators', () => {
  assert.equal(compileMatcher('= 4')('8'), true);
  assert.equal(compileMatcher('= 4')('2'), false);
  assert.equal(compileMatcher('== 4')('4.0'), true);
  assert.equal(compileMatcher('!= 4')('5'), true);
  assert.equal(compileMatcher('<= 4')('x'), false);
  assert.equal(compileMatcher('s== abc')('abc'), true);
  assert.equal(compileMatcher('s!= abc')('abd'), true);
  assert.equal(compileMatcher('s< b')('a'), true);
  assert.equal(compileMatcher('<in> avx')('sse avx2'), true);
  assert.equal(compileMatcher('<all-in> avx sse')('sse avx2'), true);
  assert.equal(compileMatcher('<all-in> avx aes')('sse avx2'), false);
  assert.equal(compileMatcher('<or> a <or> b')('b'), true);
  assert.equal(compileMatcher('<or> a <or> b')('c'), false);
  assert.equal(compileMatcher('plain value')('plain value'), true);
});

test('aggregate-multitenancy-isolation: filter_tenant_id restricts, others open', () => {
  const iso = host('a', { aggregates: [{ name: 'private', metadata: { filter_tenant_id: 'p1, p2', filter_tenant_id2: 'p3' } }] });
  const open = host('b', { aggregates: [{ name: 'public', metadata: { ssd: 'true' } }] });
  assert.equal(check(tenancy, iso, request({ projectId: 'p2' })), true);
  assert.equal(check(tenancy, iso, request({ projectId: 'p3' })), true);
  assert.equal(check(tenancy, iso, request({ projectId: 'p' })), false);
  assert.equal(check(tenancy, iso, request({ projectId: 'p4' })), false);
  assert.equal(check(tenancy, open, request({ projectId: 'p4' })), true);
  assert.equal(tenancy.explain?.(iso, request({ projectId: 'p4' })), 'reserved for other projects by private');
});

test('force-hosts: forced host (zone:host syntax) and ignored hosts', () => {
  const a = host('a', { availabilityZone: 'az1' });
  const b = host('b', { availabilityZone: 'az1' });
  assert.equal(force.forRequest?.(request()), null);
  assert.equal(check(force, a, request({ forceHost: 'az1:a' })), true);
  assert.equal(check(force, b, request({ forceHost: 'az1:a' })), false);
  assert.equal(check(force, a, request({ forceHost: 'az2:a' })), false);
  assert.equal(check(force, a, request({ forceHost: ':a' })), true);
  assert.equal(check(force, a, request({ forceHost: 'a' })), true);
  assert.equal(check(force, a, request({ ignoreHosts: ['a'] })), false);
  assert.equal(check(force, b, request({ ignoreHosts: ['a'] })), true);
  assert.equal(check(force, a, request({ forceHost: 'az1:a', ignoreHosts: ['a'] })), false);
  assert.equal(force.explain?.(b, request({ forceHost: 'az1:a' })), 'not the forced host');
});
