/**
 * Tenant networking with real guests, through the stock openstack CLI: VMs on a Neutron
 * network get their port's address, MTU and routes by DHCP, reach the metadata service
 * at 169.254.169.254 through the network's proxy, and talk to each other; security groups
 * decide what reaches them (a group without an ICMP rule drops ping, adding the rule lets
 * it through); a guest cannot send from an address that is not its own; another project's
 * network is out of reach until an admin puts both subnets on one router. The vantage
 * point for SSH is the network's DHCP namespace (the operator's
 * `ip netns exec qdhcp-<network> ssh ...`), until floating IPs are used.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openstack, startCloud, type Cloud } from './helpers/cloud.ts';
import { computeTools, guestSsh, until } from './helpers/compute.ts';

const run = promisify(execFile);
let cloud: Cloud;
let t: ReturnType<typeof computeTools>;
let key: string;
let netId: string;
const vms: { id: string; ip: string }[] = [];
let other: { id: string; ip: string } | undefined;

const READY = /GUREUM-GUEST-READY (\S+) (\S+)/;

/** A command in a guest over SSH from the network's DHCP namespace. */
const inGuest = (ip: string, cmd: string) => guestSsh(key, ip, cmd, { ns: `qdhcp-${netId}` });
/** The guest's ready line on its console; on a timeout the error carries the console. */
async function ready(tools: ReturnType<typeof computeTools>, id: string): Promise<string> {
  return tools.consoleMatch(id, READY, 180_000).catch(async (e: Error) => {
    throw new Error(`${e.message}\n${String(await t.os('console', 'log', 'show', id).catch((x: Error) => x.message))}`);
  });
}
const pings = async (from: string, to: string, extra = '') => (await inGuest(from, `ping -c 1 -W 2 ${extra} ${to}`)).ok;

before(async () => {
  cloud = await startCloud();
  t = computeTools(cloud);
  key = join(cloud.dir, 'key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await t.os('keypair', 'create', '--public-key', `${key}.pub`, 'k1');
});
after(async () => {
  // Leave nothing on the host: servers first (their ports go with them), then the networks.
  for (const v of vms) await t.os('server', 'delete', '--wait', v.id).catch(() => undefined);
  for (const sub of ['sub1', 'sub2']) await t.os('router', 'remove', 'subnet', 'r12', sub).catch(() => undefined);
  await t.os('router', 'delete', 'r12').catch(() => undefined);
  await t.os('network', 'delete', 'net1').catch(() => undefined);
  await t.os('network', 'delete', 'net2').catch(() => undefined);
  await cloud?.stop();
});

test('two servers on a tenant network: DHCP gives each its port address, MTU and the metadata route; metadata and SSH keys work; they ping each other', { timeout: 300_000 }, async () => {
  const net = await t.json<{ id: string; mtu: number; 'provider:network_type': string }>('network', 'create', 'net1');
  netId = net.id;
  assert.equal(net['provider:network_type'], 'vxlan');
  assert.equal(net.mtu, 1450);
  await t.os('subnet', 'create', '--network', 'net1', '--subnet-range', '10.50.0.0/24', '--dns-nameserver', '10.50.0.254', 'sub1');
  const sg = await t.json<{ id: string }>('security', 'group', 'create', 'ssh-only');
  await t.os('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', '--remote-ip', '0.0.0.0/0', sg.id);
  for (const name of ['gvm1', 'gvm2']) {
    const s = await t.json<{ id: string }>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.nano', '--key-name', 'k1',
      '--network', 'net1', '--security-group', 'ssh-only', name);
    vms.push({ id: s.id, ip: '' });
  }
  for (const v of vms) {
    const s = await t.waitStatus(v.id, 'ACTIVE', 120_000);
    const addrs = s.addresses as Record<string, string[]>;
    v.ip = addrs.net1![0]!;
    assert.match(v.ip, /^10\.50\.0\.\d+$/);
    const ports = await t.json<{ 'Fixed IP Addresses': { ip_address: string }[]; Status: string }[]>('port', 'list', '--server', v.id);
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!['Fixed IP Addresses'][0]!.ip_address, v.ip);
    // The guest prints its hostname (from the metadata service) and the address DHCP gave it.
    const out = await ready(t, v.id);
    const m = READY.exec(out)!;
    assert.equal(m[2], `${v.ip}/24`);
    assert.equal(m[1], v === vms[0] ? 'gvm1' : 'gvm2');
  }
  const [a, b] = vms as [{ id: string; ip: string }, { id: string; ip: string }];
  const inside = await until('SSH into gvm1', async () => { const r = await inGuest(a.ip, 'ip -o link show eth0; ip route; cat /etc/resolv.conf'); return r.ok ? r.out : undefined; }, 60_000);
  assert.match(inside, /mtu 1450/);
  assert.match(inside, /default via 10\.50\.0\.1/);
  assert.match(inside, /169\.254\.169\.254 via 10\.50\.0\.\d+/);
  assert.match(inside, /nameserver 10\.50\.0\.254/);
  const meta = await inGuest(a.ip, 'wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json');
  assert.ok(meta.ok, meta.out);
  assert.equal((JSON.parse(meta.out) as { uuid: string }).uuid, a.id, 'the metadata service answers for the asking instance');
  const ec2 = await inGuest(a.ip, 'wget -q -O - http://169.254.169.254/latest/meta-data/local-ipv4');
  assert.equal(ec2.out.trim(), a.ip);
  // Only the ssh-only group: ICMP is not allowed in, so gvm2 does not answer gvm1's ping.
  assert.equal(await pings(a.ip, b.ip), false, 'ping dropped without an ICMP rule');
});

test('adding an ICMP rule lets ping through; deleting it stops it again', { timeout: 120_000 }, async () => {
  const [a, b] = vms as [{ id: string; ip: string }, { id: string; ip: string }];
  const rule = await t.json<{ id: string }>('security', 'group', 'rule', 'create', '--protocol', 'icmp', 'ssh-only');
  await until('ping after the ICMP rule', async () => pings(a.ip, b.ip), 30_000, 200);
  await t.os('security', 'group', 'rule', 'delete', rule.id);
  await until('ping dropped again', async () => !(await pings(a.ip, b.ip)), 30_000, 200);
  await t.os('security', 'group', 'rule', 'create', '--protocol', 'icmp', 'ssh-only');
  await until('ping allowed again', async () => pings(a.ip, b.ip), 30_000, 200);
});

test('a guest cannot send from an address that is not its port\'s (anti-spoofing)', { timeout: 120_000 }, async () => {
  const [a, b] = vms as [{ id: string; ip: string }, { id: string; ip: string }];
  // The SSH session itself may drop under load; what counts is the ping's own exit status, so retry until it reports one.
  const out = await until('the spoofed ping to report', async () => {
    const r = await inGuest(a.ip, `ip addr replace 10.50.0.200/24 dev eth0; ping -c 2 -W 2 -I 10.50.0.200 ${b.ip} >/dev/null 2>&1; echo rc=$?`);
    return /rc=\d/.test(r.out) ? r.out : undefined;
  }, 60_000, 1000);
  assert.match(out, /rc=1/, `a spoofed source gets no answer: ${out}`);
  assert.ok(await pings(a.ip, b.ip), 'its own address still works');
  await inGuest(a.ip, 'ip addr del 10.50.0.200/24 dev eth0');
});

test('another project\'s network is not reachable', { timeout: 240_000 }, async () => {
  await t.os('project', 'create', 'netp2');
  await t.os('user', 'create', '--password', 'p2-secret', '--project', 'netp2', 'netu2');
  await t.os('role', 'add', '--project', 'netp2', '--user', 'netu2', 'member');
  const env = { ...cloud.env, OS_USERNAME: 'netu2', OS_PASSWORD: 'p2-secret', OS_PROJECT_NAME: 'netp2' };
  const os2 = (...args: string[]) => openstack(env, ...args);
  await os2('network', 'create', 'net2');
  await os2('subnet', 'create', '--network', 'net2', '--subnet-range', '10.60.0.0/24', 'sub2');
  // The other project does not see net1 at all.
  assert.doesNotMatch(String(await os2('network', 'list')), /net1/);
  await os2('security', 'group', 'rule', 'create', '--protocol', 'icmp', 'default');
  await os2('keypair', 'create', '--public-key', `${key}.pub`, 'k2');
  const s = (await os2('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.nano', '--key-name', 'k2', '--network', 'net2', 'p2vm', '-f', 'json')) as { id: string };
  vms.push({ id: s.id, ip: '' });
  const t2 = computeTools(cloud, env);
  const shown = await t2.waitStatus(s.id, 'ACTIVE', 120_000);
  const ip = (shown.addresses as Record<string, string[]>).net2![0]!;
  await ready(t2, s.id);
  const [a] = vms as [{ id: string; ip: string }];
  assert.equal(await pings(a.ip, ip), false, 'no path from net1 to net2');
  // An admin sees every project's ports.
  const ports = await t.json<{ ID: string }[]>('port', 'list', '--network', 'net2');
  assert.ok(ports.length >= 1, 'admin sees the other project\'s ports');
  other = { id: s.id, ip };
});

test('after an admin adds both subnets to one router, the two networks reach each other', { timeout: 120_000 }, async () => {
  const [a] = vms as [{ id: string; ip: string }];
  assert.ok(other, 'the other project\'s server is up');
  await t.os('router', 'create', 'r12');
  await t.os('router', 'add', 'subnet', 'r12', 'sub1');
  const sub2 = await t.json<{ id: string }>('subnet', 'show', 'sub2');
  await t.os('router', 'add', 'subnet', 'r12', sub2.id);
  const ifaces = await t.json<{ 'Fixed IP Addresses': { ip_address: string }[] }[]>('port', 'list', '--router', 'r12');
  assert.deepEqual(ifaces.map((p) => p['Fixed IP Addresses'][0]!.ip_address).sort(), ['10.50.0.1', '10.60.0.1']);
  // Routed through the router's namespace: each guest's default gateway is its subnet's interface.
  await until('ping from net1 to net2 through the router', async () => pings(a.ip, other!.ip), 60_000, 500);
  // Taking net2 off the router cuts the path again.
  await t.os('router', 'remove', 'subnet', 'r12', sub2.id);
  await until('net2 out of reach again', async () => !(await pings(a.ip, other!.ip)), 30_000, 500);
});
