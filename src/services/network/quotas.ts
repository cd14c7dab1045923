import type { AuthContext } from '../../api/context.ts';
import { inTransaction, QUOTA_RESOURCES, quotaLimits, quotaUsage, type QuotaResource } from './common.ts';
import { err, NeutronError } from './errors.ts';
import { authorize } from './policy.ts';
import * as store from './store.ts';
import type { NetworkDeps } from './types.ts';

/**
 * Neutron's quotas extension (and quota_details): per-project limits over the configured
 * defaults; -1 is unlimited. Readers of a project see its quotas, admins see and set any.
 */

export type Quota = Record<QuotaResource, number>;

export async function showQuota(deps: NetworkDeps, auth: AuthContext, projectId: string): Promise<Quota> {
  authorize(auth, 'get_quota', { project_id: projectId });
  return quotaLimits(deps, deps.db, projectId);
}

export function defaultQuota(deps: NetworkDeps, auth: AuthContext, projectId: string): Quota {
  authorize(auth, 'get_quota', { project_id: projectId });
  const out = {} as Quota;
  for (const r of QUOTA_RESOURCES) out[r] = deps.cfg.quotas[r] ?? -1;
  return out;
}

export async function quotaDetails(deps: NetworkDeps, auth: AuthContext, projectId: string): Promise<Record<QuotaResource, { used: number; limit: number; reserved: number }>> {
  authorize(auth, 'get_quota', { project_id: projectId });
  const limits = await quotaLimits(deps, deps.db, projectId);
  const out = {} as Record<QuotaResource, { used: number; limit: number; reserved: number }>;
  for (const r of QUOTA_RESOURCES) out[r] = { used: await quotaUsage(deps.db, projectId, r), limit: limits[r], reserved: 0 };
  return out;
}

/** Projects with limits of their own (admin only), each with its full set of limits. */
export async function listQuotas(deps: NetworkDeps, auth: AuthContext): Promise<(Quota & { project_id: string; tenant_id: string })[]> {
  authorize(auth, 'get_quotas', {});
  const projects = [...new Set((await store.quotaOverrides(deps.db)).map((o) => o.project_id))];
  const out: (Quota & { project_id: string; tenant_id: string })[] = [];
  for (const p of projects) out.push({ ...(await quotaLimits(deps, deps.db, p)), project_id: p, tenant_id: p });
  return out;
}

function limitValue(resource: string, v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw err.badAttr(resource, `'${String(v)}' is not an integer`);
  if (n < -1) throw err.badAttr(resource, `'${n}' is too small - must be at least '-1'`);
  if (n > 2147483647) throw err.badAttr(resource, `'${n}' is too large - must be no larger than '2147483647'`);
  return n;
}

/**
 * Set limits (admin). With check_limit, a limit below what the project already uses is
 * refused, as Neutron's quota check_limit does; `force` is accepted and changes nothing.
 */
export async function updateQuota(deps: NetworkDeps, auth: AuthContext, projectId: string, body: Record<string, unknown>): Promise<Quota> {
  authorize(auth, 'update_quota', { project_id: projectId });
  const values: [QuotaResource, number][] = [];
  let checkLimit = false;
  for (const [k, v] of Object.entries(body)) {
    if (k === 'check_limit') { checkLimit = v === true || String(v).toLowerCase() === 'true'; continue; }
    if (k === 'force') continue;
    if (!(QUOTA_RESOURCES as string[]).includes(k)) throw err.badRequest(`Unrecognized attribute(s) '${k}'`);
    values.push([k as QuotaResource, limitValue(k, v)]);
  }
  await inTransaction(deps, async (trx) => {
    for (const [r, limit] of values) {
      if (checkLimit && limit >= 0) {
        const used = await quotaUsage(trx, projectId, r);
        if (used > limit) throw new NeutronError(400, `Quota limit ${limit} for ${r} must be greater than or equal to already used and reserved ${used}.`, 'InvalidQuotaValue');
      }
      await store.setQuota(trx, projectId, r, limit);
    }
  });
  return quotaLimits(deps, deps.db, projectId);
}

/** Back to the defaults (admin); 404 when the project had no limits of its own. */
export async function resetQuota(deps: NetworkDeps, auth: AuthContext, projectId: string): Promise<void> {
  authorize(auth, 'delete_quota', { project_id: projectId });
  if ((await store.clearQuotas(deps.db, projectId)) === 0) throw new NeutronError(404, `Quota for tenant ${projectId} could not be found.`, 'TenantQuotaNotFound');
}
