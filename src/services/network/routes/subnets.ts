import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { err } from '../errors.ts';
import type { ResourceSpec } from '../query.ts';
import { createSubnets, deleteSubnet, listSubnets, showSubnet, updateSubnet, type SubnetInput } from '../subnets.ts';
import type { NetworkDeps } from '../types.ts';
import { bool, collectionRoutes, int, requestedProject, str, strList, strOrNull, tagsOf, type Body } from './crud.ts';

/** /v2.0/subnets */

const s = (max = 255) => Type.String({ maxLength: max });
const Pool = Type.Object({ start: Type.String(), end: Type.String() }, { additionalProperties: false });
const Route = Type.Object({ destination: Type.String(), nexthop: Type.String() }, { additionalProperties: false });
const Ipv6Mode = Type.Union([Type.Null(), Type.Literal('slaac'), Type.Literal('dhcpv6-stateful'), Type.Literal('dhcpv6-stateless')]);
const common = {
  name: Type.Optional(s()),
  description: Type.Optional(s()),
  gateway_ip: Type.Optional(Type.Union([Type.Null(), s(64)])),
  allocation_pools: Type.Optional(Type.Array(Pool)),
  dns_nameservers: Type.Optional(Type.Array(Type.String())),
  host_routes: Type.Optional(Type.Array(Route)),
  enable_dhcp: Type.Optional(Type.Boolean()),
};
export const SubnetCreate = Type.Object({
  ...common,
  network_id: Type.String(),
  ip_version: Type.Integer(),
  cidr: Type.Optional(s(64)),
  ipv6_ra_mode: Type.Optional(Ipv6Mode),
  ipv6_address_mode: Type.Optional(Ipv6Mode),
  subnetpool_id: Type.Optional(Type.Union([Type.Null(), s(64)])),
  project_id: Type.Optional(s()),
  tenant_id: Type.Optional(s()),
  tags: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
export const SubnetUpdate = Type.Object(common, { additionalProperties: false });

const READ_ONLY = ['id', 'created_at', 'updated_at', 'revision_number'];

export const subnetSpec: ResourceSpec = {
  member: 'subnet', collection: 'subnets',
  attrs: {
    id: 'str', name: 'str', network_id: 'str', project_id: 'str', tenant_id: 'str', ip_version: 'int', cidr: 'str', gateway_ip: 'str',
    allocation_pools: 'obj', dns_nameservers: 'list', host_routes: 'obj', enable_dhcp: 'bool', ipv6_ra_mode: 'str',
    ipv6_address_mode: 'str', subnetpool_id: 'str', description: 'str', tags: 'list', created_at: 'str', updated_at: 'str', revision_number: 'int',
  },
  notFound: (id) => err.subnetNotFound(id),
};

type PoolReq = { start?: unknown; end?: unknown };
type RouteReq = { destination?: unknown; nexthop?: unknown };
const objList = <T>(v: unknown): T[] | undefined => (Array.isArray(v) ? (v as T[]) : undefined);

export function subnetInput(b: Body): SubnetInput {
  return {
    network_id: str(b.network_id), name: str(b.name), description: str(b.description), ip_version: int(b.ip_version), cidr: str(b.cidr),
    gateway_ip: strOrNull(b.gateway_ip), allocation_pools: objList<PoolReq>(b.allocation_pools), dns_nameservers: strList(b.dns_nameservers),
    host_routes: objList<RouteReq>(b.host_routes), enable_dhcp: bool(b.enable_dhcp), ipv6_ra_mode: strOrNull(b.ipv6_ra_mode),
    ipv6_address_mode: strOrNull(b.ipv6_address_mode), subnetpool_id: strOrNull(b.subnetpool_id), project: requestedProject(b), tags: tagsOf(b),
  };
}

export function subnetRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  collectionRoutes(app, {
    path: 'subnets', key: 'subnets', spec: subnetSpec,
    create: { member: 'subnet', schema: SubnetCreate, readOnly: READ_ONLY, mode: 'POST' },
    update: {
      member: 'subnet', schema: SubnetUpdate, mode: 'PUT',
      readOnly: [...READ_ONLY, 'network_id', 'ip_version', 'cidr', 'ipv6_ra_mode', 'ipv6_address_mode', 'subnetpool_id', 'project_id', 'tenant_id', 'tags'],
    },
    list: (auth) => listSubnets(deps, auth),
    createMany: (auth, bodies) => createSubnets(deps, auth, bodies.map(subnetInput)),
    show: (auth, id) => showSubnet(deps, auth, id),
    change: (auth, id, body, rev) => updateSubnet(deps, auth, id, subnetInput(body), rev),
    remove: (auth, id, rev) => deleteSubnet(deps, auth, id, rev),
  });
}
