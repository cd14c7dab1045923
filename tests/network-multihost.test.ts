/**
 * Multi-host networking on one machine: `gureum up --hosts 2` runs two compute agents, each
 * in its own network namespace ("host") on an underlay bridge. The scheduler sees two
 * hosts; one server forced onto each, on one tenant network, gets its DHCP address (one of
 * them from the other host, through VXLAN) and pings the other across the tunnel; a
 * floating IP makes one reachable by SSH from this machine. Stopping `up` leaves the guests
 * running in their hosts, and the next `up --hosts 2` re-adopts them. `gureum hosts remove`
 * leaves nothing behind. The test's external network has a bridge and subnet of its own, so
 * it never meets another cloud's br-ex.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killGuests, qemuProcesses, startCloud, type Cloud } from './helpers/cloud.ts';
import { computeTools, guestSsh, until } from './helpers/compute.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const skip = process.getuid?.() !== 0 ? 'needs root (namespaces, bridges)' : false;
const READY = /GUREUM-GUEST-READY (\S+) (\S+)/;

interface Vm { name: string; host: string; id: string; ip: string }

describe('gureum up --hosts 2', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gureum-mh-'));
  const data = join(dir, 'data');
  // an external network of the test's own (another cloud on this machine may use 172.24.4.0/24 on br-ex)
  const octet = randomInt(100, 200);
  const extBridge = `gxt-${octet}-${randomInt(0, 0xffff).toString(16)}`;
  const extCidr = `172.31.${octet}.0/24`;
  let cloud: Cloud;
  let t: ReturnType<typeof computeTools>;
  let key: string;
  let id: string;
  let hostNs: [string, string];
  let hostIps: [string, string];
  const hosts = [`${hostname()}-1`, `${hostname()}-2`] as const;
  const vms: Vm[] = [];
  let netId = '';
  let fip = '';

  const start = () => startCloud({ dir, port: cloud?.port, extraArgs: ['--hosts', '2'] });
  const nsList = () => readdirSync('/run/netns');
  /** A command in a guest over SSH from the network's DHCP namespace (on whichever host serves it). */
  async function inGuest(ip: string, cmd: string): Promise<{ ok: boolean; out: string }> {
    const qdhcp = nsList().find((n) => n.startsWith(`gh-${id}-`) && n.endsWith(`qdhcp-${netId}`));
    if (!qdhcp) return { ok: false, out: 'no DHCP namespace' };
    return guestSsh(key, ip, cmd, { ns: qdhcp });
  }

  before(async () => {
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'gureum.yaml'), `external_network:\n  cidr: ${extCidr}\n  bridge: ${extBridge}\n`);
    cloud = await start();
    t = computeTools(cloud);
    const f = JSON.parse(readFileSync(join(data, 'hosts.json'), 'utf8')) as { id: string; subnet: string };
    id = f.id;
    const base = f.subnet.replace(/\.0\/24$/, '');
    hostNs = [`gh-${id}-1`, `gh-${id}-2`];
    hostIps = [`${base}.11`, `${base}.12`];
    key = join(dir, 'key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    await t.os('keypair', 'create', '--public-key', `${key}.pub`, 'mk');
  });

  after(async () => {
    // normally the last test has done all this; here for a test that failed half-way
    if (cloud && cloud.child.exitCode === null && cloud.child.signalCode === null) await cloud.stop();
    killGuests(dir);
    await run(join(ROOT, 'bin/gureum'), ['hosts', 'remove', '--data-dir', data, '--log-level', 'warn']).catch(() => undefined);
    await run('ip', ['link', 'del', extBridge]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the scheduler sees two compute hosts, each with its underlay address', async () => {
    const services = await t.json<{ Binary: string; Host: string; State: string }[]>('compute', 'service', 'list', '--service', 'nova-compute');
    assert.deepEqual(services.map((s) => [s.Host, s.State]).sort(), [[hosts[0], 'up'], [hosts[1], 'up']]);
    const hv = await t.json<{ 'Hypervisor Hostname': string; 'Host IP': string; State: string }[]>('hypervisor', 'list');
    assert.deepEqual(hv.map((h) => [h['Hypervisor Hostname'], h['Host IP'], h.State]).sort(), [[hosts[0], hostIps[0], 'up'], [hosts[1], hostIps[1], 'up']]);
    for (const [i, ns] of hostNs.entries()) {
      const { stdout } = await run('ip', ['-n', ns, '-4', '-br', 'addr', 'show', 'dev', 'eth0']);
      assert.match(stdout, new RegExp(`${hostIps[i]!.replaceAll('.', '\\.')}/24`));
    }
  });

  test('servers forced onto each host get their DHCP address and ping each other over VXLAN', { timeout: 600_000 }, async () => {
    const net = await t.json<{ id: string; 'provider:segmentation_id': number }>('network', 'create', 'mhnet');
    netId = net.id;
    await t.os('subnet', 'create', '--network', 'mhnet', '--subnet-range', '10.71.0.0/24', 'mhsub');
    await t.os('security', 'group', 'create', 'mhsg');
    await t.os('security', 'group', 'rule', 'create', '--protocol', 'icmp', 'mhsg');
    await t.os('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', '--remote-ip', '0.0.0.0/0', 'mhsg');
    for (const [i, host] of hosts.entries()) {
      const s = await t.json<{ id: string }>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.nano', '--key-name', 'mk',
        '--network', 'mhnet', '--security-group', 'mhsg', '--availability-zone', `nova:${host}`, `mhvm${i + 1}`);
      vms.push({ name: `mhvm${i + 1}`, host, id: s.id, ip: '' });
    }
    for (const v of vms) {
      const s = await t.waitStatus(v.id, 'ACTIVE', 300_000);
      assert.equal(s['OS-EXT-SRV-ATTR:host'], v.host, 'placed on the forced host');
      v.ip = (s.addresses as Record<string, string[]>).mhnet![0]!;
      // the guest prints its hostname (metadata, served on its own host) and the address DHCP gave it
      const m = READY.exec(await t.consoleMatch(v.id, READY, 300_000))!;
      assert.deepEqual([m[1], m[2]], [v.name, `${v.ip}/24`]);
    }
    // the DHCP server runs on one host: the other host's guest got its lease through the tunnel
    const dhcpHosts = nsList().filter((n) => n.endsWith(`qdhcp-${netId}`));
    assert.equal(dhcpHosts.length, 1, `one DHCP namespace: ${dhcpHosts.join(' ')}`);
    assert.match(dhcpHosts[0]!, new RegExp(`^gh-${id}-[12]-qdhcp-`));
    const [a, b] = vms as [Vm, Vm];
    await until('SSH into the first guest', async () => (await inGuest(a.ip, 'true')).ok, 120_000, 1000);
    const ab = await until('ping from host 1 to host 2', async () => { const r = await inGuest(a.ip, `ping -c 2 -W 2 ${b.ip}`); return r.ok ? r.out : undefined; }, 60_000, 1000);
    assert.match(ab, /2 packets received/);
    const ba = await until('ping from host 2 to host 1', async () => { const r = await inGuest(b.ip, `ping -c 2 -W 2 ${a.ip}`); return r.ok ? r.out : undefined; }, 60_000, 1000);
    assert.match(ba, /2 packets received/);
    // each host's VXLAN device starts at its own underlay address and floods to the other's
    const vxlan = `vxlan-${net['provider:segmentation_id']}`;
    for (const [i, ns] of hostNs.entries()) {
      const { stdout: link } = await run('ip', ['-n', ns, '-d', 'link', 'show', 'dev', vxlan]);
      assert.match(link, new RegExp(`local ${hostIps[i]!.replaceAll('.', '\\.')} `));
      const fdb = JSON.parse((await run('bridge', ['-n', ns, '-json', 'fdb', 'show', 'dev', vxlan])).stdout) as { mac: string; dst?: string }[];
      assert.ok(fdb.some((e) => e.mac === '00:00:00:00:00:00' && e.dst === hostIps[1 - i]), `${ns}: flood entry to the other host`);
      assert.ok(fdb.some((e) => e.dst === hostIps[1 - i] && e.mac !== '00:00:00:00:00:00'), `${ns}: the other host's guest MAC`);
    }
  });

  test('a floating IP on a guest is reachable by SSH from this machine', { timeout: 240_000 }, async () => {
    const [a, b] = vms as [Vm, Vm];
    await t.os('router', 'create', 'mhr');
    await t.os('router', 'set', '--external-gateway', 'public', 'mhr');
    await t.os('router', 'add', 'subnet', 'mhr', 'mhsub');
    fip = (await t.json<{ floating_ip_address: string }>('floating', 'ip', 'create', 'public')).floating_ip_address;
    assert.match(fip, new RegExp(`^172\\.31\\.${octet}\\.\\d+$`));
    await t.os('server', 'add', 'floating', 'ip', a.id, fip);
    const routerNs = nsList().filter((n) => n.startsWith(`gh-${id}-`) && n.includes('-qrouter-'));
    assert.equal(routerNs.length, 1, 'the router lives on one of the hosts');
    const out = await until(`SSH to ${fip}`, async () => { const r = await guestSsh(key, fip, `hostname; ping -c 1 -W 2 ${b.ip}`); return r.ok ? r.out : undefined; }, 120_000, 1000);
    assert.match(out, new RegExp(`^${a.name}$`, 'm'));
    assert.match(out, /1 packets received/, 'and from there to the guest on the other host');
  });

  test('Ctrl-C leaves the guests running in their hosts; the next up --hosts 2 re-adopts them', { timeout: 400_000 }, async () => {
    const qemuPid = (i: number) => readFileSync(join(data, `agent-${i + 1}`, 'instances', vms[i]!.id, 'qemu.pid'), 'utf8').trim();
    const pids = vms.map((_, i) => qemuPid(i));
    const exited = new Promise((r) => cloud.child.once('exit', r));
    cloud.child.kill('SIGINT');
    await exited;
    for (const v of vms) assert.equal(qemuProcesses(v.id), 1, `${v.name} runs on`);
    cloud = await start();
    t = computeTools(cloud);
    for (const [i, v] of vms.entries()) {
      await t.waitStatus(v.id, 'ACTIVE', 120_000);
      assert.equal(qemuPid(i), pids[i], `${v.name}: the same QEMU`);
    }
    const out = await until(`SSH to ${fip} after the restart`, async () => { const r = await guestSsh(key, fip, `ping -c 1 -W 2 ${vms[1]!.ip}`); return r.ok ? r.out : undefined; }, 120_000, 1000);
    assert.match(out, /1 packets received/);
  });

  test('cleanup: servers and networks deleted, then gureum hosts remove leaves no namespace, device or process', { timeout: 300_000 }, async () => {
    for (const v of vms) await t.os('server', 'delete', '--wait', v.id);
    await t.os('floating', 'ip', 'delete', fip);
    await t.os('router', 'remove', 'subnet', 'mhr', 'mhsub');
    await t.os('router', 'delete', 'mhr');
    await t.os('network', 'delete', 'mhnet');
    for (const v of vms) assert.equal(qemuProcesses(v.id), 0);
    assert.equal(await cloud.stop(), 0);
    const { stdout } = await run(join(ROOT, 'bin/gureum'), ['hosts', 'remove', '--data-dir', data, '--log-level', 'warn']);
    assert.match(stdout, /removed \d+ namespaces/);
    assert.deepEqual(nsList().filter((n) => n.startsWith(`gh-${id}`)), []);
    const links = (JSON.parse((await run('ip', ['-json', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
    assert.deepEqual(links.filter((l) => l.startsWith(`gh-${id}`)), []);
    assert.ok(!existsSync(join(data, 'hosts.json')));
    // nothing of this cloud runs any more (agents, QEMU, dnsmasq, haproxy)
    const left = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir); } catch { return false; }
    });
    assert.deepEqual(left, []);
  });
});
