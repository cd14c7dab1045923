import type { AuthContext } from '../api/context.ts';
import type { Logger } from '../common/logger.ts';
import type { NetworkService } from '../services/network/service.ts';
import type { ExternalNetworkSettings } from './host-network.ts';

/**
 * The all-in-one's external network, as devstack makes it: `public`, flat on the physical
 * network the host bridge carries, router:external, with a subnet whose gateway is the
 * host's own address on that bridge (so `ssh root@<floating ip>` works from this machine)
 * and no DHCP. Created once; an existing external network named `public` is left alone.
 */
export async function ensurePublicNetwork(net: NetworkService, admin: AuthContext, ext: ExternalNetworkSettings, log: Logger): Promise<string> {
  const existing = (await net.listNetworks(admin)).find((n) => n.name === 'public' && n['router:external']);
  if (existing) return existing.id;
  const n = await net.createNetwork(admin, {
    name: 'public', router_external: true, network_type: 'flat', physical_network: ext.physicalNetwork,
    description: 'External network: floating IPs and router gateways (gureum up)',
  });
  await net.createSubnet(admin, {
    network_id: n.id, name: 'public-subnet', ip_version: 4, cidr: ext.cidr, gateway_ip: ext.gateway, enable_dhcp: false,
    allocation_pools: [{ start: ext.poolStart, end: ext.poolEnd }],
  });
  log.info({ network: n.id, cidr: ext.cidr }, 'created the external network public');
  return n.id;
}
