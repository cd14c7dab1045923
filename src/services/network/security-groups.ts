import type { AuthContext } from '../../api/context.ts';
import { err, NeutronError } from './errors.ts';
import { checkQuota, checkRevision, inTransaction, newUuid, notify, ownerOf, scopeOf } from './common.ts';
import { cidrText, formatIp, parseCidr } from './netaddr.ts';
import { allowed, authorize } from './policy.ts';
import * as store from './store.ts';
import type { NetworkDeps, SecurityGroupRecord, SecurityGroupRuleRecord, SecurityGroupRuleView, SecurityGroupView } from './types.ts';

/**
 * Security groups and their rules, as Neutron's securitygroups_db: every project gets a
 * `default` group the first time it needs one (listing groups or rules, creating a
 * network or a port) whose rules let members of the group talk to each other and
 * everything out; new groups start with the two egress rules. Rules are validated as
 * Neutron does (protocol names and numbers, port ranges per protocol, ICMP type/code,
 * remote prefix vs ethertype, remote group) and duplicates refused.
 */

/** Neutron's IP protocol names and numbers (neutron_lib.constants.IP_PROTOCOL_MAP). */
export const IP_PROTOCOLS: Record<string, number> = {
  ah: 51, dccp: 33, egp: 8, esp: 50, gre: 47, hopopt: 0, icmp: 1, igmp: 2, ip: 0, ipip: 4, 'ipv6-encap': 41,
  'ipv6-frag': 44, 'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, 'ipv6-route': 43, ospf: 89, pgm: 113,
  rsvp: 46, sctp: 132, tcp: 6, udp: 17, udplite: 136, vrrp: 112,
};
const IPV6_ONLY = new Set(['ipv6-encap', 'ipv6-frag', 'ipv6-icmp', 'icmpv6', 'ipv6-nonxt', 'ipv6-opts', 'ipv6-route', '41', '44', '58', '59', '60', '43']);
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);

/** The protocol number a rule's protocol stands for (null: any). */
export function protocolNumber(p: string | null): number | null {
  if (p === null) return null;
  return /^\d+$/.test(p) ? Number(p) : (IP_PROTOCOLS[p] ?? null);
}

export function ruleView(r: SecurityGroupRuleRecord): SecurityGroupRuleView {
  const c = r.remote_ip_prefix === null ? null : parseCidr(r.remote_ip_prefix);
  return {
    id: r.id, security_group_id: r.security_group_id, direction: r.direction, ethertype: r.ethertype, protocol: r.protocol,
    port_range_min: r.port_range_min, port_range_max: r.port_range_max, remote_ip_prefix: r.remote_ip_prefix,
    normalized_cidr: c ? cidrText(c) : null, remote_group_id: r.remote_group_id, description: r.description,
    project_id: r.project_id, tenant_id: r.project_id, created_at: r.created_at, updated_at: r.updated_at, revision_number: r.revision_number,
  };
}

export function groupView(g: SecurityGroupRecord): SecurityGroupView {
  return {
    id: g.id, name: g.name, description: g.description, project_id: g.project_id, tenant_id: g.project_id, stateful: g.stateful,
    security_group_rules: g.rules.map(ruleView), tags: g.tags, created_at: g.created_at, updated_at: g.updated_at, revision_number: g.revision_number,
  };
}

interface RuleInput {
  direction: 'ingress' | 'egress'; ethertype: 'IPv4' | 'IPv6'; protocol: string | null; port_range_min: number | null;
  port_range_max: number | null; remote_ip_prefix: string | null; remote_group_id: string | null; description: string;
}

async function insertRules(db: store.Q, group: { id: string; project_id: string }, rules: RuleInput[]): Promise<void> {
  for (const r of rules) {
    const at = store.now();
    await store.insertRule(db, {
      id: newUuid(), project_id: group.project_id, security_group_id: group.id, remote_group_id: r.remote_group_id, direction: r.direction,
      ethertype: r.ethertype, protocol: r.protocol, port_range_min: r.port_range_min, port_range_max: r.port_range_max,
      remote_ip_prefix: r.remote_ip_prefix, description: r.description, created_at: at, updated_at: at, revision_number: 0,
    });
  }
}

const anyRule = (direction: 'ingress' | 'egress', ethertype: 'IPv4' | 'IPv6', remoteGroup: string | null = null): RuleInput => ({
  direction, ethertype, protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: remoteGroup, description: '',
});

/**
 * The project's default group, created (inside the caller's transaction) when missing:
 * ingress from the group itself and egress anywhere, for IPv4 and IPv6. Concurrent
 * first uses settle on one group through default_security_groups' primary key.
 */
export async function ensureDefaultGroup(db: store.Q, projectId: string): Promise<string> {
  const existing = await store.defaultGroupOf(db, projectId);
  if (existing) return existing;
  const id = newUuid();
  const at = store.now();
  await store.insertSecurityGroup(db, { id, project_id: projectId, name: 'default', stateful: 1, description: 'Default security group', created_at: at, updated_at: at, revision_number: 1 });
  if (!(await store.claimDefaultGroup(db, projectId, id))) {
    await store.deleteSecurityGroupRow(db, id);
    return (await store.defaultGroupOf(db, projectId))!;
  }
  await insertRules(db, { id, project_id: projectId }, [
    anyRule('ingress', 'IPv4', id), anyRule('egress', 'IPv4'), anyRule('ingress', 'IPv6', id), anyRule('egress', 'IPv6'),
  ]);
  return id;
}

/** A group the caller may see, or 404 (never telling another project's group exists). */
export async function visibleGroup(db: store.Q, auth: AuthContext, id: string): Promise<SecurityGroupRecord> {
  const g = await store.getSecurityGroup(db, id);
  if (!g || !allowed(auth, 'get_security_group', { project_id: g.project_id })) throw err.securityGroupNotFound(id);
  return g;
}

export interface GroupInput { name?: string; description?: string; stateful?: boolean; project?: string; tags?: string[] }

function checkName(name: string): void {
  if (name.toLowerCase() === 'default') throw err.defaultExists();
}

export async function createGroups(deps: NetworkDeps, auth: AuthContext, inputs: GroupInput[]): Promise<SecurityGroupView[]> {
  const targets = inputs.map((i) => ({ input: i, project: ownerOf(auth, i.project) }));
  for (const t of targets) {
    authorize(auth, 'create_security_group', { project_id: t.project });
    if (t.input.name !== undefined) checkName(t.input.name);
  }
  const ids = await inTransaction(deps, async (trx) => {
    const out: string[] = [];
    for (const { input, project } of targets) {
      await ensureDefaultGroup(trx, project);
      await checkQuota(deps, trx, project, 'security_group');
      await checkQuota(deps, trx, project, 'security_group_rule', 2);
      const id = newUuid();
      const at = store.now();
      await store.insertSecurityGroup(trx, {
        id, project_id: project, name: input.name ?? '', stateful: input.stateful === false ? 0 : 1, description: input.description ?? '',
        created_at: at, updated_at: at, revision_number: 1,
      });
      await insertRules(trx, { id, project_id: project }, [anyRule('egress', 'IPv4'), anyRule('egress', 'IPv6')]);
      if (input.tags?.length) await store.setTags(trx, 'security-groups', id, input.tags);
      out.push(id);
    }
    return out;
  });
  const groups = await store.loadSecurityGroups(deps.db, { ids });
  return ids.map((id) => groupView(groups.find((g) => g.id === id)!));
}

/** Every group the caller may see; the caller's (or the filtered project's) default group comes first into being. */
export async function listGroups(deps: NetworkDeps, auth: AuthContext, projectFilter: string | undefined): Promise<SecurityGroupView[]> {
  const project = (scopeOf(auth) === undefined ? projectFilter : undefined) ?? auth.projectId;
  if (project) await inTransaction(deps, (trx) => ensureDefaultGroup(trx, project));
  const scope = scopeOf(auth);
  const groups = await store.loadSecurityGroups(deps.db, scope === undefined ? {} : { projectId: scope });
  return groups.filter((g) => allowed(auth, 'get_security_group', { project_id: g.project_id })).map(groupView);
}

export async function showGroup(deps: NetworkDeps, auth: AuthContext, id: string): Promise<SecurityGroupView> {
  return groupView(await visibleGroup(deps.db, auth, id));
}

export async function updateGroup(deps: NetworkDeps, auth: AuthContext, id: string, input: GroupInput, expected: number | undefined): Promise<SecurityGroupView> {
  const g = await visibleGroup(deps.db, auth, id);
  authorize(auth, 'update_security_group', { project_id: g.project_id });
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'security_groups', id);
    if (rev === undefined) throw err.securityGroupNotFound(id);
    checkRevision(rev, expected);
    const isDefault = await store.isDefaultGroup(trx, id);
    if (input.name !== undefined && input.name !== g.name) {
      if (isDefault) throw err.cannotUpdateDefault();
      checkName(input.name);
    }
    const set: { name?: string; description?: string; stateful?: number } = {};
    if (input.name !== undefined && input.name !== g.name) set.name = input.name;
    if (input.description !== undefined && input.description !== g.description) set.description = input.description;
    if (input.stateful !== undefined && input.stateful !== g.stateful) {
      if ((await store.portsUsingGroup(trx, id)).length) {
        throw new NeutronError(409, `Error updating the stateful attribute of security group ${id}: the group is in use by ports.`, 'SecurityGroupInUse');
      }
      set.stateful = input.stateful ? 1 : 0;
    }
    if (Object.keys(set).length) {
      await store.updateSecurityGroupRow(trx, id, set);
      await store.bump(trx, 'security_groups', id);
    }
  });
  notify(deps, 'security_group');
  return groupView((await store.getSecurityGroup(deps.db, id))!);
}

export async function deleteGroup(deps: NetworkDeps, auth: AuthContext, id: string, expected: number | undefined): Promise<void> {
  const g = await visibleGroup(deps.db, auth, id);
  authorize(auth, 'delete_security_group', { project_id: g.project_id });
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'security_groups', id);
    if (rev === undefined) throw err.securityGroupNotFound(id);
    checkRevision(rev, expected);
    if ((await store.portsUsingGroup(trx, id)).length) throw err.securityGroupInUse(id);
    if ((await store.isDefaultGroup(trx, id)) && !auth.roles.includes('admin')) throw err.cannotRemoveDefault();
    await store.deleteSecurityGroupRow(trx, id);
  });
  notify(deps, 'security_group');
}

// ---- rules ----

export interface RuleRequest {
  security_group_id: string; direction: string; ethertype?: string; protocol?: string | number | null;
  port_range_min?: number | string | null; port_range_max?: number | string | null; remote_ip_prefix?: string | null;
  remote_group_id?: string | null; description?: string; project?: string;
}

const SUPPORTED_PROTOCOLS = `[None, ${Object.keys(IP_PROTOCOLS).filter((p) => p !== 'icmpv6').map((p) => `'${p}'`).join(', ')}]`;

function normaliseProtocol(p: string | number | null | undefined, ethertype: 'IPv4' | 'IPv6'): string | null {
  if (p === undefined || p === null || p === '' || (typeof p === 'string' && p.toLowerCase() === 'any')) return null;
  const invalid = () => new NeutronError(400,
    `Security group rule protocol ${String(p)} not supported. Only protocol values ${SUPPORTED_PROTOCOLS} and integer representations [0 to 255] are supported.`,
    'SecurityGroupRuleInvalidProtocol');
  let s: string;
  if (typeof p === 'number' || /^\d+$/.test(p)) {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 0 || v > 255) throw invalid();
    s = String(v);
  } else {
    s = p.toLowerCase();
    if (!(s in IP_PROTOCOLS)) throw invalid();
  }
  // Legacy IPv6 ICMP spellings become ipv6-icmp (58), as Neutron rewrites them.
  if (ethertype === 'IPv6') {
    if (s === 'icmp' || s === 'icmpv6') s = 'ipv6-icmp';
    else if (s === '1') s = '58';
  }
  return s;
}

function portValue(v: number | string | null | undefined): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'number' ? v : /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new NeutronError(400, `Invalid input for operation: Invalid value for port ${String(v)}.`, 'SecurityGroupInvalidPortValue');
  return n;
}

function checkPortRange(r: RuleInput): void {
  const { port_range_min: min, port_range_max: max } = r;
  if (min === null && max === null) return;
  if (r.protocol === null) throw new NeutronError(400, 'Invalid input for operation: Must also specify protocol if port range is given.', 'SecurityGroupProtocolRequiredWithPorts');
  const proto = protocolNumber(r.protocol);
  if (proto !== null && PORT_PROTOCOLS.has(proto)) {
    if (min === 0 || max === 0) throw new NeutronError(400, 'Invalid input for operation: Invalid value for port 0.', 'SecurityGroupInvalidPortValue');
    if (min === null || max === null || min > max) {
      throw new NeutronError(400, 'Invalid input for operation: For TCP/UDP protocols, port_range_min must be <= port_range_max.', 'SecurityGroupInvalidPortRange');
    }
  } else if (proto === 1 || proto === 58) {
    for (const [value, attr, field] of [[min, 'port_range_min', 'type'], [max, 'port_range_max', 'code']] as const) {
      if (value !== null && (value < 0 || value > 255)) {
        throw new NeutronError(400, `Invalid input for operation: Invalid value for ICMP ${field} (${attr}) ${value}. It must be 0 to 255.`, 'SecurityGroupInvalidIcmpValue');
      }
    }
    if (min === null && max !== null) {
      throw new NeutronError(400, `Invalid input for operation: ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`, 'SecurityGroupMissingIcmpType');
    }
  } else {
    throw new NeutronError(400, `Invalid input for operation: Invalid protocol ${r.protocol} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP protocols.`,
      'SecurityGroupInvalidProtocolForPortRange');
  }
}

/** The comparison key of a rule (Neutron's _rule_to_key): 'any address' and no prefix are one. */
function ruleKey(r: { direction: string; ethertype: string; protocol: string | null; port_range_min: number | null; port_range_max: number | null; remote_group_id: string | null; remote_ip_prefix: string | null }): string {
  const c = r.remote_ip_prefix === null ? null : parseCidr(r.remote_ip_prefix);
  const prefix = c === null || c.prefix === 0 ? '+' : cidrText(c);
  return [r.direction, r.ethertype, r.port_range_max ?? '+', r.port_range_min ?? '+', protocolNumber(r.protocol) ?? '+', r.remote_group_id ?? '+', prefix].join('_');
}

function checkRule(req: RuleRequest): RuleInput {
  const ethertype = (req.ethertype ?? 'IPv4').toLowerCase() === 'ipv6' ? 'IPv6' : 'IPv4';
  if (req.ethertype !== undefined && !['ipv4', 'ipv6'].includes(req.ethertype.toLowerCase())) {
    throw err.badAttr('ethertype', `'${req.ethertype}' is not in ['IPv4', 'IPv6']`);
  }
  if (req.direction !== 'ingress' && req.direction !== 'egress') throw err.badAttr('direction', `'${req.direction}' is not in ['ingress', 'egress']`);
  const protocol = normaliseProtocol(req.protocol, ethertype);
  if (ethertype === 'IPv4' && protocol !== null && IPV6_ONLY.has(protocol)) {
    throw new NeutronError(400, `Invalid ethertype ${ethertype} for protocol ${protocol}.`, 'SecurityGroupEthertypeConflictWithProtocol');
  }
  const rule: RuleInput = {
    direction: req.direction, ethertype, protocol, port_range_min: portValue(req.port_range_min),
    port_range_max: portValue(req.port_range_max), remote_ip_prefix: null, remote_group_id: req.remote_group_id ?? null,
    description: req.description ?? '',
  };
  checkPortRange(rule);
  if (req.remote_ip_prefix !== undefined && req.remote_ip_prefix !== null && req.remote_ip_prefix !== '') {
    const c = parseCidr(req.remote_ip_prefix);
    if (!c) throw new NeutronError(400, `Invalid CIDR ${req.remote_ip_prefix} given as IP prefix.`, 'InvalidCIDR');
    if (`IPv${c.version}` !== ethertype) {
      throw new NeutronError(400, `Invalid input for operation: Conflicting value ethertype ${ethertype} for CIDR ${req.remote_ip_prefix}.`, 'SecurityGroupRuleParameterConflict');
    }
    // Kept as given (host bits and all, with its mask); normalized_cidr shows the network.
    rule.remote_ip_prefix = `${formatIp(c.version, c.address)}/${c.prefix}`;
  }
  if (rule.remote_ip_prefix !== null && rule.remote_group_id !== null) {
    throw new NeutronError(400, 'Invalid input for operation: Only remote_ip_prefix or remote_group_id may be provided.', 'SecurityGroupRemoteGroupAndRemoteIpPrefix');
  }
  return rule;
}

async function visibleRule(db: store.Q, auth: AuthContext, id: string): Promise<{ rule: SecurityGroupRuleRecord; groupProject: string }> {
  const rule = (await store.loadRules(db, { ids: [id] }))[0];
  if (!rule) throw err.securityGroupRuleNotFound(id);
  const groupProject = (await store.groupProjects(db, [rule.security_group_id])).get(rule.security_group_id) ?? '';
  if (!allowed(auth, 'get_security_group_rule', { project_id: rule.project_id, security_group_project_id: groupProject })) throw err.securityGroupRuleNotFound(id);
  return { rule, groupProject };
}

/** Create rules (a bulk request must name one group); all or nothing. */
export async function createRules(deps: NetworkDeps, auth: AuthContext, requests: RuleRequest[]): Promise<SecurityGroupRuleView[]> {
  const groupIds = new Set(requests.map((r) => r.security_group_id));
  if (groupIds.size > 1) throw err.invalidInput('Only allowed to update rules for one security profile at a time');
  const ids = await inTransaction(deps, async (trx) => {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const req of requests) {
      const project = ownerOf(auth, req.project);
      const group = await visibleGroup(trx, auth, req.security_group_id);
      authorize(auth, 'create_security_group_rule', { project_id: project, security_group_project_id: group.project_id });
      const rule = checkRule(req);
      if (rule.remote_group_id !== null) {
        const remote = await store.getSecurityGroup(trx, rule.remote_group_id);
        if (!remote || (remote.project_id !== group.project_id && !allowed(auth, 'get_security_group', { project_id: remote.project_id }))) {
          throw err.securityGroupNotFound(rule.remote_group_id);
        }
      }
      // Serialise rule changes per group (PostgreSQL row lock) so the duplicate check holds.
      await store.lockRevision(trx, 'security_groups', group.id);
      const key = ruleKey(rule);
      if (seen.has(key)) throw err.duplicateRuleInPost();
      seen.add(key);
      const clash = (await store.loadRules(trx, { groupIds: [group.id] })).find((r) => ruleKey(r) === key);
      if (clash) throw err.ruleExists(clash.id);
      await checkQuota(deps, trx, project, 'security_group_rule');
      const id = newUuid();
      const at = store.now();
      await store.insertRule(trx, {
        id, project_id: project, security_group_id: group.id, remote_group_id: rule.remote_group_id, direction: rule.direction,
        ethertype: rule.ethertype, protocol: rule.protocol, port_range_min: rule.port_range_min, port_range_max: rule.port_range_max,
        remote_ip_prefix: rule.remote_ip_prefix, description: rule.description, created_at: at, updated_at: at, revision_number: 0,
      });
      await store.bump(trx, 'security_groups', group.id);
      out.push(id);
    }
    return out;
  });
  notify(deps, 'security_group_rule');
  const rules = await store.loadRules(deps.db, { ids });
  return ids.map((id) => ruleView(rules.find((r) => r.id === id)!));
}

export async function listRules(deps: NetworkDeps, auth: AuthContext, projectFilter: string | undefined): Promise<SecurityGroupRuleView[]> {
  const project = (scopeOf(auth) === undefined ? projectFilter : undefined) ?? auth.projectId;
  if (project) await inTransaction(deps, (trx) => ensureDefaultGroup(trx, project));
  const scope = scopeOf(auth);
  const rules = await store.loadRules(deps.db, scope === undefined ? {} : { visibleTo: scope });
  return rules.map(ruleView);
}

export async function showRule(deps: NetworkDeps, auth: AuthContext, id: string): Promise<SecurityGroupRuleView> {
  return ruleView((await visibleRule(deps.db, auth, id)).rule);
}

/** Only the description of a rule changes (standard-attr-description); the rule itself is immutable. */
export async function updateRule(deps: NetworkDeps, auth: AuthContext, id: string, description: string | undefined, expected: number | undefined): Promise<SecurityGroupRuleView> {
  const { rule, groupProject } = await visibleRule(deps.db, auth, id);
  authorize(auth, 'create_security_group_rule', { project_id: rule.project_id, security_group_project_id: groupProject });
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'security_group_rules', id);
    if (rev === undefined) throw err.securityGroupRuleNotFound(id);
    checkRevision(rev, expected);
    if (description !== undefined && description !== rule.description) {
      await trx.updateTable('security_group_rules').set({ description }).where('id', '=', id).execute();
      await store.bump(trx, 'security_group_rules', id);
    }
  });
  return ruleView((await store.loadRules(deps.db, { ids: [id] }))[0]!);
}

export async function deleteRule(deps: NetworkDeps, auth: AuthContext, id: string, expected: number | undefined): Promise<void> {
  const { rule, groupProject } = await visibleRule(deps.db, auth, id);
  authorize(auth, 'delete_security_group_rule', { project_id: rule.project_id, security_group_project_id: groupProject });
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'security_group_rules', id);
    if (rev === undefined) throw err.securityGroupRuleNotFound(id);
    checkRevision(rev, expected);
    await store.deleteRuleRow(trx, id);
    await store.bump(trx, 'security_groups', rule.security_group_id);
  });
  notify(deps, 'security_group_rule');
}
