/**
 * Test harness for the compute route modules (imported by their *.test.ts): a fresh
 * database (in-memory SQLite, or a new PostgreSQL database when GUREUM_TEST_POSTGRES_URL
 * is set), the routes behind the real API server, and a token validator standing in for
 * identity with three fixed callers. Only unit tests use it.
 */
import type { FastifyInstance } from 'fastify';
import type { AuthContext, TokenValidator } from '../../../api/context.ts';
import { createApiServer } from '../../../api/server.ts';
import { Unauthorized } from '../../../common/errors.ts';
import { createLogger } from '../../../common/logger.ts';
import type { OpenDatabase } from '../../../db/index.ts';
import { freshDatabase } from '../../../db/test-database.ts';
import { DEFAULT_COMPUTE_CONFIG, type ComputeDeps } from '../deps.ts';
import { installMicroversions, novaError } from '../http.ts';

const cred = (userId: string, projectId: string, roles: string[]): AuthContext => ({
  token: `tok-${userId}`, userId, userName: userId, userDomainId: 'default', projectId, projectDomainId: 'default',
  roles, roleIds: roles, methods: ['password'], auditIds: ['a'], issuedAt: 0, expiresAt: Date.now() + 3_600_000,
});
export const USERS: Record<string, AuthContext> = {
  admin: cred('u-admin', 'p-admin', ['admin', 'member', 'reader']),
  alice: cred('u-alice', 'p-one', ['member', 'reader']),
  bob: cred('u-bob', 'p-two', ['member', 'reader']),
};
const validator: TokenValidator = {
  async validate(token) {
    const u = Object.values(USERS).find((x) => x.token === token);
    if (!u) throw new Unauthorized();
    return u;
  },
};
export type App = ReturnType<typeof createApiServer>;
export async function harness(mount: (app: FastifyInstance, deps: ComputeDeps) => void): Promise<{ app: App; deps: ComputeDeps; dbh: OpenDatabase }> {
  const dbh = await freshDatabase();
  const log = createLogger('silent');
  const deps: ComputeDeps = { db: dbh.db, log, cfg: DEFAULT_COMPUTE_CONFIG };
  const app = createApiServer({ log, validator, maxBodyBytes: 1 << 20 }, [{
    prefix: '/compute', formatError: novaError, routes: (scope) => { installMicroversions(scope); mount(scope, deps); },
  }]);
  await app.ready();
  return { app, deps, dbh };
}
export type Call = { status: number; body: Record<string, any> };
export function caller(app: App) {
  return async (who: keyof typeof USERS, method: string, path: string, body?: unknown, version?: string): Promise<Call> => {
    const res = await app.inject({
      method: method as 'GET', url: `/compute/v2.1${path}`, payload: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'x-auth-token': USERS[who]!.token, ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(version ? { 'openstack-api-version': `compute ${version}` } : {}) },
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : {} };
  };
}
