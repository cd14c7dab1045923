import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { BadRequest } from '../../../common/errors.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';

/**
 * POST /os-server-external-events: other services (Neutron, Cinder, Cyborg) tell compute
 * something happened to a server. Each event comes back with a code: 200 accepted, 404
 * unknown server, 422 server not on a host, 400 a required tag missing; the response is
 * 207 when any event failed. Gureum's agents need none of these to act (networking is
 * local and power states are reported by the agents), so accepted events are logged, and
 * power-update and volume-extended are recorded as instance actions as Nova records them.
 */

const EventItem = Type.Object({
  name: Type.String(),
  server_uuid: Type.String({ format: 'uuid' }),
  status: Type.Optional(Type.Union([Type.Literal('failed'), Type.Literal('completed'), Type.Literal('in-progress')])),
  tag: Type.Optional(Type.String({ maxLength: 255 })),
}, { additionalProperties: false });
const EventsBody = Type.Object({ events: Type.Array(EventItem, { minItems: 1 }) }, { additionalProperties: false });
type EventIn = Static<typeof EventItem>;

/** The event names a microversion accepts. */
function eventNames(req: FastifyRequest): string[] {
  return [
    'network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted',
    ...(atLeast(req, '2.51') ? ['volume-extended'] : []),
    ...(atLeast(req, '2.76') ? ['power-update'] : []),
    ...(atLeast(req, '2.82') ? ['accelerator-request-bound'] : []),
    ...(atLeast(req, '2.93') ? ['volume-reimaged'] : []),
  ];
}

/** Events meaningless without a tag (the volume, the power state, the accelerator request). */
const TAG_REQUIRED = new Set(['volume-extended', 'power-update', 'accelerator-request-bound', 'volume-reimaged']);

export function externalEventRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  app.post<{ Body: Static<typeof EventsBody> }>('/v2.1/os-server-external-events', { schema: { body: EventsBody } }, async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-server-external-events:create');
    const names = eventNames(req);
    for (const e of req.body.events) {
      if (!names.includes(e.name)) {
        throw new BadRequest(`Invalid input for field/attribute name. Value: ${e.name}. '${e.name}' is not one of [${names.map((n) => `'${n}'`).join(', ')}]`);
      }
    }
    const out: (EventIn & { code: number; status: string })[] = [];
    let multi = false;
    for (const e of req.body.events) {
      const inst = await store.getInstance(deps.db, e.server_uuid);
      const fail = (code: number) => { multi = true; out.push({ ...e, status: 'failed', code }); };
      if (!inst) { fail(404); continue; }
      if (TAG_REQUIRED.has(e.name) && e.tag === undefined) { fail(400); continue; }
      if (!inst.host) { fail(422); continue; }
      out.push({ ...e, status: 'completed', code: 200 });
      req.ctx.log.info({ instance: inst.uuid, event: e.name, tag: e.tag, host: inst.host }, 'external event');
      let action: string | undefined;
      let event = '';
      let detail = '';
      if (e.name === 'power-update' && (e.tag === 'POWER_ON' || e.tag === 'POWER_OFF')) {
        action = e.tag === 'POWER_ON' ? 'start' : 'stop';
        event = 'compute_power_update';
        detail = 'The power state of a guest follows what its compute agent reports; a power-update event does not change it.';
      } else if (e.name === 'volume-extended') {
        action = 'extend_volume';
        event = 'compute_extend_volume';
        detail = `Volume ${e.tag ?? ''} is not attached to instance ${inst.uuid}.`;
      }
      if (action) {
        const id = await store.startAction(deps.db, { requestId: req.ctx.requestId, uuid: inst.uuid, action, projectId: inst.projectId, userId: auth.userId });
        await store.startEvent(deps.db, id, event, inst.host);
        await store.finishEvent(deps.db, id, event, false, detail);
      }
    }
    return reply.code(multi ? 207 : 200).send({ events: out });
  });
}
