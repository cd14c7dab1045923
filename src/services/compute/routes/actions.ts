import type { FastifyInstance } from 'fastify';
import { BadRequest } from '../../../common/errors.ts';
import { atLeast, computeBase } from '../http.ts';
import type { ComputeService } from '../service.ts';
import { MULTINIC_ACTIONS } from './interfaces.ts';
import { LIFECYCLE_ACTIONS } from './lifecycle-actions.ts';

/** POST /servers/{id}/action: one key names the action, its value the arguments. */

const POWER_ACTIONS = new Set(['os-start', 'os-stop', 'pause', 'unpause', 'suspend', 'resume']);

export function actionRoutes(app: FastifyInstance, compute: ComputeService): void {
  app.post<{ Params: { id: string }; Body: Record<string, unknown> | undefined }>('/v2.1/servers/:id/action', async (req, reply) => {
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('Malformed request body');
    const keys = Object.keys(body);
    if (keys.length !== 1) throw new BadRequest('Malformed request body: exactly one action is expected.');
    const action = keys[0]!;
    const args = body[action];
    const auth = req.ctx.auth!;
    const id = req.params.id;
    const lifecycle = Object.hasOwn(LIFECYCLE_ACTIONS, action) ? LIFECYCLE_ACTIONS[action]
      : Object.hasOwn(MULTINIC_ACTIONS, action) ? MULTINIC_ACTIONS[action] : undefined;
    if (lifecycle) return lifecycle(req, reply, compute, id, args);
    if (POWER_ACTIONS.has(action)) {
      if (args !== null && (typeof args !== 'object' || Array.isArray(args))) throw new BadRequest(`Invalid input for field/attribute ${action}.`);
      await compute.powerAction(req.ctx, auth, id, action);
      return reply.code(202).send();
    }
    switch (action) {
      case 'reboot': {
        const type = (args as { type?: unknown } | null)?.type;
        if (typeof type !== 'string' || !['SOFT', 'HARD'].includes(type.toUpperCase())) {
          throw new BadRequest("Invalid input for field/attribute type. Value: the reboot type must be 'SOFT' or 'HARD'.");
        }
        await compute.powerAction(req.ctx, auth, id, type.toUpperCase() === 'HARD' ? 'reboot-hard' : 'reboot-soft');
        return reply.code(202).send();
      }
      case 'lock': {
        const reason = (args as { locked_reason?: unknown } | null)?.locked_reason;
        if (reason !== undefined && (typeof reason !== 'string' || reason.length > 255)) throw new BadRequest('Invalid input for field/attribute locked_reason.');
        await compute.lock(req.ctx, auth, id, reason as string | undefined);
        return reply.code(202).send();
      }
      case 'unlock':
        await compute.unlock(req.ctx, auth, id);
        return reply.code(202).send();
      case 'os-getConsoleOutput': {
        const raw = (args as { length?: unknown } | null)?.length;
        let length: number | undefined;
        if (raw !== undefined && raw !== null) {
          const n = Number(raw);
          if (!Number.isInteger(n) || n < -1) throw new BadRequest('Invalid input for field/attribute length.');
          length = n === -1 ? undefined : n;
        }
        return { output: await compute.consoleOutput(req.ctx, auth, id, length) };
      }
      case 'createImage': {
        const a = args as { name?: unknown; metadata?: unknown } | null;
        if (!a || typeof a.name !== 'string' || a.name.trim() === '' || a.name.length > 255) {
          throw new BadRequest("Invalid input for field/attribute name. Value: the image name must be a non-empty string of at most 255 characters.");
        }
        const meta = a.metadata ?? {};
        if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || !Object.values(meta).every((v) => typeof v === 'string')) {
          throw new BadRequest('Invalid input for field/attribute metadata.');
        }
        const imageId = await compute.createImage(req.ctx, auth, id, a.name, meta as Record<string, string>);
        void reply.code(202);
        if (atLeast(req, '2.45')) return { image_id: imageId };
        void reply.header('location', `${computeBase(req).replace(/\/compute$/, '')}/image/v2/images/${imageId}`);
        return reply.send();
      }
      default:
        throw new BadRequest(`There is no such action: ${action}`);
    }
  });
}
