/**
 * The `scheduler:` section of gureum.yaml (snake_case, Nova's option names) turned into
 * SchedulerOptions, plus the allocation ratios the conductor puts on each HostState.
 *
 *   scheduler:
 *     filters: [compute, availability-zone, ram, cores, disk, image-properties]
 *     ram_weight_multiplier: -1.0        # pack instead of spread
 *     host_subset_size: 2
 *     cpu_allocation_ratio: 4.0
 */
import { allFilters } from './filters/index.ts';
import type { SchedulerOptions } from './scheduler.ts';

export interface AllocationRatios {
  cpuAllocationRatio: number;
  ramAllocationRatio: number;
  diskAllocationRatio: number;
}

/** Nova's current defaults (initial_*_allocation_ratio). */
export const DEFAULT_ALLOCATION_RATIOS: Readonly<AllocationRatios> = Object.freeze({
  cpuAllocationRatio: 4.0,
  ramAllocationRatio: 1.0,
  diskAllocationRatio: 1.0,
});

const MULTIPLIER_KEYS: Readonly<Record<string, string>> = {
  ram_weight_multiplier: 'ram',
  cpu_weight_multiplier: 'cpu',
  disk_weight_multiplier: 'disk',
  num_instances_weight_multiplier: 'num-instances',
  soft_affinity_weight_multiplier: 'soft-affinity',
  soft_anti_affinity_weight_multiplier: 'soft-anti-affinity',
};

/** Nova's filter class names, accepted as aliases in `scheduler.filters`. */
const NOVA_FILTER_NAMES: Readonly<Record<string, string>> = {
  ComputeFilter: 'compute',
  RamFilter: 'ram',
  CoreFilter: 'cores',
  DiskFilter: 'disk',
  AvailabilityZoneFilter: 'availability-zone',
  ImagePropertiesFilter: 'image-properties',
  ServerGroupAffinityFilter: 'server-group-affinity',
  ServerGroupAntiAffinityFilter: 'server-group-anti-affinity',
  AggregateInstanceExtraSpecsFilter: 'aggregate-instance-extra-specs',
  AggregateMultiTenancyIsolation: 'aggregate-multitenancy-isolation',
};

function num(key: string, v: unknown, min: number): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min) {
    throw new Error(`scheduler.${key}: expected a number${min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function int(key: string, v: unknown, min: number): number {
  const n = num(key, v, min);
  if (!Number.isInteger(n)) throw new Error(`scheduler.${key}: expected an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Parses the `scheduler:` YAML section; unknown keys and filter names are errors. */
export function schedulerConfig(section: unknown): { options: SchedulerOptions; ratios: AllocationRatios } {
  const options: SchedulerOptions = {};
  const ratios: AllocationRatios = { ...DEFAULT_ALLOCATION_RATIOS };
  if (section === undefined || section === null) return { options, ratios };
  if (typeof section !== 'object' || Array.isArray(section)) throw new Error('scheduler: expected a mapping');
  const multipliers: Record<string, number> = {};
  for (const [key, value] of Object.entries(section as Record<string, unknown>)) {
    if (key in MULTIPLIER_KEYS) { multipliers[MULTIPLIER_KEYS[key]] = num(key, value, -Infinity); continue; }
    switch (key) {
      case 'filters': {
        const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
        if (!Array.isArray(list) || !list.every((x): x is string => typeof x === 'string')) {
          throw new Error('scheduler.filters: expected a list of filter names');
        }
        options.filters = list.map((name) => {
          const n = NOVA_FILTER_NAMES[name] ?? name;
          if (!(n in allFilters)) throw new Error(`scheduler.filters: unknown filter '${name}' (known: ${Object.keys(allFilters).join(', ')})`);
          return n;
        });
        break;
      }
      case 'host_subset_size': options.hostSubsetSize = int(key, value, 1); break;
      case 'max_attempts': options.maxAttempts = int(key, value, 1); break;
      case 'cpu_allocation_ratio': ratios.cpuAllocationRatio = num(key, value, 0); break;
      case 'ram_allocation_ratio': ratios.ramAllocationRatio = num(key, value, 0); break;
      case 'disk_allocation_ratio': ratios.diskAllocationRatio = num(key, value, 0); break;
      default: throw new Error(`scheduler: unknown setting '${key}'`);
    }
  }
  if (Object.keys(multipliers).length > 0) options.multipliers = multipliers;
  return { options, ratios };
}
