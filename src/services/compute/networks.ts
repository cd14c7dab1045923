import type { AuthContext } from '../../api/context.ts';
import type { Logger } from '../../common/logger.ts';

/**
 * What compute needs from the network service (Neutron), declared here so compute never
 * imports it; cli/controller.ts adapts the network service to this interface — the way
 * Nova talks to Neutron through its network API class.
 */

/** One entry of a server create's `networks` list. */
export interface RequestedNic {
  networkId?: string;
  portId?: string;
  fixedIp?: string;
  tag?: string;
}

/** The request, checked: each NIC names a network or an existing port. */
export type ResolvedNic = { networkId: string; fixedIp?: string; tag?: string } | { portId: string; networkId: string; tag?: string };

/**
 * An instance's networking as compute caches it (Nova's instance_info_caches): its ports,
 * their addresses and floating IPs, refreshed whenever the network service changes them.
 */
export interface VifInfo {
  portId: string;
  networkId: string;
  networkName: string;
  mac: string;
  mtu: number;
  fixedIps: { ip: string; version: 4 | 6; subnetId: string }[];
  floatingIps: string[];
  securityGroups: string[];
  /** The port came with the request (kept, only unbound, on delete) rather than made by compute. */
  preserveOnDelete: boolean;
}

export interface NetworkApi {
  /**
   * API time, in the caller's scope: the requested networks exist and may be used, ports
   * exist, belong to the caller's project and are free, fixed IPs fit; security groups
   * exist. With no request: the project's one usable network (several → Conflict), none →
   * an empty list. Throws Nova-worded BadRequest/Conflict/NotFound errors.
   */
  resolve(auth: AuthContext, requested: RequestedNic[] | undefined, securityGroups: string[]): Promise<ResolvedNic[]>;
  /**
   * Build time, after scheduling: create (or claim) the instance's ports, bound to `host`
   * (device_id = the instance, device_owner compute:<az>). All or nothing.
   */
  allocate(req: {
    instanceUuid: string; projectId: string; hostname: string; host: string; availabilityZone: string;
    nics: ResolvedNic[]; securityGroups: string[]; log: Logger;
  }): Promise<VifInfo[]>;
  /** The instance's current ports (for the cache). */
  vifs(instanceUuid: string): Promise<VifInfo[]>;
  /** Delete the ports compute made and unbind the ones the user brought. Idempotent. */
  deallocate(instanceUuid: string, log: Logger): Promise<void>;
  /** Bind the instance's ports to another host (migration, evacuation, unshelve). */
  bind(instanceUuid: string, host: string): Promise<void>;
}

/** The `addresses` of a server view, from its cached VIFs (fixed addresses, then floating ones), keyed by network name. */
export function addressesOf(vifs: VifInfo[]): Record<string, { addr: string; version: number; 'OS-EXT-IPS:type': string; 'OS-EXT-IPS-MAC:mac_addr': string }[]> {
  const out: Record<string, { addr: string; version: number; 'OS-EXT-IPS:type': string; 'OS-EXT-IPS-MAC:mac_addr': string }[]> = {};
  for (const v of vifs) {
    const list = (out[v.networkName] ??= []);
    for (const f of v.fixedIps) list.push({ addr: f.ip, version: f.version, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': v.mac });
    for (const ip of v.floatingIps) list.push({ addr: ip, version: ip.includes(':') ? 6 : 4, 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': v.mac });
  }
  return out;
}
