/**
 * Test harness for the networking routes (imported by the *.test.ts files): a fresh
 * database (in-memory SQLite, or a new PostgreSQL database when GUREUM_TEST_POSTGRES_URL
 * is set), the whole networking API behind the real API server, and a token validator
 * standing in for identity with fixed callers. Only unit tests use it.
 */
import type { AuthContext, TokenValidator } from '../../../api/context.ts';
import assert from 'node:assert/strict';
import { createApiServer } from '../../../api/server.ts';
import { Unauthorized } from '../../../common/errors.ts';
import { createLogger } from '../../../common/logger.ts';
import type { OpenDatabase } from '../../../db/index.ts';
import { freshDatabase } from '../../../db/test-database.ts';
import { networkMount } from '../routes.ts';
import {
  DEFAULT_NETWORK_CONFIG, type NetworkConfig, type NetworkDeps, type NetworkView, type PortView, type SecurityGroupRuleView,
  type SecurityGroupView, type SubnetView,
} from '../types.ts';

const cred = (userId: string, projectId: string, roles: string[]): AuthContext => ({
  token: `tok-${userId}`, userId, userName: userId, userDomainId: 'default', projectId, projectDomainId: 'default',
  roles, roleIds: roles, methods: ['password'], auditIds: ['a'], issuedAt: 0, expiresAt: Date.now() + 3_600_000,
});
export const USERS = {
  admin: cred('u-admin', 'p-admin', ['admin', 'member', 'reader']),
  alice: cred('u-alice', 'p-one', ['member', 'reader']),
  bob: cred('u-bob', 'p-two', ['member', 'reader']),
  rita: cred('u-rita', 'p-one', ['reader']),
};
export type Who = keyof typeof USERS;

const validator: TokenValidator = {
  async validate(token) {
    const u = Object.values(USERS).find((x) => x.token === token);
    if (!u) throw new Unauthorized();
    return u;
  },
};

export type App = ReturnType<typeof createApiServer>;

export async function harness(cfg: Partial<NetworkConfig> = {}): Promise<{ app: App; deps: NetworkDeps; dbh: OpenDatabase }> {
  const dbh = await freshDatabase();
  const log = createLogger('silent');
  const deps: NetworkDeps = { db: dbh.db, log, cfg: { ...DEFAULT_NETWORK_CONFIG, ...cfg } };
  const app = createApiServer({ log, validator, maxBodyBytes: 1 << 20 }, [networkMount(deps)]);
  await app.ready();
  return { app, deps, dbh };
}

type Link = { rel: string; href: string };
type Quota = Record<string, number>;
type QuotaDetails = Record<string, { used: number; limit: number; reserved: number }>;
/** The bodies the networking API answers with (every key optional: each test reads what it asked for). */
export interface Resp {
  network?: NetworkView; networks?: NetworkView[]; networks_links?: Link[];
  subnet?: SubnetView; subnets?: SubnetView[]; subnets_links?: Link[];
  port?: PortView; ports?: PortView[]; ports_links?: Link[];
  security_group?: SecurityGroupView; security_groups?: SecurityGroupView[]; security_groups_links?: Link[];
  security_group_rule?: SecurityGroupRuleView; security_group_rules?: SecurityGroupRuleView[];
  quota?: Quota & QuotaDetails; quotas?: (Quota & { project_id: string })[];
  tags?: string[];
  extensions?: { alias: string; name: string; links: string[] }[]; extension?: { alias: string };
  versions?: { id: string; status: string; links: Link[] }[];
  resources?: { name: string; collection: string; links: Link[] }[];
  availability_zones?: { name: string; resource: string; state: string }[];
  tenant?: { tenant_id: string };
  NeutronError?: { type: string; message: string; detail: string };
}
export type Call = { status: number; body: Resp; headers: Record<string, unknown> };

export function caller(app: App) {
  return async (who: Who | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Call> => {
    const res = await app.inject({
      method: method as 'GET', url: path.startsWith('/networking') ? path : `/networking/v2.0${path}`,
      payload: body === undefined ? undefined : JSON.stringify(body),
      headers: { ...(who ? { 'x-auth-token': USERS[who].token } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) as Resp : {}, headers: res.headers };
  };
}

/** Row counts of the network tables, to prove a refused request left nothing behind. */
export async function counts(deps: NetworkDeps): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['networks', 'network_segments', 'subnets', 'subnet_allocation_pools', 'ports', 'ip_allocations', 'port_security_group_bindings',
    'port_allowed_address_pairs', 'port_bindings', 'security_groups', 'security_group_rules', 'network_tags'] as const) {
    const r = await deps.db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    out[t] = Number(r?.n ?? 0);
  }
  return out;
}

/**
 * The concurrency proof: many requests create ports on one small subnet at once. Every
 * address of the pool is handed out exactly once, the rest fail with Neutron's
 * IpAddressGenerationFailure, and a failed request leaves no port behind.
 */
export async function concurrencyProof(calls: ((body: unknown) => Promise<Call>)[], networkId: string, deps: NetworkDeps, expectFree = 61): Promise<void> {
  const total = expectFree + 9;
  const results = await Promise.all(Array.from({ length: total }, (_, i) => calls[i % calls.length]!({ port: { network_id: networkId, name: `c${i}` } })));
  const ok = results.filter((r) => r.status === 201);
  const failed = results.filter((r) => r.status !== 201);
  assert.equal(ok.length, expectFree, `${expectFree} ports get an address: ${JSON.stringify(failed.slice(0, 2).map((f) => f.body))}`);
  assert.equal(failed.length, 9);
  for (const f of failed) {
    assert.equal(f.status, 409);
    assert.equal(f.body.NeutronError?.type, 'IpAddressGenerationFailure');
    assert.equal(f.body.NeutronError?.message, `No more IP addresses available on network ${networkId}.`);
  }
  const addresses = ok.map((r) => r.body.port!.fixed_ips[0]!.ip_address);
  assert.equal(new Set(addresses).size, expectFree, 'all addresses distinct');
  const expected = Array.from({ length: expectFree }, (_, i) => `10.60.0.${i + 2}`).sort();
  assert.deepEqual([...addresses].sort(), expected, 'exactly the pool, lowest first');
  const c = await counts(deps);
  assert.equal(c.ports, expectFree, 'no port of a failed request remains');
  assert.equal(c.ip_allocations, expectFree);
  assert.equal(new Set(ok.map((r) => r.body.port!.mac_address)).size, expectFree, 'MACs distinct');
}

