import type { VolumePoolTable } from '../../db/schema/volume.ts';
import { err } from './errors.ts';
import type { VolumeConfig } from './types.ts';

/**
 * Cinder's filter scheduler in small: the live, enabled pools (heard from within
 * service_down_time) in the requested availability zone, through the capacity filter
 * (thin provisioning: provisioned + requested within total × max_over_subscription_ratio,
 * and the requested size within the free space × that ratio, after reserved_percentage),
 * weighed by free virtual capacity (the capacity weigher). A volume made from a snapshot,
 * another volume or a backup must live where its source does: `requiredHost`.
 */

export interface PoolState extends VolumePoolTable {
  /** GiB of volumes scheduled here whose creation the pool has not reported yet. */
  pendingGb: number;
}

export interface PoolRequest { sizeGb: number; availabilityZone: string; requiredHost?: string }

export type PoolFilter = (pool: PoolState, req: PoolRequest, cfg: VolumeConfig, now: number) => string | null;

export const aliveFilter: PoolFilter = (p, _r, cfg, now) =>
  !p.enabled ? `pool ${p.host} is disabled` : now - Date.parse(p.last_seen) > cfg.serviceDownTimeSec * 1000 ? `pool ${p.host} is down` : null;

export const zoneFilter: PoolFilter = (p, r, cfg) => (r.availabilityZone === cfg.availabilityZone ? null : `pool ${p.host} is not in zone ${r.availabilityZone}`);

export const hostFilter: PoolFilter = (p, r) => (r.requiredHost === undefined || r.requiredHost === p.host ? null : `pool ${p.host} does not hold the source`);

export const capacityFilter: PoolFilter = (p, r, cfg) => {
  const reserved = Math.floor(p.total_gb * cfg.reservedPercentage / 100);
  const free = p.free_gb - reserved;
  const provisioned = p.provisioned_gb + p.pendingGb;
  if (p.total_gb <= 0) return `pool ${p.host} reports no capacity`;
  if ((provisioned + r.sizeGb) / p.total_gb > cfg.overSubscriptionRatio) return `pool ${p.host} would exceed its over-subscription ratio`;
  if (free * cfg.overSubscriptionRatio < r.sizeGb) return `pool ${p.host} has too little free space`;
  return null;
};

export const FILTERS: PoolFilter[] = [aliveFilter, zoneFilter, hostFilter, capacityFilter];

/** Free virtual capacity left after this request: more is better. */
export function capacityWeight(p: PoolState, cfg: VolumeConfig): number {
  return p.total_gb * cfg.overSubscriptionRatio - p.provisioned_gb - p.pendingGb;
}

/** The chosen pool, or Cinder's NoValidBackend (400) with the reasons the pools were passed over. */
export function choosePool(pools: PoolState[], req: PoolRequest, cfg: VolumeConfig, now = Date.now()): PoolState {
  const reasons: string[] = [];
  const passed = pools.filter((p) => {
    for (const f of FILTERS) {
      const why = f(p, req, cfg, now);
      if (why) { reasons.push(why); return false; }
    }
    return true;
  });
  if (passed.length === 0) throw err.noValidBackend(pools.length === 0 ? 'No volume pools are reporting.' : `${reasons.join('; ')}.`);
  return passed.sort((a, b) => capacityWeight(b, cfg) - capacityWeight(a, cfg) || a.host.localeCompare(b.host))[0]!;
}
