import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { atLeast, intParam, validateBody } from '../http.ts';
import { attachmentView, attachVolume, detachVolume, listAttachments, showAttachment, updateAttachment, type ViewOptions } from '../lifecycle/volumes.ts';
import type { ComputeService } from '../service.ts';

/**
 * Nova's os-volume_attachments: GET/POST /servers/{id}/os-volume_attachments,
 * GET/PUT/DELETE /servers/{id}/os-volume_attachments/{volume_id}. `tag` from 2.49,
 * `delete_on_termination` from 2.79 (shown from 2.79, updatable from 2.85), attachment_id
 * and bdm_uuid in place of id from 2.89; shelved servers take attachments from 2.20.
 */

const Uuid = Type.String({ format: 'uuid' });
const Device = Type.Union([Type.String({ pattern: '(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$' }), Type.Null()]);
const Tag = Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' });

function attachSchema(req: FastifyRequest) {
  return Type.Object({
    volumeAttachment: Type.Object({
      volumeId: Uuid,
      device: Type.Optional(Device),
      ...(atLeast(req, '2.49') ? { tag: Type.Optional(Tag) } : {}),
      ...(atLeast(req, '2.79') ? { delete_on_termination: Type.Optional(Type.Boolean()) } : {}),
    }, { additionalProperties: false }),
  }, { additionalProperties: false });
}

function updateSchema(req: FastifyRequest) {
  return Type.Object({
    volumeAttachment: Type.Object({
      volumeId: Uuid,
      ...(atLeast(req, '2.85') ? {
        id: Type.Optional(Uuid), serverId: Type.Optional(Uuid), device: Type.Optional(Device), tag: Type.Optional(Type.Union([Tag, Type.Null()])),
        delete_on_termination: Type.Optional(Type.Boolean()),
      } : {}),
    }, { additionalProperties: false }),
  }, { additionalProperties: false });
}

function viewOptions(req: FastifyRequest): ViewOptions {
  return { tag: atLeast(req, '2.70'), deleteOnTermination: atLeast(req, '2.79'), attachmentIds: atLeast(req, '2.89') };
}

type Params = { id: string };
type VolParams = Params & { volume: string };

export function volumeAttachmentRoutes(app: FastifyInstance, compute: ComputeService): void {
  const base = '/v2.1/servers/:id/os-volume_attachments';

  app.get<{ Params: Params; Querystring: Record<string, unknown> }>(base, async (req) => {
    const page = { limit: intParam(req.query.limit, 'limit'), offset: intParam(req.query.offset, 'offset') };
    const opts = viewOptions(req);
    return { volumeAttachments: (await listAttachments(compute, req.ctx.auth!, req.params.id, page)).map((b) => attachmentView(b, opts)) };
  });

  app.get<{ Params: VolParams }>(`${base}/:volume`, async (req) => ({
    volumeAttachment: attachmentView(await showAttachment(compute, req.ctx.auth!, req.params.id, req.params.volume), viewOptions(req)),
  }));

  app.post<{ Params: Params; Body: unknown }>(base, async (req) => {
    const a = validateBody(attachSchema(req), req.body, 'volumeAttachment').volumeAttachment as {
      volumeId: string; device?: string | null; tag?: string; delete_on_termination?: boolean;
    };
    const bdm = await attachVolume(compute, req.ctx, req.ctx.auth!, req.params.id, {
      volumeId: a.volumeId, device: a.device, tag: a.tag, deleteOnTermination: a.delete_on_termination,
      shelvedOk: atLeast(req, '2.20'), multiattachOk: atLeast(req, '2.60'),
    });
    return { volumeAttachment: attachmentView(bdm, viewOptions(req)) };
  });

  app.put<{ Params: VolParams; Body: unknown }>(`${base}/:volume`, async (req, reply) => {
    const a = validateBody(updateSchema(req), req.body, 'volumeAttachment').volumeAttachment as {
      volumeId: string; id?: string; serverId?: string; device?: string | null; tag?: string | null; delete_on_termination?: boolean;
    };
    await updateAttachment(compute, req.ctx.auth!, req.params.id, req.params.volume, a, atLeast(req, '2.85'));
    return reply.code(202).send();
  });

  app.delete<{ Params: VolParams }>(`${base}/:volume`, async (req, reply) => {
    await detachVolume(compute, req.ctx, req.ctx.auth!, req.params.id, req.params.volume, atLeast(req, '2.20'));
    return reply.code(202).send();
  });
}
