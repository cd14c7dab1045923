import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import * as att from '../attachments.ts';
import { err } from '../errors.ts';
import { atLeast, check, isObj, listQuery, member, metadataRoutes, nextLink, optBool, page, parseBool, parseMetadata, parseSize, send, v3, who, type Obj } from '../http.ts';
import { authorize } from '../policy.ts';
import { volumeSummary, volumeView } from '../render.ts';
import type { VolumeService } from '../service.ts';
import type { Json, VolumeRecord } from '../types.ts';
import * as vols from '../volumes.ts';

/** /v3/volumes: CRUD, metadata, image metadata and the os-* actions. */

const str = (max = 255) => Type.String({ maxLength: max });
const nullableStr = (max = 255) => Type.Union([Type.Null(), str(max)]);
const VolumeCreate = Type.Object({
  size: Type.Optional(Type.Union([Type.Null(), Type.Integer(), Type.String()])),
  name: Type.Optional(nullableStr()), display_name: Type.Optional(nullableStr()),
  description: Type.Optional(nullableStr()), display_description: Type.Optional(nullableStr()),
  volume_type: Type.Optional(nullableStr()), availability_zone: Type.Optional(nullableStr()),
  metadata: Type.Optional(Type.Union([Type.Null(), Type.Record(Type.String(), Type.Unknown())])),
  imageRef: Type.Optional(nullableStr()), image_id: Type.Optional(nullableStr()),
  snapshot_id: Type.Optional(nullableStr()), source_volid: Type.Optional(nullableStr()), backup_id: Type.Optional(nullableStr()),
  multiattach: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
  consistencygroup_id: Type.Optional(Type.Null()), group_id: Type.Optional(Type.Null()), source_replica: Type.Optional(Type.Null()),
  scheduler_hints: Type.Optional(Type.Unknown()),
}, { additionalProperties: false });
const VolumeUpdate = Type.Object({
  name: Type.Optional(nullableStr()), display_name: Type.Optional(nullableStr()),
  description: Type.Optional(nullableStr()), display_description: Type.Optional(nullableStr()),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
}, { additionalProperties: false });

export async function renderVolume(req: FastifyRequest, svc: VolumeService, v: VolumeRecord, show = true) {
  return volumeView(req, who(req), v, { typeName: await svc.typeName(v.volume_type_id), attachments: await svc.attachmentsOf([v.id]) }, show);
}

const ctxOf = (req: FastifyRequest) => ({ auth: who(req), requestId: req.id });
const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

export function volumeRoutes(app: FastifyInstance, svc: VolumeService): void {
  const r = v3(app);
  const deps = svc.deps;

  r.post('/volumes', async (req, reply) => {
    const ctx = ctxOf(req);
    const b = check(VolumeCreate, member(req.body, 'volume'), 'volume');
    const v = await vols.createVolume(svc.ops, ctx, {
      size: b.size === undefined || b.size === null ? undefined : parseSize(b.size),
      name: b.name ?? b.display_name ?? undefined, description: b.description ?? b.display_description ?? undefined,
      volumeType: b.volume_type ?? undefined, availabilityZone: b.availability_zone ?? undefined,
      metadata: b.metadata ? parseMetadata(b.metadata) : undefined,
      imageRef: b.imageRef ?? b.image_id ?? undefined, snapshotId: b.snapshot_id ?? undefined, sourceVolid: b.source_volid ?? undefined,
      backupId: atLeast(req, '3.47') ? b.backup_id ?? undefined : undefined,
      multiattach: optBool(b.multiattach, 'multiattach'),
    });
    return send(reply, 202, { volume: await renderVolume(req, svc, v, false) });
  });

  const list = (detail: boolean) => async (req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const auth = who(req);
    const q = listQuery(req, ['id', 'name', 'status', 'size', 'created_at', 'updated_at', 'availability_zone', 'bootable', 'volume_type']);
    const all = await vols.listVolumes(deps, auth, q.allTenants, q.projectFilter, q.filters);
    const p = page(all, q);
    const body: Obj = { volumes: detail ? await Promise.all(p.items.map((v) => renderVolume(req, svc, v))) : p.items.map((v) => volumeSummary(req, v)) };
    if (p.more) body.volumes_links = nextLink(req, 'volumes', p.items[p.items.length - 1]!.id, q);
    if (atLeast(req, '3.45') && (req.query as Obj).with_count !== undefined && parseBool((req.query as Obj).with_count, 'with_count')) body.count = all.length;
    return send(reply, 200, body);
  };
  r.get('/volumes', list(false));
  r.get('/volumes/detail', list(true));

  r.get('/volumes/summary', async (req, reply) => {
    const auth = who(req);
    const q = listQuery(req, []);
    const all = await vols.listVolumes(deps, auth, q.allTenants, q.projectFilter, {});
    const summary: Obj = { total_count: all.length, total_size: all.reduce((a, v) => a + v.size, 0) };
    if (atLeast(req, '3.36')) {
      const meta: Record<string, string[]> = {};
      for (const v of all) for (const [k, val] of Object.entries(v.metadata)) (meta[k] ??= []).includes(val) || meta[k]!.push(val);
      summary.metadata = meta;
    }
    return send(reply, 200, { 'volume-summary': summary });
  });

  r.get('/volumes/:id', async (req, reply) => {
    const v = await vols.visibleVolume(deps, who(req), idOf(req));
    return send(reply, 200, { volume: await renderVolume(req, svc, v) });
  });

  r.put('/volumes/:id', async (req, reply) => {
    const b = check(VolumeUpdate, member(req.body, 'volume'), 'volume');
    if (Object.keys(b).length === 0) throw err.badField('volume', b, `{} should be non-empty`);
    const v = await vols.updateVolume(deps, who(req), idOf(req), {
      ...(b.name !== undefined || b.display_name !== undefined ? { name: b.name ?? b.display_name ?? '' } : {}),
      ...(b.description !== undefined || b.display_description !== undefined ? { description: b.description ?? b.display_description ?? '' } : {}),
      ...(b.metadata ? { metadata: parseMetadata(b.metadata) } : {}),
    });
    return send(reply, 200, { volume: await renderVolume(req, svc, v, false) });
  });

  r.delete('/volumes/:id', async (req, reply) => {
    const q = req.query as Obj;
    await vols.deleteVolume(svc.ops, ctxOf(req), idOf(req), { cascade: optBool(q.cascade, 'cascade') ?? false, force: optBool(q.force, 'force') ?? false });
    return send(reply, 202);
  });

  metadataRoutes(app, '/volumes', {
    get: async (req, id) => (await vols.visibleVolume(deps, who(req), id, 'volume:get_volume_metadata')).metadata,
    set: (req, id, meta, replace) => vols.setMetadata(deps, who(req), id, meta, replace),
    remove: (req, id, key) => vols.deleteMetadataKey(deps, who(req), id, key),
    notFound: (id, key) => err.metadataNotFound(id, key),
  });

  r.post('/volumes/:id/action', async (req, reply) => {
    if (!isObj(req.body) || Object.keys(req.body).length !== 1) throw err.badRequest('There is no such action: ' + JSON.stringify(req.body ?? null));
    const [action, rawArgs] = Object.entries(req.body)[0]!;
    const args: Obj = isObj(rawArgs) ? rawArgs : {};
    const ctx = ctxOf(req);
    const id = idOf(req);
    const auth = ctx.auth;
    const connector = (): Record<string, Json> => {
      if (!isObj(args.connector)) throw err.badField('connector', args.connector, `${JSON.stringify(args.connector ?? null)} is not of type 'object'`);
      return args.connector as Record<string, Json>;
    };
    switch (action) {
      case 'os-extend': {
        const size = parseSize(args.new_size, 'new_size');
        await vols.extendVolume(svc.ops, ctx, id, size, atLeast(req, '3.42'));
        return send(reply, 202);
      }
      case 'os-set_bootable': await vols.setBootable(deps, auth, id, parseBool(args.bootable, 'bootable')); return send(reply, 200);
      case 'os-update_readonly_flag': await vols.setReadonly(deps, auth, id, parseBool(args.readonly, 'readonly')); return send(reply, 202);
      case 'os-reset_status':
        await vols.resetStatus(deps, auth, id, {
          status: typeof args.status === 'string' ? args.status.toLowerCase() : undefined, attachStatus: typeof args.attach_status === 'string' ? args.attach_status : undefined,
          migrationStatus: typeof args.migration_status === 'string' ? args.migration_status : undefined,
        });
        return send(reply, 202);
      case 'os-force_delete': await vols.forceDelete(svc.ops, ctx, id); return send(reply, 202);
      case 'os-retype':
        if (typeof args.new_type !== 'string') throw err.badField('new_type', args.new_type, `'new_type' is a required property`);
        await vols.retype(deps, auth, id, args.new_type);
        return send(reply, 202);
      case 'os-volume_upload_image': {
        if (typeof args.image_name !== 'string' || args.image_name === '') throw err.badField('image_name', args.image_name, `'image_name' is a required property`);
        const { v, imageId } = await vols.uploadToImage(svc.ops, ctx, id, {
          imageName: args.image_name, force: optBool(args.force, 'force') ?? false, diskFormat: typeof args.disk_format === 'string' ? args.disk_format : 'raw',
          containerFormat: typeof args.container_format === 'string' ? args.container_format : 'bare',
          visibility: typeof args.visibility === 'string' ? args.visibility : 'private', protected: optBool(args.protected, 'protected') ?? false,
        });
        return send(reply, 202, { 'os-volume_upload_image': {
          id: v.id, updated_at: v.updated_at, status: 'uploading', display_description: v.description || null, size: v.size,
          volume_type: { name: await svc.typeName(v.volume_type_id) }, image_id: imageId, container_format: args.container_format ?? 'bare',
          disk_format: args.disk_format ?? 'raw', image_name: args.image_name,
        } });
      }
      case 'os-set_image_metadata': {
        const meta = parseMetadata(args.metadata);
        return send(reply, 200, { metadata: await vols.setImageMetadata(deps, auth, id, meta) });
      }
      case 'os-unset_image_metadata':
        if (typeof args.key !== 'string') throw err.badField('key', args.key, `'key' is a required property`);
        await vols.unsetImageMetadata(deps, auth, id, args.key);
        return send(reply, 200);
      case 'os-show_image_metadata': {
        const v = await vols.visibleVolume(deps, auth, id, 'volume:get_volume_image_metadata');
        return send(reply, 200, { metadata: v.image_metadata });
      }
      case 'os-reserve': await att.osReserve(deps, auth, id); return send(reply, 202);
      case 'os-unreserve': await att.osUnreserve(deps, auth, id); return send(reply, 202);
      case 'os-begin_detaching': await att.osBeginDetaching(deps, auth, id); return send(reply, 202);
      case 'os-roll_detaching': await att.osRollDetaching(deps, auth, id); return send(reply, 202);
      case 'os-initialize_connection':
        return send(reply, 200, { connection_info: await att.osInitialize(deps, auth, id, connector(), req.log) });
      case 'os-terminate_connection': await att.osTerminate(deps, auth, id, connector(), req.log); return send(reply, 202);
      case 'os-attach': {
        if (typeof args.mountpoint !== 'string') throw err.badField('mountpoint', args.mountpoint, `'mountpoint' is a required property`);
        const mode = args.mode === undefined ? 'rw' : args.mode;
        if (mode !== 'rw' && mode !== 'ro') throw err.invalidInput(`Invalid attaching mode '${String(mode)}' for volume ${id}.`);
        await att.osAttach(deps, auth, id, {
          instanceUuid: typeof args.instance_uuid === 'string' ? args.instance_uuid : undefined, hostName: typeof args.host_name === 'string' ? args.host_name : undefined,
          mountpoint: args.mountpoint, mode,
        });
        return send(reply, 202);
      }
      case 'os-detach': await att.osDetach(deps, auth, id, typeof args.attachment_id === 'string' ? args.attachment_id : undefined, req.log); return send(reply, 202);
      case 'os-force_detach': {
        const v = await vols.visibleVolume(deps, auth, id);
        authorize(auth, 'volume_extension:volume_admin_actions:force_detach', { project_id: v.project_id });
        await att.osDetach(deps, auth, id, typeof args.attachment_id === 'string' ? args.attachment_id : undefined, req.log, true);
        return send(reply, 202);
      }
      default: throw err.badRequest(`There is no such action: ${action}`);
    }
  });
}
