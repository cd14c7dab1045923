import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { err } from '../errors.ts';
import type { ListQuery, ResourceSpec } from '../query.ts';
import {
  createGroups, createRules, deleteGroup, deleteRule, listGroups, listRules, showGroup, showRule, updateGroup, updateRule,
  type GroupInput, type RuleRequest,
} from '../security-groups.ts';
import type { NetworkDeps } from '../types.ts';
import { bool, collectionRoutes, filterValues, requestedProject, str, strOrNull, tagsOf, type Body } from './crud.ts';

/** /v2.0/security-groups and /v2.0/security-group-rules */

const s = (max = 255) => Type.String({ maxLength: max });
export const GroupCreate = Type.Object({
  name: Type.Optional(s()), description: Type.Optional(s()), stateful: Type.Optional(Type.Boolean()),
  project_id: Type.Optional(s()), tenant_id: Type.Optional(s()), tags: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
export const GroupUpdate = Type.Object({
  name: Type.Optional(s()), description: Type.Optional(s()), stateful: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
const PortValue = Type.Union([Type.Null(), Type.Integer(), Type.String()]);
export const RuleCreate = Type.Object({
  security_group_id: Type.String(),
  direction: Type.Union([Type.Literal('ingress'), Type.Literal('egress')]),
  ethertype: Type.Optional(Type.String()),
  protocol: Type.Optional(Type.Union([Type.Null(), Type.String(), Type.Integer()])),
  port_range_min: Type.Optional(PortValue),
  port_range_max: Type.Optional(PortValue),
  remote_ip_prefix: Type.Optional(Type.Union([Type.Null(), s(64)])),
  remote_group_id: Type.Optional(Type.Union([Type.Null(), s(64)])),
  description: Type.Optional(s()),
  project_id: Type.Optional(s()),
  tenant_id: Type.Optional(s()),
}, { additionalProperties: false });
export const RuleUpdate = Type.Object({ description: Type.Optional(s()) }, { additionalProperties: false });

const GROUP_READ_ONLY = ['id', 'security_group_rules', 'created_at', 'updated_at', 'revision_number'];
const RULE_READ_ONLY = ['id', 'normalized_cidr', 'created_at', 'updated_at', 'revision_number'];

export const groupSpec: ResourceSpec = {
  member: 'security_group', collection: 'security_groups',
  attrs: {
    id: 'str', name: 'str', description: 'str', project_id: 'str', tenant_id: 'str', stateful: 'bool', security_group_rules: 'obj',
    tags: 'list', created_at: 'str', updated_at: 'str', revision_number: 'int',
  },
  notFound: (id) => err.securityGroupNotFound(id),
};
export const ruleSpec: ResourceSpec = {
  member: 'security_group_rule', collection: 'security_group_rules',
  attrs: {
    id: 'str', security_group_id: 'str', direction: 'str', ethertype: 'str', protocol: 'str', port_range_min: 'int', port_range_max: 'int',
    remote_ip_prefix: 'str', normalized_cidr: 'str', remote_group_id: 'str', description: 'str', project_id: 'str', tenant_id: 'str',
    created_at: 'str', updated_at: 'str', revision_number: 'int',
  },
  notFound: (id) => err.securityGroupRuleNotFound(id),
};

function groupInput(b: Body): GroupInput {
  return { name: str(b.name), description: str(b.description), stateful: bool(b.stateful), project: requestedProject(b), tags: tagsOf(b) };
}

const portValue = (v: Body[string] | undefined): number | string | null | undefined =>
  v === null ? null : typeof v === 'number' || typeof v === 'string' ? v : undefined;

function ruleInput(b: Body): RuleRequest {
  const protocol = b.protocol;
  return {
    security_group_id: str(b.security_group_id) ?? '', direction: str(b.direction) ?? '', ethertype: str(b.ethertype),
    protocol: protocol === null ? null : typeof protocol === 'string' || typeof protocol === 'number' ? protocol : undefined,
    port_range_min: portValue(b.port_range_min), port_range_max: portValue(b.port_range_max),
    remote_ip_prefix: strOrNull(b.remote_ip_prefix), remote_group_id: strOrNull(b.remote_group_id), description: str(b.description),
    project: requestedProject(b),
  };
}

/** The project a list is about, for creating its default group first (Neutron does it for the filtered project). */
function projectFilter(q: ListQuery): string | undefined {
  return (filterValues(q, 'project_id') ?? filterValues(q, 'tenant_id'))?.[0];
}

export function securityGroupRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  collectionRoutes(app, {
    path: 'security-groups', key: 'security_groups', spec: groupSpec,
    create: { member: 'security_group', schema: GroupCreate, readOnly: GROUP_READ_ONLY, mode: 'POST' },
    update: { member: 'security_group', schema: GroupUpdate, readOnly: [...GROUP_READ_ONLY, 'project_id', 'tenant_id', 'tags'], mode: 'PUT' },
    list: (auth, q) => listGroups(deps, auth, projectFilter(q)),
    createMany: (auth, bodies) => createGroups(deps, auth, bodies.map(groupInput)),
    show: (auth, id) => showGroup(deps, auth, id),
    change: (auth, id, body, rev) => updateGroup(deps, auth, id, { name: str(body.name), description: str(body.description), stateful: bool(body.stateful) }, rev),
    remove: (auth, id, rev) => deleteGroup(deps, auth, id, rev),
  });
  collectionRoutes(app, {
    path: 'security-group-rules', key: 'security_group_rules', spec: ruleSpec,
    create: { member: 'security_group_rule', schema: RuleCreate, readOnly: RULE_READ_ONLY, mode: 'POST' },
    update: {
      member: 'security_group_rule', schema: RuleUpdate, mode: 'PUT',
      readOnly: [...RULE_READ_ONLY, 'security_group_id', 'direction', 'ethertype', 'protocol', 'port_range_min', 'port_range_max', 'remote_ip_prefix',
        'remote_group_id', 'project_id', 'tenant_id'],
    },
    list: (auth, q) => listRules(deps, auth, projectFilter(q)),
    createMany: (auth, bodies) => createRules(deps, auth, bodies.map(ruleInput)),
    show: (auth, id) => showRule(deps, auth, id),
    change: (auth, id, body, rev) => updateRule(deps, auth, id, str(body.description), rev),
    remove: (auth, id, rev) => deleteRule(deps, auth, id, rev),
  });
}
