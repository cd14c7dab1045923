import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { createFloatingIps, deleteFloatingIp, fiperr, listFloatingIps, showFloatingIp, updateFloatingIp, type FloatingIpInput } from '../floating-ips.ts';
import type { ResourceSpec } from '../query.ts';
import type { NetworkDeps } from '../types.ts';
import { collectionRoutes, filterValues, requestedProject, str, strOrNull, tagsOf, type Body } from './crud.ts';

/** /v2.0/floatingips */

const s = (max = 255) => Type.String({ maxLength: max });
export const FloatingIpCreate = Type.Object({
  floating_network_id: Type.String(),
  floating_ip_address: Type.Optional(s(64)),
  subnet_id: Type.Optional(s(64)),
  port_id: Type.Optional(Type.Union([Type.Null(), s(64)])),
  fixed_ip_address: Type.Optional(Type.Union([Type.Null(), s(64)])),
  description: Type.Optional(s()),
  dns_name: Type.Optional(s()),
  dns_domain: Type.Optional(s()),
  project_id: Type.Optional(s()),
  tenant_id: Type.Optional(s()),
  tags: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
export const FloatingIpUpdate = Type.Object({
  port_id: Type.Optional(Type.Union([Type.Null(), s(64)])),
  fixed_ip_address: Type.Optional(Type.Union([Type.Null(), s(64)])),
  description: Type.Optional(s()),
}, { additionalProperties: false });

const READ_ONLY = ['id', 'status', 'router_id', 'port_details', 'created_at', 'updated_at', 'revision_number'];

export const floatingIpSpec: ResourceSpec = {
  member: 'floatingip', collection: 'floatingips',
  attrs: {
    id: 'str', project_id: 'str', tenant_id: 'str', floating_network_id: 'str', floating_ip_address: 'str', fixed_ip_address: 'str',
    port_id: 'str', router_id: 'str', status: 'str', description: 'str', dns_name: 'str', dns_domain: 'str', port_details: 'obj',
    tags: 'list', created_at: 'str', updated_at: 'str', revision_number: 'int',
  },
  notFound: (id) => fiperr.notFound(id),
};

export function floatingIpInput(b: Body): FloatingIpInput {
  return {
    floating_network_id: str(b.floating_network_id), floating_ip_address: str(b.floating_ip_address), subnet_id: str(b.subnet_id),
    port_id: strOrNull(b.port_id), fixed_ip_address: strOrNull(b.fixed_ip_address), description: str(b.description),
    dns_name: str(b.dns_name), dns_domain: str(b.dns_domain), project: requestedProject(b), tags: tagsOf(b),
  };
}

export function floatingIpRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  collectionRoutes(app, {
    path: 'floatingips', key: 'floatingips', spec: floatingIpSpec,
    create: { member: 'floatingip', schema: FloatingIpCreate, readOnly: READ_ONLY, mode: 'POST' },
    update: {
      member: 'floatingip', schema: FloatingIpUpdate, mode: 'PUT',
      readOnly: [...READ_ONLY, 'project_id', 'tenant_id', 'floating_network_id', 'floating_ip_address', 'subnet_id', 'dns_name', 'dns_domain', 'tags'],
    },
    list: (auth, q) => listFloatingIps(deps, auth, { ids: filterValues(q, 'id'), fixedPortIds: filterValues(q, 'port_id') }),
    createMany: (auth, bodies) => createFloatingIps(deps, auth, bodies.map(floatingIpInput)),
    show: (auth, id) => showFloatingIp(deps, auth, id),
    change: (auth, id, body, rev) => updateFloatingIp(deps, auth, id, floatingIpInput(body), rev),
    remove: (auth, id, rev) => deleteFloatingIp(deps, auth, id, rev),
  });
}
