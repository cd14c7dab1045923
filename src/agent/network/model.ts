/**
 * From a HostNetworkState to what this host must have (pure): every item validated (a bad
 * one becomes an error and is left out, the rest goes on), device and namespace names
 * derived, bridges resolved (VXLAN → brq<id>, flat → the configured physical bridge),
 * namespace specs for DHCP servers and routers, router routes and NAT.
 */
import { join } from 'node:path';
import { deviceNames, type DhcpState, type HostNetworkState, type NetworkState, type PortState, type RouterState } from '../../bus/network.ts';
import { METADATA_IP } from './dhcp.ts';
import { agentNames, checkId, checkIp, checkMac, checkMtu, checkPrefixLen, InvalidInput, parseCidr } from './names.ts';
import type { NsInterface, NsSpec } from './netns.ts';
import { planRouter, ROUTER_SYSCTLS, type RouterPlan } from './router.ts';
import type { VxlanSpec } from './vxlan.ts';
import { planMeta, type MetaModel } from './metadata-local.ts';

export interface NetModel { net: NetworkState; bridge: string; managed: boolean }
export interface PortModel { port: PortState; dev: string; bridge: string; mtu: number }
export interface DhcpModel { d: DhcpState; net: NetworkState; spec: NsSpec; dir: string }
export interface RouterModel { r: RouterState; spec: NsSpec; plan: RouterPlan }
export interface Model {
  nets: Map<string, NetModel>;
  vxlans: VxlanSpec[];
  ports: PortModel[];
  dhcp: DhcpModel[];
  routers: RouterModel[];
  /** Host-local metadata namespaces, one per network with local VM ports. */
  meta: MetaModel[];
}

export interface ModelContext {
  tunnelIp: string;
  physicalBridges: Record<string, string>;
  stateDir: string;
  names: ReturnType<typeof agentNames>;
}

function message(e: unknown): string { return e instanceof Error ? e.message : String(e); }

export function buildModel(state: HostNetworkState, ctx: ModelContext, rep: { errors: { what: string; error: string }[]; warnings: string[] }): Model {
  const tryItem = <T>(what: string, f: () => T): T | undefined => {
    try { return f(); } catch (e) { rep.errors.push({ what, error: message(e) }); return undefined; }
  };
  const nets = new Map<string, NetModel>();
  const vxlans: VxlanSpec[] = [];
  const vnis = new Set<number>();
  const bridgeNames = new Set<string>();
  for (const n of state.networks) {
    tryItem(`network ${n.id}`, () => {
      checkId('network', n.id);
      checkMtu(`network ${n.id}`, n.mtu);
      if (n.type === 'vxlan') {
        if (!Number.isInteger(n.vni) || n.vni! < 1 || n.vni! > 0xffffff) throw new InvalidInput(`invalid VNI ${n.vni}`);
        if (vnis.has(n.vni!)) throw new InvalidInput(`VNI ${n.vni} used twice`);
        const bridge = deviceNames.bridge(n.id);
        if (bridgeNames.has(bridge)) throw new InvalidInput(`bridge name ${bridge} collides with another network's`);
        vnis.add(n.vni!);
        bridgeNames.add(bridge);
        nets.set(n.id, { net: n, bridge, managed: true });
        const peers = n.peers.filter((p) => { try { checkIp('peer', p); return true; } catch (e) { rep.warnings.push(`network ${n.id}: ${message(e)}`); return false; } });
        const remoteMacs = n.remoteMacs.filter((m) => { try { checkMac('remote MAC', m.mac); checkIp('remote MAC host', m.ip); return true; } catch (e) { rep.warnings.push(`network ${n.id}: ${message(e)}`); return false; } });
        vxlans.push({ name: deviceNames.vxlan(n.vni!), vni: n.vni!, local: ctx.tunnelIp, bridge, mtu: n.mtu, peers, remoteMacs });
      } else if (n.type === 'flat') {
        const bridge = n.physicalNetwork !== undefined ? ctx.physicalBridges[n.physicalNetwork] : undefined;
        if (!bridge) throw new InvalidInput(`flat network on physical network ${JSON.stringify(n.physicalNetwork)} that this host has no bridge for`);
        nets.set(n.id, { net: n, bridge, managed: false });
      } else {
        throw new InvalidInput(`unsupported network type ${String((n as { type: unknown }).type)}`);
      }
    });
  }
  const taps = new Set<string>();
  const ports: PortModel[] = [];
  for (const p of state.ports) {
    tryItem(`port ${p.id}`, () => {
      checkId('port', p.id);
      checkMac(`port ${p.id}`, p.mac);
      const nm = nets.get(p.networkId);
      if (!nm) throw new InvalidInput(`network ${p.networkId} is not in the state`);
      for (const f of p.fixedIps) checkIp(`port ${p.id}`, f.ip);
      for (const a of p.allowedAddressPairs) { parseCidr(`port ${p.id} address pair`, a.ipAddress); if (a.mac) checkMac(`port ${p.id} address pair`, a.mac); }
      const dev = deviceNames.tap(p.id);
      if (taps.has(dev)) throw new InvalidInput(`device name ${dev} collides with another port's`);
      taps.add(dev);
      ports.push({ port: p, dev, bridge: nm.bridge, mtu: p.mtu ? checkMtu(`port ${p.id}`, p.mtu) : nm.net.mtu });
    });
  }
  const nsIface = (what: string, name: string, bridge: string, mac: string, mtu: number, addrs: { ip: string; prefixLen: number }[]): NsInterface => {
    const addresses = addrs.map((a) => {
      const { version } = checkIp(what, a.ip);
      checkPrefixLen(what, a.prefixLen, version);
      return `${a.ip}/${a.prefixLen}`;
    });
    return { name, hostEnd: deviceNames.hostEnd(name), bridge, mac: checkMac(what, mac), mtu: checkMtu(what, mtu), addresses };
  };
  const dhcp: DhcpModel[] = [];
  for (const d of state.dhcp) {
    tryItem(`dhcp ${d.networkId}`, () => {
      checkId('network', d.networkId);
      checkId('dhcp port', d.port.id);
      const nm = nets.get(d.networkId);
      if (!nm) throw new InvalidInput(`network ${d.networkId} is not in the state`);
      const iface = nsIface(`dhcp port ${d.port.id}`, deviceNames.dhcpInterface(d.port.id), nm.bridge, d.port.mac, d.mtu || nm.net.mtu,
        [...d.port.fixedIps, { ip: METADATA_IP, prefixLen: 32 }]);
      dhcp.push({ d, net: nm.net, spec: { ns: ctx.names.dhcpNamespace(d.networkId), interfaces: [iface], sysctls: {} }, dir: join(ctx.stateDir, 'dhcp', d.networkId) });
    });
  }
  const routers: RouterModel[] = [];
  for (const r of state.routers) {
    tryItem(`router ${r.id}`, () => {
      checkId('router', r.id);
      const interfaces: NsInterface[] = [];
      for (const i of r.interfaces) {
        const nm = nets.get(i.networkId);
        if (!nm) { rep.errors.push({ what: `router ${r.id} interface ${i.portId}`, error: `network ${i.networkId} is not in the state` }); continue; }
        checkId('router port', i.portId);
        interfaces.push(nsIface(`router ${r.id} port ${i.portId}`, deviceNames.routerInterface(i.portId), nm.bridge, i.mac, i.mtu || nm.net.mtu, [{ ip: i.ip, prefixLen: i.prefixLen }]));
      }
      let router = r;
      if (r.gateway) {
        const g = r.gateway;
        const nm = nets.get(g.networkId);
        if (!nm) {
          rep.errors.push({ what: `router ${r.id} gateway`, error: `external network ${g.networkId} is not in the state` });
          router = { ...r, gateway: undefined, floatingIps: [] };
        } else {
          checkId('gateway port', g.portId);
          const fips = r.floatingIps.filter((f) => { try { return checkIp('floating ip', f.floatingIp).version === 4; } catch (e) { rep.warnings.push(`router ${r.id}: ${message(e)}`); return false; } });
          interfaces.push(nsIface(`router ${r.id} gateway`, deviceNames.routerGateway(g.portId), nm.bridge, g.mac, g.mtu || nm.net.mtu,
            [...g.fixedIps, ...fips.map((f) => ({ ip: f.floatingIp, prefixLen: 32 }))]));
        }
      }
      const plan = planRouter(router);
      rep.warnings.push(...plan.warnings.map((w) => `router ${r.id}: ${w}`));
      routers.push({ r: router, spec: { ns: ctx.names.routerNamespace(r.id), interfaces, sysctls: ROUTER_SYSCTLS }, plan });
    });
  }
  const meta: MetaModel[] = [];
  for (const nm of nets.values()) {
    const m = planMeta(nm.net, nm.bridge, ports, ctx.names.metaNamespace(nm.net.id), join(ctx.stateDir, 'meta', nm.net.id), ctx.tunnelIp, rep.warnings);
    if (m) meta.push(m);
  }
  return { nets, vxlans, ports, dhcp, routers, meta };
}
