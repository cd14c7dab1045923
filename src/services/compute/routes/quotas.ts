import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuthContext } from '../../../api/context.ts';
import { enforce } from '../../../api/policy.ts';
import { BadRequest } from '../../../common/errors.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast, boolParam } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';

/**
 * /os-quota-sets (show, detail, defaults, update, revert) and /limits. Limits resolve as
 * the configured defaults, overridden by '__default__' rows, overridden by the project's rows.
 */

const MAX_INT = 2147483647;
/** Nova-network quotas: still shown (and settable) before 2.36, with Nova's defaults. */
const NETWORK_DEFAULTS: Record<string, number> = { fixed_ips: -1, floating_ips: 10, security_groups: 10, security_group_rules: 20 };
const BASE_KEYS = ['instances', 'cores', 'ram', 'metadata_items', 'key_pairs', 'server_groups', 'server_group_members'];
const FILE_KEYS = ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes'];
const NETWORK_KEYS = Object.keys(NETWORK_DEFAULTS);

/** The quota resources a microversion shows: 2.36 drops the network ones, 2.57 the injected files. */
function keysFor(req: FastifyRequest): string[] {
  return [...BASE_KEYS, ...(atLeast(req, '2.57') ? [] : FILE_KEYS), ...(atLeast(req, '2.36') ? [] : NETWORK_KEYS)];
}

/** The limits in force for a project: defaults ← '__default__' rows ← the project's rows. */
export async function effectiveQuotas(deps: ComputeDeps, projectId: string): Promise<Record<string, number>> {
  return {
    ...NETWORK_DEFAULTS, ...deps.cfg.defaultQuotas,
    ...(await store.quotaRows(deps.db, '__default__')),
    ...(projectId && projectId !== '__default__' ? await store.quotaRows(deps.db, projectId) : {}),
  };
}

async function defaultQuotas(deps: ComputeDeps): Promise<Record<string, number>> {
  return { ...NETWORK_DEFAULTS, ...deps.cfg.defaultQuotas, ...(await store.quotaRows(deps.db, '__default__')) };
}

/** What a project (and, for key pairs, the calling user) has in use. */
async function inUse(deps: ComputeDeps, projectId: string, userId: string | undefined): Promise<Record<string, number>> {
  const u = await store.usage(deps.db, projectId);
  return {
    instances: u.instances, cores: u.cores, ram: u.ram,
    server_groups: await store.countServerGroups(deps.db, projectId),
    key_pairs: userId ? await store.countKeypairs(deps.db, userId) : 0,
  };
}

const QuotaValue = Type.Union([Type.Integer({ minimum: -1, maximum: MAX_INT }), Type.String({ pattern: '^-?[0-9]+$' })]);
const ALL_KEYS = [...BASE_KEYS, ...FILE_KEYS, ...NETWORK_KEYS];
const QuotaUpdate = Type.Object({
  quota_set: Type.Object({
    ...Object.fromEntries(ALL_KEYS.map((k) => [k, Type.Optional(QuotaValue)])),
    force: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
    networks: Type.Optional(QuotaValue),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

type Params = { project_id: string };

function pick(keys: string[], all: Record<string, number>): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, all[k] ?? -1]));
}

export function quotaRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  const showTarget = (auth: AuthContext | undefined, projectId: string) => ({ project_id: projectId, user_id: auth?.userId });

  app.get<{ Params: Params }>('/v2.1/os-quota-sets/:project_id', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-quota-sets:show', showTarget(req.ctx.auth, req.params.project_id));
    const q = await effectiveQuotas(deps, req.params.project_id);
    return { quota_set: { id: req.params.project_id, ...pick(keysFor(req), q) } };
  });

  app.get<{ Params: Params }>('/v2.1/os-quota-sets/:project_id/detail', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-quota-sets:detail', showTarget(req.ctx.auth, req.params.project_id));
    const pid = req.params.project_id;
    const q = await effectiveQuotas(deps, pid);
    const used = await inUse(deps, pid, auth.projectId === pid ? auth.userId : undefined);
    const out: Record<string, unknown> = { id: pid };
    for (const k of keysFor(req)) out[k] = { in_use: used[k] ?? 0, limit: q[k] ?? -1, reserved: 0 };
    return { quota_set: out };
  });

  app.get<{ Params: Params }>('/v2.1/os-quota-sets/:project_id/defaults', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-quota-sets:defaults', showTarget(req.ctx.auth, req.params.project_id));
    return { quota_set: { id: req.params.project_id, ...pick(keysFor(req), await defaultQuotas(deps)) } };
  });

  app.put<{ Params: Params; Body: Static<typeof QuotaUpdate> }>('/v2.1/os-quota-sets/:project_id', { schema: { body: QuotaUpdate } }, async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-quota-sets:update', showTarget(req.ctx.auth, req.params.project_id));
    const pid = req.params.project_id;
    const { force, ...rest } = req.body.quota_set as Record<string, number | string | boolean | undefined>;
    const allowed = new Set(keysFor(req));
    const updates: Record<string, number> = {};
    for (const [k, v] of Object.entries(rest)) {
      if (v === undefined) continue;
      if (!allowed.has(k)) {
        throw new BadRequest(`Invalid input for field/attribute quota_set. Value: ${k}. Additional properties are not allowed ('${k}' was unexpected)`);
      }
      const n = Number(v);
      if (!Number.isInteger(n) || n < -1 || n > MAX_INT) {
        throw new BadRequest(`Invalid input for field/attribute ${k}. Value: ${String(v)}. ${String(v)} is less than the minimum of -1`);
      }
      updates[k] = n;
    }
    const forced = boolParam(force) === true;
    if (!forced) {
      const used = await inUse(deps, pid, auth.projectId === pid ? auth.userId : undefined);
      for (const [k, n] of Object.entries(updates)) {
        const minimum = used[k] ?? 0;
        if (n !== -1 && n < minimum) {
          throw new BadRequest(`Quota limit ${n} for ${k} must be greater than or equal to already used and reserved ${minimum}.`);
        }
      }
    }
    await deps.db.transaction().execute((tx) => store.setQuotas(tx, pid, updates));
    return { quota_set: pick(keysFor(req), await effectiveQuotas(deps, pid)) };
  });

  app.delete<{ Params: Params }>('/v2.1/os-quota-sets/:project_id', async (req, reply) => {
    enforce(req.ctx.auth, 'os_compute_api:os-quota-sets:delete', showTarget(req.ctx.auth, req.params.project_id));
    await store.deleteQuotas(deps.db, req.params.project_id);
    return reply.code(202).send();
  });

  app.get('/v2.1/limits', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:limits');
    const asked = (req.query as Record<string, string | string[] | undefined>).tenant_id;
    const tenant = Array.isArray(asked) ? asked[0] : asked;
    let pid = auth.projectId ?? '';
    if (tenant !== undefined && tenant !== pid) {
      enforce(auth, 'os_compute_api:limits:other_project', { project_id: tenant });
      pid = tenant;
    }
    const q = await effectiveQuotas(deps, pid);
    const used = await inUse(deps, pid, undefined);
    const absolute: Record<string, number> = {
      maxTotalInstances: q.instances!, maxTotalCores: q.cores!, maxTotalRAMSize: q.ram!, maxServerMeta: q.metadata_items!,
      maxTotalKeypairs: q.key_pairs!, maxServerGroups: q.server_groups!, maxServerGroupMembers: q.server_group_members!,
      totalInstancesUsed: used.instances!, totalCoresUsed: used.cores!, totalRAMUsed: used.ram!, totalServerGroupsUsed: used.server_groups!,
    };
    if (!atLeast(req, '2.36')) {
      Object.assign(absolute, {
        maxSecurityGroups: q.security_groups, maxSecurityGroupRules: q.security_group_rules, maxTotalFloatingIps: q.floating_ips,
        totalSecurityGroupsUsed: 0, totalFloatingIpsUsed: 0,
      });
    }
    if (!atLeast(req, '2.39')) absolute.maxImageMeta = q.metadata_items!;
    if (!atLeast(req, '2.57')) Object.assign(absolute, { maxPersonality: q.injected_files, maxPersonalitySize: q.injected_file_content_bytes });
    return { limits: { rate: [], absolute } };
  });
}
