import { randomBytes, randomUUID } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import type { Target } from '../../api/policy.ts';
import { err } from './errors.ts';
import { isAdmin } from './policy.ts';
import * as store from './store.ts';
import type { Database } from '../../db/index.ts';
import type { Transaction } from 'kysely';
import type { NetworkDeps, NetworkRecord } from './types.ts';

/** Helpers every network service module shares: ids, scopes, quotas, revisions, names. */

/** Neutron ids are dashed UUIDs. */
export const newUuid = (): string => randomUUID();

/** A random MAC address under the configured prefix (fa:16:3e by default). */
export function randomMac(prefix: string): string {
  const tail = [...randomBytes(3)].map((x) => x.toString(16).padStart(2, '0'));
  return `${prefix}:${tail.join(':')}`;
}

/** The project whose resources a non-admin sees (undefined: an admin sees everything). */
export function scopeOf(auth: AuthContext): string | undefined {
  return isAdmin(auth) ? undefined : (auth.projectId ?? '');
}

/** The project a new resource belongs to: the one asked for (admins may name any), else the caller's. */
export function ownerOf(auth: AuthContext, requested: string | undefined): string {
  const p = requested ?? auth.projectId;
  if (p === undefined || p === '') throw err.badRequest(`Failed to parse request. Required attribute 'project_id' not specified`);
  return p;
}

/** The policy target of anything on a network. */
export function networkTarget(net: NetworkRecord, extra: Target = {}): Target {
  return { network_project_id: net.project_id, network_shared: net.shared, network_external: net.router_external, ...extra };
}

/** Throw Neutron's 412 when the caller's If-Match revision is not the current one. */
export function checkRevision(current: number, expected: number | undefined): void {
  if (expected !== undefined && expected !== current) throw err.revisionMismatch(expected, current);
}

export type QuotaResource = 'network' | 'subnet' | 'port' | 'router' | 'floatingip' | 'security_group' | 'security_group_rule' | 'rbac_policy' | 'subnetpool';
export const QUOTA_RESOURCES: QuotaResource[] = ['network', 'subnet', 'port', 'router', 'floatingip', 'security_group', 'security_group_rule', 'rbac_policy', 'subnetpool'];
const QUOTA_TABLES: Partial<Record<QuotaResource, 'networks' | 'subnets' | 'ports' | 'security_groups' | 'security_group_rules' | 'routers' | 'floatingips'>> = {
  network: 'networks', subnet: 'subnets', port: 'ports', router: 'routers', floatingip: 'floatingips',
  security_group: 'security_groups', security_group_rule: 'security_group_rules',
};

/** A project's limits: the configured defaults overlaid with its own settings. */
export async function quotaLimits(deps: NetworkDeps, db: store.Q, projectId: string): Promise<Record<QuotaResource, number>> {
  const out = {} as Record<QuotaResource, number>;
  for (const r of QUOTA_RESOURCES) out[r] = deps.cfg.quotas[r] ?? -1;
  for (const o of await store.quotaOverrides(db, projectId)) if ((QUOTA_RESOURCES as string[]).includes(o.resource)) out[o.resource as QuotaResource] = o.hard_limit;
  return out;
}

export async function quotaUsage(db: store.Q, projectId: string, resource: QuotaResource): Promise<number> {
  const table = QUOTA_TABLES[resource];
  return table ? store.countByProject(db, table, projectId) : 0;
}

/** Refuse (409 OverQuota) a create that would take the project past its limit. */
export async function checkQuota(deps: NetworkDeps, db: store.Q, projectId: string, resource: QuotaResource, adding = 1): Promise<void> {
  const limit = (await quotaLimits(deps, db, projectId))[resource];
  if (limit < 0) return;
  if ((await quotaUsage(db, projectId, resource)) + adding > limit) throw err.overQuota([resource]);
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** A port's dns_name: a host label or a dotted name, as Neutron's validate_dns_name accepts. */
export function checkDnsName(attr: string, name: string): string {
  if (name === '') return '';
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (name.length > 255 || !trimmed.split('.').every((l) => LABEL.test(l))) {
    throw err.badAttr(attr, `'${name}' not a valid PQDN or FQDN. Reason: the name contains characters other than letters, digits and hyphens, or a label longer than 63 characters`);
  }
  if (/^\d+$/.test(trimmed.split('.').at(-1)!) && trimmed.includes('.')) {
    throw err.badAttr(attr, `'${name}' not a valid PQDN or FQDN. Reason: TLD '${trimmed.split('.').at(-1)!}' must not be all numeric`);
  }
  return name.toLowerCase();
}

/** A network's dns_domain: '' or a domain name, kept with its trailing dot as Neutron does. */
export function checkDnsDomain(domain: string): string {
  if (domain === '') return '';
  checkDnsName('dns_domain', domain);
  return domain.endsWith('.') ? domain : `${domain}.`;
}

/** Tags as Neutron accepts them: strings of 1 to 60 characters. */
export function checkTags(tags: unknown): string[] {
  if (!Array.isArray(tags)) throw err.badRequest('Invalid tags body');
  for (const t of tags) {
    if (typeof t !== 'string' || t === '' || t.length > 60) throw err.badAttr('tags', `'${String(t)}' is not a valid tag (a string of 1 to 60 characters)`);
  }
  return [...new Set(tags as string[])];
}

/** Tell the controller something agents care about changed (never lets a listener fail the request). */
export function notify(deps: Pick<NetworkDeps, 'log' | 'changed'>, what: string): void {
  try { deps.changed?.(what); } catch (e) { deps.log.warn({ err: e }, 'network change listener failed'); }
}

/** PostgreSQL's "try again" errors: a deadlock victim or a serialization failure. */
const RETRYABLE = new Set(['40P01', '40001']);

/**
 * Run `fn` in one transaction, retrying it from scratch when PostgreSQL picks it as a
 * deadlock victim (as Neutron's retry decorators do); nothing of a failed attempt stays.
 */
export async function inTransaction<T>(deps: Pick<NetworkDeps, 'db' | 'log'>, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await deps.db.transaction().execute(fn);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (attempt >= 5 || typeof code !== 'string' || !RETRYABLE.has(code)) throw e;
      deps.log.debug({ code, attempt }, 'network transaction retried');
    }
  }
}
