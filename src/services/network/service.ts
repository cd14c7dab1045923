import type { AuthContext } from '../../api/context.ts';
import * as floatingIps from './floating-ips.ts';
import * as networks from './networks.ts';
import * as ports from './ports.ts';
import * as routers from './routers.ts';
import * as groups from './security-groups.ts';
import * as store from './store.ts';
import * as subnets from './subnets.ts';
import { DEVICE_OWNER_DHCP, type NetworkDeps, type PortView } from './types.ts';

/**
 * The network service as other parts of Gureum use it in-process (the controller's
 * adapters for compute and for the agents): the same operations the API serves, with
 * the same checks, taking the caller's AuthContext — or `systemAuth()` for the
 * controller's own work, such as DHCP ports.
 */
export class NetworkService {
  constructor(readonly deps: NetworkDeps) {}

  showNetwork(auth: AuthContext, id: string) { return networks.showNetwork(this.deps, auth, id); }
  listNetworks(auth: AuthContext) { return networks.listNetworks(this.deps, auth); }
  createNetwork(auth: AuthContext, input: networks.NetworkInput) { return networks.createNetworks(this.deps, auth, [input]).then((x) => x[0]!); }
  deleteNetwork(auth: AuthContext, id: string) { return networks.deleteNetwork(this.deps, auth, id, undefined); }

  showSubnet(auth: AuthContext, id: string) { return subnets.showSubnet(this.deps, auth, id); }
  listSubnets(auth: AuthContext) { return subnets.listSubnets(this.deps, auth); }
  createSubnet(auth: AuthContext, input: subnets.SubnetInput) { return subnets.createSubnets(this.deps, auth, [input]).then((x) => x[0]!); }

  showPort(auth: AuthContext, id: string) { return ports.showPort(this.deps, auth, id); }
  /** Ports the caller may see, narrowed in SQL by ids, networks or devices (an instance's ports: deviceIds). */
  listPorts(auth: AuthContext, narrow: { ids?: string[]; networkIds?: string[]; deviceIds?: string[] } = {}) { return ports.listPorts(this.deps, auth, narrow); }
  /** Several ports in one transaction: all are created or none. */
  createPorts(auth: AuthContext, inputs: ports.PortInput[]): Promise<PortView[]> { return ports.createPorts(this.deps, auth, inputs); }
  updatePort(auth: AuthContext, id: string, input: ports.PortInput) { return ports.updatePort(this.deps, auth, id, input, undefined); }
  deletePort(auth: AuthContext, id: string) { return ports.deletePort(this.deps, auth, id, undefined); }
  /** What the agents report about ports (ACTIVE once plugged); returns the ids whose status changed. */
  setPortStatus(portIds: string[], status: (typeof ports.PORT_STATUSES)[number]) { return ports.setPortStatus(this.deps, portIds, status); }

  showRouter(auth: AuthContext, id: string) { return routers.showRouter(this.deps, auth, id); }
  listRouters(auth: AuthContext) { return routers.listRouters(this.deps, auth); }
  /** Floating IPs the caller may see, narrowed by ids or by the ports they NAT to (an instance's ports). */
  listFloatingIps(auth: AuthContext, narrow: { ids?: string[]; fixedPortIds?: string[] } = {}) { return floatingIps.listFloatingIps(this.deps, auth, narrow); }
  showFloatingIp(auth: AuthContext, id: string) { return floatingIps.showFloatingIp(this.deps, auth, id); }
  /** Associate (port_id) or disassociate (port_id null) a floating IP, with the API's checks. */
  updateFloatingIp(auth: AuthContext, id: string, input: floatingIps.FloatingIpInput) { return floatingIps.updateFloatingIp(this.deps, auth, id, input, undefined); }

  showSecurityGroup(auth: AuthContext, id: string) { return groups.showGroup(this.deps, auth, id); }
  listSecurityGroups(auth: AuthContext) { return groups.listGroups(this.deps, auth, undefined); }

  /**
   * Give a network its DHCP port (device_owner network:dhcp) with one address on every
   * DHCP-enabled subnet, adding addresses for new DHCP subnets and releasing them from
   * subnets whose DHCP was switched off; a network without DHCP subnets loses the port.
   */
  async ensureDhcpPort(networkId: string): Promise<void> {
    const net = await store.getNetwork(this.deps.db, networkId);
    if (!net) return;
    const auth = systemAuth(net.project_id);
    const dhcpSubnets = (await store.loadSubnets(this.deps.db, { networkIds: [networkId] })).filter((s) => s.enable_dhcp).map((s) => s.id);
    const existing = (await store.loadPorts(this.deps.db, { networkIds: [networkId] })).find((p) => p.device_owner === DEVICE_OWNER_DHCP);
    if (!existing) {
      if (dhcpSubnets.length === 0) return;
      await ports.createPorts(this.deps, auth, [{
        network_id: networkId, device_owner: DEVICE_OWNER_DHCP, device_id: `dhcp-${networkId}`, fixed_ips: dhcpSubnets.map((subnet_id) => ({ subnet_id })),
      }]);
      return;
    }
    if (dhcpSubnets.length === 0) { await ports.deletePort(this.deps, auth, existing.id, undefined); return; }
    const keep = existing.fixed_ips.filter((f) => dhcpSubnets.includes(f.subnet_id));
    const add = dhcpSubnets.filter((s) => !keep.some((f) => f.subnet_id === s));
    if (add.length === 0 && keep.length === existing.fixed_ips.length) return;
    await ports.updatePort(this.deps, auth, existing.id, {
      fixed_ips: [...keep.map((f) => ({ subnet_id: f.subnet_id, ip_address: f.ip_address })), ...add.map((subnet_id) => ({ subnet_id }))],
    }, undefined);
  }
}

/** The controller acting on its own behalf: an admin scoped to the project it works for. */
export function systemAuth(projectId: string): AuthContext {
  const now = Date.now();
  return {
    token: '', userId: 'gureum-network', userName: 'gureum-network', userDomainId: 'default', projectId, projectDomainId: 'default',
    roles: ['admin', 'member', 'reader'], roleIds: [], methods: ['internal'], auditIds: [], issuedAt: now, expiresAt: now + 3_600_000,
  };
}
