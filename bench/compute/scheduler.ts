/**
 * Scheduler benchmark: simulated hosts of varied capacity, usage, zones and aggregates;
 * a stream of boot requests of mixed flavors (some in server groups, some pinned to a
 * zone, some needing aggregate metadata or an architecture, a few multi-creates), each
 * placement consumed before the next request, as the conductor's claims would.
 *
 *   node --import tsx bench/compute/scheduler.ts [--hosts 1000] [--requests 10000]
 *        [--subset 1] [--warmup 2000] [--seed 42]
 *
 * Prints placements/s, per-request decision latency (p50/p95/p99/max, measured around
 * each select() with process.hrtime.bigint) and NoValidHost counts by cause. The warm-up
 * runs on a separate copy of the hosts so the measured run starts from the same state.
 */
import { parseArgs } from 'node:util';
import { consume, Scheduler } from '../../src/services/compute/scheduler/scheduler.ts';
import type { HostState, RequestSpec, ServerGroupPolicy } from '../../src/services/compute/scheduler/types.ts';

const { values: args } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '10000' },
    subset: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '42' },
  },
});
const HOSTS = Number(args.hosts);
const REQUESTS = Number(args.requests);
const SUBSET = Number(args.subset);
const WARMUP = Number(args.warmup);
const SEED = Number(args.seed);

/** mulberry32: a small deterministic PRNG so runs are comparable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ZONES = ['az1', 'az2', 'az3'];
const SHAPES = [
  { vcpus: 16, memoryMb: 65536, diskGb: 1000 },
  { vcpus: 32, memoryMb: 131072, diskGb: 2000 },
  { vcpus: 64, memoryMb: 262144, diskGb: 4000 },
  { vcpus: 128, memoryMb: 524288, diskGb: 8000 },
];
const FLAVORS = [
  { name: 'm1.tiny', vcpus: 1, memoryMb: 512, diskGb: 1, share: 0.25 },
  { name: 'm1.small', vcpus: 1, memoryMb: 2048, diskGb: 20, share: 0.3 },
  { name: 'm1.medium', vcpus: 2, memoryMb: 4096, diskGb: 40, share: 0.25 },
  { name: 'm1.large', vcpus: 4, memoryMb: 8192, diskGb: 80, share: 0.15 },
  { name: 'm1.xlarge', vcpus: 8, memoryMb: 16384, diskGb: 160, share: 0.05 },
];

function makeHosts(rand: () => number): HostState[] {
  const hosts: HostState[] = [];
  for (let i = 0; i < HOSTS; i++) {
    const shape = SHAPES[Math.floor(rand() * SHAPES.length)];
    const fill = rand() * 0.7;
    const aggregates: HostState['aggregates'] = [];
    const r = rand();
    if (r < 0.2) aggregates.push({ name: 'ssd', metadata: { disk: 'ssd' } });
    else if (r < 0.25) aggregates.push({ name: 'gpu', metadata: { gpu: 'true', disk: 'ssd' } });
    else if (r < 0.28) aggregates.push({ name: 'secret', metadata: { filter_tenant_id: 'proj-secret,proj-audit' } });
    if (rand() < 0.1) aggregates.push({ name: `rack-${i % 20}`, metadata: { rack: String(i % 20) } });
    const instances = Math.floor((shape.vcpus * 4 * fill) / 2);
    hosts.push({
      host: `compute-${String(i).padStart(4, '0')}`,
      enabled: rand() > 0.01,
      up: rand() > 0.01,
      availabilityZone: ZONES[i % ZONES.length],
      vcpus: shape.vcpus,
      vcpusUsed: Math.floor(shape.vcpus * 4 * fill),
      memoryMb: shape.memoryMb,
      memoryMbUsed: Math.floor(shape.memoryMb * fill),
      diskGb: shape.diskGb,
      diskGbUsed: Math.floor(shape.diskGb * fill),
      instances,
      cpuAllocationRatio: 4,
      ramAllocationRatio: 1,
      diskAllocationRatio: 1,
      hypervisorType: rand() < 0.5 ? 'KVM' : 'QEMU',
      arch: rand() < 0.05 ? 'aarch64' : 'x86_64',
      aggregates,
      hypervisorVersion: rand() < 0.5 ? 8002001 : 7002000,
    });
  }
  return hosts;
}

interface Group { policy: ServerGroupPolicy; memberHosts: string[]; maxServerPerHost?: number }

function makeGroups(rand: () => number): Group[] {
  const policies: ServerGroupPolicy[] = ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity'];
  return Array.from({ length: 200 }, (_, i) => ({
    policy: policies[i % policies.length],
    memberHosts: [],
    maxServerPerHost: i % 8 === 0 ? 2 : undefined,
  }));
}

interface Req { spec: RequestSpec; count: number; group?: Group }

function makeRequests(rand: () => number, groups: Group[], n: number): Req[] {
  const out: Req[] = [];
  for (let i = 0; i < n; i++) {
    let r = rand();
    let flavor = FLAVORS[0];
    for (const f of FLAVORS) { if (r < f.share) { flavor = f; break; } r -= f.share; }
    const extra: Record<string, string> = {};
    const image: Record<string, string> = {};
    const x = rand();
    if (x < 0.1) extra['aggregate_instance_extra_specs:disk'] = 'ssd';
    else if (x < 0.12) extra['aggregate_instance_extra_specs:gpu'] = 'true';
    else if (x < 0.15) extra['aggregate_instance_extra_specs:disk'] = '<or> ssd <or> nvme';
    if (rand() < 0.05) extra['hw:cpu_policy'] = 'shared';
    const y = rand();
    if (y < 0.02) image.hw_architecture = 'aarch64';
    else if (y < 0.2) image.hw_architecture = 'x86_64';
    if (rand() < 0.05) image.img_hv_type = 'kvm';
    if (rand() < 0.03) image.img_hv_requested_version = '>= 8.0';
    const group = rand() < 0.15 ? groups[Math.floor(rand() * groups.length)] : undefined;
    const spec: RequestSpec = {
      instanceUuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      projectId: rand() < 0.03 ? 'proj-secret' : `proj-${Math.floor(rand() * 50)}`,
      vcpus: flavor.vcpus,
      memoryMb: flavor.memoryMb,
      diskGb: flavor.diskGb,
      availabilityZone: rand() < 0.3 ? ZONES[Math.floor(rand() * ZONES.length)] : undefined,
      imageProperties: image,
      flavorExtraSpecs: extra,
      // The group's member list is shared and grows as members are placed.
      serverGroup: group,
    };
    out.push({ spec, count: rand() < 0.03 ? 3 : 1, group });
  }
  return out;
}

function run(n: number, label: string, record: boolean) {
  const rand = prng(SEED);
  const hosts = makeHosts(rand);
  const byName = new Map(hosts.map((h) => [h.host, h]));
  const groups = makeGroups(rand);
  const requests = makeRequests(rand, groups, n);
  const scheduler = new Scheduler({
    filters: [
      'compute', 'availability-zone', 'ram', 'cores', 'disk', 'image-properties',
      'server-group-affinity', 'server-group-anti-affinity', 'aggregate-instance-extra-specs',
      'aggregate-multitenancy-isolation',
    ],
    hostSubsetSize: SUBSET,
    random: prng(SEED + 1),
  });
  const lat = new Float64Array(n);
  const failLat: number[] = [];
  let placed = 0;
  let failed = 0;
  const causes = new Map<string, number>();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const { spec, count, group } = requests[i];
    const s = process.hrtime.bigint();
    const sel = scheduler.select(hosts, spec, count);
    lat[i] = Number(process.hrtime.bigint() - s) / 1e6;
    if (sel.ok) {
      for (const p of sel.placements ?? [sel.hosts]) {
        const h = byName.get(p[0]);
        if (h) consume(h, spec);
        group?.memberHosts.push(p[0]);
        placed++;
      }
    } else {
      failed++;
      failLat.push(lat[i]);
      // The filter that removed the last candidates is the cause worth counting.
      const last = [...sel.reports].reverse().find((r) => r.removed.length > 0);
      const key = last?.filter ?? 'no hosts';
      causes.set(key, (causes.get(key) ?? 0) + 1);
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (!record) return;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  const fmt = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
  console.log(`${label}: ${HOSTS} hosts, ${n} requests (${requests.filter((r) => r.count > 1).length} multi-create x3), host_subset_size ${SUBSET}`);
  console.log(`  placed ${placed} instances in ${seconds.toFixed(3)} s: ${Math.round(placed / seconds)} placements/s, ${Math.round(n / seconds)} requests/s`);
  console.log(`  decision latency: p50 ${fmt(pct(50))}, p95 ${fmt(pct(95))}, p99 ${fmt(pct(99))}, max ${fmt(sorted[sorted.length - 1])}`);
  console.log(`  NoValidHost: ${failed}${failed ? ` (${[...causes].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
  if (failed) {
    failLat.sort((a, b) => a - b);
    console.log(`  NoValidHost decisions (explanation built): p50 ${fmt(failLat[Math.floor(failLat.length / 2)])}, max ${fmt(failLat[failLat.length - 1])}`);
  }
  const usedRam = hosts.reduce((a, h) => a + h.memoryMbUsed, 0) / hosts.reduce((a, h) => a + h.memoryMb, 0);
  console.log(`  RAM in use after the run: ${(usedRam * 100).toFixed(1)} %`);
}

if (WARMUP > 0) run(Math.min(WARMUP, REQUESTS), 'warm-up', false);
run(REQUESTS, 'scheduler', true);
