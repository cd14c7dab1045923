import type { Db } from '../../db/index.ts';
import type { Logger } from '../../common/logger.ts';

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
}

export const DEFAULT_COMPUTE_CONFIG: ComputeConfig = {
  cpuAllocationRatio: 4.0,
  ramAllocationRatio: 1.0,
  diskAllocationRatio: 1.0,
  serviceDownTimeSec: 60,
  shelvedOffloadTimeSec: 0,
  reclaimInstanceIntervalSec: 0,
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
}
