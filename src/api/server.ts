import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Unauthorized } from '../common/errors.ts';
import { newRequestId } from '../common/ids.ts';
import type { RootLogger } from '../common/logger.ts';
import type { RequestContext, TokenValidator } from './context.ts';
import { normalizeError, type ErrorFormatter } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest { ctx: RequestContext }
  interface FastifyContextConfig {
    /** false: the route answers without a token (version documents, token issue). */
    auth?: boolean;
  }
}

export interface ApiServerOptions {
  log: RootLogger;
  validator: TokenValidator;
  maxBodyBytes: number;
}

/** A service mounted under a path prefix, with its own error format. */
export interface ServiceMount {
  prefix: string;
  formatError: ErrorFormatter;
  routes: (app: FastifyInstance) => Promise<void> | void;
}

const GLOBAL_REQ_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * One HTTP listener for every API. Each request gets a request id (returned in
 * x-openstack-request-id and carried in every log line), a token check unless the route
 * opts out, and errors in the owning service's format.
 */
export function createApiServer(opts: ApiServerOptions, services: ServiceMount[]) {
  const app = Fastify({
    loggerInstance: opts.log,
    // One access-log line per request comes from our onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    bodyLimit: opts.maxBodyBytes,
    routerOptions: { ignoreTrailingSlash: true },
    genReqId: () => newRequestId(),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: true,
  });

  // OpenStack clients send PUTs with a JSON content type and no body; that is no body,
  // not malformed JSON. Keys that could poison prototypes are dropped while parsing.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') { done(null, undefined); return; }
    try {
      done(null, JSON.parse(text, (k, v: unknown) => (k === '__proto__' || k === 'constructor' ? undefined : v)));
    } catch {
      done(Object.assign(new Error('Malformed request body: the body is not valid JSON.'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
    }
  });

  app.decorateRequest('ctx', null as unknown as RequestContext);
  app.addHook('onRequest', async (req, reply) => {
    const g = req.headers['x-openstack-request-id'];
    req.ctx = {
      requestId: req.id,
      globalRequestId: typeof g === 'string' && GLOBAL_REQ_ID.test(g) ? g : undefined,
      log: req.log,
    };
    reply.header('x-openstack-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10,
      user: req.ctx?.auth?.userId, global_request_id: req.ctx?.globalRequestId }, 'request');
  });
  app.addHook('preHandler', async (req) => {
    if (req.routeOptions.config.auth === false) return;
    const token = req.headers['x-auth-token'];
    if (typeof token !== 'string' || token === '') throw new Unauthorized();
    req.ctx.auth = await opts.validator.validate(token, req.log);
  });

  for (const svc of services) {
    void app.register(async (scope) => {
      scope.setErrorHandler((err, req, reply) => sendError(svc.formatError, err, req, reply));
      scope.setNotFoundHandler((req, reply) =>
        sendError(svc.formatError, { statusCode: 404, message: `The resource could not be found.` }, req, reply));
      await svc.routes(scope);
    }, { prefix: svc.prefix });
  }
  return app;
}

function sendError(format: ErrorFormatter, err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const n = normalizeError(err);
  if (n.status >= 500) req.log.error({ err }, 'request failed');
  else req.log.debug({ status: n.status, msg: n.message }, 'request refused');
  if (n.headers) void reply.headers(n.headers);
  return reply.code(n.status).type('application/json').send(format(n.status, n.message, n.kind));
}
