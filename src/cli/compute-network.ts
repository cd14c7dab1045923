import type { AuthContext } from '../api/context.ts';
import { BadRequest, Conflict, GureumError, NotFound } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { Db } from '../db/index.ts';
import type { InterfacePort, NetworkApi, RequestedNic, ResolvedNic, VifInfo } from '../services/compute/networks.ts';
import { parseIp } from '../services/network/netaddr.ts';
import { NetworkService, systemAuth } from '../services/network/service.ts';
import type { NetworkView, PortView } from '../services/network/types.ts';

/**
 * Neutron as compute sees it (services/compute/networks.ts), the way Nova's
 * network/neutron.py drives Neutron: networks and ports are checked in the caller's
 * scope at the API; after scheduling, ports are made (or claimed) with device_id = the
 * instance and bound to its host, as the controller itself (an admin of the instance's
 * project). Nova's error wording is kept, since clients show it.
 */
export function computeNetworkApi(net: NetworkService, db: Db): NetworkApi {
  const notFound = (e: unknown) => e instanceof GureumError && e.status === 404;

  /** Networks a server may land on without naming one: the project's own, else shared ones; never external-only ones. */
  async function usableNetworks(auth: AuthContext): Promise<NetworkView[]> {
    const all = await net.listNetworks(auth);
    const own = all.filter((n) => n.project_id === auth.projectId && !n['router:external'] && !n.shared);
    return own.length ? own : all.filter((n) => n.shared);
  }

  async function groupIds(auth: AuthContext, names: string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const groups = await net.listSecurityGroups(auth);
    return names.map((name) => {
      const mine = groups.filter((g) => g.project_id === auth.projectId);
      const g = mine.find((x) => x.id === name) ?? mine.find((x) => x.name === name) ?? groups.find((x) => x.id === name);
      if (!g) throw new BadRequest(`Security group ${name} not found.`);
      return g.id;
    });
  }

  async function vifsOf(ports: PortView[], preserve: Set<string>): Promise<VifInfo[]> {
    const out: VifInfo[] = [];
    for (const p of ports) {
      const admin = systemAuth(p.project_id);
      const n = await net.showNetwork(admin, p.network_id);
      const fips = await net.listFloatingIps(admin, { fixedPortIds: [p.id] });
      const names: string[] = [];
      for (const g of p.security_groups) names.push(await net.showSecurityGroup(admin, g).then((x) => x.name, () => g));
      out.push({
        portId: p.id, networkId: p.network_id, networkName: n.name, mac: p.mac_address, mtu: n.mtu,
        fixedIps: p.fixed_ips.map((f) => ({ ip: f.ip_address, version: f.ip_address.includes(':') ? 6 as const : 4 as const, subnetId: f.subnet_id })),
        floatingIps: fips.map((f) => f.floating_ip_address), securityGroups: names, preserveOnDelete: preserve.has(p.id),
      });
    }
    return out;
  }

  /** The instance's ports in the order it got them (created_at, then id), whatever their project. */
  async function portsOf(instanceUuid: string): Promise<PortView[]> {
    const ports = await net.listPorts(systemAuth(''), { deviceIds: [instanceUuid] });
    return ports.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  }

  /**
   * Ports users brought to an attach, from the moment they are bound: a network info refresh
   * that reads the cache before the attach wrote it must still see them as the user's
   * (kept on detach and delete), whatever order its read and write land in.
   */
  const claimedByAttach = new Set<string>();

  const preserved = async (instanceUuid: string): Promise<Set<string>> => {
    const row = await db.selectFrom('instances').select('network_info').where('uuid', '=', instanceUuid).executeTakeFirst();
    const vifs = row ? JSON.parse(row.network_info) as VifInfo[] : [];
    const out = new Set(vifs.filter((v) => v.preserveOnDelete).map((v) => v.portId));
    if (claimedByAttach.size) for (const p of await portsOf(instanceUuid)) if (claimedByAttach.has(p.id)) out.add(p.id);
    return out;
  };

  return {
    async resolve(auth, requested: RequestedNic[] | undefined, securityGroups) {
      await groupIds(auth, securityGroups);
      if (requested === undefined) {
        const nets = await usableNetworks(auth);
        if (nets.length > 1) throw new Conflict('Multiple possible networks found, use a Network ID to be more specific.');
        return nets.map((n) => ({ networkId: n.id }));
      }
      const out: ResolvedNic[] = [];
      const seenPorts = new Set<string>();
      for (const r of requested) {
        if (r.portId) {
          if (seenPorts.has(r.portId)) throw new BadRequest(`Port ${r.portId} is requested more than once.`);
          seenPorts.add(r.portId);
          const p = await net.showPort(auth, r.portId).catch((e: unknown) => {
            if (notFound(e)) throw new BadRequest(`Port id ${r.portId} could not be found.`);
            throw e;
          });
          if (p.device_id) throw new Conflict(`Port ${p.id} is still in use.`);
          out.push({ portId: p.id, networkId: p.network_id, tag: r.tag });
          continue;
        }
        if (!r.networkId) throw new BadRequest('Bad networks format: network uuid is not in proper format');
        if (r.fixedIp !== undefined && !parseIp(r.fixedIp)) throw new BadRequest(`Invalid fixed IP address (${r.fixedIp})`);
        const n = await net.showNetwork(auth, r.networkId).catch((e: unknown) => {
          if (notFound(e)) throw new BadRequest(`Network ${r.networkId} could not be found.`);
          throw e;
        });
        if (n.subnets.length === 0) throw new BadRequest(`Network ${n.id} requires a subnet in order to boot instances on.`);
        out.push({ networkId: n.id, ...(r.fixedIp ? { fixedIp: r.fixedIp } : {}), tag: r.tag });
      }
      return out;
    },

    async allocate(req) {
      const admin = systemAuth(req.projectId);
      const owner = `compute:${req.availabilityZone || 'nova'}`;
      const dnsName = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(req.hostname) ? req.hostname.toLowerCase() : '';
      const groups = await groupIds(admin, req.securityGroups);
      const claimed: string[] = [];
      const created: string[] = [];
      try {
        const toCreate = req.nics.filter((n): n is Extract<ResolvedNic, { fixedIp?: string }> => !('portId' in n));
        const made = toCreate.length === 0 ? [] : await net.createPorts(admin, toCreate.map((n) => ({
          network_id: n.networkId, device_id: req.instanceUuid, device_owner: owner, host_id: req.host, dns_name: dnsName,
          ...(n.fixedIp ? { fixed_ips: [{ ip_address: n.fixedIp }] } : {}), ...(groups.length ? { security_groups: groups } : {}),
        }))).catch((e: unknown) => {
          if (e instanceof GureumError && e.status === 409 && /already allocated|in use/i.test(e.message)) {
            throw new BadRequest(`Fixed IP address is already in use: ${e.message}`);
          }
          throw e;
        });
        created.push(...made.map((p) => p.id));
        const byNetwork = new Map<string, PortView[]>();
        for (const p of made) byNetwork.set(p.network_id, [...(byNetwork.get(p.network_id) ?? []), p]);
        const ordered: PortView[] = [];
        for (const n of req.nics) {
          if ('portId' in n) {
            const p = await net.updatePort(admin, n.portId, {
              device_id: req.instanceUuid, device_owner: owner, host_id: req.host,
              ...(groups.length ? { security_groups: groups } : {}),
            });
            claimed.push(p.id);
            ordered.push(p);
          } else {
            ordered.push(byNetwork.get(n.networkId)!.shift()!);
          }
        }
        req.log.info({ instance: req.instanceUuid, ports: ordered.map((p) => p.id), host: req.host }, 'ports allocated');
        return await vifsOf(ordered, new Set(claimed));
      } catch (e) {
        for (const id of created) await net.deletePort(admin, id).catch(() => undefined);
        for (const id of claimed) await net.updatePort(admin, id, { device_id: '', device_owner: '', host_id: '' }).catch(() => undefined);
        throw e;
      }
    },

    async vifs(instanceUuid) {
      return vifsOf(await portsOf(instanceUuid), await preserved(instanceUuid));
    },

    async deallocate(instanceUuid, log: Logger) {
      const keep = await preserved(instanceUuid);
      for (const p of await portsOf(instanceUuid)) {
        const admin = systemAuth(p.project_id);
        if (keep.has(p.id)) await net.updatePort(admin, p.id, { device_id: '', device_owner: '', host_id: '' });
        else await net.deletePort(admin, p.id).catch((e: unknown) => { if (!notFound(e)) throw e; });
        log.info({ instance: instanceUuid, port: p.id, kept: keep.has(p.id) }, keep.has(p.id) ? 'port unbound' : 'port deleted');
      }
    },

    async bind(instanceUuid, host) {
      for (const p of await portsOf(instanceUuid)) await net.updatePort(systemAuth(p.project_id), p.id, { host_id: host });
    },

    async resolveAttach(auth, instance, req) {
      if (req.portId) {
        const p = await net.showPort(auth, req.portId).catch((e: unknown) => {
          if (notFound(e)) throw new NotFound(`Port id ${req.portId} could not be found.`);
          throw e;
        });
        if (p.device_id) throw new Conflict(`Port ${p.id} is still in use.`);
        if (p.project_id !== instance.projectId) throw new BadRequest(`Port ${p.id} not usable for instance ${instance.uuid}.`);
        return { portId: p.id, networkId: p.network_id };
      }
      if (req.fixedIp !== undefined && !parseIp(req.fixedIp)) throw new BadRequest(`Invalid fixed IP address (${req.fixedIp})`);
      let networkId = req.networkId;
      if (!networkId) {
        const nets = await usableNetworks(auth);
        if (nets.length > 1) throw new Conflict('Multiple possible networks found, use a Network ID to be more specific.');
        if (nets.length === 0) throw new BadRequest(`Failed to allocate the network(s) with error No network(s) available for instance ${instance.uuid}, not rescheduling.`);
        networkId = nets[0]!.id;
      }
      const n = await net.showNetwork(auth, networkId).catch((e: unknown) => {
        if (notFound(e)) throw new NotFound(`Network ${networkId} could not be found.`);
        throw e;
      });
      if (n.subnets.length === 0) throw new BadRequest(`Network ${n.id} requires a subnet in order to boot instances on.`);
      return { networkId: n.id, ...(req.fixedIp ? { fixedIp: req.fixedIp } : {}) };
    },

    async attach(req) {
      const claimed = 'portId' in req.nic ? req.nic.portId : undefined;
      if (claimed) claimedByAttach.add(claimed);
      try {
        const [vif] = await this.allocate({
          instanceUuid: req.instanceUuid, projectId: req.projectId, hostname: req.hostname, host: req.host,
          availabilityZone: req.availabilityZone, nics: [req.nic], securityGroups: [], log: req.log,
        }).catch((e: unknown) => {
          if (e instanceof BadRequest && /already in use/.test(e.message)) {
            throw new Conflict(`Fixed IP address ${'fixedIp' in req.nic ? req.nic.fixedIp : ''} is already in use on instance ${req.instanceUuid}.`);
          }
          throw e;
        });
        // Into the cache at once, with the port's provenance: every later refresh reads it from there.
        const row = await db.selectFrom('instances').select('network_info').where('uuid', '=', req.instanceUuid).executeTakeFirst();
        const cached = (row ? JSON.parse(row.network_info) as VifInfo[] : []).filter((v) => v.portId !== vif!.portId);
        await db.updateTable('instances').set({ network_info: JSON.stringify([...cached, vif]) }).where('uuid', '=', req.instanceUuid).execute();
        return vif!;
      } catch (e) {
        if (claimed) claimedByAttach.delete(claimed);
        throw e;
      }
    },

    async release(instanceUuid, portId, log) {
      const keep = await preserved(instanceUuid);
      const p = (await portsOf(instanceUuid)).find((x) => x.id === portId);
      claimedByAttach.delete(portId);
      if (!p) return;
      const admin = systemAuth(p.project_id);
      if (keep.has(p.id)) await net.updatePort(admin, p.id, { device_id: '', device_owner: '', host_id: '' });
      else await net.deletePort(admin, p.id).catch((e: unknown) => { if (!notFound(e)) throw e; });
      log.info({ instance: instanceUuid, port: p.id, kept: keep.has(p.id) }, keep.has(p.id) ? 'port unbound' : 'port deleted');
    },

    async interfaces(instanceUuid): Promise<InterfacePort[]> {
      return (await portsOf(instanceUuid)).map((p) => ({
        portId: p.id, networkId: p.network_id, mac: p.mac_address, status: p.status,
        fixedIps: p.fixed_ips.map((f) => ({ ip_address: f.ip_address, subnet_id: f.subnet_id })),
      }));
    },

    async addFixedIp(instanceUuid, networkId) {
      const p = (await portsOf(instanceUuid)).find((x) => x.network_id === networkId);
      if (!p) throw new BadRequest(`Network ${networkId} could not be found for instance ${instanceUuid}.`);
      const admin = systemAuth(p.project_id);
      const subnets = (await net.showNetwork(admin, networkId)).subnets;
      let last: unknown;
      for (const subnet of subnets) {
        try {
          await net.updatePort(admin, p.id, {
            fixed_ips: [...p.fixed_ips.map((f) => ({ subnet_id: f.subnet_id, ip_address: f.ip_address })), { subnet_id: subnet }],
          });
          return;
        } catch (e) { last = e; }
      }
      throw new BadRequest(`No fixed IP addresses available for network: ${networkId}${last instanceof Error ? ` (${last.message})` : ''}`);
    },

    async removeFixedIp(instanceUuid, address) {
      const p = (await portsOf(instanceUuid)).find((x) => x.fixed_ips.some((f) => f.ip_address === address));
      if (!p) return false;
      await net.updatePort(systemAuth(p.project_id), p.id, {
        fixed_ips: p.fixed_ips.filter((f) => f.ip_address !== address).map((f) => ({ subnet_id: f.subnet_id, ip_address: f.ip_address })),
      });
      return true;
    },
  };
}
