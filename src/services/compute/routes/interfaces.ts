import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { BadRequest, NotFound } from '../../../common/errors.ts';
import { atLeast, validateBody } from '../http.ts';
import { addFixedIp, attachInterface, detachInterface, listInterfaces, removeFixedIp, showInterface } from '../lifecycle/interfaces.ts';
import type { ComputeService } from '../service.ts';

/**
 * Nova's os-interface (attach_interfaces): GET/POST /servers/{id}/os-interface,
 * GET/DELETE /servers/{id}/os-interface/{port_id}; `tag` accepted from 2.49 and shown
 * from 2.70. And the multinic actions addFixedIp/removeFixedIp, gone in 2.44.
 */

const Uuid = Type.String({ format: 'uuid' });
const IpAddress = Type.String({ anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] });
const Tag = Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' });

function attachSchema(req: FastifyRequest) {
  return Type.Object({
    interfaceAttachment: Type.Optional(Type.Object({
      net_id: Type.Optional(Uuid),
      port_id: Type.Optional(Uuid),
      fixed_ips: Type.Optional(Type.Array(Type.Object({ ip_address: IpAddress }, { additionalProperties: false }), { minItems: 1, maxItems: 1 })),
      ...(atLeast(req, '2.49') ? { tag: Type.Optional(Tag) } : {}),
    }, { additionalProperties: false })),
  }, { additionalProperties: false });
}

const AddFixedIpArgs = Type.Object({ networkId: Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Integer()]) }, { additionalProperties: false });
const RemoveFixedIpArgs = Type.Object({ address: IpAddress }, { additionalProperties: false });

type Params = { id: string };

export function interfaceRoutes(app: FastifyInstance, compute: ComputeService): void {
  app.get<{ Params: Params }>('/v2.1/servers/:id/os-interface', async (req) => ({
    interfaceAttachments: await listInterfaces(compute, req.ctx.auth!, req.params.id, atLeast(req, '2.70')),
  }));

  app.get<{ Params: Params & { port: string } }>('/v2.1/servers/:id/os-interface/:port', async (req) => ({
    interfaceAttachment: await showInterface(compute, req.ctx.auth!, req.params.id, req.params.port, atLeast(req, '2.70')),
  }));

  app.post<{ Params: Params; Body: unknown }>('/v2.1/servers/:id/os-interface', async (req) => {
    const body = req.body === undefined || req.body === null ? {} : validateBody(attachSchema(req), req.body, 'interfaceAttachment');
    const a = (body.interfaceAttachment ?? {}) as { net_id?: string; port_id?: string; fixed_ips?: { ip_address: string }[]; tag?: string };
    if (a.net_id && a.port_id) throw new BadRequest('Must not input both network_id and port_id');
    const fixedIp = a.fixed_ips?.[0]?.ip_address;
    if (fixedIp && !a.net_id) throw new BadRequest('Must input network_id when request IP address');
    const view = await attachInterface(compute, req.ctx, req.ctx.auth!, req.params.id, {
      portId: a.port_id, networkId: a.net_id, fixedIp, tag: a.tag,
    });
    if (!atLeast(req, '2.70')) delete view.tag;
    else view.tag ??= null;
    return { interfaceAttachment: view };
  });

  app.delete<{ Params: Params & { port: string } }>('/v2.1/servers/:id/os-interface/:port', async (req, reply) => {
    await detachInterface(compute, req.ctx, req.ctx.auth!, req.params.id, req.params.port);
    return reply.code(202).send();
  });
}

type Handler = (req: FastifyRequest, reply: FastifyReply, compute: ComputeService, id: string, args: unknown) => Promise<unknown>;

/** The multinic actions of POST /servers/{id}/action (2.1 – 2.43; later microversions have no such action: 404). */
export const MULTINIC_ACTIONS: Record<string, Handler> = {
  async addFixedIp(req, reply, compute, id, args) {
    if (atLeast(req, '2.44')) throw new NotFound('There is no such action: addFixedIp');
    const a = validateBody(AddFixedIpArgs, args, 'addFixedIp');
    await addFixedIp(compute, req.ctx, req.ctx.auth!, id, String(a.networkId));
    return reply.code(202).send();
  },
  async removeFixedIp(req, reply, compute, id, args) {
    if (atLeast(req, '2.44')) throw new NotFound('There is no such action: removeFixedIp');
    const a = validateBody(RemoveFixedIpArgs, args, 'removeFixedIp');
    await removeFixedIp(compute, req.ctx, req.ctx.auth!, id, a.address);
    return reply.code(202).send();
  },
};
