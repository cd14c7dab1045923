import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { NotFound } from '../../../common/errors.ts';
import { newId } from '../../../common/ids.ts';
import type { IdentityService } from '../service.ts';
import * as store from '../store.ts';
import { collectionLinks, renderEndpoint, renderProject, v3Base } from '../render.ts';
import type { EndpointGroup } from '../types.ts';
import { requireProject } from './resources.ts';

/**
 * OS-EP-FILTER: endpoint groups (filters over service, region and interface) and
 * associations of endpoints or groups with projects. A project with any association
 * gets only those endpoints in its catalog (IdentityService.catalog applies it).
 */
const Filters = Type.Object({
  service_id: Type.Optional(Type.String({ maxLength: 64 })), region_id: Type.Optional(Type.String({ maxLength: 255 })),
  interface: Type.Optional(Type.Union([Type.Literal('public'), Type.Literal('internal'), Type.Literal('admin')])),
}, { additionalProperties: false, minProperties: 1 });
const GroupCreate = Type.Object({ endpoint_group: Type.Object({
  name: Type.String({ minLength: 1, maxLength: 255 }), description: Type.Optional(Type.Union([Type.String(), Type.Null()])), filters: Filters,
}) });
const GroupUpdate = Type.Object({ endpoint_group: Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), description: Type.Optional(Type.Union([Type.String(), Type.Null()])), filters: Type.Optional(Filters),
}, { minProperties: 1 }) });

const P = '/v3/OS-EP-FILTER';
const render = (base: string, g: EndpointGroup) => ({
  id: g.id, name: g.name, description: g.description, filters: g.filters, links: { self: `${base}/OS-EP-FILTER/endpoint_groups/${g.id}` },
});

export function endpointFilterRoutes(app: FastifyInstance, identity: IdentityService): void {
  const db = identity.db;
  const requireGroup = async (id: string) => {
    const g = await store.getEndpointGroup(db, id);
    if (!g) throw new NotFound(`Could not find endpoint group: ${id}.`);
    return g;
  };
  const requireEndpoint = async (id: string) => {
    const e = await store.getEndpoint(db, id);
    if (!e) throw new NotFound(`Could not find endpoint: ${id}.`);
    return e;
  };

  app.post<{ Body: Static<typeof GroupCreate> }>(`${P}/endpoint_groups`, { schema: { body: GroupCreate } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_endpoint_group');
    const b = req.body.endpoint_group;
    const g: EndpointGroup = { id: newId(), name: b.name, description: b.description ?? '', filters: b.filters };
    await store.insertEndpointGroup(db, g);
    await identity.changed('catalog');
    return reply.code(201).send({ endpoint_group: render(v3Base(req), g) });
  });
  app.get<{ Querystring: { name?: string } }>(`${P}/endpoint_groups`, async (req) => {
    enforce(req.ctx.auth, 'identity:list_endpoint_groups');
    return { endpoint_groups: (await store.listEndpointGroups(db, { name: req.query.name })).map((g) => render(v3Base(req), g)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>(`${P}/endpoint_groups/:id`, async (req) => {
    enforce(req.ctx.auth, 'identity:get_endpoint_group');
    return { endpoint_group: render(v3Base(req), await requireGroup(req.params.id)) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof GroupUpdate> }>(`${P}/endpoint_groups/:id`, { schema: { body: GroupUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'identity:update_endpoint_group');
    const g = await requireGroup(req.params.id);
    const b = req.body.endpoint_group;
    if (b.name !== undefined) g.name = b.name;
    if (b.description !== undefined) g.description = b.description ?? '';
    if (b.filters !== undefined) g.filters = b.filters;
    await store.updateEndpointGroup(db, g);
    await identity.changed('catalog');
    return { endpoint_group: render(v3Base(req), g) };
  });
  app.delete<{ Params: { id: string } }>(`${P}/endpoint_groups/:id`, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:delete_endpoint_group');
    await requireGroup(req.params.id);
    await store.deleteEndpointGroup(db, req.params.id);
    await identity.changed('catalog');
    return reply.code(204).send();
  });
  app.get<{ Params: { id: string } }>(`${P}/endpoint_groups/:id/endpoints`, async (req) => {
    enforce(req.ctx.auth, 'identity:list_endpoints_associated_with_endpoint_group');
    const g = await requireGroup(req.params.id);
    const all = await store.listEndpoints(db, { service_id: g.filters.service_id, region_id: g.filters.region_id, interface: g.filters.interface });
    return { endpoints: all.map((e) => renderEndpoint(v3Base(req), e)), links: collectionLinks(req) };
  });
  app.get<{ Params: { id: string } }>(`${P}/endpoint_groups/:id/projects`, async (req) => {
    enforce(req.ctx.auth, 'identity:list_projects_associated_with_endpoint_group');
    await requireGroup(req.params.id);
    const ids = (await store.groupProjectPairs(db, { groupId: req.params.id })).map((r) => r.project_id);
    return { projects: (await store.listProjects(db, { ids })).map((p) => renderProject(v3Base(req), p)), links: collectionLinks(req) };
  });
  app.put<{ Params: { id: string; pid: string } }>(`${P}/endpoint_groups/:id/projects/:pid`, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:add_endpoint_group_to_project');
    await requireGroup(req.params.id);
    await requireProject(db, req.params.pid);
    await store.associateGroupProject(db, req.params.id, req.params.pid);
    await identity.changed('catalog');
    return reply.code(204).send();
  });
  app.get<{ Params: { id: string; pid: string } }>(`${P}/endpoint_groups/:id/projects/:pid`, async (req) => {
    enforce(req.ctx.auth, 'identity:get_endpoint_group_in_project');
    const g = await requireGroup(req.params.id);
    const p = await requireProject(db, req.params.pid);
    if (!(await store.groupProjectPairs(db, { groupId: g.id, projectId: p.id })).length) throw new NotFound(`Endpoint group ${g.id} is not associated with project ${p.id}.`);
    return { project: renderProject(v3Base(req), p) };
  });
  app.delete<{ Params: { id: string; pid: string } }>(`${P}/endpoint_groups/:id/projects/:pid`, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:remove_endpoint_group_from_project');
    if (!(await store.dissociateGroupProject(db, req.params.id, req.params.pid))) throw new NotFound(`Endpoint group ${req.params.id} is not associated with project ${req.params.pid}.`);
    await identity.changed('catalog');
    return reply.code(204).send();
  });
  app.get<{ Params: { pid: string } }>(`${P}/projects/:pid/endpoint_groups`, async (req) => {
    enforce(req.ctx.auth, 'identity:list_endpoint_groups_for_project');
    await requireProject(db, req.params.pid);
    const ids = (await store.groupProjectPairs(db, { projectId: req.params.pid })).map((r) => r.endpoint_group_id);
    return { endpoint_groups: (await store.listEndpointGroups(db, { ids })).map((g) => render(v3Base(req), g)), links: collectionLinks(req) };
  });

  app.put<{ Params: { pid: string; eid: string } }>(`${P}/projects/:pid/endpoints/:eid`, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:add_endpoint_to_project');
    await requireProject(db, req.params.pid);
    await requireEndpoint(req.params.eid);
    await store.associateEndpointProject(db, req.params.eid, req.params.pid);
    await identity.changed('catalog');
    return reply.code(204).send();
  });
  app.get<{ Params: { pid: string; eid: string } }>(`${P}/projects/:pid/endpoints/:eid`, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:check_endpoint_in_project');
    await requireProject(db, req.params.pid);
    await requireEndpoint(req.params.eid);
    if (!(await store.endpointProjectPairs(db, { endpointId: req.params.eid, projectId: req.params.pid })).length) throw new NotFound(`Endpoint ${req.params.eid} is not associated with project ${req.params.pid}.`);
    return reply.code(204).send();
  });
  app.delete<{ Params: { pid: string; eid: string } }>(`${P}/projects/:pid/endpoints/:eid`, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:remove_endpoint_from_project');
    if (!(await store.dissociateEndpointProject(db, req.params.eid, req.params.pid))) throw new NotFound(`Endpoint ${req.params.eid} is not associated with project ${req.params.pid}.`);
    await identity.changed('catalog');
    return reply.code(204).send();
  });
  app.get<{ Params: { pid: string } }>(`${P}/projects/:pid/endpoints`, async (req) => {
    enforce(req.ctx.auth, 'identity:list_endpoints_for_project');
    await requireProject(db, req.params.pid);
    const ids = new Set(await identity.filteredEndpointIds(req.params.pid) ?? []);
    const all = await store.listEndpoints(db);
    return { endpoints: all.filter((e) => ids.has(e.id)).map((e) => renderEndpoint(v3Base(req), e)), links: collectionLinks(req) };
  });
  app.get<{ Params: { eid: string } }>(`${P}/endpoints/:eid/projects`, async (req) => {
    enforce(req.ctx.auth, 'identity:list_projects_for_endpoint');
    await requireEndpoint(req.params.eid);
    const ids = (await store.endpointProjectPairs(db, { endpointId: req.params.eid })).map((r) => r.project_id);
    return { projects: (await store.listProjects(db, { ids })).map((p) => renderProject(v3Base(req), p)), links: collectionLinks(req) };
  });
}
