import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPools, defaultPools, lowestFree, rangeText, type Range } from './ipam.ts';
import { formatIp, parseCidr, parseIp } from './netaddr.ts';
import { caller, concurrencyProof, harness, type App } from './routes/test-harness.ts';
import type { OpenDatabase } from '../../db/index.ts';
import type { NetworkDeps } from './types.ts';
import type { NeutronError } from './errors.ts';

const ip = (s: string) => parseIp(s)!.value;
const pools = (cidr: string, gw: string | null) => defaultPools(parseCidr(cidr)!, gw === null ? null : ip(gw)).map((r) => rangeText(parseCidr(cidr)!.version, r));

describe('ipam: pools', () => {
  test("default pools are Neutron's: the host range minus the gateway", () => {
    assert.deepEqual(pools('10.0.0.0/24', '10.0.0.1'), ['10.0.0.2-10.0.0.254']);
    assert.deepEqual(pools('10.0.0.0/24', '10.0.0.100'), ['10.0.0.1-10.0.0.99', '10.0.0.101-10.0.0.254']);
    assert.deepEqual(pools('10.0.0.0/24', '10.0.0.254'), ['10.0.0.1-10.0.0.253']);
    assert.deepEqual(pools('10.0.0.0/24', null), ['10.0.0.1-10.0.0.254']);
    assert.deepEqual(pools('10.0.0.0/30', '10.0.0.1'), ['10.0.0.2-10.0.0.2']);
    assert.deepEqual(pools('10.0.0.0/31', null), [], 'a /31 has no host range in Neutron');
    assert.deepEqual(pools('2001:db8::/64', '2001:db8::1'), ['2001:db8::2-2001:db8::ffff:ffff:ffff:ffff'], 'IPv6 keeps the last address');
  });

  test('requested pools are checked with Neutron errors', () => {
    const c = parseCidr('10.0.0.0/24')!;
    const kinds = (fn: () => unknown) => { try { fn(); return 'ok'; } catch (e) { return `${(e as NeutronError).status} ${(e as NeutronError).kind}`; } };
    assert.equal(kinds(() => checkPools(c, [{ start: '10.0.0.10', end: '10.0.0.20' }], ip('10.0.0.1'))), 'ok');
    assert.equal(kinds(() => checkPools(c, [{ start: '10.0.0.20', end: '10.0.0.10' }], null)), '400 InvalidAllocationPool');
    assert.equal(kinds(() => checkPools(c, [{ start: 'x', end: '10.0.0.10' }], null)), '400 InvalidAllocationPool');
    assert.equal(kinds(() => checkPools(c, [{ start: '2001:db8::1', end: '2001:db8::2' }], null)), '400 InvalidAllocationPool');
    assert.equal(kinds(() => checkPools(c, [{ start: '10.0.0.0', end: '10.0.0.10' }], null)), '400 OutOfBoundsAllocationPool', 'the network address');
    assert.equal(kinds(() => checkPools(c, [{ start: '10.0.0.250', end: '10.0.0.255' }], null)), '400 OutOfBoundsAllocationPool', 'the broadcast address');
    assert.equal(kinds(() => checkPools(c, [{ start: '10.0.1.1', end: '10.0.1.5' }], null)), '400 OutOfBoundsAllocationPool');
    assert.equal(kinds(() => checkPools(c, [{ start: '10.0.0.10', end: '10.0.0.20' }, { start: '10.0.0.20', end: '10.0.0.30' }], null)), '409 OverlappingAllocationPools');
    assert.equal(kinds(() => checkPools(c, [{ start: '10.0.0.1', end: '10.0.0.20' }], ip('10.0.0.1'))), '409 GatewayConflictWithAllocationPools');
  });

  test('lowestFree finds gaps from the sorted taken list, without walking big subnets', () => {
    const p: Range[] = [[ip('10.0.0.2'), ip('10.0.0.4')], [ip('10.0.0.10'), ip('10.0.0.12')]];
    assert.equal(lowestFree(p, []), ip('10.0.0.2'));
    assert.equal(lowestFree(p, [ip('10.0.0.2'), ip('10.0.0.4')]), ip('10.0.0.3'));
    assert.equal(lowestFree(p, [ip('10.0.0.2'), ip('10.0.0.3'), ip('10.0.0.4')]), ip('10.0.0.10'));
    assert.equal(lowestFree(p, [ip('10.0.0.1'), ip('10.0.0.2'), ip('10.0.0.3'), ip('10.0.0.4'), ip('10.0.0.10'), ip('10.0.0.11'), ip('10.0.0.12')]), null);
    // A /8 with 200000 addresses taken (and one hole): the answer comes from the taken list alone.
    const big: Range[] = [[ip('10.0.0.2'), ip('10.255.255.254')]];
    const taken = Array.from({ length: 200_000 }, (_, i) => ip('10.0.0.2') + BigInt(i)).filter((x) => x !== ip('10.1.0.0'));
    const t0 = performance.now();
    assert.equal(formatIp(4, lowestFree(big, taken)!), '10.1.0.0');
    assert.equal(formatIp(4, lowestFree(big, taken.concat([ip('10.1.0.0')]).sort((a, b) => (a < b ? -1 : 1)))!), '10.3.13.66');
    assert.ok(performance.now() - t0 < 500, 'fast');
    // IPv6 /64: nothing to scan either.
    const v6: Range[] = [[ip('2001:db8::2'), ip('2001:db8::ffff:ffff:ffff:ffff')]];
    assert.equal(formatIp(6, lowestFree(v6, [ip('2001:db8::2'), ip('2001:db8::3')])!), '2001:db8::4');
  });
});

describe('ipam: concurrent port creation (SQLite, or PostgreSQL with GUREUM_TEST_POSTGRES_URL)', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: NetworkDeps;
  before(async () => { ({ app, dbh, deps } = await harness()); });
  after(async () => { await app.close(); await dbh.close(); });

  test('70 concurrent port creates on a /26: 61 addresses handed out once each, 9 refused, nothing half-made', async () => {
    const call = caller(app);
    const net = (await call('alice', 'POST', '/networks', { network: { name: 'busy' } })).body.network!;
    const sub = await call('alice', 'POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.60.0.0/26' } });
    assert.deepEqual(sub.body.subnet!.allocation_pools, [{ start: '10.60.0.2', end: '10.60.0.62' }]);
    await concurrencyProof([(body) => call('alice', 'POST', '/ports', body)], net.id, deps);
    // A freed address is the lowest free one again.
    const ports = (await call('alice', 'GET', `/ports?network_id=${net.id}&fixed_ips=ip_address=10.60.0.7`)).body.ports!;
    assert.equal((await call('alice', 'DELETE', `/ports/${ports[0]!.id}`)).status, 204);
    const again = await call('alice', 'POST', '/ports', { port: { network_id: net.id } });
    assert.equal(again.body.port!.fixed_ips[0]!.ip_address, '10.60.0.7');
  });
});
