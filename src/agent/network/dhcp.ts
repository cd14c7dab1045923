/**
 * DHCP the way Neutron's DHCP agent does it: one dnsmasq per network in the network's
 * qdhcp namespace, static leases only (a host file of MAC,name,IP), options per subnet
 * tag (router, DNS, MTU, classless static routes incl. the metadata route via the DHCP
 * port). Host or option changes rewrite the files and SIGHUP dnsmasq (it re-reads
 * --dhcp-hostsfile, --dhcp-optsfile and --addn-hosts and keeps its leases), after
 * releasing the leases of addresses whose host entry went or moved to another MAC
 * (dhcp_release, as Neutron does); a change of the command line (ranges, interface)
 * restarts it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DhcpState, NetworkState, SubnetState } from '../../bus/network.ts';
import { daemonStatus, signal, startDaemon, stopDaemon, type DaemonSpec } from './daemon.ts';
import { checkId, checkIp, cidrText, InvalidInput, ipToBigInt, netmask, parseCidr, type Cidr } from './names.ts';
import { runIn } from './exec.ts';
import { writeIfChanged } from './util.ts';

export const METADATA_IP = '169.254.169.254';

export interface DnsmasqFiles {
  argv: string[];
  /** The DHCP port's interface in the namespace. */
  iface: string;
  hosts: string;
  opts: string;
  addnHosts: string;
  pidFile: string;
  files: { hosts: string; opts: string; addnHosts: string };
  warnings: string[];
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DOMAIN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/;

function inSubnet(ip: string, c: Cidr): boolean {
  const { version } = checkIp('address', ip);
  if (version !== c.version) return false;
  const bits = BigInt((version === 4 ? 32 : 128) - c.prefixLen);
  return (ipToBigInt(ip) >> bits) === (ipToBigInt(c.network) >> bits);
}

function tag(s: SubnetState): string { return `subnet-${s.id}`; }

function leaseTime(seconds: number): string {
  return seconds < 0 ? 'infinite' : `${Math.max(120, Math.floor(seconds))}s`;
}

function v6Mode(s: SubnetState): string | undefined {
  if (s.ipv6AddressMode === 'dhcpv6-stateful') return 'static';
  if (s.ipv6AddressMode === 'dhcpv6-stateless') return 'ra-stateless';
  if (s.ipv6AddressMode === 'slaac' && s.ipv6RaMode) return 'ra-only';
  return undefined;
}

/** The dnsmasq command line and files for one network (pure). */
/** `user`: who dnsmasq runs as after start (it must be able to read `dir` then); default nobody. */
export function renderDnsmasq(d: DhcpState, net: NetworkState, iface: string, dir: string, user = 'nobody'): DnsmasqFiles {
  const warnings: string[] = [];
  const domain = (d.domain || 'openstacklocal').toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(domain)) throw new InvalidInput(`network ${net.id}: invalid DNS domain ${JSON.stringify(d.domain)}`);
  const files = { hosts: join(dir, 'host'), opts: join(dir, 'opts'), addnHosts: join(dir, 'addn_hosts') };
  const pidFile = join(dir, 'pid');
  const subnets = net.subnets.filter((s) => s.enableDhcp).flatMap((s) => {
    try {
      checkId('subnet', s.id);
      if (s.gatewayIp !== null) checkIp(`subnet ${s.id} gateway`, s.gatewayIp);
      return [{ s, c: parseCidr(`subnet ${s.id}`, s.cidr) }];
    } catch (e) { warnings.push(`${(e as Error).message}; subnet not served`); return []; }
  });
  const mtu = Number.isInteger(d.mtu) && d.mtu >= 68 && d.mtu <= 65535 ? d.mtu : net.mtu;
  const lease = Number.isFinite(d.leaseSeconds) ? d.leaseSeconds : 86400;
  const argv = [
    'dnsmasq', '--no-hosts', '--no-resolv', '--conf-file=/dev/null', `--user=${user}`,
    `--pid-file=${pidFile}`, `--dhcp-hostsfile=${files.hosts}`, `--addn-hosts=${files.addnHosts}`, `--dhcp-optsfile=${files.opts}`,
    `--dhcp-leasefile=${join(dir, 'leases')}`, `--log-facility=${join(dir, 'dnsmasq.log')}`,
    '--bind-interfaces', `--interface=${iface}`, '--except-interface=lo',
    `--domain=${domain}`, `--local=/${domain}/`, '--dhcp-authoritative',
  ];
  let leaseMax = 0;
  let ra = false;
  const opts: string[] = [];
  for (const { s, c } of subnets) {
    const portIp = d.port.fixedIps.find((f) => f.subnetId === s.id)?.ip ?? d.port.fixedIps.map((f) => f.ip).find((ip) => inSubnet(ip, c));
    if (!portIp) { warnings.push(`subnet ${s.id}: the DHCP port has no address in it; not served`); continue; }
    if (c.version === 4) {
      argv.push(`--dhcp-range=set:${tag(s)},${c.network},static,${netmask(c.prefixLen)},${leaseTime(lease)}`);
      leaseMax += 2 ** Math.min(32 - c.prefixLen, 24);
      const dns = s.dnsNameservers.filter((x) => { try { return checkIp('dns', x).version === 4; } catch { warnings.push(`subnet ${s.id}: bad DNS server ${x}`); return false; } });
      opts.push(`tag:${tag(s)},option:dns-server,${(dns.length ? dns : [portIp]).join(',')}`);
      const routes: string[] = [];
      const hostRoutes = s.hostRoutes.filter((r) => {
        try { parseCidr('host route', r.destination); checkIp('host route nexthop', r.nexthop); return true; } catch (e) { warnings.push(`subnet ${s.id}: ${(e as Error).message}`); return false; }
      }).map((r) => ({ dst: cidrText(parseCidr('host route', r.destination)), via: r.nexthop }));
      if (!hostRoutes.some((r) => r.dst === `${METADATA_IP}/32`)) routes.push(`${METADATA_IP}/32,${portIp}`);
      for (const r of hostRoutes) if (r.dst !== '0.0.0.0/0') routes.push(`${r.dst},${r.via}`);
      const def = hostRoutes.find((r) => r.dst === '0.0.0.0/0')?.via ?? s.gatewayIp;
      if (def) routes.push(`0.0.0.0/0,${def}`);
      opts.push(`tag:${tag(s)},option:classless-static-route,${routes.join(',')}`);
      opts.push(`tag:${tag(s)},249,${routes.join(',')}`);
      opts.push(s.gatewayIp ? `tag:${tag(s)},option:router,${s.gatewayIp}` : `tag:${tag(s)},option:router`);
      opts.push(`tag:${tag(s)},option:mtu,${mtu}`);
    } else {
      const mode = v6Mode(s);
      if (s.ipv6RaMode) ra = true;
      if (!mode) continue;
      argv.push(`--dhcp-range=set:${tag(s)},${c.network},${mode},${c.prefixLen},${leaseTime(lease)}`);
      leaseMax += 2 ** 16;
      const dns = s.dnsNameservers.filter((x) => { try { return checkIp('dns', x).version === 6; } catch { return false; } });
      opts.push(`tag:${tag(s)},option6:dns-server,${(dns.length ? dns : [portIp]).map((x) => `[${x}]`).join(',')}`);
      opts.push(`tag:${tag(s)},option6:domain-search,${domain}`);
    }
  }
  // The DHCP namespace is no router: advertise the prefix (and MTU), with router lifetime 0.
  if (ra) argv.push('--enable-ra', `--ra-param=${iface},mtu:${mtu},30,0`);
  argv.push(`--dhcp-lease-max=${Math.max(16, Math.min(leaseMax, 2 ** 24))}`);

  const hosts: string[] = [];
  const addn: string[] = [];
  for (const h of d.hosts) {
    const name = h.hostname.toLowerCase().replace(/\.$/, '');
    let ip: string, version: 4 | 6, mac: string;
    try {
      ({ ip, version } = checkIp(`host ${h.portId}`, h.ip));
      mac = h.mac.toLowerCase();
      if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new InvalidInput(`host ${h.portId}: invalid MAC ${h.mac}`);
    } catch (e) { warnings.push((e as Error).message); continue; }
    const short = HOSTNAME.test(name) ? name : `host-${ip.replace(/[.:]/g, '-')}`;
    const fqdn = `${short}.${domain}`;
    hosts.push(version === 4 ? `${mac},${fqdn},${ip}` : `${mac},${fqdn},[${ip}]`);
    addn.push(`${ip}\t${fqdn} ${short}`);
  }
  return { argv, iface, hosts: hosts.join('\n') + '\n', opts: opts.join('\n') + '\n', addnHosts: addn.join('\n') + '\n', pidFile, files, warnings };
}

export type DhcpOutcome = 'unchanged' | 'started' | 'restarted' | 'reloaded';

/** Makes dnsmasq for one network run with these files; the namespace and interface must exist. */
export async function convergeDnsmasq(ns: string, f: DnsmasqFiles): Promise<DhcpOutcome> {
  const before = await readFile(f.files.hosts, 'utf8').catch(() => '');
  const changed = (await Promise.all([
    writeIfChanged(f.files.hosts, f.hosts), writeIfChanged(f.files.opts, f.opts), writeIfChanged(f.files.addnHosts, f.addnHosts),
  ])).some(Boolean);
  const spec: DaemonSpec = { ns, argv: f.argv, pidFile: f.pidFile };
  const st = await daemonStatus(spec);
  if (st.state === 'running') {
    if (changed) {
      await releaseStaleLeases(ns, f.iface, staleLeases(before, f.hosts));
      signal(st.pid, 'SIGHUP');
    }
    return changed ? 'reloaded' : 'unchanged';
  }
  if (st.state === 'different') await stopDaemon(spec);
  await startDaemon(spec);
  // a restarted dnsmasq reads its leases file back, stale entries included
  if (st.state === 'different' && changed) await releaseStaleLeases(ns, f.iface, staleLeases(before, f.hosts));
  return st.state === 'different' ? 'restarted' : 'started';
}

/** IPv4 address → MAC of a dnsmasq hosts file (`mac,name,ip` lines). */
function hostsByIp(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [mac, , ip] = line.split(',');
    if (mac && ip && !ip.startsWith('[')) out.set(ip, mac);
  }
  return out;
}

/**
 * The IPv4 leases dnsmasq may still hold for a host entry that is gone or whose address
 * now belongs to another MAC (a port deleted and its address given to a new one):
 * dnsmasq keeps such a lease until it expires and meanwhile refuses the address to its
 * new owner ("not using configured address ... because it is leased to ...").
 */
export function staleLeases(before: string, after: string): { ip: string; mac: string }[] {
  const now = hostsByIp(after);
  return [...hostsByIp(before)].filter(([ip, mac]) => now.get(ip) !== mac).map(([ip, mac]) => ({ ip, mac }));
}

/** Releases leases as Neutron's DHCP agent does: a DHCPRELEASE on the port's interface (dnsmasq-utils' dhcp_release). */
async function releaseStaleLeases(ns: string, iface: string, leases: { ip: string; mac: string }[]): Promise<void> {
  for (const l of leases) await runIn(ns, 'dhcp_release', [iface, l.ip, l.mac], { allowFailure: true });
}

export async function stopDnsmasq(ns: string, dir: string): Promise<boolean> {
  return stopDaemon({ ns, argv: ['dnsmasq'], pidFile: join(dir, 'pid') });
}
