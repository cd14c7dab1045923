import type { Db } from '../../db/index.ts';
import type { Logger } from '../../common/logger.ts';
import type { NetworkApi } from './networks.ts';
import type { VolumeApi } from './volumes.ts';

/** Compute's settings (from gureum.yaml `compute:`; defaults as Nova's). */
export interface ComputeConfig {
  cpuAllocationRatio: number;
  ramAllocationRatio: number;
  diskAllocationRatio: number;
  /** A host whose agent has not reported for this long is down. */
  serviceDownTimeSec: number;
  /** Default per-project quotas (Nova's defaults). */
  defaultQuotas: Record<string, number>;
  /** Seconds a shelved server stays on its host before it is offloaded (0: at once, negative: never; Nova's shelved_offload_time). */
  shelvedOffloadTimeSec: number;
  /** Seconds a deleted server stays SOFT_DELETED, restorable, before it is reclaimed (0: delete at once; Nova's reclaim_instance_interval). */
  reclaimInstanceIntervalSec: number;
  /** Attach a config drive to every server, asked for or not (Nova's force_config_drive). */
  forceConfigDrive: boolean;
}

export const DEFAULT_COMPUTE_CONFIG: ComputeConfig = {
  cpuAllocationRatio: 4.0,
  ramAllocationRatio: 1.0,
  diskAllocationRatio: 1.0,
  serviceDownTimeSec: 60,
  shelvedOffloadTimeSec: 0,
  reclaimInstanceIntervalSec: 0,
  forceConfigDrive: false,
  defaultQuotas: {
    instances: 10, cores: 20, ram: 51200, metadata_items: 128, key_pairs: 100, server_groups: 10,
    server_group_members: 10, injected_files: 5, injected_file_content_bytes: 10240, injected_file_path_bytes: 255,
  },
};

/** What every compute route module receives. */
export interface ComputeDeps {
  db: Db;
  log: Logger;
  cfg: ComputeConfig;
  /** The network service (Neutron), when the cloud has one wired in; without it servers get the user-mode NIC. */
  networks?: NetworkApi;
  /** The volume service (Cinder) as compute drives it; unset: volumes cannot be attached or booted from. */
  volumes?: VolumeApi;
}

/**
 * The `compute:` section of gureum.yaml, with Nova's option names:
 *
 *   compute:
 *     shelved_offload_time: 0          # seconds; -1 keeps shelved servers on their host
 *     reclaim_instance_interval: 0     # seconds; > 0 makes delete a restorable soft delete
 *     force_config_drive: false
 *
 * Unknown keys and wrong types are errors at start.
 */
export function computeSettings(section: unknown): Pick<ComputeConfig, 'shelvedOffloadTimeSec' | 'reclaimInstanceIntervalSec' | 'forceConfigDrive'> {
  const out = {
    shelvedOffloadTimeSec: DEFAULT_COMPUTE_CONFIG.shelvedOffloadTimeSec,
    reclaimInstanceIntervalSec: DEFAULT_COMPUTE_CONFIG.reclaimInstanceIntervalSec,
    forceConfigDrive: DEFAULT_COMPUTE_CONFIG.forceConfigDrive,
  };
  if (section === undefined || section === null) return out;
  if (typeof section !== 'object' || Array.isArray(section)) throw new Error('compute: expected a mapping');
  const int = (k: string, v: unknown, min: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`compute.${k}: expected an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  for (const [k, v] of Object.entries(section as Record<string, unknown>)) {
    if (k === 'shelved_offload_time') out.shelvedOffloadTimeSec = int(k, v, -1);
    else if (k === 'reclaim_instance_interval') out.reclaimInstanceIntervalSec = int(k, v, 0);
    else if (k === 'force_config_drive') {
      if (typeof v !== 'boolean') throw new Error(`compute.force_config_drive: expected true or false, got ${JSON.stringify(v)}`);
      out.forceConfigDrive = v;
    } else throw new Error(`compute.${k}: unknown setting (known: shelved_offload_time, reclaim_instance_interval, force_config_drive)`);
  }
  return out;
}
