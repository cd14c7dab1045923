import type { FastifyInstance, FastifyRequest } from 'fastify';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, NotFound } from '../../../common/errors.ts';
import type { Selectable } from 'kysely';
import type { InstanceTable as InstanceTableShape } from '../../../db/schema/compute.ts';
type InstanceTable = Selectable<InstanceTableShape>;
import type { ComputeDeps } from '../deps.ts';
import { atLeast, computeBase, intParam } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';
import type { Flavor } from '../types.ts';

/**
 * Usage reports: /os-simple-tenant-usage (instance-hours per project over a period,
 * computed from the instance rows, deleted ones included) and
 * /os-instance_usage_audit_log (Nova's periodic audit task; Gureum runs none, so the
 * report is an honest "no host has run it" for the last completed month).
 */

const MAX_LIMIT = 1000;
type Query = Record<string, string | string[] | undefined>;
const q1 = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** A point in time in microseconds since the epoch (Nova reports usage times to the microsecond). */
type Micros = number;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** "2024-05-01T12:00:00.000000" — Nova's (naive UTC) usage time format. */
function usageTime(us: Micros): string {
  const ms = Math.floor(us / 1000);
  const d = new Date(ms);
  const frac = pad(((ms % 1000) + 1000) % 1000, 3) + pad(((us % 1000) + 1000) % 1000, 3);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${frac}`;
}

/** The same instant as stored in the database (isoNow's format), for comparisons in SQL. */
const dbTime = (us: Micros): string => `${usageTime(us)}Z`;

/** A stored ISO time to microseconds (the database keeps six fractional digits). */
function fromDb(iso: string): Micros {
  const m = /\.(\d+)Z?$/.exec(iso);
  const whole = Date.parse(iso.replace(/\.\d+/, '').replace(/Z?$/, 'Z'));
  const frac = m ? Number((m[1]! + '000000').slice(0, 6)) : 0;
  return whole * 1000 + frac;
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

/** Parse a naive UTC date-time the way Nova's usage and audit APIs accept it; undefined when malformed. */
function parseNaive(s: string): Micros | undefined {
  const m = DATETIME.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) return undefined;
  return ms * 1000 + Number(((m[7] ?? '') + '000000').slice(0, 6));
}

const nowMicros = (): Micros => Date.now() * 1000;

/** start/end (default now) as Nova reads them; the end is capped at now. */
function period(q: Query): { start: Micros; stop: Micros } {
  const parse = (v: string | undefined): Micros => {
    if (!v) return nowMicros();
    const t = parseNaive(v);
    if (t === undefined) throw new BadRequest('Invalid datetime string: Datetime is in invalid format');
    return t;
  };
  const start = parse(q1(q.start));
  let stop = parse(q1(q.end));
  if (!(start < stop)) throw new BadRequest('Invalid start time. The start time cannot occur after the end time.');
  stop = Math.min(stop, nowMicros());
  return { start, stop };
}

interface ServerUsage {
  instance_id: string; name: string; tenant_id: string; flavor: string; hours: number; memory_mb: number; local_gb: number;
  vcpus: number; started_at: string; ended_at: string | null; state: string; uptime: number;
}

interface TenantUsage {
  tenant_id: string; server_usages?: ServerUsage[]; total_local_gb_usage: number; total_vcpus_usage: number;
  total_memory_mb_usage: number; total_hours: number; start: string; stop: string;
}

/** Hours of `[launched, terminated)` that fall within `[start, stop]`. */
function hoursWithin(launched: Micros, terminated: Micros | null, start: Micros, stop: Micros): number {
  if (terminated !== null && terminated < start) return 0;
  if (launched > stop) return 0;
  const from = Math.max(launched, start);
  const to = terminated === null ? stop : Math.min(stop, terminated);
  return Math.max(0, to - from) / 3_600_000_000;
}

export function usageRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  const db = deps.db;

  /**
   * Instances that ran during the period (Nova's "active by window": not terminated
   * before it began, launched before it ended), oldest first, deleted ones included.
   */
  async function activeInWindow(start: Micros, stop: Micros, tenant: string | undefined): Promise<InstanceTable[]> {
    let q = db.selectFrom('instances').selectAll()
      .where((eb) => eb.or([eb('terminated_at', 'is', null), eb('terminated_at', '>', dbTime(start))]))
      // A server that never launched never ran: it has no usage (Nova lists it with 0 hours).
      .where('launched_at', 'is not', null).where('launched_at', '<', dbTime(stop));
    if (tenant !== undefined) q = q.where('project_id', '=', tenant);
    return q.orderBy('created_at').orderBy('id').execute();
  }

  async function usagesFor(req: FastifyRequest, tenant: string | undefined, detailed: boolean, paged: boolean) {
    const q = req.query as Query;
    const { start, stop } = period(q);
    let limit = MAX_LIMIT;
    let marker: string | undefined;
    if (paged) {
      limit = Math.min(intParam(q1(q.limit), 'limit') ?? MAX_LIMIT, MAX_LIMIT);
      marker = q1(q.marker);
    }
    let rows = await activeInWindow(start, stop, tenant);
    if (marker !== undefined) {
      const i = rows.findIndex((r) => r.uuid === marker);
      if (i < 0) throw new BadRequest(`Marker ${marker} could not be found.`);
      rows = rows.slice(i + 1);
    }
    rows = rows.slice(0, limit);
    const now = nowMicros();
    const tenants = new Map<string, TenantUsage>();
    const all: ServerUsage[] = [];
    for (const r of rows) {
      if (!r.launched_at) continue;
      const f = JSON.parse(r.flavor) as Partial<Flavor>;
      const launched = fromDb(r.launched_at);
      const terminated = r.terminated_at ? fromDb(r.terminated_at) : null;
      const hours = hoursWithin(launched, terminated, start, stop);
      const u: ServerUsage = {
        instance_id: r.uuid, name: r.display_name, tenant_id: r.project_id, flavor: f.name ?? '', hours,
        memory_mb: f.ram ?? r.memory_mb, local_gb: (f.disk ?? r.root_gb) + (f.ephemeral ?? r.ephemeral_gb), vcpus: f.vcpus ?? r.vcpus,
        started_at: usageTime(launched), ended_at: terminated === null ? null : usageTime(terminated),
        state: terminated === null ? r.vm_state : 'terminated',
        uptime: Math.floor(((terminated ?? now) - launched) / 1_000_000),
      };
      let t = tenants.get(u.tenant_id);
      if (!t) {
        t = {
          tenant_id: u.tenant_id, ...(detailed ? { server_usages: [] } : {}), total_local_gb_usage: 0, total_vcpus_usage: 0,
          total_memory_mb_usage: 0, total_hours: 0, start: usageTime(start), stop: usageTime(stop),
        };
        tenants.set(u.tenant_id, t);
      }
      t.total_local_gb_usage += u.local_gb * hours;
      t.total_vcpus_usage += u.vcpus * hours;
      t.total_memory_mb_usage += u.memory_mb * hours;
      t.total_hours += hours;
      t.server_usages?.push(u);
      all.push(u);
    }
    let links: { rel: string; href: string }[] | undefined;
    const last = all[all.length - 1];
    if (paged && limit > 0 && all.length === limit && last) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (k !== 'marker' && v !== undefined) for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
      params.set('marker', last.instance_id);
      links = [{ rel: 'next', href: `${computeBase(req)}/v2.1/os-simple-tenant-usage${tenant !== undefined ? `/${tenant}` : ''}?${params.toString()}` }];
    }
    return { tenants: [...tenants.values()], links };
  }

  app.get('/v2.1/os-simple-tenant-usage', async (req) => {
    // `/os-simple-tenant-usage/` is the show of an empty tenant id: 404, as Nova's router answers.
    if (req.url.split('?')[0]!.endsWith('/')) throw new NotFound('The resource could not be found.');
    enforce(req.ctx.auth, 'os_compute_api:os-simple-tenant-usage:list');
    const paged = atLeast(req, '2.40');
    const detailed = q1((req.query as Query).detailed) === '1';
    const { tenants, links } = await usagesFor(req, undefined, detailed, paged);
    return { tenant_usages: tenants, ...(links ? { tenant_usages_links: links } : {}) };
  });

  app.get<{ Params: { tenant: string } }>('/v2.1/os-simple-tenant-usage/:tenant', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-simple-tenant-usage:show', { project_id: req.params.tenant });
    const paged = atLeast(req, '2.40');
    const { tenants, links } = await usagesFor(req, req.params.tenant, true, paged);
    return { tenant_usage: tenants[0] ?? {}, ...(links ? { tenant_usage_links: links } : {}) };
  });

  // ---- instance usage audit log ----

  /** Nova's last completed audit period (monthly): the month before the one `before` falls in. */
  function lastCompletedMonth(before: Micros): { begin: Date; end: Date } {
    const b = new Date(Math.floor(before / 1000));
    let end = new Date(Date.UTC(b.getUTCFullYear(), b.getUTCMonth(), 1));
    if (end.getTime() * 1000 >= before) end = new Date(Date.UTC(b.getUTCFullYear(), b.getUTCMonth() - 1, 1));
    const begin = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1));
    return { begin, end };
  }
  const plainTime = (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

  /** The audit report for the period: no task logs exist, so every compute host is "not run". */
  async function auditLog(before: Micros) {
    const { begin, end } = lastCompletedMonth(before);
    const hosts = (await store.listHosts(db)).map((h) => h.host);
    return {
      period_beginning: plainTime(begin), period_ending: plainTime(end), num_hosts: hosts.length, num_hosts_done: 0,
      num_hosts_running: 0, num_hosts_not_run: hosts.length, hosts_not_run: hosts, total_instances: 0, total_errors: 0,
      overall_status: `${hosts.length === 0 ? 'ALL' : `0 of ${hosts.length}`} hosts done. 0 errors.`, log: {},
    };
  }

  app.get('/v2.1/os-instance_usage_audit_log', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-instance-usage-audit-log:list');
    return { instance_usage_audit_logs: await auditLog(nowMicros()) };
  });

  app.get<{ Params: { before: string } }>('/v2.1/os-instance_usage_audit_log/:before', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-instance-usage-audit-log:show');
    const raw = req.params.before;
    const strict = raw.includes('.') ? /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{1,6}$/ : /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
    const before = strict.test(raw) ? parseNaive(raw) : undefined;
    if (before === undefined) throw new BadRequest(`Invalid timestamp for date ${raw}`);
    return { instance_usage_audit_log: await auditLog(before) };
  });
}
