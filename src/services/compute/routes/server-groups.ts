import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuthContext } from '../../../api/context.ts';
import { enforce, isAllowed } from '../../../api/policy.ts';
import { BadRequest, Forbidden, NotFound } from '../../../common/errors.ts';
import { isoNow } from '../../../db/index.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast, boolParam, intParam } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';
import type { ServerGroup } from '../types.ts';
import { effectiveQuotas } from './quotas.ts';

/**
 * /os-server-groups: affinity and anti-affinity groups. Before 2.64 a group has
 * `policies: [one]` and empty `metadata`; from 2.64 `policy` and `rules`
 * (max_server_per_host for anti-affinity). Groups of other projects are 404.
 */

const NAME = Type.String({ minLength: 1, maxLength: 255, pattern: '^(?!\\s)[^\\x00-\\x1f\\x7f]*(?<!\\s)$' });
const BASE_POLICIES = ['anti-affinity', 'affinity'];
const SOFT_POLICIES = ['soft-anti-affinity', 'soft-affinity'];
const ALL_POLICIES = [...BASE_POLICIES, ...SOFT_POLICIES];

const CreateLegacy = Type.Object({
  server_group: Type.Object({
    name: NAME,
    policies: Type.Array(Type.String(), { minItems: 1, maxItems: 1, uniqueItems: true }),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const Create264 = Type.Object({
  server_group: Type.Object({
    name: NAME,
    policy: Type.Union(ALL_POLICIES.map((p) => Type.Literal(p))),
    rules: Type.Optional(Type.Object({
      max_server_per_host: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })])),
    }, { additionalProperties: false })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const CreateBody = Type.Union([CreateLegacy, Create264]);

type Query = Record<string, string | string[] | undefined>;
const q1 = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export function serverGroupRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  const db = deps.db;

  const render = (req: FastifyRequest, g: ServerGroup): Record<string, unknown> => {
    const out: Record<string, unknown> = { id: g.id, name: g.name };
    if (atLeast(req, '2.64')) {
      out.policy = g.policy;
      out.rules = g.rules;
    } else {
      out.policies = [g.policy];
    }
    out.members = g.members;
    if (!atLeast(req, '2.64')) out.metadata = {};
    if (atLeast(req, '2.13')) {
      out.project_id = g.projectId;
      out.user_id = g.userId;
    }
    return out;
  };

  /** The group if the caller's project owns it (or the caller is admin); else 404. */
  async function visible(auth: AuthContext, id: string): Promise<ServerGroup> {
    const g = await store.getServerGroup(db, id);
    if (!g || (g.projectId !== auth.projectId && !isAllowed(auth, 'os_compute_api:os-server-groups:index:all_projects'))) {
      throw new NotFound(`Instance group ${id} could not be found.`);
    }
    return g;
  }

  app.get('/v2.1/os-server-groups', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-server-groups:index', { project_id: req.ctx.auth?.projectId });
    const q = req.query as Query;
    const all = boolParam(q1(q.all_projects)) === true && isAllowed(auth, 'os_compute_api:os-server-groups:index:all_projects');
    let groups = await store.listServerGroups(db, all ? undefined : auth.projectId ?? '');
    const offset = intParam(q1(q.offset), 'offset') ?? 0;
    const limit = Math.min(intParam(q1(q.limit), 'limit') ?? 1000, 1000);
    groups = groups.slice(offset, offset + limit);
    return { server_groups: groups.map((g) => render(req, g)) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req) => {
    const auth = req.ctx.auth!;
    const g = await visible(auth, req.params.id);
    enforce(auth, 'os_compute_api:os-server-groups:show', { project_id: g.projectId });
    return { server_group: render(req, g) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req, reply) => {
    const auth = req.ctx.auth!;
    const g = await visible(auth, req.params.id);
    enforce(auth, 'os_compute_api:os-server-groups:delete', { project_id: g.projectId });
    await db.transaction().execute((tx) => store.deleteServerGroup(tx, g.id));
    return reply.code(204).send();
  });

  app.post<{ Body: Static<typeof CreateBody> }>('/v2.1/os-server-groups', { schema: { body: CreateBody } }, async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-server-groups:create', { project_id: req.ctx.auth?.projectId, user_id: req.ctx.auth?.userId });
    const b = req.body.server_group;
    const allowed = atLeast(req, '2.15') ? ALL_POLICIES : BASE_POLICIES;
    let policy: string;
    let rules: Record<string, number> = {};
    if (atLeast(req, '2.64')) {
      if (!('policy' in b)) throw new BadRequest("Invalid input for field/attribute server_group. Value: policy. 'policy' is a required property");
      policy = b.policy;
      if (b.rules && Object.keys(b.rules).length > 0) {
        if (policy !== 'anti-affinity') throw new BadRequest('Only anti-affinity policy supports rules.');
        if (b.rules.max_server_per_host !== undefined) {
          const n = Number(b.rules.max_server_per_host);
          if (!Number.isInteger(n) || n < 1) throw new BadRequest(`Invalid input for field/attribute max_server_per_host. Value: ${String(b.rules.max_server_per_host)}.`);
          rules = { max_server_per_host: n };
        }
      }
    } else {
      if (!('policies' in b)) throw new BadRequest("Invalid input for field/attribute server_group. Value: policies. 'policies' is a required property");
      policy = b.policies[0]!;
    }
    if (!allowed.includes(policy)) {
      throw new BadRequest(`Invalid input for field/attribute policies. Value: ${policy}. '${policy}' is not one of [${allowed.map((p) => `'${p}'`).join(', ')}]`);
    }
    const pid = auth.projectId ?? '';
    const limit = (await effectiveQuotas(deps, pid)).server_groups ?? -1;
    if (limit >= 0 && (await store.countServerGroups(db, pid)) + 1 > limit) throw new Forbidden('Quota exceeded, too many server groups.');
    const id = randomUUID();
    await store.insertServerGroup(db, { id, name: b.name, project_id: pid, user_id: auth.userId, policy, rules: JSON.stringify(rules), created_at: isoNow() });
    return { server_group: render(req, (await store.getServerGroup(db, id))!) };
  });
}
