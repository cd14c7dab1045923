import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { send, updateBody } from '../http.ts';
import { caller } from '../policy.ts';
import type { ResourceSpec } from '../query.ts';
import {
  addRouterInterface, changeExtraRoutes, createRouters, deleteRouter, l3err, listRouters, removeRouterInterface, showRouter, updateRouter,
  type GatewayInput, type InterfaceRequest, type RouteInput, type RouterInput,
} from '../routers.ts';
import type { Json, NetworkDeps } from '../types.ts';
import { bool, collectionRoutes, requestedProject, str, strList, tagsOf, type Body } from './crud.ts';

/**
 * /v2.0/routers, with the member actions add_router_interface / remove_router_interface
 * (router extension) and add_extraroutes / remove_extraroutes (extraroute-atomic).
 */

const s = (max = 255) => Type.String({ maxLength: max });
const FixedIp = Type.Object({ subnet_id: Type.Optional(Type.String()), ip_address: Type.Optional(Type.String()) }, { additionalProperties: false });
const GatewayInfo = Type.Union([Type.Null(), Type.Object({
  network_id: Type.Optional(Type.String()), enable_snat: Type.Optional(Type.Boolean()), external_fixed_ips: Type.Optional(Type.Array(FixedIp)),
}, { additionalProperties: false })]);
const Routes = Type.Union([Type.Null(), Type.Array(Type.Object({}, { additionalProperties: true }))]);
const common = {
  name: Type.Optional(s()),
  description: Type.Optional(s()),
  admin_state_up: Type.Optional(Type.Boolean()),
  external_gateway_info: Type.Optional(GatewayInfo),
  distributed: Type.Optional(Type.Boolean()),
  ha: Type.Optional(Type.Boolean()),
};
export const RouterCreate = Type.Object({
  ...common,
  availability_zone_hints: Type.Optional(Type.Array(s())),
  flavor_id: Type.Optional(Type.Union([Type.Null(), Type.String()])),
  project_id: Type.Optional(s()),
  tenant_id: Type.Optional(s()),
  tags: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
export const RouterUpdate = Type.Object({ ...common, routes: Type.Optional(Routes) }, { additionalProperties: false });
const RoutesBody = Type.Object({ routes: Type.Array(Type.Object({}, { additionalProperties: true })) }, { additionalProperties: false });

const READ_ONLY = ['id', 'status', 'availability_zones', 'created_at', 'updated_at', 'revision_number'];

export const routerSpec: ResourceSpec = {
  member: 'router', collection: 'routers',
  attrs: {
    id: 'str', name: 'str', description: 'str', project_id: 'str', tenant_id: 'str', status: 'str', admin_state_up: 'bool',
    external_gateway_info: 'obj', routes: 'obj', availability_zone_hints: 'list', availability_zones: 'list', flavor_id: 'str',
    distributed: 'bool', ha: 'bool', tags: 'list', created_at: 'str', updated_at: 'str', revision_number: 'int',
  },
  notFound: (id) => l3err.routerNotFound(id),
};

function gatewayOf(v: Json | undefined): GatewayInput | null | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const out: GatewayInput = {};
  if (typeof v.network_id === 'string') out.network_id = v.network_id;
  if (typeof v.enable_snat === 'boolean') out.enable_snat = v.enable_snat;
  if (Array.isArray(v.external_fixed_ips)) out.external_fixed_ips = v.external_fixed_ips as { subnet_id?: string; ip_address?: string }[];
  return out;
}

export function routerInput(b: Body): RouterInput {
  return {
    name: str(b.name), description: str(b.description), admin_state_up: bool(b.admin_state_up), external_gateway_info: gatewayOf(b.external_gateway_info),
    distributed: bool(b.distributed), ha: bool(b.ha), availability_zone_hints: strList(b.availability_zone_hints),
    flavor_id: b.flavor_id === null ? null : str(b.flavor_id),
    routes: b.routes === undefined ? undefined : Array.isArray(b.routes) ? (b.routes as RouteInput[]) : [],
    project: requestedProject(b), tags: tagsOf(b),
  };
}

const idOf = (req: FastifyRequest): string => (req.params as { id: string }).id;

export function routerRoutes(app: FastifyInstance, deps: NetworkDeps): void {
  collectionRoutes(app, {
    path: 'routers', key: 'routers', spec: routerSpec,
    create: { member: 'router', schema: RouterCreate, readOnly: [...READ_ONLY, 'routes'], mode: 'POST' },
    update: { member: 'router', schema: RouterUpdate, readOnly: [...READ_ONLY, 'project_id', 'tenant_id', 'availability_zone_hints', 'flavor_id', 'tags'], mode: 'PUT' },
    list: (auth) => listRouters(deps, auth),
    createMany: (auth, bodies) => createRouters(deps, auth, bodies.map(routerInput)),
    show: (auth, id) => showRouter(deps, auth, id),
    change: (auth, id, body, rev) => updateRouter(deps, auth, id, routerInput(body), rev),
    remove: (auth, id, rev) => deleteRouter(deps, auth, id, rev),
  });
  const interfaceBody = (req: FastifyRequest): InterfaceRequest | undefined => {
    const b: unknown = req.body;
    return b !== null && typeof b === 'object' && !Array.isArray(b) ? (b as InterfaceRequest) : undefined;
  };
  app.put('/v2.0/routers/:id/add_router_interface', async (req, reply) =>
    send(reply, 200, await addRouterInterface(deps, caller(req.ctx.auth), idOf(req), interfaceBody(req))));
  app.put('/v2.0/routers/:id/remove_router_interface', async (req, reply) =>
    send(reply, 200, await removeRouterInterface(deps, caller(req.ctx.auth), idOf(req), interfaceBody(req))));
  for (const action of ['add', 'remove'] as const) {
    app.put(`/v2.0/routers/:id/${action}_extraroutes`, async (req, reply) => {
      const auth = caller(req.ctx.auth);
      const body = updateBody({ member: 'router', schema: RoutesBody, readOnly: [], mode: 'PUT' }, req.body);
      return send(reply, 200, { router: await changeExtraRoutes(deps, auth, idOf(req), action, body.routes as RouteInput[]) });
    });
  }
}
