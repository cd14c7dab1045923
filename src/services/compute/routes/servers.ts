import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { isAllowed } from '../../../api/policy.ts';
import { BadRequest, NotFound } from '../../../common/errors.ts';
import { atLeast, boolParam, computeBase, intParam } from '../http.ts';
import { hostId, serverBrief, serverDetail } from '../render.ts';
import type { ComputeService, CreateServerInput, ServerFilters } from '../service.ts';
import type { Instance } from '../types.ts';

/** /servers: create, list, show, update, delete, metadata, tags, instance actions. */

const Count = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]);
const NetworkItem = Type.Object({
  uuid: Type.Optional(Type.String()), port: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  fixed_ip: Type.Optional(Type.String()), tag: Type.Optional(Type.String()),
}, { additionalProperties: false });
const Bdm = Type.Object({
  source_type: Type.Optional(Type.String()), destination_type: Type.Optional(Type.String()), uuid: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  boot_index: Type.Optional(Type.Union([Type.Integer(), Type.String(), Type.Null()])), volume_size: Type.Optional(Type.Union([Type.Integer(), Type.String(), Type.Null()])),
  delete_on_termination: Type.Optional(Type.Union([Type.Boolean(), Type.String()])), device_name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  guest_format: Type.Optional(Type.Union([Type.String(), Type.Null()])), disk_bus: Type.Optional(Type.String()), device_type: Type.Optional(Type.String()),
  volume_type: Type.Optional(Type.Union([Type.String(), Type.Null()])), tag: Type.Optional(Type.String()),
}, { additionalProperties: false });
const LegacyBdm = Type.Object({
  device_name: Type.Optional(Type.String({ maxLength: 255 })), volume_id: Type.Optional(Type.String()), snapshot_id: Type.Optional(Type.String()),
  volume_size: Type.Optional(Type.Union([Type.Integer(), Type.String(), Type.Null()])), delete_on_termination: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
  no_device: Type.Optional(Type.Union([Type.Boolean(), Type.String(), Type.Null()])), virtual_name: Type.Optional(Type.String()),
}, { additionalProperties: false });
const Metadata = Type.Record(Type.String({ minLength: 1, maxLength: 255 }), Type.String({ maxLength: 255 }));
const Tag = Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' });

const ServerCreate = Type.Object({
  server: Type.Object({
    name: Type.String({ minLength: 1, maxLength: 255 }),
    imageRef: Type.Optional(Type.String({ maxLength: 255 })),
    flavorRef: Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Integer()]),
    key_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    user_data: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    metadata: Type.Optional(Metadata),
    availability_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    networks: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('auto'), Type.Array(NetworkItem)])),
    config_drive: Type.Optional(Type.Union([Type.Boolean(), Type.String(), Type.Null()])),
    min_count: Type.Optional(Count), max_count: Type.Optional(Count),
    return_reservation_id: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 50 })),
    hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$' })),
    accessIPv4: Type.Optional(Type.String({ format: 'ipv4' })), accessIPv6: Type.Optional(Type.String({ format: 'ipv6' })),
    adminPass: Type.Optional(Type.String()),
    security_groups: Type.Optional(Type.Array(Type.Object({ name: Type.String() }, { additionalProperties: false }))),
    block_device_mapping_v2: Type.Optional(Type.Array(Bdm)),
    block_device_mapping: Type.Optional(Type.Array(LegacyBdm)),
    personality: Type.Optional(Type.Array(Type.Unknown())),
    'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
    trusted_image_certificates: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
    host: Type.Optional(Type.String()), hypervisor_hostname: Type.Optional(Type.String()),
  }, { additionalProperties: false }),
  'os:scheduler_hints': Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  'OS-SCH-HNT:scheduler_hints': Type.Optional(Type.Record(Type.String(), Type.Unknown())),
}, { additionalProperties: false });

const ServerUpdate = Type.Object({
  server: Type.Object({
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    accessIPv4: Type.Optional(Type.String()), accessIPv6: Type.Optional(Type.String()),
    hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    'OS-DCF:diskConfig': Type.Optional(Type.String()),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

const MetaBody = Type.Object({ metadata: Metadata }, { additionalProperties: false });
const MetaItemBody = Type.Object({ meta: Metadata }, { additionalProperties: false });
const TagsBody = Type.Object({ tags: Type.Array(Tag, { maxItems: 50 }) }, { additionalProperties: false });

type Params = { id: string };

/** ISO 8601 as Nova's date-time format accepts it. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** Metadata keys: 1-255 characters (JSON schema cannot constrain record keys). */
function checkMetadata(meta: Record<string, string> | undefined): void {
  for (const k of Object.keys(meta ?? {})) {
    if (k.length < 1 || k.length > 255) throw new BadRequest(`Invalid input for field/attribute metadata. Value: metadata keys must be 1 to 255 characters long.`);
  }
}

function count(v: string | number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new BadRequest(`Invalid input for field/attribute min_count. Value: ${String(v)}.`);
  return n;
}

function listOf(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  const arr = Array.isArray(v) ? v : [v];
  return arr.flatMap((x) => String(x).split(',')).map((s) => s.trim()).filter(Boolean);
}

function filtersFrom(q: Record<string, unknown>): ServerFilters {
  const keys = listOf(q.sort_key) ?? [];
  const dirs = listOf(q.sort_dir) ?? [];
  for (const d of dirs) if (d !== 'asc' && d !== 'desc') throw new BadRequest(`Invalid sort_dir: ${d}`);
  const time = (v: unknown, name: string) => {
    if (v === undefined) return undefined;
    const text = String(v);
    const t = ISO_TIME.test(text) ? Date.parse(text) : NaN;
    if (Number.isNaN(t)) throw new BadRequest(`Invalid input for query parameters ${name}. Value: ${text}. '${text}' is not a 'date-time'`);
    return new Date(t).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  };
  return {
    name: q.name as string | undefined, status: q.status as string | undefined, host: q.host as string | undefined,
    changesSince: time(q['changes-since'], 'changes-since'), changesBefore: time(q['changes-before'], 'changes-before'),
    allTenants: q.all_tenants !== undefined && boolParam(q.all_tenants) !== false,
    projectId: (q.project_id ?? q.tenant_id) as string | undefined, userId: q.user_id as string | undefined,
    image: q.image as string | undefined, flavor: q.flavor as string | undefined, reservationId: q.reservation_id as string | undefined,
    locked: boolParam(q.locked), tags: listOf(q.tags), tagsAny: listOf(q['tags-any']), notTags: listOf(q['not-tags']),
    notTagsAny: listOf(q['not-tags-any']), availabilityZone: q.availability_zone as string | undefined,
    deleted: boolParam(q.deleted), sortKeys: keys.map((k, i) => ({ key: k, dir: (dirs[i] ?? dirs[0] ?? 'desc') as 'asc' | 'desc' })),
    limit: intParam(q.limit, 'limit'), marker: q.marker as string | undefined,
  };
}

export function serverRoutes(app: FastifyInstance, compute: ComputeService, hostStatus: (host: string | null) => string): void {
  const detail = (req: FastifyRequest, inst: Instance) => serverDetail(req, req.ctx.auth!, inst, hostStatus);
  const nextLink = (req: FastifyRequest, path: string, last: Instance | undefined) => {
    if (!last) return undefined;
    const q = new URLSearchParams(req.query as Record<string, string>);
    q.set('marker', last.uuid);
    return [{ rel: 'next', href: `${computeBase(req)}/v2.1/${path}?${q.toString()}` }];
  };

  app.post<{ Body: Static<typeof ServerCreate> }>('/v2.1/servers', { schema: { body: ServerCreate } }, async (req, reply) => {
    const s = req.body.server;
    const hints = req.body['os:scheduler_hints'] ?? req.body['OS-SCH-HNT:scheduler_hints'] ?? {};
    if (atLeast(req, '2.37') && s.networks === undefined) throw new BadRequest("Invalid input for field/attribute server. Value: 'networks' is a required property");
    if (s.description !== undefined && !atLeast(req, '2.19')) throw new BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)");
    if (s.tags !== undefined && !atLeast(req, '2.52')) throw new BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)");
    if (s.hostname !== undefined && !atLeast(req, '2.90')) throw new BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('hostname' was unexpected)");
    checkMetadata(s.metadata);
    const minCount = count(s.min_count, 1);
    const maxCount = count(s.max_count, minCount);
    if (maxCount < minCount) throw new BadRequest('min_count must be <= max_count');
    const cd = s.config_drive;
    const input: CreateServerInput = {
      name: s.name, imageRef: s.imageRef ?? '', flavorRef: String(s.flavorRef), keyName: s.key_name, userData: s.user_data ?? undefined,
      metadata: s.metadata, availabilityZone: s.availability_zone, networks: s.networks,
      configDrive: cd === true || (typeof cd === 'string' && boolParam(cd) === true), minCount, maxCount, description: s.description,
      tags: s.tags, hostname: s.hostname, accessIPv4: s.accessIPv4, accessIPv6: s.accessIPv6,
      securityGroups: s.security_groups?.map((g) => g.name), group: typeof hints.group === 'string' ? hints.group : undefined,
      blockDeviceMappings: s.block_device_mapping_v2, legacyBlockDeviceMappings: s.block_device_mapping,
    };
    const created = await compute.create(req.ctx, req.ctx.auth!, input);
    void reply.code(202);
    if (s.return_reservation_id === true || s.return_reservation_id === 'True' || s.return_reservation_id === 'true') {
      return { reservation_id: created[0]!.reservationId };
    }
    const first = created[0]!;
    const server: Record<string, unknown> = {
      id: first.uuid, links: serverBrief(req, first).links, 'OS-DCF:diskConfig': 'MANUAL',
      adminPass: s.adminPass ?? Math.random().toString(36).slice(2, 14),
    };
    if (first.networks !== 'none') server.security_groups = (input.securityGroups?.length ? input.securityGroups : ['default']).map((name) => ({ name }));
    void reply.header('location', `${computeBase(req)}/v2.1/servers/${first.uuid}`);
    return { server };
  });

  const list = (detailed: boolean) => async (req: FastifyRequest<{ Querystring: Record<string, unknown> }>) => {
    const { items, more } = await compute.list(req.ctx.auth!, filtersFrom(req.query));
    const servers = items.map((i) => (detailed ? detail(req, i) : serverBrief(req, i)));
    const links = more || (req.query.limit !== undefined && items.length === Number(req.query.limit) && items.length > 0)
      ? nextLink(req, detailed ? 'servers/detail' : 'servers', items.at(-1)) : undefined;
    return links ? { servers, servers_links: links } : { servers };
  };
  app.get('/v2.1/servers', list(false));
  app.get('/v2.1/servers/detail', list(true));

  app.get<{ Params: Params }>('/v2.1/servers/:id', async (req) => {
    const inst = await compute.get(req.ctx.auth, req.params.id);
    return { server: detail(req, inst) };
  });

  app.put<{ Params: Params; Body: Static<typeof ServerUpdate> }>('/v2.1/servers/:id', { schema: { body: ServerUpdate } }, async (req) => {
    const b = req.body.server;
    if (b.description !== undefined && !atLeast(req, '2.19')) throw new BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)");
    const inst = await compute.update(req.ctx.auth!, req.params.id, b);
    return { server: serverDetail(req, req.ctx.auth!, inst, hostStatus, { minimal: !atLeast(req, '2.75') }) };
  });

  app.delete<{ Params: Params }>('/v2.1/servers/:id', async (req, reply: FastifyReply) => {
    await compute.delete(req.ctx, req.ctx.auth!, req.params.id);
    return reply.code(204).send();
  });

  // ---- metadata ----
  app.get<{ Params: Params }>('/v2.1/servers/:id/metadata', async (req) => {
    const inst = await compute.get(req.ctx.auth, req.params.id, 'os_compute_api:server-metadata:index');
    return { metadata: inst.metadata };
  });
  app.post<{ Params: Params; Body: Static<typeof MetaBody> }>('/v2.1/servers/:id/metadata', { schema: { body: MetaBody } }, async (req) => {
    checkMetadata(req.body.metadata);
    return { metadata: await compute.setMetadata(req.ctx.auth!, req.params.id, req.body.metadata, false) };
  });
  app.put<{ Params: Params; Body: Static<typeof MetaBody> }>('/v2.1/servers/:id/metadata', { schema: { body: MetaBody } }, async (req) => {
    checkMetadata(req.body.metadata);
    return { metadata: await compute.setMetadata(req.ctx.auth!, req.params.id, req.body.metadata, true) };
  });
  app.get<{ Params: Params & { key: string } }>('/v2.1/servers/:id/metadata/:key', async (req) => {
    const inst = await compute.get(req.ctx.auth, req.params.id, 'os_compute_api:server-metadata:index');
    if (!(req.params.key in inst.metadata)) throw new NotFound('Metadata item was not found');
    return { meta: { [req.params.key]: inst.metadata[req.params.key] } };
  });
  app.put<{ Params: Params & { key: string }; Body: Static<typeof MetaItemBody> }>('/v2.1/servers/:id/metadata/:key', { schema: { body: MetaItemBody } }, async (req) => {
    const entries = Object.entries(req.body.meta);
    if (entries.length !== 1) throw new BadRequest('Request body contains too many items');
    if (entries[0]![0] !== req.params.key) throw new BadRequest('Request body and URI mismatch');
    checkMetadata(req.body.meta);
    await compute.setMetadata(req.ctx.auth!, req.params.id, req.body.meta, false);
    return { meta: req.body.meta };
  });
  app.delete<{ Params: Params & { key: string } }>('/v2.1/servers/:id/metadata/:key', async (req, reply) => {
    await compute.deleteMetadata(req.ctx.auth!, req.params.id, req.params.key);
    return reply.code(204).send();
  });

  // ---- tags (2.26) ----
  const needTags = (req: FastifyRequest) => { if (!atLeast(req, '2.26')) throw new NotFound('The resource could not be found.'); };
  app.get<{ Params: Params }>('/v2.1/servers/:id/tags', async (req) => {
    needTags(req);
    return { tags: (await compute.get(req.ctx.auth, req.params.id, 'os_compute_api:os-server-tags:index')).tags };
  });
  app.put<{ Params: Params; Body: Static<typeof TagsBody> }>('/v2.1/servers/:id/tags', { schema: { body: TagsBody } }, async (req) => {
    needTags(req);
    return { tags: await compute.setTags(req.ctx.auth!, req.params.id, req.body.tags, true) };
  });
  app.delete<{ Params: Params }>('/v2.1/servers/:id/tags', async (req, reply) => {
    needTags(req);
    await compute.deleteTag(req.ctx.auth!, req.params.id, null);
    return reply.code(204).send();
  });
  app.get<{ Params: Params & { tag: string } }>('/v2.1/servers/:id/tags/:tag', async (req, reply) => {
    needTags(req);
    const inst = await compute.get(req.ctx.auth, req.params.id, 'os_compute_api:os-server-tags:index');
    if (!inst.tags.includes(req.params.tag)) throw new NotFound(`Tag ${req.params.tag} could not be found.`);
    return reply.code(204).send();
  });
  app.put<{ Params: Params & { tag: string } }>('/v2.1/servers/:id/tags/:tag', async (req, reply) => {
    needTags(req);
    const tag = req.params.tag;
    if (tag.length > 60 || /[,/]/.test(tag)) throw new BadRequest(`Tag '${tag}' is invalid.`);
    const inst = await compute.get(req.ctx.auth, req.params.id);
    const existed = inst.tags.includes(tag);
    await compute.setTags(req.ctx.auth!, req.params.id, [tag], false);
    void reply.header('location', `${computeBase(req)}/v2.1/servers/${req.params.id}/tags/${encodeURIComponent(tag)}`);
    return reply.code(existed ? 204 : 201).send();
  });
  app.delete<{ Params: Params & { tag: string } }>('/v2.1/servers/:id/tags/:tag', async (req, reply) => {
    needTags(req);
    await compute.deleteTag(req.ctx.auth!, req.params.id, req.params.tag);
    return reply.code(204).send();
  });

  // ---- instance actions ----
  app.get<{ Params: Params; Querystring: Record<string, unknown> }>('/v2.1/servers/:id/os-instance-actions', async (req) => {
    const inst = await compute.get(req.ctx.auth, req.params.id, 'os_compute_api:os-instance-actions:list', true);
    const rows = await compute.db.selectFrom('instance_actions').selectAll().where('instance_uuid', '=', inst.uuid).orderBy('start_time', 'desc').orderBy('id', 'desc').execute();
    return {
      instanceActions: rows.map((a) => ({
        action: a.action, instance_uuid: a.instance_uuid, message: a.message, project_id: a.project_id, request_id: a.request_id,
        start_time: a.start_time.slice(0, 26), user_id: a.user_id, ...(atLeast(req, '2.58') ? { updated_at: a.updated_at.slice(0, 26) } : {}),
      })),
    };
  });
  app.get<{ Params: Params & { rid: string } }>('/v2.1/servers/:id/os-instance-actions/:rid', async (req) => {
    const inst = await compute.get(req.ctx.auth, req.params.id, 'os_compute_api:os-instance-actions:list', true);
    const a = await compute.db.selectFrom('instance_actions').selectAll().where('instance_uuid', '=', inst.uuid).where('request_id', '=', req.params.rid).executeTakeFirst();
    if (!a) throw new NotFound(`Action for request_id ${req.params.rid} on instance ${inst.uuid} not found`);
    const events = await compute.db.selectFrom('instance_action_events').selectAll().where('action_id', '=', a.id).execute();
    const admin = isAllowed(req.ctx.auth!, 'os_compute_api:os-instance-actions:events:details');
    return {
      instanceAction: {
        action: a.action, instance_uuid: a.instance_uuid, message: a.message, project_id: a.project_id, request_id: a.request_id,
        start_time: a.start_time.slice(0, 26), user_id: a.user_id, ...(atLeast(req, '2.58') ? { updated_at: a.updated_at.slice(0, 26) } : {}),
        events: events.map((e) => ({
          event: e.event, start_time: e.start_time.slice(0, 26), finish_time: e.finish_time?.slice(0, 26) ?? null, result: e.result,
          ...(admin ? { traceback: e.traceback } : {}),
          ...(atLeast(req, '2.62') ? { hostId: hostId(inst.projectId, e.host), ...(admin ? { host: e.host ?? '' } : {}) } : {}),
          ...(atLeast(req, '2.84') ? { details: e.details } : {}),
        })),
      },
    };
  });

}
