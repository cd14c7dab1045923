import { DEFAULT_QUOTAS, DEFAULT_VOLUME_CONFIG, QUOTA_RESOURCES, type QuotaResource, type VolumeConfig } from './types.ts';

/**
 * The `volume:` section of gureum.yaml:
 *
 *   volume:
 *     availability_zone: nova            # Cinder's storage_availability_zone
 *     default_volume_type: __DEFAULT__
 *     max_over_subscription_ratio: 20    # thin provisioning
 *     reserved_percentage: 0
 *     service_down_time: 60              # seconds without a pool report before it is down
 *     quotas: { volumes: 10, gigabytes: 1000, ... }   # defaults; -1 is unlimited
 */
export function volumeSettings(section: unknown): VolumeConfig {
  const out: VolumeConfig = { ...DEFAULT_VOLUME_CONFIG, quotas: { ...DEFAULT_QUOTAS } };
  if (section === undefined || section === null) return out;
  if (typeof section !== 'object' || Array.isArray(section)) throw new Error('volume: expected a mapping');
  const num = (k: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER, integer = true): number => {
    if (typeof v !== 'number' || (integer && !Number.isInteger(v)) || v < min || v > max) throw new Error(`volume.${k}: expected a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  const name = (k: string, v: unknown): string => {
    if (typeof v !== 'string' || v === '') throw new Error(`volume.${k}: expected a name`);
    return v;
  };
  for (const [k, v] of Object.entries(section as Record<string, unknown>)) {
    if (k === 'availability_zone') out.availabilityZone = name(k, v);
    else if (k === 'default_volume_type') out.defaultType = name(k, v);
    else if (k === 'max_over_subscription_ratio') out.overSubscriptionRatio = num(k, v, 1, 1000, false);
    else if (k === 'reserved_percentage') out.reservedPercentage = num(k, v, 0, 100);
    else if (k === 'service_down_time') out.serviceDownTimeSec = num(k, v, 1);
    else if (k === 'quotas') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('volume.quotas: expected a mapping');
      for (const [r, n] of Object.entries(v as Record<string, unknown>)) {
        if (!(QUOTA_RESOURCES as readonly string[]).includes(r)) throw new Error(`volume.quotas.${r}: unknown resource (known: ${QUOTA_RESOURCES.join(', ')})`);
        out.quotas[r as QuotaResource] = num(`quotas.${r}`, n, -1);
      }
    } else {
      throw new Error(`volume.${k}: unknown setting (known: availability_zone, default_volume_type, max_over_subscription_ratio, reserved_percentage, service_down_time, quotas)`);
    }
  }
  return out;
}
