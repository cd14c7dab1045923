import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { err } from '../errors.ts';
import { createPorts, deletePort, listPorts, showPort, updatePort, type PortInput } from '../ports.ts';
import type { ResourceSpec } from '../query.ts';
import type { Json, NetworkDeps, View } from '../types.ts';
import { bool, collectionRoutes, filterValues, requestedProject, str, strList, tagsOf, type Body } from './crud.ts';

/** /v2.0/ports */

const s = (max = 255) => Type.String({ maxLength: max });
const FixedIp = Type.Object({ subnet_id: Type.Optional(Type.String()), ip_address: Type.Optional(Type.String()) }, { additionalProperties: false });
const Pair = Type.Object({ ip_address: Type.String(), mac_address: Type.Optional(Type.String()) }, { additionalProperties: false });
const DhcpOpt = Type.Object({
  opt_name: Type.String(), opt_value: Type.Union([Type.Null(), Type.String()]), ip_version: Type.Optional(Type.Union([Type.Integer(), Type.String()])),
}, { additionalProperties: false });
const common = {
  name: Type.Optional(s()),
  description: Type.Optional(s()),
  admin_state_up: Type.Optional(Type.Boolean()),
  mac_address: Type.Optional(s(32)),
  fixed_ips: Type.Optional(Type.Array(FixedIp)),
  device_id: Type.Optional(s()),
  device_owner: Type.Optional(s()),
  security_groups: Type.Optional(Type.Union([Type.Null(), Type.Array(Type.String())])),
  port_security_enabled: Type.Optional(Type.Boolean()),
  allowed_address_pairs: Type.Optional(Type.Array(Pair)),
  extra_dhcp_opts: Type.Optional(Type.Array(DhcpOpt)),
  dns_name: Type.Optional(s()),
  'binding:host_id': Type.Optional(s()),
  'binding:vnic_type': Type.Optional(s(64)),
  'binding:profile': Type.Optional(Type.Union([Type.Null(), Type.Object({}, { additionalProperties: true })])),
};
export const PortCreate = Type.Object({
  ...common,
  network_id: Type.String(),
  project_id: Type.Optional(s()),
  tenant_id: Type.Optional(s()),
  tags: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
export const PortUpdate = Type.Object(common, { additionalProperties: false });

const READ_ONLY = ['id', 'status', 'binding:vif_type', 'binding:vif_details', 'dns_assignment', 'created_at', 'updated_at', 'revision_number'];

/**
 * fixed_ips filters: ip_address=, subnet_id=, ip_address_substr= (repeatable); a port
 * matches when one of its addresses meets every kind given, as Neutron's port query.
 */
function matchFixedIps(view: View, wanted: string[]): boolean {
  const by: Record<string, string[]> = {};
  for (const w of wanted) {
    const i = w.indexOf('=');
    const k = i < 0 ? '' : w.slice(0, i);
    if (!['ip_address', 'subnet_id', 'ip_address_substr'].includes(k)) {
      throw err.badAttr('fixed_ips', `'${w}' is not of the form ip_address=<address>, subnet_id=<id> or ip_address_substr=<text>`);
    }
    (by[k] ??= []).push(w.slice(i + 1));
  }
  const ips = Array.isArray(view.fixed_ips) ? view.fixed_ips : [];
  return ips.some((f) => {
    const o = f as { ip_address?: Json; subnet_id?: Json };
    const ip = String(o.ip_address);
    return (!by.ip_address || by.ip_address.includes(ip)) && (!by.subnet_id || by.subnet_id.includes(String(o.subnet_id)))
      && (!by.ip_address_substr || by.ip_address_substr.some((x) => ip.includes(x)));
  });
}

export const portSpec: ResourceSpec = {
  member: 'port', collection: 'ports',
  attrs: {
    id: 'str', name: 'str', network_id: 'str', project_id: 'str', tenant_id: 'str', mac_address: 'str', admin_state_up: 'bool',
    status: 'str', device_id: 'str', device_owner: 'str', fixed_ips: 'custom', security_groups: 'list', port_security_enabled: 'bool',
    allowed_address_pairs: 'obj', extra_dhcp_opts: 'obj', dns_name: 'str', dns_assignment: 'obj', description: 'str', tags: 'list',
    created_at: 'str', updated_at: 'str', revision_number: 'int', 'binding:host_id': 'str', 'binding:vif_type': 'str',
    'binding:vif_details': 'obj', 'binding:vnic_type': 'str', 'binding:profile': 'obj',
  },
  custom: { fixed_ips: matchFixedIps },
  notFound: (id) => err.portNotFound(id),
};

type FixedIpReq = { subnet_id?: string; ip_address?: string };
type PairReq = { ip_address?: string; mac_address?: string };
type OptReq = { opt_name?: string; opt_value?: string | null; ip_version?: number | string };
const objList = <T>(v: unknown): T[] | undefined => (Array.isArray(v) ? (v as T[]) : undefined);

export function portInput(b: Body): PortInput {
  const profile = b['binding:profile'];
  return {
    network_id: str(b.network_id), name: str(b.name), description: str(b.description), admin_state_up: bool(b.admin_state_up),
    mac_address: str(b.mac_address), fixed_ips: objList<FixedIpReq>(b.fixed_ips), device_id: str(b.device_id), device_owner: str(b.device_owner),
    security_groups: b.security_groups === null ? null : strList(b.security_groups), port_security_enabled: bool(b.port_security_enabled),
    allowed_address_pairs: objList<PairReq>(b.allowed_address_pairs), extra_dhcp_opts: objList<OptReq>(b.extra_dhcp_opts),
    dns_name: str(b.dns_name), host_id: str(b['binding:host_id']), vnic_type: str(b['binding:vnic_type']),
    profile: profile === undefined ? undefined : profile === null || typeof profile !== 'object' || Array.isArray(profile) ? null : profile,
    project: requestedProject(b), tags: tagsOf(b),
  };
}

export function portRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  collectionRoutes(app, {
    path: 'ports', key: 'ports', spec: portSpec,
    create: { member: 'port', schema: PortCreate, readOnly: READ_ONLY, mode: 'POST' },
    update: { member: 'port', schema: PortUpdate, readOnly: [...READ_ONLY, 'network_id', 'project_id', 'tenant_id', 'tags'], mode: 'PUT' },
    // The common narrowing filters go to SQL; every filter is applied again over the views.
    list: (auth, q) => listPorts(deps, auth, { ids: filterValues(q, 'id'), networkIds: filterValues(q, 'network_id'), deviceIds: filterValues(q, 'device_id') }),
    createMany: (auth, bodies) => createPorts(deps, auth, bodies.map(portInput)),
    show: (auth, id) => showPort(deps, auth, id),
    change: (auth, id, body, rev) => updatePort(deps, auth, id, portInput(body), rev),
    remove: (auth, id, rev) => deletePort(deps, auth, id, rev),
  });
}
