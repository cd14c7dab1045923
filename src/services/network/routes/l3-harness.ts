/**
 * Fixtures of the L3 unit tests (routers, floating IPs): the part-1 harness with an
 * admin's external network `public` (172.24.4.0/24, gateway .1, pool .10-.254, no DHCP,
 * as `gureum up` makes it) and alice's network `net` 10.0.0.0/24; a typed caller; row
 * counts over every network table, L3 ones included; and `refused`, which checks a
 * request fails as Neutron's would and changes nothing.
 */
import assert from 'node:assert/strict';
import type { FloatingIpView } from '../floating-ips.ts';
import type { InterfaceInfo, RouterView } from '../routers.ts';
import type { NetworkDeps } from '../types.ts';
import { caller, counts, harness, type App, type Resp, type Who } from './test-harness.ts';

export type L3Resp = Resp & Partial<InterfaceInfo> & {
  router?: RouterView; routers?: RouterView[]; floatingip?: FloatingIpView; floatingips?: FloatingIpView[];
};
export type L3Call = { status: number; body: L3Resp };

export interface L3Fixture {
  app: App;
  deps: NetworkDeps;
  close(): Promise<void>;
  call(who: Who | null, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<L3Call>;
  counts(): Promise<Record<string, number>>;
  refused(who: Who, method: string, path: string, body: unknown, status: number, type: string, message?: string | RegExp): Promise<L3Call>;
  /** What notify() was told, in order. */
  changes: string[];
  pub: string; pubSub: string; net: string; sub: string;
}

export async function l3Harness(): Promise<L3Fixture> {
  const { app, deps, dbh } = await harness();
  const raw = caller(app);
  const call = async (who: Who | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<L3Call> => {
    const r = await raw(who, method, path, body, headers);
    return { status: r.status, body: r.body as L3Resp };
  };
  const all = async (): Promise<Record<string, number>> => {
    const out = await counts(deps);
    for (const t of ['routers', 'router_ports', 'router_routes', 'floatingips', 'port_forwardings'] as const) {
      const r = await deps.db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
      out[t] = Number(r?.n ?? 0);
    }
    return out;
  };
  const ok = (r: L3Call, status = 201): L3Resp => { assert.equal(r.status, status, JSON.stringify(r.body)); return r.body; };
  const pub = ok(await call('admin', 'POST', '/networks', { network: { name: 'public', 'router:external': true } })).network!.id;
  const pubSub = ok(await call('admin', 'POST', '/subnets', { subnet: {
    network_id: pub, name: 'public-subnet', ip_version: 4, cidr: '172.24.4.0/24', gateway_ip: '172.24.4.1', enable_dhcp: false,
    allocation_pools: [{ start: '172.24.4.10', end: '172.24.4.254' }],
  } })).subnet!.id;
  const net = ok(await call('alice', 'POST', '/networks', { network: { name: 'net' } })).network!.id;
  const sub = ok(await call('alice', 'POST', '/subnets', { subnet: { network_id: net, name: 'sub', ip_version: 4, cidr: '10.0.0.0/24' } })).subnet!.id;
  const changes: string[] = [];
  deps.changed = (what) => changes.push(what);
  return {
    app, deps, changes, pub, pubSub, net, sub, call, counts: all,
    async close() { await app.close(); await dbh.close(); },
    async refused(who, method, path, body, status, type, message) {
      const before = await all();
      const r = await call(who, method, path, body);
      assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.NeutronError?.type, type, JSON.stringify(r.body));
      if (typeof message === 'string') assert.equal(r.body.NeutronError?.message, message);
      else if (message) assert.match(r.body.NeutronError!.message, message);
      assert.deepEqual(await all(), before, `nothing changed by ${method} ${path} ${JSON.stringify(body)}`);
      return r;
    },
  };
}
