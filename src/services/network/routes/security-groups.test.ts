import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenDatabase } from '../../../db/index.ts';
import type { NetworkDeps, SecurityGroupRuleView } from '../types.ts';
import { caller, counts, harness, type App, type Who } from './test-harness.ts';

const shape = (r: SecurityGroupRuleView) => [r.direction, r.ethertype, r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix, r.remote_group_id];

describe('security groups and rules', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: NetworkDeps;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh, deps } = await harness());
    call = caller(app);
  });
  after(async () => { await app.close(); await dbh.close(); });

  async function refused(who: Who, method: string, path: string, body: unknown, status: number, type: string, message?: string) {
    const before = await counts(deps);
    const r = await call(who, method, path, body);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.NeutronError?.type, type, JSON.stringify(r.body));
    if (message !== undefined) assert.equal(r.body.NeutronError?.message, message);
    assert.deepEqual(await counts(deps), before, 'nothing changed');
  }
  const rule = async (who: Who, body: object) => call(who, 'POST', '/security-group-rules', { security_group_rule: body });

  test("the default group: made on first listing with Neutron's four rules; cannot be renamed; only an admin removes it", async () => {
    const list = (await call('alice', 'GET', '/security-groups')).body.security_groups!;
    assert.equal(list.length, 1);
    const d = list[0]!;
    assert.equal(d.name, 'default');
    assert.equal(d.description, 'Default security group');
    assert.equal(d.stateful, true);
    assert.deepEqual(d.security_group_rules.map(shape), [
      ['ingress', 'IPv4', null, null, null, null, d.id],
      ['egress', 'IPv4', null, null, null, null, null],
      ['ingress', 'IPv6', null, null, null, null, d.id],
      ['egress', 'IPv6', null, null, null, null, null],
    ]);
    assert.equal((await call('alice', 'GET', '/security-groups')).body.security_groups!.length, 1, 'made once');
    assert.equal((await call('alice', 'GET', '/security-group-rules')).body.security_group_rules!.length, 4);
    await refused('alice', 'PUT', `/security-groups/${d.id}`, { security_group: { name: 'other' } }, 409, 'SecurityGroupCannotUpdateDefault', 'Updating default security group not allowed.');
    assert.equal((await call('alice', 'PUT', `/security-groups/${d.id}`, { security_group: { description: 'ours' } })).body.security_group!.description, 'ours');
    await refused('alice', 'DELETE', `/security-groups/${d.id}`, undefined, 409, 'SecurityGroupCannotRemoveDefault', 'Insufficient rights for removing default security group.');
    await refused('alice', 'POST', '/security-groups', { security_group: { name: 'Default' } }, 409, 'SecurityGroupDefaultAlreadyExists');
    assert.equal((await call('admin', 'DELETE', `/security-groups/${d.id}`)).status, 204);
    const again = (await call('alice', 'GET', '/security-groups')).body.security_groups!;
    assert.equal(again.length, 1);
    assert.notEqual(again[0]!.id, d.id, 'a new default group on next need');
  });

  test('create, show, update, delete a group; new groups allow all egress; names may repeat; other projects get 404', async () => {
    const c = await call('alice', 'POST', '/security-groups', { security_group: { name: 'web', description: 'www', stateful: false, tags: ['t1'] } });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    const g = c.body.security_group!;
    assert.equal(g.stateful, false);
    assert.deepEqual(g.tags, ['t1']);
    assert.equal(g.revision_number, 1);
    assert.deepEqual(g.security_group_rules.map(shape), [['egress', 'IPv4', null, null, null, null, null], ['egress', 'IPv6', null, null, null, null, null]]);
    assert.equal((await call('alice', 'POST', '/security-groups', { security_group: { name: 'web' } })).status, 201, 'names are not unique');
    const u = await call('alice', 'PUT', `/security-groups/${g.id}`, { security_group: { name: 'web2', stateful: true } });
    assert.equal(u.body.security_group!.name, 'web2');
    assert.equal(u.body.security_group!.stateful, true);
    assert.equal(u.body.security_group!.revision_number, 2);
    await refused('alice', 'PUT', `/security-groups/${g.id}`, { security_group: { name: 'default' } }, 409, 'SecurityGroupDefaultAlreadyExists');
    for (const [m, body] of [['GET', undefined], ['PUT', { security_group: { name: 'x' } }], ['DELETE', undefined]] as const) {
      const r = await call('bob', m, `/security-groups/${g.id}`, body);
      assert.equal(r.status, 404, m);
      assert.equal(r.body.NeutronError?.message, `Security group ${g.id} does not exist`);
    }
    assert.ok(!(await call('bob', 'GET', '/security-groups')).body.security_groups!.some((x) => x.project_id === 'p-one'));
    await refused('rita', 'POST', '/security-groups', { security_group: { name: 'r' } }, 403, 'PolicyNotAuthorized');
    await refused('rita', 'DELETE', `/security-groups/${g.id}`, undefined, 403, 'PolicyNotAuthorized');
    assert.ok((await call('admin', 'GET', '/security-groups')).body.security_groups!.some((x) => x.id === g.id), 'admins see all');
    assert.equal((await call('alice', 'DELETE', `/security-groups/${g.id}`)).status, 204);
    assert.equal((await call('alice', 'GET', `/security-group-rules?security_group_id=${g.id}`)).body.security_group_rules!.length, 0, 'its rules went with it');
  });

  test('rules: protocols by name or number, port ranges, ICMP type/code, remote prefixes and groups', async () => {
    const g = (await call('alice', 'POST', '/security-groups', { security_group: { name: 'rules' } })).body.security_group!;
    const rev = g.revision_number;
    const icmp = await rule('alice', { security_group_id: g.id, direction: 'ingress', protocol: 'icmp' });
    assert.equal(icmp.status, 201, JSON.stringify(icmp.body));
    assert.deepEqual(shape(icmp.body.security_group_rule!), ['ingress', 'IPv4', 'icmp', null, null, null, null]);
    assert.equal(icmp.body.security_group_rule!.project_id, 'p-one');
    const ssh = (await rule('alice', { security_group_id: g.id, direction: 'ingress', protocol: 'TCP', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0' })).body.security_group_rule!;
    assert.deepEqual(shape(ssh), ['ingress', 'IPv4', 'tcp', 22, 22, '0.0.0.0/0', null]);
    const num = (await rule('alice', { security_group_id: g.id, direction: 'ingress', protocol: '17', port_range_min: '53', port_range_max: '53', remote_ip_prefix: '10.1.2.3/8' })).body.security_group_rule!;
    assert.deepEqual(shape(num), ['ingress', 'IPv4', '17', 53, 53, '10.1.2.3/8', null]);
    assert.equal(num.normalized_cidr, '10.0.0.0/8');
    const host = (await rule('alice', { security_group_id: g.id, direction: 'egress', ethertype: 'ipv6', protocol: 'icmp', port_range_min: 128, port_range_max: 0, remote_ip_prefix: '2001:db8::1' })).body.security_group_rule!;
    assert.deepEqual(shape(host), ['egress', 'IPv6', 'ipv6-icmp', 128, 0, '2001:db8::1/128', null], 'legacy IPv6 ICMP spelling rewritten, a host prefix gets its mask');
    const remote = (await rule('alice', { security_group_id: g.id, direction: 'ingress', protocol: 'tcp', remote_group_id: g.id })).body.security_group_rule!;
    assert.equal(remote.remote_group_id, g.id);
    const any = (await rule('alice', { security_group_id: g.id, direction: 'ingress', protocol: 'any', ethertype: 'IPv6' })).body.security_group_rule!;
    assert.equal(any.protocol, null);
    const shown = (await call('alice', 'GET', `/security-groups/${g.id}`)).body.security_group!;
    assert.equal(shown.security_group_rules.length, 8, 'two egress rules and the six made here');
    assert.equal(shown.revision_number, rev + 6, 'each rule bumps its group');
    assert.deepEqual((await call('alice', 'GET', `/security-group-rules/${ssh.id}`)).body.security_group_rule, ssh);
    assert.deepEqual((await call('alice', 'GET', `/security-group-rules?security_group_id=${g.id}&protocol=tcp&sort_key=port_range_min&sort_dir=asc`)).body.security_group_rules!.map((r) => r.id), [remote.id, ssh.id]);
    assert.equal((await call('alice', 'PUT', `/security-group-rules/${ssh.id}`, { security_group_rule: { description: 'ssh' } })).body.security_group_rule!.description, 'ssh');
    await refused('alice', 'PUT', `/security-group-rules/${ssh.id}`, { security_group_rule: { port_range_max: 23 } }, 400, 'HTTPBadRequest', 'Cannot update read-only attribute port_range_max');
    assert.equal((await call('bob', 'GET', `/security-group-rules/${ssh.id}`)).status, 404);
    await refused('bob', 'DELETE', `/security-group-rules/${ssh.id}`, undefined, 404, 'SecurityGroupRuleNotFound', `Security group rule ${ssh.id} does not exist`);
    assert.equal((await call('alice', 'DELETE', `/security-group-rules/${ssh.id}`)).status, 204);
    assert.equal((await call('alice', 'GET', `/security-group-rules/${ssh.id}`)).status, 404);
  });

  test('bad rules are 400 with Neutron messages, duplicates 409, missing groups 404; nothing half-made', async () => {
    const g = (await call('alice', 'POST', '/security-groups', { security_group: { name: 'bad' } })).body.security_group!;
    const base = { security_group_id: g.id, direction: 'ingress' };
    const cases: [object, number, string, string][] = [
      [{ protocol: 'foo' }, 400, 'SecurityGroupRuleInvalidProtocol', "Security group rule protocol foo not supported. Only protocol values [None, 'ah', 'dccp', 'egp', 'esp', 'gre', 'hopopt', 'icmp', 'igmp', 'ip', 'ipip', 'ipv6-encap', 'ipv6-frag', 'ipv6-icmp', 'ipv6-nonxt', 'ipv6-opts', 'ipv6-route', 'ospf', 'pgm', 'rsvp', 'sctp', 'tcp', 'udp', 'udplite', 'vrrp'] and integer representations [0 to 255] are supported."],
      [{ protocol: 256 }, 400, 'SecurityGroupRuleInvalidProtocol', ''],
      [{ protocol: 'tcp', port_range_min: 30, port_range_max: 20 }, 400, 'SecurityGroupInvalidPortRange', 'Invalid input for operation: For TCP/UDP protocols, port_range_min must be <= port_range_max.'],
      [{ protocol: 'tcp', port_range_min: 0, port_range_max: 20 }, 400, 'SecurityGroupInvalidPortValue', 'Invalid input for operation: Invalid value for port 0.'],
      [{ protocol: 'udp', port_range_min: 70000, port_range_max: 70000 }, 400, 'SecurityGroupInvalidPortValue', 'Invalid input for operation: Invalid value for port 70000.'],
      [{ protocol: 'tcp', port_range_min: 22 }, 400, 'SecurityGroupInvalidPortRange', ''],
      [{ port_range_min: 22, port_range_max: 22 }, 400, 'SecurityGroupProtocolRequiredWithPorts', 'Invalid input for operation: Must also specify protocol if port range is given.'],
      [{ protocol: 'icmp', port_range_min: 300 }, 400, 'SecurityGroupInvalidIcmpValue', 'Invalid input for operation: Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255.'],
      [{ protocol: 'icmp', port_range_max: 3 }, 400, 'SecurityGroupMissingIcmpType', 'Invalid input for operation: ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing.'],
      [{ protocol: 'gre', port_range_min: 1, port_range_max: 2 }, 400, 'SecurityGroupInvalidProtocolForPortRange', ''],
      [{ protocol: 'ipv6-icmp' }, 400, 'SecurityGroupEthertypeConflictWithProtocol', 'Invalid ethertype IPv4 for protocol ipv6-icmp.'],
      [{ remote_ip_prefix: '::/0' }, 400, 'SecurityGroupRuleParameterConflict', 'Invalid input for operation: Conflicting value ethertype IPv4 for CIDR ::/0.'],
      [{ remote_ip_prefix: '10.0.0.0/40' }, 400, 'InvalidCIDR', 'Invalid CIDR 10.0.0.0/40 given as IP prefix.'],
      [{ remote_ip_prefix: '10.0.0.0/8', remote_group_id: g.id }, 400, 'SecurityGroupRemoteGroupAndRemoteIpPrefix', 'Invalid input for operation: Only remote_ip_prefix or remote_group_id may be provided.'],
      [{ ethertype: 'IPv5' }, 400, 'HTTPBadRequest', "Invalid input for ethertype. Reason: 'IPv5' is not in ['IPv4', 'IPv6']."],
      [{ direction: 'sideways' }, 400, 'HTTPBadRequest', "Invalid input for direction. Reason: 'sideways' is not in ['ingress', 'egress']."],
      [{ remote_group_id: 'nope' }, 404, 'SecurityGroupNotFound', 'Security group nope does not exist'],
      [{ security_group_id: 'nope' }, 404, 'SecurityGroupNotFound', 'Security group nope does not exist'],
      [{ protocol: 'tcp', remote_address_group_id: 'x' }, 400, 'HTTPBadRequest', "Unrecognized attribute(s) 'remote_address_group_id'"],
    ];
    for (const [body, status, type, message] of cases) {
      await refused('alice', 'POST', '/security-group-rules', { security_group_rule: { ...base, ...body } }, status, type, message || undefined);
    }
    // Duplicates: 'any address' and no prefix are the same rule; so are a protocol's name and number.
    const first = (await rule('alice', { ...base, protocol: 'tcp', port_range_min: 80, port_range_max: 80 })).body.security_group_rule!;
    await refused('alice', 'POST', '/security-group-rules', { security_group_rule: { ...base, protocol: '6', port_range_min: 80, port_range_max: 80, remote_ip_prefix: '0.0.0.0/0' } },
      409, 'SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${first.id}.`);
    await refused('alice', 'POST', '/security-group-rules', { security_group_rules: [{ ...base, protocol: 'udp' }, { ...base, protocol: 'udp' }] }, 409, 'DuplicateSecurityGroupRuleInPost');
    const bulk = await call('alice', 'POST', '/security-group-rules', { security_group_rules: [{ ...base, protocol: 'udp' }, { ...base, protocol: 'icmp' }] });
    assert.equal(bulk.status, 201);
    assert.equal(bulk.body.security_group_rules!.length, 2);
    const bobs = (await call('bob', 'POST', '/security-groups', { security_group: { name: 'b' } })).body.security_group!;
    await refused('alice', 'POST', '/security-group-rules', { security_group_rule: { ...base, remote_group_id: bobs.id } }, 404, 'SecurityGroupNotFound');
    await refused('bob', 'POST', '/security-group-rules', { security_group_rule: { ...base } }, 404, 'SecurityGroupNotFound');
    await refused('rita', 'POST', '/security-group-rules', { security_group_rule: { ...base, protocol: 'sctp' } }, 403, 'PolicyNotAuthorized');
  });

  test('quotas: groups and rules count against the project', async () => {
    await call('admin', 'PUT', '/quotas/p-two', { quota: { security_group: 2, security_group_rule: 8 } });
    const list = (await call('bob', 'GET', '/security-groups')).body.security_groups!;
    assert.equal(list.length, 2, 'default + b from before');
    await refused('bob', 'POST', '/security-groups', { security_group: { name: 'c' } }, 409, 'OverQuota', "Quota exceeded for resources: ['security_group'].");
    const b = list.find((g) => g.name === 'b')!;
    const rules = (await call('bob', 'GET', '/security-group-rules')).body.security_group_rules!.length;
    assert.equal(rules, 6);
    assert.equal((await rule('bob', { security_group_id: b.id, direction: 'ingress', protocol: 'tcp' })).status, 201);
    assert.equal((await rule('bob', { security_group_id: b.id, direction: 'ingress', protocol: 'udp' })).status, 201);
    await refused('bob', 'POST', '/security-group-rules', { security_group_rule: { security_group_id: b.id, direction: 'ingress', protocol: 'icmp' } }, 409, 'OverQuota');
    await call('admin', 'DELETE', '/quotas/p-two');
  });
});
