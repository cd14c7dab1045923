import type { FastifyInstance, FastifyRequest } from 'fastify';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, NotFound } from '../../../common/errors.ts';
import type { MigrationTable } from '../../../db/schema/compute-migrations.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast, boolParam, computeBase, intParam } from '../http.ts';
import { novaTime } from '../render.ts';
import type { ComputeService } from '../service.ts';
import '../lifecycle/policy.ts';

/** os-migrations (admin): the record of every resize (and later cold/live migration), and /servers/{id}/migrations. */

function flavorNumber(id: string | null): number | null {
  return id !== null && /^\d+$/.test(id) ? Number(id) : null;
}

function render(req: FastifyRequest, m: MigrationTable) {
  const out: Record<string, unknown> = {
    id: m.id, instance_uuid: m.instance_uuid, status: m.status, source_compute: m.source_compute, dest_compute: m.dest_compute,
    source_node: m.source_node, dest_node: m.dest_node, dest_host: m.dest_host,
    old_instance_type_id: flavorNumber(m.old_flavor_id), new_instance_type_id: flavorNumber(m.new_flavor_id),
    created_at: novaTime(m.created_at), updated_at: novaTime(m.updated_at),
  };
  if (atLeast(req, '2.23')) out.migration_type = m.migration_type;
  if (atLeast(req, '2.59')) out.uuid = m.uuid;
  if (atLeast(req, '2.80')) { out.user_id = m.user_id; out.project_id = m.project_id; }
  return out;
}

export function migrationRoutes(app: FastifyInstance, deps: ComputeDeps, compute: ComputeService): void {
  app.get<{ Querystring: Record<string, unknown> }>('/v2.1/os-migrations', async (req) => {
    enforce(req.ctx.auth!, 'os_compute_api:os-migrations:index');
    const q = req.query;
    let sel = deps.db.selectFrom('migrations').selectAll();
    const hidden = boolParam(q.hidden);
    sel = sel.where('hidden', '=', hidden ? 1 : 0);
    if (typeof q.status === 'string') sel = sel.where('status', '=', q.status);
    if (typeof q.instance_uuid === 'string') sel = sel.where('instance_uuid', '=', q.instance_uuid);
    if (typeof q.source_compute === 'string') sel = sel.where('source_compute', '=', q.source_compute);
    if (typeof q.migration_type === 'string') {
      const t = q.migration_type === 'evacuation' ? 'evacuation' : q.migration_type;
      sel = sel.where('migration_type', '=', t);
    }
    if (typeof q.host === 'string') { const h = q.host; sel = sel.where((eb) => eb.or([eb('source_compute', '=', h), eb('dest_compute', '=', h)])); }
    if (atLeast(req, '2.80')) {
      if (typeof q.user_id === 'string') sel = sel.where('user_id', '=', q.user_id);
      if (typeof q.project_id === 'string') sel = sel.where('project_id', '=', q.project_id);
    }
    const paged = atLeast(req, '2.59');
    if (paged) {
      for (const [key, op] of [['changes-since', '>='], ['changes-before', '<=']] as const) {
        const v = q[key];
        if (v === undefined || (key === 'changes-before' && !atLeast(req, '2.66'))) continue;
        if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw new BadRequest(`Invalid input for query parameters ${key}. Value: ${String(v)}. It is not an ISO 8601 date-time.`);
        const iso = new Date(v).toISOString();
        sel = sel.where((eb) => eb(eb.fn.coalesce('updated_at', 'created_at'), op, iso));
      }
    }
    let rows = await sel.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    let more = false;
    if (paged) {
      if (typeof q.marker === 'string') {
        const i = rows.findIndex((r) => r.uuid === q.marker);
        if (i < 0) throw new BadRequest(`Marker ${q.marker} could not be found.`);
        rows = rows.slice(i + 1);
      }
      const limit = intParam(q.limit, 'limit');
      if (limit !== undefined) { more = rows.length > limit; rows = rows.slice(0, limit); }
    }
    const migrations = rows.map((r) => render(req, r));
    if (paged && more && rows.length) {
      return { migrations, migrations_links: [{ rel: 'next', href: `${computeBase(req)}/v2.1/os-migrations?limit=${String(q.limit)}&marker=${rows.at(-1)!.uuid}` }] };
    }
    return { migrations };
  });

  // Live migrations in progress (2.23): none run yet; the server must exist and be visible.
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/migrations', async (req) => {
    if (!atLeast(req, '2.23')) throw new NotFound('The resource could not be found.');
    await compute.get(req.ctx.auth, req.params.id, 'os_compute_api:servers:migrations:index');
    return { migrations: [] };
  });
}
