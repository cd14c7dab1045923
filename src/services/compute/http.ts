import type { FastifyInstance, FastifyRequest } from 'fastify';
import { compare, negotiate, parseMicroversion, type Microversion } from '../../api/microversion.ts';
import type { ErrorFormatter } from '../../api/errors.ts';
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { BadRequest } from '../../common/errors.ts';

/** Nova v2.1 HTTP conventions shared by every compute route: microversions, error bodies, links. */

export const MIN_VERSION: Microversion = { major: 2, minor: 1 };
export const MAX_VERSION: Microversion = { major: 2, minor: 90 };

declare module 'fastify' {
  interface FastifyRequest { microversion: Microversion }
}

/** Nova's error body: {"itemNotFound": {"code": 404, "message": "..."}}, the key named by status. */
const NOVA_ERROR_KEYS: Record<number, string> = {
  400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod',
  406: 'notAcceptable', 409: 'conflictingRequest', 413: 'overLimit', 415: 'badMediaType', 429: 'overLimit',
  501: 'notImplemented', 503: 'serviceUnavailable',
};
export const novaError: ErrorFormatter = (status, message) => ({
  [NOVA_ERROR_KEYS[status] ?? 'computeFault']: { code: status, message },
});

/** True when the request's negotiated microversion is at least `v` ("2.47"). */
export function atLeast(req: FastifyRequest, v: string): boolean {
  return compare(req.microversion, parseMicroversion(v)!) >= 0;
}

/** Negotiate the microversion on every request and echo it in Nova's response headers. */
export function installMicroversions(app: FastifyInstance): void {
  app.decorateRequest('microversion', null as unknown as Microversion);
  app.addHook('onRequest', async (req, reply) => {
    req.microversion = MIN_VERSION;
    void reply.header('Vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
    req.microversion = negotiate(req.headers, 'compute', MIN_VERSION, MAX_VERSION, 'X-OpenStack-Nova-API-Version');
    const v = `${req.microversion.major}.${req.microversion.minor}`;
    void reply.header('OpenStack-API-Version', `compute ${v}`);
    void reply.header('X-OpenStack-Nova-API-Version', v);
  });
}

/** The public base URL of the compute API as the client reached it (for links). */
export function computeBase(req: FastifyRequest): string {
  const host = req.headers.host ?? 'localhost';
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  return `${proto}://${host}/compute`;
}

export function selfLinks(req: FastifyRequest, projectId: string, collection: string, id: string | number) {
  const base = computeBase(req);
  return [
    { rel: 'self', href: `${base}/v2.1/${collection}/${id}` },
    { rel: 'bookmark', href: `${base}/${collection}/${id}` },
  ];
}

/** Parse an integer query parameter or throw Nova's 400. */
export function intParam(v: unknown, name: string, min = 0): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw Object.assign(new Error(`Invalid input for query parameters ${name}. Value: ${String(v)}.`), { statusCode: 400 });
  }
  return n;
}

/** A boolean query/body value as Nova's strutils accepts it. */
export function boolParam(v: unknown): boolean | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  const s = String(v).toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(s)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(s)) return false;
  return undefined;
}

/** Validate a body (or an action's arguments) against a schema chosen at run time; 400 in Nova's words otherwise. */
export function validateBody<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  if (value === undefined || value === null || typeof value !== 'object') throw new BadRequest(`Invalid input for field/attribute ${what}: a JSON object is required.`);
  if (!Value.Check(schema, value)) {
    const errors = Value.Errors(schema, value);
    const first = errors.find((e) => e.keyword !== 'boolean') ?? errors[0];
    const extra = (first?.params as { additionalProperties?: string[] } | undefined)?.additionalProperties;
    const where = first?.instancePath.replace(/^\//, '') || what;
    throw new BadRequest(`Invalid input for field/attribute ${where}. ${first?.message ?? 'Invalid input'}${extra ? ` (${extra.map((x) => `'${x}'`).join(', ')} was unexpected)` : ''}`);
  }
  return value as Static<T>;
}
