import type { AuthContext } from '../../api/context.ts';
import { err } from './errors.ts';
import { authorize } from './policy.ts';
import type { Tx } from './store.ts';
import { QUOTA_RESOURCES, type QuotaResource, type VolumeDeps } from './types.ts';

/**
 * Cinder's quotas: per-project limits over the `default` quota class (itself over the
 * configured defaults); -1 is unlimited. Usage is counted from the rows themselves
 * (volumes, snapshots, backups and their sizes; rows in error_deleting still count, as
 * Cinder's reservations do until the delete ends). Class limits live in volume_quotas
 * under the project id `class:<name>`.
 */

const CLASS = (name: string) => `class:${name}`;

export type Limits = Record<QuotaResource, number>;

function parseLimit(resource: string, v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw err.badField(resource, v, `${JSON.stringify(v)} is not of type 'integer', 'string'`);
  if (n < -1) throw err.badField(resource, v, `${n} is less than the minimum of -1`);
  if (n > 2147483647) throw err.badField(resource, v, `${n} is greater than the maximum of 2147483647`);
  return n;
}

async function rows(db: Tx, projectId: string): Promise<Partial<Limits>> {
  const out: Partial<Limits> = {};
  for (const r of await db.selectFrom('volume_quotas').select(['resource', 'hard_limit']).where('project_id', '=', projectId).execute()) {
    if ((QUOTA_RESOURCES as readonly string[]).includes(r.resource)) out[r.resource as QuotaResource] = r.hard_limit;
  }
  return out;
}

export async function classLimits(deps: VolumeDeps, db: Tx, name = 'default'): Promise<Limits> {
  return { ...deps.cfg.quotas, ...(name === 'default' ? await rows(db, CLASS('default')) : { ...await rows(db, CLASS('default')), ...await rows(db, CLASS(name)) }) };
}

export async function projectLimits(deps: VolumeDeps, db: Tx, projectId: string): Promise<Limits> {
  return { ...await classLimits(deps, db), ...await rows(db, projectId) };
}

export type Usage = Record<QuotaResource, number>;

export async function projectUsage(db: Tx, projectId: string): Promise<Usage> {
  const vols = await db.selectFrom('volumes').select(({ fn }) => [fn.countAll<number>().as('n'), fn.sum<number>('size').as('gb')])
    .where('project_id', '=', projectId).executeTakeFirstOrThrow();
  const snaps = await db.selectFrom('volume_snapshots').select(({ fn }) => [fn.countAll<number>().as('n'), fn.sum<number>('size').as('gb')])
    .where('project_id', '=', projectId).executeTakeFirstOrThrow();
  const backups = await db.selectFrom('volume_backups').select(({ fn }) => [fn.countAll<number>().as('n'), fn.sum<number>('size').as('gb')])
    .where('project_id', '=', projectId).executeTakeFirstOrThrow();
  return {
    volumes: Number(vols.n), gigabytes: Number(vols.gb ?? 0) + Number(snaps.gb ?? 0), snapshots: Number(snaps.n),
    backups: Number(backups.n), backup_gigabytes: Number(backups.gb ?? 0), per_volume_gigabytes: 0, groups: 0,
  };
}

/**
 * Check that a project may add `delta` (inside the transaction that adds it, so two
 * concurrent creates cannot both pass); throws Cinder's 413 overLimit.
 */
export async function checkQuota(deps: VolumeDeps, db: Tx, projectId: string, delta: Partial<Record<'volumes' | 'snapshots' | 'gigabytes' | 'backups' | 'backup_gigabytes', number>>, perVolumeSize?: number): Promise<void> {
  const limits = await projectLimits(deps, db, projectId);
  if (perVolumeSize !== undefined && limits.per_volume_gigabytes >= 0 && perVolumeSize > limits.per_volume_gigabytes) {
    throw err.perVolumeOverLimit(perVolumeSize, limits.per_volume_gigabytes);
  }
  const used = await projectUsage(db, projectId);
  for (const r of ['gigabytes', 'backup_gigabytes'] as const) {
    const d = delta[r] ?? 0;
    if (d > 0 && limits[r] >= 0 && used[r] + d > limits[r]) throw err.sizeOverQuota(r, d, limits[r], used[r]);
  }
  for (const r of ['volumes', 'snapshots', 'backups'] as const) {
    const d = delta[r] ?? 0;
    if (d > 0 && limits[r] >= 0 && used[r] + d > limits[r]) throw err.overLimit(r, limits[r]);
  }
}

export async function showQuotaSet(deps: VolumeDeps, auth: AuthContext, projectId: string, usage: boolean): Promise<Record<string, unknown>> {
  authorize(auth, 'volume_extension:quotas:show', { project_id: projectId });
  const limits = await projectLimits(deps, deps.db, projectId);
  if (!usage) return { id: projectId, ...limits };
  const used = await projectUsage(deps.db, projectId);
  const out: Record<string, unknown> = { id: projectId };
  for (const r of QUOTA_RESOURCES) out[r] = { limit: limits[r], in_use: used[r], reserved: 0, allocated: 0 };
  return out;
}

export async function defaultQuotaSet(deps: VolumeDeps, auth: AuthContext, projectId: string): Promise<Record<string, unknown>> {
  authorize(auth, 'volume_extension:quotas:show', { project_id: projectId });
  return { id: projectId, ...await classLimits(deps, deps.db) };
}

async function setLimits(deps: VolumeDeps, key: string, body: Record<string, unknown>, checkUsage: string | undefined): Promise<void> {
  const values: [QuotaResource, number][] = [];
  for (const [k, v] of Object.entries(body)) {
    if (k === 'tenant_id' || k === 'id' || k === 'class_name') continue;
    if (!(QUOTA_RESOURCES as readonly string[]).includes(k)) throw err.invalidInput(`Bad key(s) in quota set: ${k}`);
    values.push([k as QuotaResource, parseLimit(k, v)]);
  }
  await deps.db.transaction().execute(async (trx) => {
    const used = checkUsage ? await projectUsage(trx, checkUsage) : undefined;
    for (const [r, limit] of values) {
      if (used && limit >= 0 && used[r] > limit) {
        throw err.invalidInput(`Quota limit must be greater than or equal to the in-use value ${used[r]} for ${r}.`);
      }
      await trx.deleteFrom('volume_quotas').where('project_id', '=', key).where('resource', '=', r).execute();
      await trx.insertInto('volume_quotas').values({ project_id: key, resource: r, hard_limit: limit }).execute();
    }
  });
}

export async function updateQuotaSet(deps: VolumeDeps, auth: AuthContext, projectId: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  authorize(auth, 'volume_extension:quotas:update', { project_id: projectId });
  await setLimits(deps, projectId, body, projectId);
  return { ...await projectLimits(deps, deps.db, projectId) };
}

export async function deleteQuotaSet(deps: VolumeDeps, auth: AuthContext, projectId: string): Promise<void> {
  authorize(auth, 'volume_extension:quotas:delete', { project_id: projectId });
  await deps.db.deleteFrom('volume_quotas').where('project_id', '=', projectId).execute();
}

export async function showQuotaClass(deps: VolumeDeps, auth: AuthContext, name: string): Promise<Record<string, unknown>> {
  authorize(auth, 'volume_extension:quota_classes', {});
  return { id: name, ...await classLimits(deps, deps.db, name) };
}

export async function updateQuotaClass(deps: VolumeDeps, auth: AuthContext, name: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  authorize(auth, 'volume_extension:quota_classes', {});
  await setLimits(deps, CLASS(name), body, undefined);
  return { ...await classLimits(deps, deps.db, name) };
}
