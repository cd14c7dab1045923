import { hostname } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { GureumError, NotFound } from '../../../common/errors.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';
import type { ComputeHost } from '../types.ts';
import { CONTROLLER_BINARIES } from './hosts.ts';

/**
 * /os-hosts (deprecated; gone from microversion 2.43): the hosts running services, each
 * host's resources per project, enabling/disabling a compute host (the same switch as
 * os-services) and maintenance mode (a disabled host with the reason 'maintenance').
 * Host power actions are not supported, as with Nova's libvirt driver: 501.
 */

const INTERNAL_ZONE = 'internal';
const MAINTENANCE = 'maintenance';
const Toggle = Type.String({ pattern: '^(enable|disable|Enable|Disable|ENABLE|DISABLE)$' });
const HostUpdate = Type.Object({
  status: Type.Optional(Toggle),
  maintenance_mode: Type.Optional(Toggle),
}, { additionalProperties: false, minProperties: 1 });

type Params = { host: string };

export function osHostRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  const db = deps.db;
  const controllerHost = hostname();

  const gone = (req: FastifyRequest) => { if (atLeast(req, '2.43')) throw new NotFound('The resource could not be found.'); };

  async function computeHost(name: string): Promise<ComputeHost> {
    const h = await store.getHost(db, name);
    if (!h) throw new NotFound(`Compute host ${name} could not be found.`);
    return h;
  }

  app.get('/v2.1/os-hosts', async (req) => {
    gone(req);
    enforce(req.ctx.auth, 'os_compute_api:os-hosts:list');
    const zone = (req.query as Record<string, string | undefined>).zone;
    // Disabled services are left out, as Nova lists them.
    const hosts = [
      ...CONTROLLER_BINARIES.map((b) => ({ host_name: controllerHost, service: b.replace(/^nova-/, ''), zone: INTERNAL_ZONE })),
      ...(await store.listHosts(db)).filter((h) => h.enabled).map((h) => ({ host_name: h.host, service: 'compute', zone: h.availabilityZone })),
    ];
    return { hosts: zone ? hosts.filter((h) => h.zone === zone) : hosts };
  });

  app.get<{ Params: Params }>('/v2.1/os-hosts/:host', async (req) => {
    gone(req);
    enforce(req.ctx.auth, 'os_compute_api:os-hosts:show');
    const h = await computeHost(req.params.host);
    const rows = await db.selectFrom('instances').select(['project_id', 'vcpus', 'memory_mb', 'root_gb', 'ephemeral_gb'])
      .where('host', '=', h.host).where('deleted', '=', 0).orderBy('created_at').execute();
    const resource = (project: string, cpu: number, memory_mb: number, disk_gb: number) => ({ resource: { host: h.host, project, cpu, memory_mb, disk_gb } });
    const perProject = new Map<string, { cpu: number; mem: number; disk: number }>();
    let cpu = 0; let mem = 0; let disk = 0;
    for (const r of rows) {
      const p = perProject.get(r.project_id) ?? { cpu: 0, mem: 0, disk: 0 };
      p.cpu += r.vcpus; p.mem += r.memory_mb; p.disk += r.root_gb + r.ephemeral_gb;
      perProject.set(r.project_id, p);
      cpu += r.vcpus; mem += r.memory_mb; disk += r.root_gb + r.ephemeral_gb;
    }
    return {
      host: [
        resource('(total)', h.vcpus, h.memoryMb, h.localGb),
        resource('(used_now)', h.vcpusUsed, h.memoryMbUsed, h.localGbUsed),
        resource('(used_max)', cpu, mem, disk),
        ...[...perProject].map(([project, p]) => resource(project, p.cpu, p.mem, p.disk)),
      ],
    };
  });

  app.put<{ Params: Params; Body: Static<typeof HostUpdate> }>('/v2.1/os-hosts/:host', { schema: { body: HostUpdate } }, async (req) => {
    gone(req);
    enforce(req.ctx.auth, 'os_compute_api:os-hosts:update');
    let h = await computeHost(req.params.host);
    const out: Record<string, string> = { host: h.host };
    const { status, maintenance_mode: maintenance } = req.body;
    if (status !== undefined) {
      const enable = status.toLowerCase() === 'enable';
      await store.updateHost(db, h.host, enable ? { enabled: 1, disabled_reason: null } : { enabled: 0 });
      out.status = enable ? 'enabled' : 'disabled';
      h = await computeHost(h.host);
    }
    if (maintenance !== undefined) {
      const enter = maintenance.toLowerCase() === 'enable';
      if (enter) await store.updateHost(db, h.host, { enabled: 0, disabled_reason: MAINTENANCE });
      else if (h.disabledReason === MAINTENANCE) await store.updateHost(db, h.host, { enabled: 1, disabled_reason: null });
      out.maintenance_mode = enter ? 'on_maintenance' : 'off_maintenance';
    }
    return out;
  });

  const POWER_ACTIONS: [string, string][] = [['startup', 'start'], ['shutdown', 'shutdown'], ['reboot', 'reboot']];
  for (const [action, rule] of POWER_ACTIONS) {
    app.get<{ Params: Params }>(`/v2.1/os-hosts/:host/${action}`, async (req) => {
      gone(req);
      enforce(req.ctx.auth, `os_compute_api:os-hosts:${rule}`);
      await computeHost(req.params.host);
      throw new GureumError(501, 'The requested functionality is not supported.');
    });
  }
}
