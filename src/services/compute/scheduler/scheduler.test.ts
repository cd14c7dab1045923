import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedulerConfig } from './config.ts';
import { host, request } from './fixtures.ts';
import { consume, NO_VALID_HOST, release, Scheduler } from './scheduler.ts';
import type { Filter, HostState } from './types.ts';

const three = (): HostState[] => [
  host('h1', { memoryMb: 8192, memoryMbUsed: 4096 }),
  host('h2', { memoryMb: 8192, memoryMbUsed: 1024 }),
  host('h3', { memoryMb: 8192, memoryMbUsed: 6144 }),
];
const ramOnly = { ram: 1, cpu: 0, disk: 0 };

test('spread (positive ram multiplier) picks the emptiest host, alternates follow by weight', () => {
  const s = new Scheduler({ multipliers: ramOnly });
  const r = s.select(three(), request());
  assert.ok(r.ok);
  assert.deepEqual(r.hosts, ['h2', 'h1', 'h3']);
});

test('pack (negative ram multiplier) picks the fullest host that still fits', () => {
  const s = new Scheduler({ multipliers: { ram: -1, cpu: 0, disk: 0 } });
  const r = s.select(three(), request({ memoryMb: 1024 }));
  assert.ok(r.ok);
  assert.equal(r.hosts[0], 'h3');
  const big = s.select(three(), request({ memoryMb: 3000 }));
  assert.ok(big.ok);
  assert.deepEqual(big.hosts, ['h1', 'h2'], 'h3 cannot fit 3000 MB');
});

test('maxAttempts bounds the alternates; equal weights keep host order', () => {
  const hosts = Array.from({ length: 6 }, (_, i) => host(`h${i}`));
  const r = new Scheduler({ maxAttempts: 2 }).select(hosts, request());
  assert.ok(r.ok);
  assert.deepEqual(r.hosts, ['h0', 'h1']);
});

test('weights are min-max normalised before the multipliers', () => {
  // h1 has far more free RAM, h2 slightly more free vCPUs; with equal multipliers the
  // normalised scores tie at 1 each way, so a bigger cpu multiplier decides for h2.
  const hosts = [host('h1', { memoryMb: 65536, vcpus: 4 }), host('h2', { memoryMb: 1024, vcpus: 5 })];
  const r1 = new Scheduler({ multipliers: { ram: 1, cpu: 1.01, disk: 0 } }).select(hosts, request());
  assert.ok(r1.ok);
  assert.equal(r1.hosts[0], 'h2');
  const r2 = new Scheduler({ multipliers: { ram: 1.01, cpu: 1, disk: 0 } }).select(hosts, request());
  assert.ok(r2.ok);
  assert.equal(r2.hosts[0], 'h1');
});

test('NoValidHost: Nova text, per-filter reports and a compact explanation', () => {
  const hosts = [
    host('h1', { memoryMb: 2048, memoryMbUsed: 1024 }),
    host('h2', { memoryMb: 2048, memoryMbUsed: 1024 }),
    host('h3', { memoryMb: 1024 }),
    host('h4', { up: false }),
  ];
  const r = new Scheduler().select(hosts, request({ memoryMb: 2048 }));
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.ok(r.message.startsWith(NO_VALID_HOST));
  assert.equal(
    r.message,
    `${NO_VALID_HOST} 4 hosts considered: compute: 1 host (need an enabled, up compute service; down on h4); ` +
      'ram: 3 hosts (need 2048 MB; free 1024 MB on h1, h2, h3).',
  );
  const ram = r.reports.find((x) => x.filter === 'ram');
  assert.deepEqual(ram?.removed, [{ host: 'h1', reason: 'free 1024 MB' }, { host: 'h2', reason: 'free 1024 MB' }, { host: 'h3', reason: 'free 1024 MB' }]);
  assert.equal(ram?.remaining, 0);
  assert.equal(r.reports.find((x) => x.filter === 'compute')?.remaining, 3);
});

test('NoValidHost explanation groups reasons and elides long lists', () => {
  const hosts = Array.from({ length: 10 }, (_, i) => host(`h${i}`, { availabilityZone: `az${i % 5}` }));
  const r = new Scheduler().select(hosts, request({ availabilityZone: 'elsewhere' }));
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.match(r.message, /availability-zone: 10 hosts \(need zone elsewhere; in zone az0 on h0, h5; in zone az1 on h1, h6; in zone az2 on h2, h7; 4 more hosts for other reasons\)/);
  assert.equal(new Scheduler().select([], request()).ok, false);
  const none = new Scheduler().select([], request());
  assert.ok(!none.ok && none.message === `${NO_VALID_HOST} No compute hosts are known.`);
});

test('a filter plug-in that returns a reason string is reported with it', () => {
  const noOdd: Filter = { name: 'no-odd', passes: (h) => (Number(h.host.slice(1)) % 2 === 0 ? true : 'odd') };
  const s = new Scheduler({ filters: ['compute', 'no-odd'], extraFilters: [noOdd] });
  const r = s.select([host('h1'), host('h3')], request());
  assert.ok(!r.ok && r.message.includes('no-odd: 2 hosts (odd on h1, h3)'));
  assert.ok(s.select([host('h1'), host('h2')], request()).ok);
});

test('success reports carry counts; detailedReports lists removed hosts', () => {
  const hosts = [host('a', { up: false }), host('b')];
  const r = new Scheduler().select(hosts, request());
  assert.ok(r.ok);
  const c = r.reports.find((x) => x.filter === 'compute');
  assert.deepEqual(c, { filter: 'compute', removed: [], remaining: 1, removedCount: 1 });
  const d = new Scheduler({ detailedReports: true }).select(hosts, request());
  assert.ok(d.ok);
  assert.deepEqual(d.reports.find((x) => x.filter === 'compute')?.removed, [{ host: 'a', reason: 'down' }]);
});

test('multi-create consumes capacity between instances and leaves the inputs unchanged', () => {
  const hosts = [host('h1', { memoryMb: 4096 }), host('h2', { memoryMb: 2048 })];
  const before = JSON.stringify(hosts);
  const s = new Scheduler({ multipliers: ramOnly });
  const r = s.select(hosts, request({ memoryMb: 2048 }), 3);
  assert.ok(r.ok);
  // h1 (4096 free) wins, then ties h2 at 2048 free and wins on host order, then is full.
  assert.deepEqual(r.placements?.map((p) => p[0]), ['h1', 'h1', 'h2']);
  assert.deepEqual(r.placements?.[2], ['h2'], 'the full host is no alternate');
  assert.deepEqual(r.hosts, r.placements?.[0]);
  assert.equal(JSON.stringify(hosts), before, 'select gives back what it consumed');

  const tooMany = s.select(hosts, request({ memoryMb: 2048 }), 4);
  assert.equal(tooMany.ok, false);
  if (!tooMany.ok) assert.match(tooMany.message, /Placed 3 of 4 instances; for instance 4: 2 hosts considered: ram: 2 hosts \(need 2048 MB; free 0 MB on h1, h2\)/);
  assert.equal(JSON.stringify(hosts), before);
});

test('multi-create: anti-affinity among the new members themselves', () => {
  const hosts = [host('h1'), host('h2'), host('h3')];
  const spec = request({ serverGroup: { policy: 'anti-affinity', memberHosts: ['h2'] } });
  const s = new Scheduler();
  const r = s.select(hosts, spec, 2);
  assert.ok(r.ok);
  assert.deepEqual(r.placements?.map((p) => p[0]).sort(), ['h1', 'h3']);
  assert.deepEqual(spec.serverGroup?.memberHosts, ['h2'], 'the caller’s spec is not changed');
  assert.equal(s.select(hosts, spec, 3).ok, false);
  const two = s.select(hosts, request({ serverGroup: { policy: 'anti-affinity', memberHosts: [], maxServerPerHost: 2 } }), 6);
  assert.ok(two.ok);
});

test('multi-create: affinity follows the first member', () => {
  const hosts = [host('h1'), host('h2', { memoryMb: 32768 })];
  const r = new Scheduler().select(hosts, request({ serverGroup: { policy: 'affinity', memberHosts: [] } }), 3);
  assert.ok(r.ok);
  assert.deepEqual(r.placements?.map((p) => p[0]), ['h2', 'h2', 'h2']);
});

test('multi-create: soft-anti-affinity spreads, soft-affinity gathers', () => {
  const hosts = [host('h1'), host('h2'), host('h3')];
  const s = new Scheduler({ multipliers: { ram: 0, cpu: 0, disk: 0 } });
  const spread = s.select(hosts, request({ serverGroup: { policy: 'soft-anti-affinity', memberHosts: [] } }), 3);
  assert.ok(spread.ok);
  assert.deepEqual(spread.placements?.map((p) => p[0]).sort(), ['h1', 'h2', 'h3']);
  const gather = s.select(hosts, request({ serverGroup: { policy: 'soft-affinity', memberHosts: ['h3'] } }), 3);
  assert.ok(gather.ok);
  assert.deepEqual(gather.placements?.map((p) => p[0]), ['h3', 'h3', 'h3']);
});

test('hostSubsetSize: random among the best N, never outside them', () => {
  const hosts = Array.from({ length: 10 }, (_, i) => host(`h${i}`, { memoryMbUsed: i * 1000 }));
  const seen = new Set<string>();
  let x = 0;
  const s = new Scheduler({ hostSubsetSize: 3, multipliers: ramOnly, random: () => ((x = (x + 0.37) % 1)) });
  for (let i = 0; i < 50; i++) {
    const r = s.select(hosts, request());
    assert.ok(r.ok);
    seen.add(r.hosts[0]);
    assert.equal(r.hosts.length, 3);
    assert.equal(new Set(r.hosts).size, 3, 'alternates exclude the choice');
  }
  assert.deepEqual([...seen].sort(), ['h0', 'h1', 'h2']);
  const one = new Scheduler({ hostSubsetSize: 1, multipliers: ramOnly, random: () => 0.99 });
  const r = one.select(hosts, request());
  assert.ok(r.ok && r.hosts[0] === 'h0');
  const s2 = new Scheduler({ hostSubsetSize: 5, random: () => 0.99 });
  const small = s2.select(hosts.slice(0, 2), request());
  assert.ok(small.ok && small.hosts.length === 2);
});

test('force-hosts always applies, even when not listed', () => {
  const s = new Scheduler({ filters: ['ram'] });
  const r = s.select([host('a'), host('b')], request({ forceHost: 'nova:b' }));
  assert.ok(r.ok && r.hosts.join() === 'b');
  const bad = s.select([host('a'), host('b', { memoryMb: 100 })], request({ forceHost: 'nova:b' }));
  assert.ok(!bad.ok && bad.message.includes('force-hosts: 1 host (forced to nova:b; not the forced host on a)'));
});

test('consume and release are inverses', () => {
  const h = host('a');
  const spec = request({ vcpus: 2, memoryMb: 1024, diskGb: 10 });
  consume(h, spec);
  assert.deepEqual([h.vcpusUsed, h.memoryMbUsed, h.diskGbUsed, h.instances], [2, 1024, 10, 1]);
  release(h, spec);
  assert.deepEqual(h, host('a'));
});

test('unknown filter or weigher names are errors', () => {
  assert.throws(() => new Scheduler({ filters: ['nope'] }), /unknown filter 'nope'/);
  assert.throws(() => new Scheduler({ multipliers: { nope: 1 } }), /unknown weigher 'nope'/);
});

test('config: snake_case YAML keys, Nova filter names, Nova default ratios', () => {
  const { options, ratios } = schedulerConfig({
    filters: ['ComputeFilter', 'ram', 'AggregateMultiTenancyIsolation'],
    ram_weight_multiplier: -1,
    num_instances_weight_multiplier: '0.5',
    host_subset_size: 2,
    cpu_allocation_ratio: 16,
  });
  assert.deepEqual(options, { filters: ['compute', 'ram', 'aggregate-multitenancy-isolation'], hostSubsetSize: 2, multipliers: { ram: -1, 'num-instances': 0.5 } });
  assert.deepEqual(ratios, { cpuAllocationRatio: 16, ramAllocationRatio: 1, diskAllocationRatio: 1 });
  assert.deepEqual(schedulerConfig(undefined).ratios, { cpuAllocationRatio: 4, ramAllocationRatio: 1, diskAllocationRatio: 1 });
  assert.throws(() => schedulerConfig({ filters: ['Bogus'] }), /unknown filter 'Bogus'/);
  assert.throws(() => schedulerConfig({ host_subset_size: 0 }), /host_subset_size/);
  assert.throws(() => schedulerConfig({ typo: 1 }), /unknown setting 'typo'/);
  new Scheduler(options);
});
