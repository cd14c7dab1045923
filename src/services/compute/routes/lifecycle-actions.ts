import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { BadRequest } from '../../../common/errors.ts';
import { atLeast, computeBase, validateBody } from '../http.ts';
import { forceDelete, resetState, restore } from '../lifecycle/admin.ts';
import { createBackup } from '../lifecycle/backup.ts';
import { rebuild, type RebuildInput } from '../lifecycle/rebuild.ts';
import { rescue, unrescue } from '../lifecycle/rescue.ts';
import { confirmResize, resize, revertResize } from '../lifecycle/resize.ts';
import { shelve, shelveOffload, unshelve } from '../lifecycle/shelve.ts';
import { serverDetail } from '../render.ts';
import type { ComputeService } from '../service.ts';

/**
 * The lifecycle actions of POST /servers/{id}/action: rebuild, resize and its confirm/revert,
 * shelve/shelveOffload/unshelve, rescue/unrescue, os-resetState, restore and forceDelete.
 * Arguments are checked against Nova's schemas for the request's microversion.
 */

const Metadata = Type.Record(Type.String({ minLength: 1, maxLength: 255 }), Type.String({ maxLength: 255 }));
const ImageRefString = Type.String({ minLength: 1, maxLength: 255 });

function rebuildSchema(req: FastifyRequest) {
  return Type.Object({
    imageRef: ImageRefString,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    adminPass: Type.Optional(Type.String()),
    metadata: Type.Optional(Metadata),
    preserve_ephemeral: Type.Optional(Type.Boolean()),
    'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
    accessIPv4: Type.Optional(Type.String({ format: 'ipv4' })),
    accessIPv6: Type.Optional(Type.String({ format: 'ipv6' })),
    ...(!atLeast(req, '2.57') ? { personality: Type.Optional(Type.Array(Type.Unknown())) } : {}),
    ...(atLeast(req, '2.19') ? { description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])) } : {}),
    ...(atLeast(req, '2.54') ? { key_name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])) } : {}),
    ...(atLeast(req, '2.57') ? { user_data: Type.Optional(Type.Union([Type.String({ maxLength: 65535 }), Type.Null()])) } : {}),
    ...(atLeast(req, '2.63') ? { trusted_image_certificates: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])) } : {}),
    ...(atLeast(req, '2.90') ? { hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$' })) } : {}),
  }, { additionalProperties: false });
}

const ResizeArgs = Type.Object({
  flavorRef: Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Integer({ minimum: 1 })]),
  'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
}, { additionalProperties: false });
const RescueArgs = Type.Object({
  adminPass: Type.Optional(Type.String()),
  rescue_image_ref: Type.Optional(ImageRefString),
}, { additionalProperties: false });
const ResetStateArgs = Type.Object({ state: Type.Union([Type.Literal('active'), Type.Literal('error')]) }, { additionalProperties: false });
const BackupArgs = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 255 }),
  backup_type: Type.String(),
  rotation: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+$' })]),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false });
const UnshelveArgs = Type.Object({ availability_zone: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])) }, { additionalProperties: false });

/** An image reference may be an id or a URL ending in it (Nova takes the last path segment). */
function imageId(ref: string): string {
  return ref.includes('/') ? ref.replace(/\/+$/, '').split('/').pop()! : ref;
}

/** The action's arguments must be null/absent or {} for actions that take none. */
function noArgs(action: string, args: unknown): void {
  if (args !== null && args !== undefined && (typeof args !== 'object' || Array.isArray(args) || Object.keys(args).length > 0)) {
    throw new BadRequest(`Invalid input for field/attribute ${action}. Value: ${JSON.stringify(args)}. None is not of type 'null'`);
  }
}

function newPassword(): string {
  return Math.random().toString(36).slice(2, 14);
}

type Handler = (req: FastifyRequest, reply: FastifyReply, compute: ComputeService, id: string, args: unknown) => Promise<unknown>;

/** An action that takes no arguments and answers with an empty body. */
function withoutArgs(action: string, run: (svc: ComputeService, ctx: FastifyRequest['ctx'], auth: NonNullable<FastifyRequest['ctx']['auth']>, id: string) => Promise<void>, code = 202): Handler {
  return async (req, reply, compute, id, args) => {
    noArgs(action, args);
    await run(compute, req.ctx, req.ctx.auth!, id);
    return reply.code(code).send();
  };
}

export const LIFECYCLE_ACTIONS: Record<string, Handler> = {
  async rebuild(req, reply, compute, id, args) {
    const a = validateBody(rebuildSchema(req), args, 'rebuild') as Record<string, unknown>;
    const input: RebuildInput = {
      imageRef: imageId(a.imageRef as string), name: a.name as string | undefined, metadata: a.metadata as Record<string, string> | undefined,
      preserveEphemeral: a.preserve_ephemeral as boolean | undefined, accessIPv4: a.accessIPv4 as string | undefined, accessIPv6: a.accessIPv6 as string | undefined,
      keyName: a.key_name as string | null | undefined, userData: a.user_data as string | null | undefined,
      description: a.description as string | null | undefined, hostname: a.hostname as string | undefined,
    };
    const auth = req.ctx.auth!;
    const inst = await rebuild(compute, req.ctx, auth, id, input);
    void reply.code(202);
    // Nova's rebuild view: the basic view before 2.75, plus key_name (2.54) and user_data (2.57).
    const server = serverDetail(req, auth, inst, undefined, { minimal: !atLeast(req, '2.75') });
    if (atLeast(req, '2.54')) server.key_name = inst.keyName;
    if (atLeast(req, '2.57')) server.user_data = inst.userData;
    delete server['OS-EXT-SRV-ATTR:user_data']; // shown as user_data above, never twice (show_user_data=False)
    return { server: { ...server, adminPass: (a.adminPass as string | undefined) ?? newPassword() } };
  },
  async resize(req, reply, compute, id, args) {
    const a = validateBody(ResizeArgs, args, 'resize');
    await resize(compute, req.ctx, req.ctx.auth!, id, String(a.flavorRef));
    return reply.code(202).send();
  },
  confirmResize: withoutArgs('confirmResize', confirmResize, 204),
  revertResize: withoutArgs('revertResize', revertResize),
  shelve: withoutArgs('shelve', shelve),
  shelveOffload: withoutArgs('shelveOffload', shelveOffload),
  async unshelve(req, reply, compute, id, args) {
    let az: string | null | undefined;
    if (atLeast(req, '2.77') && args !== null && args !== undefined) az = validateBody(UnshelveArgs, args, 'unshelve').availability_zone;
    else noArgs('unshelve', args);
    await unshelve(compute, req.ctx, req.ctx.auth!, id, az);
    return reply.code(202).send();
  },
  async rescue(req, reply, compute, id, args) {
    const a = args === null || args === undefined ? {} : validateBody(RescueArgs, args, 'rescue');
    await rescue(compute, req.ctx, req.ctx.auth!, id, a.rescue_image_ref ? imageId(a.rescue_image_ref) : undefined);
    return reply.code(200).send({ adminPass: a.adminPass ?? newPassword() });
  },
  unrescue: withoutArgs('unrescue', unrescue),
  async createBackup(req, reply, compute, id, args) {
    const a = validateBody(BackupArgs, args, 'createBackup');
    const imageId = await createBackup(compute, req.ctx, req.ctx.auth!, id, {
      name: a.name, backupType: a.backup_type, rotation: Number(a.rotation), metadata: a.metadata ?? {},
    });
    void reply.code(202);
    if (atLeast(req, '2.45')) return { image_id: imageId };
    void reply.header('location', `${computeBase(req).replace(/\/compute$/, '')}/image/v2/images/${imageId}`);
    return reply.send();
  },
  async 'os-resetState'(req, reply, compute, id, args) {
    const a = validateBody(ResetStateArgs, args, 'os-resetState');
    await resetState(compute, req.ctx, req.ctx.auth!, id, a.state);
    return reply.code(202).send();
  },
  restore: withoutArgs('restore', restore),
  forceDelete: withoutArgs('forceDelete', forceDelete),
};
