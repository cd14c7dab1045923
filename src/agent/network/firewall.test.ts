/**
 * The ruleset generator (pure), and that what it generates loads into a real kernel
 * (`nft -c` inside a throw-away namespace).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SecurityGroupState } from '../../bus/network.ts';
import { firewallDelta, firewallTableName, groupSetName, mergePrefixes, protocolNumber, renderFirewall, ruleMatch, type FirewallInput } from './firewall.ts';
import { parseCidr } from './names.ts';
import { canRunNetworkTests, TestNamespaces } from './test-helpers.ts';
import { runIn } from './exec.ts';

const sgWeb: SecurityGroupState = {
  id: 'sg-web', stateful: true, memberIps: ['10.0.0.5', '10.0.0.6', 'fd00::5'],
  rules: [
    { id: 'r1', direction: 'ingress', ethertype: 'IPv4', protocol: '6', portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: '0.0.0.0/0', remoteGroupId: null },
    { id: 'r2', direction: 'ingress', ethertype: 'IPv4', protocol: '1', portRangeMin: 8, portRangeMax: null, remoteIpPrefix: '192.168.7.3/24', remoteGroupId: null },
    { id: 'r3', direction: 'ingress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: 'sg-web' },
    { id: 'r4', direction: 'egress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: null, remoteGroupId: null },
    { id: 'r5', direction: 'egress', ethertype: 'IPv6', protocol: 'icmp', portRangeMin: 128, portRangeMax: 0, remoteIpPrefix: null, remoteGroupId: null },
    { id: 'r6', direction: 'ingress', ethertype: 'IPv4', protocol: 'udp', portRangeMin: 1000, portRangeMax: 2000, remoteIpPrefix: null, remoteGroupId: null },
    { id: 'bad', direction: 'ingress', ethertype: 'IPv4', protocol: '6', portRangeMin: 10, portRangeMax: 5, remoteIpPrefix: null, remoteGroupId: null },
    { id: 'bad2', direction: 'ingress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: 'fd00::/64', remoteGroupId: null },
  ],
};

const input: FirewallInput = {
  bridges: [{ name: 'brqaaaaaaaaaaa', zone: 1 }, { name: 'br-ex' }],
  securityGroups: [sgWeb],
  ports: [
    { device: 'tapaaaaaaaaaaa', index: 1, mac: 'fa:16:3e:00:00:01', ips: ['10.0.0.5', 'fd00::5'], allowedAddressPairs: [{ ipAddress: '10.0.9.0/24', mac: 'fa:16:3e:00:00:99' }], securityGroupIds: ['sg-web'] },
    { device: 'tapbbbbbbbbbbb', index: 65535, mac: 'fa:16:3e:00:00:02', ips: ['10.0.0.6'], allowedAddressPairs: [], securityGroupIds: ['sg-missing'] },
  ],
};

let ns: TestNamespaces | undefined;
const skip = canRunNetworkTests();
before(async () => { if (!skip) ns = await TestNamespaces.create('fw'); });
after(async () => { await ns?.cleanup(); });

test('protocol numbers: names, numbers, icmp on IPv6 means ICMPv6, any', () => {
  assert.equal(protocolNumber('tcp', 'IPv4'), 6);
  assert.equal(protocolNumber('17', 'IPv4'), 17);
  assert.equal(protocolNumber('icmp', 'IPv6'), 58);
  assert.equal(protocolNumber('1', 'IPv6'), 58);
  assert.equal(protocolNumber(null, 'IPv4'), null);
  assert.equal(protocolNumber('any', 'IPv4'), null);
  assert.throws(() => protocolNumber('bogus', 'IPv4'));
  assert.throws(() => protocolNumber('300', 'IPv4'));
});

test('rule matches: ports, ICMP type/code, prefixes normalised, remote groups', () => {
  const known = new Set(['sg-web']);
  assert.equal(ruleMatch(sgWeb.rules[0]!, known), 'meta nfproto ipv4 meta l4proto 6 th dport 22');
  assert.equal(ruleMatch(sgWeb.rules[1]!, known), 'meta nfproto ipv4 ip saddr 192.168.7.0/24 meta l4proto 1 icmp type 8');
  assert.equal(ruleMatch(sgWeb.rules[2]!, known), `meta nfproto ipv4 ip saddr @${groupSetName('sg-web', 4)}`);
  assert.equal(ruleMatch(sgWeb.rules[4]!, known), 'meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 icmpv6 code 0');
  assert.equal(ruleMatch(sgWeb.rules[5]!, known), 'meta nfproto ipv4 meta l4proto 17 th dport 1000-2000');
  assert.throws(() => ruleMatch(sgWeb.rules[6]!, known), /port range/);
  assert.throws(() => ruleMatch(sgWeb.rules[7]!, known), /not IPv4/);
  assert.throws(() => ruleMatch(sgWeb.rules[2]!, new Set()), /not in the state/);
});

test('prefixes inside others are merged away', () => {
  const got = mergePrefixes(['10.0.0.5', '10.0.0.0/24', '10.0.1.1', '10.0.0.0/24'].map((c) => parseCidr('t', c)));
  assert.deepEqual(got.map((c) => `${c.network}/${c.prefixLen}`).sort(), ['10.0.0.0/24', '10.0.1.1/32']);
});

test('each agent state directory (one per cloud) names its own tables, so clouds on one machine keep their rules apart', () => {
  assert.equal(firewallTableName('/run/gureum/net-0123456789ab'), 'gureum_net_0123456789ab');
  const a = renderFirewall({ ...input, table: firewallTableName('/run/gureum/net-a') });
  const b = renderFirewall({ ...input, table: firewallTableName('/run/gureum/net-b') });
  assert.match(a.text, /^table bridge gureum_net_a\ndelete table bridge gureum_net_a\n/);
  assert.doesNotMatch(a.text, /gureum_net_b/);
  assert.match(firewallDelta(a.tables, { ...a, tables: a.tables.map((t) => ({ ...t, chains: new Map([...t.chains].filter(([n]) => !n.includes('tapbbb'))) })) }.tables), /^(flush|delete) chain (bridge|inet) gureum_net_a /m);
  assert.doesNotMatch(b.text, /gureum_net_a/);
});

test('renders anti-spoofing, marks, zones, per-port chains; bad rules become warnings', () => {
  const { text, warnings } = renderFirewall(input);
  assert.match(text, /^table bridge gureum\ndelete table bridge gureum\ntable inet gureum\ndelete table inet gureum\n/);
  assert.match(text, /iifname vmap \{ "tapaaaaaaaaaaa" : jump anti-spoof-tapaaaaaaaaaaa, "tapbbbbbbbbbbb" : jump anti-spoof-tapbbbbbbbbbbb \}/);
  assert.match(text, /chain mark-tapbbbbbbbbbbb \{\n {4}meta mark set meta mark \| 0xffff0000\n/);
  assert.match(text, /ct zone set iifname map \{ "brqaaaaaaaaaaa" : 1 \}/);
  assert.match(text, /iifname != \{ "br-ex", "brqaaaaaaaaaaa" \} accept/);
  assert.match(text, /chain sg-in-sg-web \{\n {4}meta nfproto ipv4 meta l4proto 6 th dport 22 accept\n/);
  assert.match(text, /chain ingress-tapaaaaaaaaaaa \{[\s\S]*?jump sg-in-sg-web\n {4}counter drop\n/);
  assert.match(text, /ether type ip ether saddr fa:16:3e:00:00:99 ip saddr \{ 10\.0\.9\.0\/24 \} return/);
  assert.match(text, /ether type ip6 ether saddr fa:16:3e:00:00:01 ip6 saddr \{ fd00::5, fe80::f816:3eff:fe00:1 \} return/);
  assert.match(text, /ether type arp ether saddr fa:16:3e:00:00:01 arp saddr ether fa:16:3e:00:00:01 arp saddr ip \{ 10\.0\.0\.5 \} return/);
  assert.match(text, /set rg-sg-web-4 \{\n\s+type ipv4_addr; flags interval; auto-merge;\n\s+elements = \{ 10\.0\.0\.5, 10\.0\.0\.6 \}/);
  assert.match(text, /set rg-sg-web-6 \{\n\s+type ipv6_addr; flags interval; auto-merge;\n\s+elements = \{ fd00::5 \}/);
  // the port without known groups: only the defaults, then drop
  const ingressB = /chain ingress-tapbbbbbbbbbbb \{\n([\s\S]*?)\n {2}\}/.exec(text)![1]!;
  assert.match(ingressB, /ct state established,related accept/);
  assert.match(ingressB, /counter drop$/);
  assert.doesNotMatch(ingressB, /dport 22/);
  assert.equal(warnings.length, 3, warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes('sg-missing')));
});

test('stateless groups get no conntrack rules; no ports renders empty base chains', () => {
  const { text } = renderFirewall({ ...input, securityGroups: [{ ...sgWeb, stateful: false }], ports: [input.ports[0]!] });
  assert.doesNotMatch(/chain ingress-tapaaaaaaaaaaa \{[\s\S]*?\n {2}\}/.exec(text)![0], /ct state/);
  const empty = renderFirewall({ ports: [], bridges: [], securityGroups: [] }).text;
  assert.doesNotMatch(empty, /vmap/);
});

test('the generated ruleset loads into the kernel (nft -c) and really replaces', { skip }, async () => {
  const host = ns!.name('host');
  await ns!.add(host);
  const { text } = renderFirewall(input);
  await runIn(host, 'nft', ['-c', '-f', '-'], { input: text });
  await runIn(host, 'nft', ['-f', '-'], { input: text });
  await runIn(host, 'nft', ['-f', '-'], { input: renderFirewall({ ...input, ports: [input.ports[1]!] }).text });
  const { stdout } = await runIn(host, 'nft', ['list', 'ruleset']);
  assert.doesNotMatch(stdout, /tapaaaaaaaaaaa/);
  assert.match(stdout, /tapbbbbbbbbbbb/);
});

test('delta: only changed chains and sets; applied on top of the old ruleset it equals a full load of the new one', { skip }, async () => {
  const host = ns!.name('delta');
  await ns!.add(host);
  const before = renderFirewall(input);
  const changedGroup: SecurityGroupState = {
    ...sgWeb, memberIps: ['10.0.0.5', '10.0.0.7'],
    rules: [...sgWeb.rules.filter((r) => r.id !== 'r1'), { id: 'r9', direction: 'ingress', ethertype: 'IPv4', protocol: '17', portRangeMin: 53, portRangeMax: 53, remoteIpPrefix: null, remoteGroupId: null }],
  };
  const after: FirewallInput = {
    bridges: input.bridges,
    securityGroups: [changedGroup],
    ports: [
      input.ports[0]!,
      { device: 'tapccccccccccc', index: 2, mac: 'fa:16:3e:00:00:03', ips: ['10.0.0.7'], allowedAddressPairs: [], securityGroupIds: ['sg-web'] },
    ],
  };
  const next = renderFirewall(after);
  assert.equal(firewallDelta(before.tables, before.tables), '', 'nothing changed, nothing to do');
  const delta = firewallDelta(before.tables, next.tables);
  assert.match(delta, /^add chain bridge gureum anti-spoof-tapccccccccccc$/m);
  assert.match(delta, /^flush set inet gureum rg-sg-web-4$/m);
  assert.match(delta, /^delete chain inet gureum ingress-tapbbbbbbbbbbb$/m);
  assert.doesNotMatch(delta, /(chain|rule) bridge gureum anti-spoof-tapaaaaaaaaaaa/, 'an unchanged port chain is not touched');

  // the ruleset as sorted blocks (a delta appends new chains at the end; order does not matter)
  const list = async () => {
    const text = (await runIn(host, 'nft', ['list', 'ruleset'])).stdout.replace(/counter packets \d+ bytes \d+/g, 'counter');
    const blocks: string[] = [];
    let table = '', cur: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith('table ')) table = line;
      else if (/^\t(chain|set) /.test(line)) cur = [table, line];
      else if (line === '\t}') { blocks.push(cur.join('\n')); cur = []; }
      else if (cur.length) cur.push(line);
    }
    return blocks.sort().join('\n');
  };
  await runIn(host, 'nft', ['-f', '-'], { input: before.text });
  await runIn(host, 'nft', ['-f', '-'], { input: delta });
  const viaDelta = await list();
  await runIn(host, 'nft', ['-f', '-'], { input: next.text });
  assert.equal(viaDelta, await list());
  // and back (ports and sets removed)
  await runIn(host, 'nft', ['-f', '-'], { input: firewallDelta(next.tables, before.tables) });
  const back = await list();
  await runIn(host, 'nft', ['-f', '-'], { input: before.text });
  assert.equal(back, await list());
});
