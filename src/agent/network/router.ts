/**
 * Routers the way Neutron's legacy L3 agent builds them: a namespace with forwarding on,
 * a `qr-` veth per tenant subnet (host end on the network's bridge), a `qg-` veth on the
 * external network's bridge with the gateway and floating addresses (each floating IP as
 * a /32, so the router answers ARP for it), a default route via the external subnet's
 * gateway, the router's static routes, and NAT in nftables:
 *
 *   prerouting/output   ip daddr <floating> dnat to <fixed>
 *   postrouting         hairpin: tenant → floating IP of a tenant → masquerade on the qr side
 *                       oifname qg ip saddr <fixed> snat to <floating>
 *                       oifname qg ip saddr { tenant subnets } snat to <gateway ip>  (snat on)
 */
import type { RouterState } from '../../bus/network.ts';
import { deviceNames } from '../../bus/network.ts';
import { runIn } from './exec.ts';
import { listRoutes, type Route } from './ip.ts';
import { checkIp, cidrText, parseCidr } from './names.ts';

export const ROUTER_TABLE = 'gureum';

/** A route: via a next hop, or on-link through `dev` when `via` is undefined. */
export interface RouterRoute { dst: string; via?: string; dev?: string }

export interface RouterPlan {
  routes: RouterRoute[];
  nat: string;
  warnings: string[];
}

/** Routes and NAT ruleset of a router (pure). */
export function planRouter(r: RouterState): RouterPlan {
  const warnings: string[] = [];
  const routes: RouterRoute[] = [];
  const gw = r.gateway;
  const qg = gw ? deviceNames.routerGateway(gw.portId) : undefined;
  const seen = new Set<string>();
  const addRoute = (dst: string, via: string, dev?: string) => {
    try {
      const c = parseCidr(`router ${r.id} route`, dst);
      const { version } = checkIp(`router ${r.id} route nexthop`, via);
      if (version !== c.version) throw new Error(`route ${dst} via ${via}: address families differ`);
      const key = cidrText(c);
      if (seen.has(key)) return;
      seen.add(key);
      routes.push({ dst: key, via, dev });
    } catch (e) { warnings.push((e as Error).message); }
  };
  for (const rt of r.routes) addRoute(rt.destination, rt.nexthop);
  if (gw && qg) {
    for (const f of gw.fixedIps) {
      if (!f.gatewayIp) continue;
      const v = checkIp('gateway', f.gatewayIp).version;
      addRoute(v === 4 ? '0.0.0.0/0' : '::/0', f.gatewayIp, qg);
    }
  }
  const internal = r.interfaces.map((i) => { try { return parseCidr(`router ${r.id} interface`, i.cidr); } catch (e) { warnings.push((e as Error).message); return undefined; } })
    .filter((c) => c !== undefined && c.version === 4).map((c) => cidrText(c!));
  const uniqInternal = [...new Set(internal)];
  const pre: string[] = [];
  const post: string[] = [];
  if (gw && qg) {
    for (const f of r.floatingIps) {
      try {
        if (checkIp('floating ip', f.floatingIp).version !== 4 || checkIp('fixed ip', f.fixedIp).version !== 4) throw new Error(`floating IP ${f.id}: IPv4 only`);
      } catch (e) { warnings.push((e as Error).message); continue; }
      pre.push(`ip daddr ${f.floatingIp} dnat to ${f.fixedIp}`);
      post.push(`oifname "${qg}" ip saddr ${f.fixedIp} snat to ${f.floatingIp}`);
    }
    // hairpin: a tenant reaching a floating IP of a tenant VM behind this router must get
    // the answer back through the router, so its source becomes the router's own address.
    if (pre.length && uniqInternal.length) post.unshift(`ip saddr { ${uniqInternal.join(', ')} } ct status dnat oifname != "${qg}" masquerade`);
    const v4 = gw.fixedIps.find((f) => { try { return checkIp('gateway ip', f.ip).version === 4; } catch { return false; } });
    if (gw.snat && v4 && uniqInternal.length) post.push(`oifname "${qg}" ip saddr { ${uniqInternal.join(', ')} } snat to ${v4.ip}`);
  }
  const nat = [
    `table ip ${ROUTER_TABLE}`, `delete table ip ${ROUTER_TABLE}`,
    `table ip ${ROUTER_TABLE} {`,
    '  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', ...pre.map((l) => `    ${l}`), '  }',
    '  chain output {', '    type nat hook output priority -100; policy accept;', ...pre.map((l) => `    ${l}`), '  }',
    '  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;', ...post.map((l) => `    ${l}`), '  }',
    '}', '',
  ].join('\n');
  return { routes, nat, warnings };
}

function normalRouteDst(r: Route): string {
  if (r.dst === 'default') return r.family === 4 ? '0.0.0.0/0' : '::/0';
  return cidrText(parseCidr('route', r.dst));
}

/** `ip` batch lines that make the namespace's static routes (`proto static`) exactly `want`. */
export async function routeLines(ns: string, want: RouterRoute[]): Promise<string[]> {
  const have = [...await listRoutes(ns, 4, 'static'), ...await listRoutes(ns, 6, 'static')];
  const key = (dst: string, via: string | undefined) => `${dst} ${via ?? ''}`;
  const wantKeys = new Set(want.map((w) => key(w.dst, w.via)));
  const haveKeys = new Set(have.map((h) => key(normalRouteDst(h), h.gateway)));
  const lines: string[] = [];
  for (const h of have) {
    const dst = normalRouteDst(h);
    if (!wantKeys.has(key(dst, h.gateway))) lines.push(`route del ${dst} proto static${h.gateway ? ` via ${h.gateway}` : ''}`);
  }
  for (const w of want) {
    if (haveKeys.has(key(w.dst, w.via))) continue;
    lines.push(`route replace ${w.dst}${w.via ? ` via ${w.via}` : ''}${w.dev ? ` dev ${w.dev}` : ''} proto static`);
  }
  return lines;
}

export async function loadRouterNat(ns: string, text: string): Promise<void> {
  await runIn(ns, 'nft', ['-f', '-'], { input: text });
}

export async function routerNatPresent(ns: string): Promise<boolean> {
  const { stdout } = await runIn(ns, 'nft', ['list', 'tables']);
  return stdout.split('\n').some((l) => l.trim() === `table ip ${ROUTER_TABLE}`);
}

export const ROUTER_SYSCTLS = {
  'net.ipv4.ip_forward': 1,
  'net.ipv6.conf.all.forwarding': 1,
  'net.ipv4.conf.all.send_redirects': 0,
  'net.ipv4.conf.default.send_redirects': 0,
};
