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

  /**
   * Interface attach, API time, in the caller's scope (Nova's attach_interface checks): a
   * port must be visible (else 404 PortNotFound), the instance's project's (else 400
   * PortNotUsable) and free (else 409 PortInUse); a network visible (else 404
   * NetworkNotFound) with a subnet; a fixed IP well formed. Neither: the project's one
   * usable network (several → 409 NetworkAmbiguous, none → 400).
   */
  resolveAttach(auth: AuthContext, instance: { uuid: string; projectId: string }, req: { portId?: string; networkId?: string; fixedIp?: string }): Promise<ResolvedNic>;
  /**
   * Bind the port (or create one on the network) for the instance on `host`, and record it
   * in the instance's network info cache (a port the user brought is kept on detach).
   * A taken fixed IP is 409 FixedIpAlreadyInUse.
   */
  attach(req: { instanceUuid: string; projectId: string; hostname: string; host: string; availabilityZone: string; nic: ResolvedNic; log: Logger }): Promise<VifInfo>;
  /** Interface detach: unbind a port the user brought, delete one compute made. Idempotent. */
  release(instanceUuid: string, portId: string, log: Logger): Promise<void>;
  /** The instance's ports as Nova's os-interface shows them (Neutron's status and fixed_ips). */
  interfaces(instanceUuid: string): Promise<InterfacePort[]>;
  /** addFixedIp: one more address (from the network's first subnet with room) on the instance's port on that network. */
  addFixedIp(instanceUuid: string, networkId: string): Promise<void>;
  /** removeFixedIp: the address leaves the instance's port holding it; false when no port holds it. */
  removeFixedIp(instanceUuid: string, address: string): Promise<boolean>;
}

/** A port of an instance as os-interface lists it. */
export interface InterfacePort {
  portId: string;
  networkId: string;
  mac: string;
  status: string;
  fixedIps: { ip_address: string; subnet_id: string }[];
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
