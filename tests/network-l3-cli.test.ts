/**
 * Neutron's L3 API through the stock openstack CLI against `gureum up` (as root, which
 * makes the external network `public` 172.24.4.0/24 on br-ex): routers (create, set
 * --external-gateway public, add/remove subnet and port, routes with set/unset and
 * add/remove route, delete), floating IPs (create, set --port, unset --port, list
 * filters, delete), the errors the CLI prints for bad requests, projects kept apart —
 * and a real guest reached from this machine over SSH at the floating IP that
 * `server add floating ip` gave it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openstack, openstackFails, otherProject, startCloud, type Cloud } from './helpers/cloud.ts';
import { computeTools, until } from './helpers/compute.ts';

const run = promisify(execFile);
type Row = Record<string, unknown>;
type Fip = { id: string; floating_ip_address: string; port_id: string | null; fixed_ip_address: string | null; router_id: string | null; status: string;
  /** The CLI prints port_details as "k='v', ..." text. */
  port_details: string | null; floating_network_id: string };
type Router = { id: string; status: string; external_gateway_info: { network_id: string; enable_snat: boolean; external_fixed_ips: { subnet_id: string; ip_address: string }[] } | null;
  routes: { destination: string; nexthop: string }[]; interfaces_info: { port_id: string; ip_address: string; subnet_id: string }[] };

describe('routers and floating IPs with the openstack CLI', () => {
  let cloud: Cloud;
  let env: NodeJS.ProcessEnv;
  let other: { env: NodeJS.ProcessEnv; projectId: string };
  const os = (...a: string[]) => openstack(env, ...a);
  const json = async <T = Row>(...a: string[]) => (await os(...a, '-f', 'json')) as T;
  const fails = (...a: string[]) => openstackFails(env, ...a);
  let pub: string;
  let pubSub: string;
  let net: string;
  let sub: string;

  before(async () => {
    cloud = await startCloud();
    env = cloud.env;
    other = await otherProject(env, 'l3-other');
    const p = await json<{ id: string; 'router:external': boolean; subnets: string[] }>('network', 'show', 'public');
    assert.equal(p['router:external'], true, 'gureum up (as root) made the external network');
    pub = p.id;
    pubSub = p.subnets[0]!;
    net = (await json<{ id: string }>('network', 'create', 'l3net')).id;
    sub = (await json<{ id: string }>('subnet', 'create', '--network', 'l3net', '--subnet-range', '10.60.0.0/24', 'l3sub')).id;
  });
  after(async () => { await cloud?.stop(); });

  test('the L3 extensions are listed', async () => {
    const ext = (await json<Row[]>('extension', 'list', '--network')).map((e) => e.Alias);
    for (const a of ['router', 'ext-gw-mode', 'extraroute', 'extraroute-atomic', 'fip-port-details', 'router_availability_zone']) assert.ok(ext.includes(a), a);
  });

  test('router create, set --external-gateway public, add/remove subnet, routes, unset gateway, delete', async () => {
    const created = await json<Router>('router', 'create', 'r1');
    assert.equal(created.status, 'ACTIVE');
    assert.equal(created.external_gateway_info, null);

    await os('router', 'set', '--external-gateway', 'public', 'r1');
    let r = await json<Router>('router', 'show', 'r1');
    assert.equal(r.external_gateway_info!.network_id, pub);
    assert.equal(r.external_gateway_info!.enable_snat, true);
    assert.equal(r.external_gateway_info!.external_fixed_ips[0]!.subnet_id, pubSub);
    assert.match(r.external_gateway_info!.external_fixed_ips[0]!.ip_address, /^172\.24\.4\.\d+$/);
    assert.deepEqual(r.interfaces_info, [], "router show lists the router's ports but the gateway");

    await os('router', 'add', 'subnet', 'r1', 'l3sub');
    r = await json<Router>('router', 'show', 'r1');
    assert.equal(r.interfaces_info.length, 1);
    assert.equal(r.interfaces_info[0]!.ip_address, '10.60.0.1');
    assert.equal(r.interfaces_info[0]!.subnet_id, sub);
    // The admin sees both of the router's ports: the interface and the (project-less) gateway.
    const ports = await json<Row[]>('port', 'list', '--router', 'r1', '--long');
    assert.deepEqual(ports.map((p) => p['Device Owner']).sort(), ['network:router_gateway', 'network:router_interface']);
    assert.match(await fails('router', 'add', 'subnet', 'r1', 'l3sub'), new RegExp(`Bad router request: Router already has a port on subnet ${sub}\\.`));
    assert.match(await fails('subnet', 'delete', 'l3sub'), /One or more ports have an IP allocation from this subnet/);
    assert.match(await fails('router', 'delete', 'r1'), /Router \S+ still has ports/);

    // Static routes: set --route adds to the current ones; the nexthop must be on a connected subnet.
    await os('router', 'set', '--route', 'destination=192.168.77.0/24,gateway=10.60.0.254', 'r1');
    assert.deepEqual((await json<Router>('router', 'show', 'r1')).routes, [{ destination: '192.168.77.0/24', nexthop: '10.60.0.254' }]);
    assert.match(await fails('router', 'set', '--route', 'destination=192.168.78.0/24,gateway=10.99.0.1', 'r1'),
      /Invalid format for routes: .*'nexthop': '10\.99\.0\.1'.*, the nexthop is not connected with router/);
    await os('router', 'add', 'route', '--route', 'destination=192.168.78.0/24,gateway=10.60.0.253', 'r1');
    assert.equal((await json<Router>('router', 'show', 'r1')).routes.length, 2);
    await os('router', 'remove', 'route', '--route', 'destination=192.168.78.0/24,gateway=10.60.0.253', 'r1');
    assert.match(await fails('router', 'remove', 'subnet', 'r1', 'l3sub'), /cannot be deleted, as it is required by one or more routes/);
    await os('router', 'unset', '--route', 'destination=192.168.77.0/24,gateway=10.60.0.254', 'r1');
    assert.deepEqual((await json<Router>('router', 'show', 'r1')).routes, []);

    await os('router', 'remove', 'subnet', 'r1', 'l3sub');
    assert.deepEqual((await json<Router>('router', 'show', 'r1')).interfaces_info, []);
    assert.deepEqual((await json<Row[]>('port', 'list', '--router', 'r1', '--long')).map((p) => p['Device Owner']), ['network:router_gateway']);

    // Bad gateways, with the messages the CLI prints.
    assert.match(await fails('router', 'set', '--external-gateway', 'l3net', 'r1'), new RegExp(`Bad router request: Network ${net} is not an external network\\.`));
    // SNAT off is an admin's call (the CLI runs as admin here; a member is refused below).
    await os('router', 'set', '--external-gateway', 'public', '--disable-snat', 'r1');
    assert.equal((await json<Router>('router', 'show', 'r1')).external_gateway_info!.enable_snat, false);
    const mine = await openstack(other.env, 'router', 'create', 'theirs', '-f', 'json') as Router;
    assert.match(await openstackFails(other.env, 'router', 'set', '--external-gateway', 'public', '--disable-snat', 'theirs'),
      /\(rule:update_router:external_gateway_info:enable_snat\) is disallowed by policy/);
    await openstack(other.env, 'router', 'set', '--external-gateway', 'public', 'theirs');
    assert.equal((await openstack(other.env, 'router', 'show', 'theirs', '-f', 'json') as Router).external_gateway_info!.network_id, pub,
      "a member uses the shared external network for its router's gateway");
    await openstack(other.env, 'router', 'delete', mine.id);

    await os('router', 'unset', '--external-gateway', 'r1');
    assert.equal((await json<Router>('router', 'show', 'r1')).external_gateway_info, null);
    await os('router', 'delete', 'r1');
    assert.match(await fails('router', 'show', 'r1'), /No Router found for r1/);
  });

  test('floating ip create public, set --port, unset --port, list filters, delete; bad requests; other projects', async () => {
    await os('router', 'create', 'r2');
    await os('router', 'set', '--external-gateway', 'public', 'r2');
    await os('router', 'add', 'subnet', 'r2', 'l3sub');
    const p1 = await json<{ id: string; fixed_ips: { ip_address: string }[] }>('port', 'create', '--network', 'l3net', 'p1');

    const fip = await json<Fip>('floating', 'ip', 'create', 'public');
    assert.match(fip.floating_ip_address, /^172\.24\.4\.\d+$/);
    assert.equal(fip.floating_network_id, pub);
    assert.equal(fip.status, 'DOWN');
    assert.equal(fip.port_id, null);

    await os('floating', 'ip', 'set', '--port', 'p1', fip.floating_ip_address);
    let shown = await json<Fip>('floating', 'ip', 'show', fip.id);
    assert.equal(shown.port_id, p1.id);
    assert.equal(shown.fixed_ip_address, p1.fixed_ips[0]!.ip_address);
    assert.equal(shown.status, 'ACTIVE');
    assert.equal(shown.router_id, (await json<{ id: string }>('router', 'show', 'r2')).id);
    assert.ok(shown.port_details!.includes(`network_id='${net}'`), shown.port_details!);
    const byPort = await json<Row[]>('floating', 'ip', 'list', '--port', 'p1');
    assert.deepEqual(byPort.map((x) => x.ID), [fip.id]);
    assert.deepEqual((await json<Row[]>('floating', 'ip', 'list', '--status', 'ACTIVE')).map((x) => x.ID), [fip.id]);
    assert.deepEqual((await json<Row[]>('floating', 'ip', 'list', '--router', 'r2')).map((x) => x.ID), [fip.id]);

    // One floating IP per fixed address; the second one is refused with Neutron's message.
    const fip2 = await json<Fip>('floating', 'ip', 'create', 'public');
    assert.match(await fails('floating', 'ip', 'set', '--port', 'p1', fip2.id),
      /Cannot associate floating IP 172\.24\.4\.\d+ \(\S+\) with port \S+ using fixed IP 10\.60\.0\.\d+, as that fixed IP already has a floating IP on external network/);
    // The interface and the gateway it needs stay.
    assert.match(await fails('router', 'remove', 'subnet', 'r2', 'l3sub'), /cannot be deleted, as it is required by one or more floating IPs/);
    assert.match(await fails('router', 'unset', '--external-gateway', 'r2'), /Gateway cannot be updated for router \S+, since a gateway to external network \S+ is required by one or more floating IPs/);

    await os('floating', 'ip', 'unset', '--port', fip.floating_ip_address);
    shown = await json<Fip>('floating', 'ip', 'show', fip.id);
    assert.equal(shown.port_id, null);
    assert.equal(shown.fixed_ip_address, null);
    assert.equal(shown.status, 'DOWN');

    // Created associated, then the port goes away: the floating IP stays, unassociated.
    const fip3 = await json<Fip>('floating', 'ip', 'create', '--port', 'p1', 'public');
    assert.equal(fip3.port_id, p1.id);
    await os('port', 'delete', 'p1');
    assert.equal((await json<Fip>('floating', 'ip', 'show', fip3.id)).port_id, null);

    // No router between the port's subnet and public: 404 with Neutron's wording.
    await os('network', 'create', 'isolated');
    const isoSub = (await json<{ id: string }>('subnet', 'create', '--network', 'isolated', '--subnet-range', '10.61.0.0/24', 'isosub')).id;
    const p2 = await json<{ id: string }>('port', 'create', '--network', 'isolated', 'p2');
    const msg = await fails('floating', 'ip', 'set', '--port', 'p2', fip.id);
    assert.ok(msg.includes(`External network ${pub} is not reachable from subnet ${isoSub}.  Therefore, cannot associate Port ${p2.id} with a Floating IP.`), msg);
    assert.match(await fails('floating', 'ip', 'create', 'l3net'), new RegExp(`Bad floatingip request: Network ${net} is not a valid external network\\.`));

    // Another project sees none of it.
    const oenv = other.env;
    assert.deepEqual(await openstack(oenv, 'floating', 'ip', 'list', '-f', 'json'), []);
    assert.match(await openstackFails(oenv, 'floating', 'ip', 'show', fip.id), /Floating IP .* could not be found|No FloatingIP found/i);
    assert.match(await openstackFails(oenv, 'router', 'show', 'r2'), /No Router found for r2/);
    assert.match(await openstackFails(oenv, 'floating', 'ip', 'delete', fip.id), /Failed to delete|could not be found|No FloatingIP found/i);

    for (const id of [fip.id, fip2.id, fip3.id]) await os('floating', 'ip', 'delete', id);
    assert.deepEqual(await json<Row[]>('floating', 'ip', 'list'), []);
    await os('port', 'delete', 'p2');
    await os('network', 'delete', 'isolated');
    await os('router', 'remove', 'subnet', 'r2', 'l3sub');
    await os('router', 'delete', 'r2');
  });

  test('server add floating ip: a guest reached from this machine by SSH at its floating IP; server remove floating ip', { timeout: 400_000 }, async () => {
    const t = computeTools(cloud);
    const key = join(cloud.dir, 'l3key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    await os('keypair', 'create', '--public-key', `${key}.pub`, 'l3k');
    // Every all-in-one cloud on this machine shares br-ex and 172.24.4.0/24, and each hands
    // out the lowest pool addresses first; another cloud running its tests at the same time
    // would answer ARP for them too. Addresses from the top of the pool (an admin may choose
    // them) keep this test's router and floating IP apart from theirs.
    const top = 150 + Math.floor(Math.random() * 50) * 2;
    await os('router', 'create', 'r3');
    await os('router', 'set', '--external-gateway', 'public', '--fixed-ip', `subnet=${pubSub},ip-address=172.24.4.${top}`, 'r3');
    await os('router', 'add', 'subnet', 'r3', 'l3sub');
    const sg = await json<{ id: string }>('security', 'group', 'create', 'l3-ssh');
    await os('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', '--remote-ip', '0.0.0.0/0', sg.id);
    const s = await json<{ id: string }>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.nano', '--key-name', 'l3k',
      '--network', 'l3net', '--security-group', 'l3-ssh', 'l3vm');
    try {
      await t.waitStatus(s.id, 'ACTIVE', 180_000);
      await t.consoleMatch(s.id, /GUREUM-GUEST-READY/, 180_000);
      // The agent reported what it plugged: the guest's port, the router's interface and gateway are ACTIVE.
      const vmPort = (await json<{ ID: string }[]>('port', 'list', '--server', s.id))[0]!.ID;
      await until('the guest port ACTIVE', async () => ((await json<{ status: string }>('port', 'show', vmPort)).status === 'ACTIVE' ? true : undefined), 30_000, 500);
      await until('the router ports ACTIVE', async () => {
        const rp = await json<{ Status: string }[]>('port', 'list', '--router', 'r3');
        return rp.length === 2 && rp.every((p) => p.Status === 'ACTIVE') ? true : undefined;
      }, 30_000, 500);
      const fip = await json<Fip>('floating', 'ip', 'create', '--floating-ip-address', `172.24.4.${top + 1}`, 'public');
      await os('server', 'add', 'floating', 'ip', 'l3vm', fip.floating_ip_address);
      const assoc = await json<Fip>('floating', 'ip', 'show', fip.id);
      assert.equal(assoc.status, 'ACTIVE');
      assert.ok(assoc.port_details!.includes(`device_id='${s.id}'`), assoc.port_details!);
      // Nova's view follows (the network info cache is refreshed on the change).
      await until('the floating IP in the server addresses', async () => {
        const addrs = (await t.server(s.id)).addresses as Record<string, string[]>;
        return (addrs.l3net ?? []).includes(fip.floating_ip_address) ? true : undefined;
      }, 30_000, 500);
      const out = await until('SSH to the floating IP', async () => {
        try {
          const { stdout } = await run('ssh', ['-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
            '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR', `root@${fip.floating_ip_address}`, 'hostname'], { timeout: 20_000 });
          return stdout;
        } catch { return undefined; }
      }, 120_000, 2000);
      assert.equal(out.trim(), 'l3vm');
      await os('server', 'remove', 'floating', 'ip', 'l3vm', fip.floating_ip_address);
      assert.equal((await json<Fip>('floating', 'ip', 'show', fip.id)).port_id, null);
      await until('the floating IP gone from the server addresses', async () => {
        const addrs = (await t.server(s.id)).addresses as Record<string, string[]>;
        return (addrs.l3net ?? []).includes(fip.floating_ip_address) ? undefined : true;
      }, 30_000, 500);
      await os('floating', 'ip', 'delete', fip.id);
      // A stopped guest lets go of its tap: the agent reports the port DOWN.
      await os('server', 'stop', s.id);
      await t.waitStatus(s.id, 'SHUTOFF', 120_000);
      await until('the guest port DOWN', async () => ((await json<{ status: string }>('port', 'show', vmPort)).status === 'DOWN' ? true : undefined), 30_000, 500);
    } finally {
      await os('server', 'delete', '--wait', s.id).catch(() => undefined);
      await os('router', 'remove', 'subnet', 'r3', 'l3sub').catch(() => undefined);
      await os('router', 'delete', 'r3').catch(() => undefined);
    }
  });
});
