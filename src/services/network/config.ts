import { DEFAULT_NETWORK_CONFIG, DEFAULT_QUOTAS, type NetworkConfig } from './types.ts';

/**
 * The `network:` section of gureum.yaml:
 *
 *   network:
 *     vni_ranges: "1:16777215"        # VXLAN ids handed to tenant networks
 *     physical_networks: [public]     # what flat networks may be put on
 *     dns_domain: openstacklocal.     # ports' dns_assignment
 *     availability_zones: [nova]
 *     quotas: { network: 100, port: 500, ... }   # defaults; -1 is unlimited
 */
export function networkSettings(section: unknown): NetworkConfig {
  const out: NetworkConfig = { ...DEFAULT_NETWORK_CONFIG, quotas: { ...DEFAULT_QUOTAS } };
  if (section === undefined || section === null) return out;
  if (typeof section !== 'object' || Array.isArray(section)) throw new Error('network: expected a mapping');
  const names = (k: string, v: unknown): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw new Error(`network.${k}: expected a list of names`);
    return v as string[];
  };
  const int = (k: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`network.${k}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  for (const [k, v] of Object.entries(section as Record<string, unknown>)) {
    if (k === 'vni_ranges') {
      const m = typeof v === 'string' ? /^(\d+):(\d+)$/.exec(v.trim()) : null;
      const lo = m ? Number(m[1]) : NaN;
      const hi = m ? Number(m[2]) : NaN;
      if (!m || lo < 1 || hi > 16777215 || lo > hi) throw new Error(`network.vni_ranges: expected "min:max" within 1:16777215, got ${JSON.stringify(v)}`);
      out.vniMin = lo;
      out.vniMax = hi;
    } else if (k === 'physical_networks') out.physicalNetworks = names(k, v);
    else if (k === 'availability_zones') out.availabilityZones = names(k, v);
    else if (k === 'dns_domain') {
      if (typeof v !== 'string' || v === '') throw new Error('network.dns_domain: expected a domain name');
      out.dnsDomain = v.endsWith('.') ? v : `${v}.`;
    } else if (k === 'vxlan_mtu') out.vxlanMtu = int(k, v, 68, 9000);
    else if (k === 'flat_mtu') out.flatMtu = int(k, v, 68, 9000);
    else if (k === 'quotas') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('network.quotas: expected a mapping');
      for (const [r, n] of Object.entries(v as Record<string, unknown>)) {
        if (!(r in DEFAULT_QUOTAS)) throw new Error(`network.quotas.${r}: unknown resource (known: ${Object.keys(DEFAULT_QUOTAS).join(', ')})`);
        out.quotas[r] = int(`quotas.${r}`, n, -1);
      }
    } else {
      throw new Error(`network.${k}: unknown setting (known: vni_ranges, physical_networks, dns_domain, availability_zones, vxlan_mtu, flat_mtu, quotas)`);
    }
  }
  return out;
}
