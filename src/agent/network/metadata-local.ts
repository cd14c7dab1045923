/**
 * Metadata served on the VM's own host. A network's DHCP server (and its metadata proxy)
 * runs on one host, but an instance's metadata server lives with the instance, so a VM on
 * another host would reach an agent that does not know it. So on every host with VM ports
 * of a network the agent also keeps a small namespace `<prefix>qmeta-<network>`: a veth
 * `mt-<net11>` on the network's bridge with 169.254.169.254/32 and a MAC of its own, an
 * haproxy like the DHCP namespace's, on-link routes to the network's IPv4 subnets and
 * permanent neighbour entries for the local ports. In the bridge (prerouting, after
 * anti-spoofing) a local port's packets to 169.254.169.254:80 get that MAC as destination,
 * whatever next hop the guest used (the DHCP port per the classless route, or its router),
 * and a static FDB entry keeps them on this host — the way OVN serves metadata per chassis.
 */
import { createHash } from 'node:crypto';
import type { Neighbor } from './ip.ts';
import { METADATA_IP } from './dhcp.ts';
import { checkIp, cidrText, parseCidr } from './names.ts';
import type { NsSpec } from './netns.ts';
import type { RouterRoute } from './router.ts';
import type { NetworkState, PortState } from '../../bus/network.ts';

export interface MetaModel {
  networkId: string;
  spec: NsSpec;
  /** haproxy files. */
  dir: string;
  /** The namespace interface's MAC (locally administered, stable per host and network). */
  mac: string;
  /** On-link routes to the network's IPv4 subnets. */
  routes: RouterRoute[];
  /** The local ports' IPv4 addresses → MAC. */
  neighbors: { ip: string; mac: string }[];
  /** Local port devices whose metadata requests are redirected here. */
  taps: string[];
}

export function metaInterface(networkId: string): string { return `mt-${networkId.slice(0, 11)}`; }

/** A locally administered unicast MAC derived from the network and this host's tunnel address. */
export function metaMac(networkId: string, tunnelIp: string): string {
  const h = createHash('sha256').update(`${networkId}/${tunnelIp}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The metadata namespace of one network on this host (pure); undefined when no local port needs it. */
export function planMeta(
  net: NetworkState, bridge: string, ports: { port: PortState; dev: string }[], ns: string, dir: string, tunnelIp: string, warnings: string[],
): MetaModel | undefined {
  const local = ports.filter((p) => p.port.networkId === net.id && p.port.deviceId);
  const subnets = net.subnets.filter((s) => s.ipVersion === 4).flatMap((s) => {
    try { return [cidrText(parseCidr(`subnet ${s.id}`, s.cidr))]; } catch (e) { warnings.push((e as Error).message); return []; }
  });
  if (!local.length || !subnets.length) return undefined;
  const name = metaInterface(net.id);
  const mac = metaMac(net.id, tunnelIp);
  const neighbors: { ip: string; mac: string }[] = [];
  for (const p of local) {
    for (const f of p.port.fixedIps) if (checkIp('fixed ip', f.ip).version === 4) neighbors.push({ ip: f.ip, mac: p.port.mac.toLowerCase() });
  }
  return {
    networkId: net.id, dir, mac, neighbors, taps: local.map((p) => p.dev),
    routes: subnets.map((dst) => ({ dst, dev: name })),
    spec: { ns, sysctls: {}, interfaces: [{ name, hostEnd: `v${name}`, bridge, mac, mtu: net.mtu, addresses: [`${METADATA_IP}/32`] }] },
  };
}

/** `ip` batch lines that make the interface's permanent neighbours exactly `want`. */
export function neighborLines(dev: string, want: { ip: string; mac: string }[], have: Neighbor[]): string[] {
  const lines: string[] = [];
  const wantBy = new Map(want.map((n) => [n.ip, n.mac]));
  for (const h of have) {
    if (!h.permanent) continue;
    if (wantBy.get(h.ip) !== h.mac?.toLowerCase()) lines.push(`neigh del ${h.ip} dev ${dev}`);
  }
  for (const [ip, mac] of wantBy) {
    if (!have.some((h) => h.permanent && h.ip === ip && h.mac?.toLowerCase() === mac)) lines.push(`neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`);
  }
  return lines;
}
