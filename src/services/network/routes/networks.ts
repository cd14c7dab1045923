import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { err } from '../errors.ts';
import { createNetworks, deleteNetwork, listNetworks, showNetwork, updateNetwork, type NetworkInput } from '../networks.ts';
import type { ResourceSpec } from '../query.ts';
import type { NetworkDeps } from '../types.ts';
import { bool, collectionRoutes, int, requestedProject, str, strList, strOrNull, tagsOf, type Body } from './crud.ts';

/** /v2.0/networks */

const s = (max = 255) => Type.String({ maxLength: max });
const common = {
  name: Type.Optional(s()),
  description: Type.Optional(s()),
  admin_state_up: Type.Optional(Type.Boolean()),
  shared: Type.Optional(Type.Boolean()),
  'router:external': Type.Optional(Type.Boolean()),
  is_default: Type.Optional(Type.Boolean()),
  mtu: Type.Optional(Type.Integer()),
  port_security_enabled: Type.Optional(Type.Boolean()),
  dns_domain: Type.Optional(s()),
  'provider:network_type': Type.Optional(s(32)),
  'provider:physical_network': Type.Optional(Type.Union([Type.Null(), s(64)])),
  'provider:segmentation_id': Type.Optional(Type.Union([Type.Null(), Type.Integer()])),
};
export const NetworkCreate = Type.Object({
  ...common,
  availability_zone_hints: Type.Optional(Type.Array(s())),
  project_id: Type.Optional(s()),
  tenant_id: Type.Optional(s()),
  tags: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
export const NetworkUpdate = Type.Object(common, { additionalProperties: false });

const READ_ONLY = ['id', 'status', 'subnets', 'availability_zones', 'created_at', 'updated_at', 'revision_number'];

export const networkSpec: ResourceSpec = {
  member: 'network', collection: 'networks',
  attrs: {
    id: 'str', name: 'str', project_id: 'str', tenant_id: 'str', status: 'str', admin_state_up: 'bool', shared: 'bool',
    'router:external': 'bool', is_default: 'bool', mtu: 'int', port_security_enabled: 'bool', availability_zone_hints: 'list',
    availability_zones: 'list', dns_domain: 'str', subnets: 'list', description: 'str', tags: 'list', created_at: 'str',
    updated_at: 'str', revision_number: 'int', 'provider:network_type': 'str', 'provider:physical_network': 'str',
    'provider:segmentation_id': 'int',
  },
  notFound: (id) => err.networkNotFound(id),
};

export function networkInput(b: Body): NetworkInput {
  return {
    name: str(b.name), description: str(b.description), admin_state_up: bool(b.admin_state_up), shared: bool(b.shared),
    router_external: bool(b['router:external']), is_default: bool(b.is_default), mtu: int(b.mtu),
    port_security_enabled: bool(b.port_security_enabled), availability_zone_hints: strList(b.availability_zone_hints),
    dns_domain: str(b.dns_domain), project: requestedProject(b), network_type: str(b['provider:network_type']),
    physical_network: strOrNull(b['provider:physical_network']),
    segmentation_id: b['provider:segmentation_id'] === null ? null : int(b['provider:segmentation_id']), tags: tagsOf(b),
  };
}

export function networkRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  collectionRoutes(app, {
    path: 'networks', key: 'networks', spec: networkSpec,
    create: { member: 'network', schema: NetworkCreate, readOnly: READ_ONLY, mode: 'POST' },
    update: { member: 'network', schema: NetworkUpdate, readOnly: [...READ_ONLY, 'project_id', 'tenant_id', 'availability_zone_hints', 'tags'], mode: 'PUT' },
    list: (auth) => listNetworks(deps, auth),
    createMany: (auth, bodies) => createNetworks(deps, auth, bodies.map(networkInput)),
    show: (auth, id) => showNetwork(deps, auth, id),
    change: (auth, id, body, rev) => updateNetwork(deps, auth, id, networkInput(body), rev),
    remove: (auth, id, rev) => deleteNetwork(deps, auth, id, rev),
  });
}
