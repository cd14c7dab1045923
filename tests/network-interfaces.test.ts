/**
 * Interface attach and detach (Nova's os-interface) with a real guest, through the stock
 * openstack CLI: `server add port` hot-plugs a NIC for a port on a second network — the
 * guest brings it up with DHCP and reaches that network's DHCP server; `server remove
 * port` unplugs it and leaves the port unbound; `server add/remove network` makes and
 * deletes a port; `server add/remove fixed ip`; a stopped server takes an attach into its
 * saved spec and boots with the NIC (both NICs get DHCP); a guest that reboots itself after
 * a hotplug comes back in a fresh QEMU with its NICs, still ACTIVE; refused requests (port in use, another project's
 * port, unknown or malformed ids) change nothing. One guest serves every step (TCG
 * guests are slow); SSH reaches it from its first network's DHCP namespace.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { api, openstackFails, otherProject, startCloud, type Cloud } from './helpers/cloud.ts';
import { computeTools, guestSsh, until } from './helpers/compute.ts';

const run = promisify(execFile);
let cloud: Cloud;
let t: ReturnType<typeof computeTools>;
let key: string;
let token: string;
const ids: { netA?: string; netB?: string; vm?: string; ipA?: string } = {};
type Port = { id: string; mac_address: string; device_id: string; device_owner: string; binding_host_id?: string; 'binding:host_id'?: string; fixed_ips: { ip_address: string; subnet_id: string }[]; network_id: string };
type Attachment = { port_id: string; net_id: string; mac_addr: string; port_state: string; fixed_ips: { ip_address: string }[]; tag?: string | null };

const inGuest = (cmd: string) => guestSsh(key, ids.ipA ?? '', cmd, { ns: `qdhcp-${ids.netA}` });
/** The guest's addresses per MAC ("mac ip/len" lines from ip -o). */
async function guestNics(): Promise<Map<string, string[]>> {
  const r = await inGuest('for d in /sys/class/net/eth*; do n=${d##*/}; echo "$(cat $d/address) $(ip -4 -o addr show $n | awk \'{print $4}\' | tr \'\\n\' \' \')"; done');
  if (!r.ok) throw new Error(`ssh: ${r.out}`);
  return new Map(r.out.trim().split('\n').map((l) => { const [mac, ...ips] = l.trim().split(/\s+/); return [mac!, ips.filter(Boolean)]; }));
}
const port = (id: string) => t.json<Port>('port', 'show', id);
const interfaces = async (v = '2.70') => (await api(cloud, 'GET', `/compute/v2.1/servers/${ids.vm}/os-interface`, { token, headers: { 'OpenStack-API-Version': `compute ${v}` } })).json.interfaceAttachments as Attachment[];
const dhcpIp = async (net: string) => (await t.json<{ 'Fixed IP Addresses': { ip_address: string }[] }[]>('port', 'list', '--network', net, '--device-owner', 'network:dhcp'))[0]!['Fixed IP Addresses'][0]!.ip_address;

before(async () => {
  cloud = await startCloud();
  t = computeTools(cloud);
  key = join(cloud.dir, 'key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await t.os('keypair', 'create', '--public-key', `${key}.pub`, 'k1');
  token = String(await t.os('token', 'issue', '-f', 'value', '-c', 'id')).trim();
  ids.netA = (await t.json<{ id: string }>('network', 'create', 'ifnet-a')).id;
  await t.os('subnet', 'create', '--network', 'ifnet-a', '--subnet-range', '10.81.0.0/24', 'ifsub-a');
  ids.netB = (await t.json<{ id: string }>('network', 'create', 'ifnet-b')).id;
  await t.os('subnet', 'create', '--network', 'ifnet-b', '--subnet-range', '10.82.0.0/24', 'ifsub-b');
  await t.os('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', 'default');
  await t.os('security', 'group', 'rule', 'create', '--protocol', 'icmp', 'default');
  const s = await t.json<{ id: string }>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.tiny', '--key-name', 'k1', '--network', 'ifnet-a', 'ifvm');
  ids.vm = s.id;
  const active = await t.waitStatus(s.id, 'ACTIVE', 180_000);
  ids.ipA = /ifnet-a=([\d.]+)/.exec(JSON.stringify(active.addresses).replace(/[{}"[\]]/g, '').replace(/:/g, '='))?.[1]
    ?? (await t.json<Port[]>('port', 'list', '--server', s.id))[0]!.fixed_ips[0]!.ip_address;
  await t.consoleMatch(s.id, /GUREUM-GUEST-READY/, 180_000);
  await until('SSH to the guest', async () => (await inGuest('true')).ok, 120_000, 1000);
});

after(async () => {
  if (ids.vm) await t.os('server', 'delete', '--wait', ids.vm).catch(() => undefined);
  for (const p of ['if-pb', 'if-other']) await t.os('port', 'delete', p).catch(() => undefined);
  for (const n of ['ifnet-a', 'ifnet-b']) await t.os('network', 'delete', n).catch(() => undefined);
  await cloud?.stop();
});

test('server add port: the port is bound, the guest gets a NIC with its address by DHCP and reaches network B', { timeout: 300_000 }, async () => {
  const pb = await t.json<Port>('port', 'create', '--network', 'ifnet-b', 'if-pb');
  const t0 = Date.now();
  await t.os('server', 'add', 'port', 'ifvm', 'if-pb');
  console.log(`server add port answered after ${Date.now() - t0} ms`);
  const bound = await port(pb.id);
  assert.equal(bound.device_id, ids.vm);
  assert.match(bound.device_owner, /^compute:/);
  assert.ok(bound.binding_host_id ?? bound['binding:host_id'], 'bound to the server\'s host');
  const list = await interfaces();
  assert.deepEqual(list.map((a) => a.port_id).sort(), [...new Set([...list.map((a) => a.port_id), pb.id])].sort());
  assert.equal(list.find((a) => a.port_id === pb.id)!.net_id, ids.netB);
  const shown = await t.server(ids.vm!);
  assert.match(JSON.stringify(shown.addresses), new RegExp(pb.fixed_ips[0]!.ip_address.replace(/\./g, '\\.')));
  const ipB = pb.fixed_ips[0]!.ip_address;
  await until('the guest to get B\'s address on the new NIC', async () => (await guestNics()).get(pb.mac_address)?.some((a) => a.startsWith(`${ipB}/`)), 90_000, 1000);
  console.log(`guest has ${ipB} on the hot-plugged NIC ${Date.now() - t0} ms after the request`);
  const dhcpB = await dhcpIp('ifnet-b');
  await until(`a ping from the guest to B's DHCP server ${dhcpB}`, async () => (await inGuest(`ping -c 1 -W 2 ${dhcpB}`)).ok, 30_000, 1000);
  const actions = await t.json<{ Action: string }[]>('server', 'event', 'list', 'ifvm');
  assert.ok(actions.some((a) => a.Action === 'attach_interface'));
});

test('refused attaches change nothing: port in use, another project\'s port, unknown or malformed ids, both net and port', { timeout: 120_000 }, async () => {
  const before = (await interfaces()).map((a) => a.port_id).sort();
  const pb = await port('if-pb');
  const post = (body: unknown, v = '2.70') => api(cloud, 'POST', `/compute/v2.1/servers/${ids.vm}/os-interface`, { token, body, headers: { 'OpenStack-API-Version': `compute ${v}` } });
  assert.equal((await post({ interfaceAttachment: { port_id: pb.id } })).status, 409, 'port in use');
  assert.match(await openstackFails(cloud.env, 'server', 'add', 'port', 'ifvm', 'if-pb'), /still in use/);
  const other = await otherProject(cloud.env, 'if-other-project');
  const ot = computeTools(cloud, other.env);
  await ot.os('network', 'create', 'if-other-net');
  await ot.os('subnet', 'create', '--network', 'if-other-net', '--subnet-range', '10.83.0.0/24', 'if-other-sub');
  const op = await ot.json<Port>('port', 'create', '--network', 'if-other-net', 'if-other');
  const r = await post({ interfaceAttachment: { port_id: op.id } });
  assert.equal(r.status, 400, `another project's port: ${r.text}`);
  assert.match(r.text, /not usable/);
  // The other project does not see our server at all.
  const otherToken = String(await ot.os('token', 'issue', '-f', 'value', '-c', 'id')).trim();
  assert.equal((await api(cloud, 'POST', `/compute/v2.1/servers/${ids.vm}/os-interface`, { token: otherToken, body: { interfaceAttachment: { port_id: op.id } } })).status, 404);
  assert.equal((await post({ interfaceAttachment: { port_id: '00000000-0000-4000-8000-000000000000' } })).status, 404, 'unknown port');
  assert.equal((await post({ interfaceAttachment: { net_id: '00000000-0000-4000-8000-000000000000' } })).status, 404, 'unknown network');
  assert.equal((await post({ interfaceAttachment: { port_id: 'not-a-uuid' } })).status, 400, 'malformed port id');
  assert.equal((await post({ interfaceAttachment: { port_id: op.id, net_id: ids.netB } })).status, 400, 'both');
  assert.equal((await post({ interfaceAttachment: { fixed_ips: [{ ip_address: '10.82.0.77' }] } })).status, 400, 'fixed IP without a network');
  assert.equal((await post({ interfaceAttachment: { net_id: ids.netB, tag: 'x' } }, '2.48')).status, 400, 'tag before 2.49');
  assert.equal((await api(cloud, 'POST', '/compute/v2.1/servers/00000000-0000-4000-8000-000000000000/os-interface', { token, body: { interfaceAttachment: { net_id: ids.netB } } })).status, 404);
  assert.equal((await api(cloud, 'DELETE', `/compute/v2.1/servers/${ids.vm}/os-interface/${op.id}`, { token })).status, 404, 'detach a port it does not have');
  assert.equal((await api(cloud, 'GET', `/compute/v2.1/servers/${ids.vm}/os-interface/${op.id}`, { token })).status, 404);
  assert.deepEqual((await interfaces()).map((a) => a.port_id).sort(), before);
  const still = await port(op.id);
  assert.equal(still.device_id, '');
  await ot.os('port', 'delete', 'if-other');
  await ot.os('network', 'delete', 'if-other-net');
});

test('server remove port: the NIC leaves the guest, the port stays, unbound', { timeout: 180_000 }, async () => {
  const pb = await port('if-pb');
  const t0 = Date.now();
  await t.os('server', 'remove', 'port', 'ifvm', 'if-pb');
  await until('the port to be unbound', async () => { const p = await port(pb.id); return p.device_id === '' && !(p.binding_host_id ?? p['binding:host_id']) ? p : undefined; }, 120_000, 500);
  console.log(`port unbound ${Date.now() - t0} ms after server remove port`);
  assert.ok(!(await guestNics()).has(pb.mac_address), 'the NIC is gone from the guest');
  assert.ok(!(await interfaces()).some((a) => a.port_id === pb.id));
  assert.ok(!JSON.stringify((await t.server(ids.vm!)).addresses).includes('ifnet-b'));
  const actions = await t.json<{ Action: string }[]>('server', 'event', 'list', 'ifvm');
  assert.ok(actions.some((a) => a.Action === 'detach_interface'));
});

test('server add network / remove network: a port made for the server, deleted again', { timeout: 240_000 }, async () => {
  await t.os('--os-compute-api-version', '2.49', 'server', 'add', 'network', '--tag', 'nb', 'ifvm', 'ifnet-b');
  const att = (await interfaces()).find((a) => a.net_id === ids.netB);
  assert.ok(att, 'an interface on network B');
  assert.equal(att.tag, 'nb');
  assert.equal((await interfaces('2.69')).find((a) => a.net_id === ids.netB)!.tag, undefined, 'no tag before 2.70');
  await until('the guest to get the new address', async () => (await guestNics()).get(att.mac_addr)?.some((a) => a.startsWith(`${att.fixed_ips[0]!.ip_address}/`)), 90_000, 1000);
  await t.os('server', 'remove', 'network', 'ifvm', 'ifnet-b');
  await until('the port to be deleted', async () => (await api(cloud, 'GET', `/networking/v2.0/ports/${att.port_id}`, { token })).status === 404, 120_000, 500);
  assert.ok(!(await guestNics()).has(att.mac_addr));
});

test('server add fixed ip / remove fixed ip', { timeout: 180_000 }, async () => {
  const before = (await interfaces()).flatMap((a) => a.fixed_ips.map((f) => f.ip_address));
  await t.os('server', 'add', 'fixed', 'ip', '--fixed-ip-address', '10.82.0.99', 'ifvm', 'ifnet-b');
  const added = await until('the fixed IP on the server', async () => {
    const s = await t.server(ids.vm!);
    return JSON.stringify(s.addresses).includes('10.82.0.99') ? s : undefined;
  }, 60_000, 500);
  assert.ok(added);
  // OSC 6.0 sends os-interface {net_id, fixed_ips} (openstacksdk's compute proxy has no
  // default microversion, so "supports 2.44" holds): a new port on B with that address.
  const viaInterface = (await interfaces()).find((a) => a.net_id === ids.netB);
  assert.deepEqual(viaInterface?.fixed_ips.map((f) => f.ip_address), ['10.82.0.99'], 'server add fixed ip made an interface on B');
  assert.ok((await t.json<{ Action: string }[]>('server', 'event', 'list', 'ifvm')).some((a) => a.Action === 'attach_interface'));
  // The installed CLI cannot send removeFixedIp: OSC 6.0 calls novaclient's
  // Server.remove_fixed_ip, which novaclient 18 no longer has (it fails before any request).
  assert.match(await openstackFails(cloud.env, 'server', 'remove', 'fixed', 'ip', 'ifvm', '10.82.0.99'), /^remove_fixed_ip$/m);
  assert.ok((await interfaces()).some((a) => a.fixed_ips.some((f) => f.ip_address === '10.82.0.99')), 'the failed CLI call changed nothing');
  // The action itself (until 2.43), as openstacksdk's remove_fixed_ip_from_server sends it:
  const gone = await api(cloud, 'POST', `/compute/v2.1/servers/${ids.vm}/action`, { token, body: { removeFixedIp: { address: '10.82.0.99' } } });
  assert.equal(gone.status, 202, gone.text);
  assert.equal((await api(cloud, 'POST', `/compute/v2.1/servers/${ids.vm}/action`, { token, body: { removeFixedIp: { address: '10.99.0.1' } } })).status, 400, 'an address the server does not have');
  assert.equal((await api(cloud, 'POST', `/compute/v2.1/servers/${ids.vm}/action`, { token, body: { removeFixedIp: { address: '10.82.0.99' } },
    headers: { 'OpenStack-API-Version': 'compute 2.44' } })).status, 404, 'no such action from 2.44');
  await until('the fixed IP to be gone', async () => !JSON.stringify((await t.server(ids.vm!)).addresses).includes('10.82.0.99'), 60_000, 500);
  assert.ok((await t.json<{ Action: string }[]>('server', 'event', 'list', 'ifvm')).some((a) => a.Action === 'remove_fixed_ip'));
  // The server's first address is still there.
  assert.ok((await interfaces()).flatMap((a) => a.fixed_ips.map((f) => f.ip_address)).includes(before[0]!));
  // Detach the interface the CLI made on network B (its port is deleted).
  for (const a of (await interfaces()).filter((x) => x.net_id === ids.netB)) {
    await t.os('server', 'remove', 'port', 'ifvm', a.port_id);
    await until('the extra port gone', async () => !(await interfaces()).some((x) => x.port_id === a.port_id), 120_000, 500);
  }
});

test('a stopped server: attach goes into its spec; it boots with the NIC, DHCPs both and is reachable; detach while stopped', { timeout: 300_000 }, async () => {
  await t.os('server', 'stop', 'ifvm');
  await t.waitStatus(ids.vm!, 'SHUTOFF', 120_000);
  const pb = await port('if-pb');
  await t.os('server', 'add', 'port', 'ifvm', 'if-pb');
  assert.equal((await port(pb.id)).device_id, ids.vm);
  assert.ok((await interfaces()).some((a) => a.port_id === pb.id), 'listed while stopped');
  await t.os('server', 'start', 'ifvm');
  await t.waitStatus(ids.vm!, 'ACTIVE', 120_000);
  const argv = t.qemuArgv(ids.vm!);
  const nicA = argv.findIndex((a) => /^virtio-net-pci,/.test(a) && !a.includes(pb.mac_address));
  const nicB = argv.findIndex((a) => a.includes(`mac=${pb.mac_address}`));
  assert.ok(nicB > 0, 'QEMU started with the attached NIC');
  assert.ok(nicA > 0 && nicA < nicB, 'the first NIC keeps the first slot (the guest\'s eth0)');
  try {
    await until('SSH after start', async () => (await inGuest('true')).ok, 120_000, 1000);
    // A NIC present at boot besides eth0 gets DHCP too (the guest's init once skipped it).
    await until('B\'s address after the restart', async () => (await guestNics()).get(pb.mac_address)?.some((a) => a.startsWith(`${pb.fixed_ips[0]!.ip_address}/`)), 90_000, 1000);
    const routes = await inGuest('ip -4 route show default');
    assert.ok(routes.ok, routes.out);
    assert.match(routes.out, /dev eth0/, 'the default route stays on the first NIC');
  } catch (e) {
    const ns = await run('ip', ['netns', 'list']).then((r) => r.stdout, (err: Error) => err.message);
    const con = String(await t.os('console', 'log', 'show', '--lines', '40', 'ifvm').catch((err: Error) => err.message));
    throw new Error(`${(e as Error).message}\nqdhcp namespaces: ${ns.split('\n').filter((l) => l.includes('qdhcp')).join(', ')}\nconsole:\n${con}`);
  }
  await t.os('server', 'stop', 'ifvm');
  await t.waitStatus(ids.vm!, 'SHUTOFF', 120_000);
  await t.os('server', 'remove', 'port', 'ifvm', 'if-pb');
  await until('the port to be unbound', async () => (await port(pb.id)).device_id === '', 60_000, 500);
  const spec = JSON.parse(String(await run('cat', [join(t.instDir(ids.vm!), 'spec.json')]).then((r) => r.stdout))) as { nics: { mac: string }[] };
  assert.ok(!spec.nics.some((n) => n.mac === pb.mac_address), 'the saved spec lost the NIC');
  await t.os('server', 'start', 'ifvm');
  await t.waitStatus(ids.vm!, 'ACTIVE', 120_000);
  assert.ok(!t.qemuArgv(ids.vm!).some((a) => a.includes(`mac=${pb.mac_address}`)), 'started without it');
  await until('SSH after the second start', async () => (await inGuest('true')).ok, 120_000, 1000);
  assert.ok(!(await guestNics()).has(pb.mac_address));
});

test('the guest reboots itself after a hotplug: a fresh QEMU boots it with both NICs, the server stays ACTIVE', { timeout: 300_000 }, async () => {
  const pb = await port('if-pb');
  await t.os('server', 'add', 'port', 'ifvm', 'if-pb');
  await until('B\'s address on the hot-plugged NIC', async () => (await guestNics()).get(pb.mac_address)?.some((a) => a.startsWith(`${pb.fixed_ips[0]!.ip_address}/`)), 90_000, 1000);
  const pid = t.qemuPid(ids.vm!);
  const boots = async () => String(await t.os('console', 'log', 'show', 'ifvm')).split('GUREUM-GUEST-READY').length - 1;
  const booted = await boots();
  await inGuest('(sleep 0.5; reboot) >/dev/null 2>&1 &');
  const seen = new Set<string>();
  await until('the guest to boot again', async () => {
    seen.add(String((await t.server(ids.vm!)).status));
    return (await boots()) > booted;
  }, 120_000, 500);
  assert.deepEqual([...seen], ['ACTIVE'], 'a reboot is not a power-off');
  assert.notEqual(t.qemuPid(ids.vm!), pid, 'a fresh QEMU');
  await until('SSH after the reboot', async () => (await inGuest('true')).ok, 120_000, 1000);
  await until('B\'s address after the reboot', async () => (await guestNics()).get(pb.mac_address)?.some((a) => a.startsWith(`${pb.fixed_ips[0]!.ip_address}/`)), 90_000, 1000);
  await new Promise((r) => setTimeout(r, 6000)); // a heartbeat (5 s) after the restart
  assert.equal((await t.server(ids.vm!)).status, 'ACTIVE');
  await t.os('server', 'remove', 'port', 'ifvm', 'if-pb');
  await until('the port to be unbound', async () => (await port(pb.id)).device_id === '', 120_000, 500);
});
