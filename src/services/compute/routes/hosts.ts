import { createHash, randomUUID } from 'node:crypto';
import { hostname, loadavg, uptime as osUptime } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, Conflict, GureumError, NotFound } from '../../../common/errors.ts';
import { isoNow, isUniqueViolation } from '../../../db/index.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast, boolParam, computeBase, intParam, validateBody } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';
import type { ComputeHost } from '../types.ts';

/**
 * The operator's view of hosts: /os-hypervisors, /os-services, /os-availability-zone and
 * /os-aggregates. Compute hosts are the rows the agents register; the scheduler and
 * conductor are the controller's own loops, listed as services of the controller host.
 */

const DEFAULT_ZONE = 'nova';
const INTERNAL_ZONE = 'internal';
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
type Query = Record<string, string | string[] | undefined>;
const q1 = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Database times as Nova prints them for services and aggregates: microseconds, no zone. */
function dbTime(iso: string | null): string | null {
  return iso ? iso.replace(/Z$/, '').padEnd(26, '0').slice(0, 26) : null;
}

/** A uuid derived from a name, stable across restarts (for the controller's services). */
function nameUuid(name: string): string {
  const h = createHash('sha1').update(`gureum-service:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Addresses meaning "this machine": an agent reporting one runs beside the controller (all-in-one). */
const LOCAL_IPS = new Set(['127.0.0.1', '::1', 'localhost']);

/** This machine's uptime and load as the `uptime` command prints them (what Nova's libvirt driver reports). */
export function uptimeLine(now = new Date(), upSec = osUptime(), load = loadavg()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const days = Math.floor(upSec / 86400);
  const hours = Math.floor((upSec % 86400) / 3600);
  const mins = Math.floor((upSec % 3600) / 60);
  const since = `${days > 0 ? `${days} day${days === 1 ? '' : 's'}, ` : ''}${hours > 0 ? `${hours}:${p2(mins)}` : `${mins} min`}`;
  const clock = `${p2(now.getHours())}:${p2(now.getMinutes())}:${p2(now.getSeconds())}`;
  return ` ${clock} up ${since},  load average: ${load.map((l) => l.toFixed(2)).join(', ')}`;
}

interface Service {
  id: number; uuid: string; binary: string; host: string; zone: string; enabled: boolean; disabledReason: string | null;
  forcedDown: boolean; up: boolean; updatedAt: string; compute?: ComputeHost;
}

/** The controller's loops: ids 1 and 2; compute services follow at host id + 2. */
export const CONTROLLER_BINARIES = ['nova-scheduler', 'nova-conductor'];
const computeServiceId = (h: ComputeHost): number => h.id + CONTROLLER_BINARIES.length;

export function hostRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  const db = deps.db;
  const controllerHost = hostname();

  const isUp = (h: ComputeHost): boolean => !h.forcedDown && Date.now() - Date.parse(h.lastSeen) <= deps.cfg.serviceDownTimeSec * 1000;

  /**
   * A hypervisor's uptime line. Agents report no uptime, so it is known only for an agent on
   * this machine (host_ip local: all-in-one), read from this kernel; null otherwise.
   */
  const uptimeOf = (h: ComputeHost): string | null => (LOCAL_IPS.has(h.hostIp) ? uptimeLine() : null);

  const computeService = (h: ComputeHost): Service => ({
    id: computeServiceId(h), uuid: h.serviceUuid, binary: 'nova-compute', host: h.host, zone: h.availabilityZone, enabled: h.enabled,
    disabledReason: h.disabledReason, forcedDown: h.forcedDown, up: isUp(h), updatedAt: h.lastSeen, compute: h,
  });

  async function services(): Promise<Service[]> {
    const now = isoNow();
    const ctl: Service[] = CONTROLLER_BINARIES.map((binary, i) => ({
      id: i + 1, uuid: nameUuid(`${controllerHost}/${binary}`), binary, host: controllerHost, zone: INTERNAL_ZONE, enabled: true,
      disabledReason: null, forcedDown: false, up: true, updatedAt: now,
    }));
    return [...ctl, ...(await store.listHosts(db)).map(computeService)];
  }

  const renderService = (req: FastifyRequest, s: Service): Record<string, unknown> => ({
    id: atLeast(req, '2.53') ? s.uuid : s.id, binary: s.binary, disabled_reason: s.disabledReason, host: s.host,
    state: s.up ? 'up' : 'down', status: s.enabled ? 'enabled' : 'disabled', updated_at: dbTime(s.updatedAt), zone: s.zone,
    ...(atLeast(req, '2.11') ? { forced_down: s.forcedDown } : {}),
  });

  // ---- hypervisors ----

  const cpuInfo = (h: ComputeHost) => ({
    arch: h.arch, model: h.cpuModel, vendor: '', topology: { cells: 1, sockets: 1, cores: h.vcpus, threads: 1 }, features: [] as string[],
  });

  function renderHypervisor(req: FastifyRequest, h: ComputeHost, detail: boolean, servers?: { uuid: string; name: string }[]): Record<string, unknown> {
    const v253 = atLeast(req, '2.53');
    const out: Record<string, unknown> = {
      id: v253 ? h.uuid : h.id, hypervisor_hostname: h.host, state: isUp(h) ? 'up' : 'down', status: h.enabled ? 'enabled' : 'disabled',
    };
    if (detail) {
      if (!atLeast(req, '2.88')) {
        Object.assign(out, {
          vcpus: h.vcpus, memory_mb: h.memoryMb, local_gb: h.localGb, vcpus_used: h.vcpusUsed, memory_mb_used: h.memoryMbUsed,
          local_gb_used: h.localGbUsed, free_ram_mb: h.memoryMb - h.memoryMbUsed, free_disk_gb: h.localGb - h.localGbUsed,
          current_workload: 0, running_vms: h.runningVms, disk_available_least: h.localGb - h.localGbUsed,
          cpu_info: atLeast(req, '2.28') ? cpuInfo(h) : JSON.stringify(cpuInfo(h)),
        });
      } else {
        out.uptime = isUp(h) ? uptimeOf(h) : null;
      }
      Object.assign(out, {
        hypervisor_type: h.hypervisorType, hypervisor_version: h.hypervisorVersion, host_ip: h.hostIp,
        service: { host: h.host, id: v253 ? h.serviceUuid : computeServiceId(h), disabled_reason: h.disabledReason },
      });
    }
    if (servers && (servers.length > 0 || atLeast(req, '2.75'))) out.servers = servers.map((s) => ({ name: s.name, uuid: s.uuid }));
    return out;
  }

  async function findHypervisor(req: FastifyRequest, id: string): Promise<ComputeHost> {
    const hosts = await store.listHosts(db);
    if (atLeast(req, '2.53')) {
      if (!UUID_RE.test(id)) throw new BadRequest(`Invalid uuid ${id}`);
      const h = hosts.find((x) => x.uuid === id);
      if (h) return h;
    } else {
      const h = /^\d+$/.test(id) ? hosts.find((x) => x.id === Number(id)) : undefined;
      if (h) return h;
    }
    throw new NotFound(`Hypervisor with ID '${id}' could not be found.`);
  }

  const matching = (hosts: ComputeHost[], pattern: string) => hosts.filter((h) => h.host.toLowerCase().includes(pattern.toLowerCase()));

  async function listHypervisors(req: FastifyRequest, detail: boolean) {
    enforce(req.ctx.auth, 'os_compute_api:os-hypervisors');
    const q = req.query as Query;
    let hosts = await store.listHosts(db);
    let withServers = false;
    let links: { rel: string; href: string }[] | undefined;
    if (atLeast(req, '2.53')) {
      withServers = boolParam(q1(q.with_servers)) === true;
      const pattern = q1(q.hypervisor_hostname_pattern);
      if (pattern !== undefined) {
        if (q.limit !== undefined || q.marker !== undefined) {
          throw new BadRequest('Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.');
        }
        hosts = matching(hosts, pattern);
        if (hosts.length === 0) throw new NotFound(`No hypervisor matching '${pattern}' could be found.`);
      }
    }
    if (atLeast(req, '2.33')) {
      const limit = intParam(q1(q.limit), 'limit');
      const marker = q1(q.marker);
      if (marker !== undefined) {
        const i = hosts.findIndex((h) => String(atLeast(req, '2.53') ? h.uuid : h.id) === marker);
        if (i < 0) throw new BadRequest(`marker [${marker}] not found`);
        hosts = hosts.slice(i + 1);
      }
      if (limit !== undefined) {
        hosts = hosts.slice(0, Math.min(limit, 1000));
        const last = hosts[hosts.length - 1];
        if (last && hosts.length === limit) {
          const params = new URLSearchParams({ limit: String(limit), marker: String(atLeast(req, '2.53') ? last.uuid : last.id) });
          links = [{ rel: 'next', href: `${computeBase(req)}/v2.1/os-hypervisors${detail ? '/detail' : ''}?${params.toString()}` }];
        }
      }
    }
    const servers = withServers ? await store.instancesOnHosts(db, hosts.map((h) => h.host)) : [];
    return {
      hypervisors: hosts.map((h) => renderHypervisor(req, h, detail, withServers ? servers.filter((s) => s.host === h.host) : undefined)),
      ...(links ? { hypervisors_links: links } : {}),
    };
  }

  app.get('/v2.1/os-hypervisors', async (req) => listHypervisors(req, false));
  app.get('/v2.1/os-hypervisors/detail', async (req) => listHypervisors(req, true));

  app.get('/v2.1/os-hypervisors/statistics', async (req) => {
    if (atLeast(req, '2.88')) throw new NotFound('The resource could not be found.');
    enforce(req.ctx.auth, 'os_compute_api:os-hypervisors');
    const hosts = await store.listHosts(db);
    const sum = (f: (h: ComputeHost) => number) => hosts.reduce((a, h) => a + f(h), 0);
    return {
      hypervisor_statistics: {
        count: hosts.length, vcpus: sum((h) => h.vcpus), memory_mb: sum((h) => h.memoryMb), local_gb: sum((h) => h.localGb),
        vcpus_used: sum((h) => h.vcpusUsed), memory_mb_used: sum((h) => h.memoryMbUsed), local_gb_used: sum((h) => h.localGbUsed),
        free_ram_mb: sum((h) => h.memoryMb - h.memoryMbUsed), free_disk_gb: sum((h) => h.localGb - h.localGbUsed),
        current_workload: 0, running_vms: sum((h) => h.runningVms), disk_available_least: sum((h) => h.localGb - h.localGbUsed),
      },
    };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-hypervisors/:id', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-hypervisors');
    const h = await findHypervisor(req, req.params.id);
    const withServers = atLeast(req, '2.53') && boolParam(q1((req.query as Query).with_servers)) === true;
    return { hypervisor: renderHypervisor(req, h, true, withServers ? await store.instancesOnHosts(db, [h.host]) : undefined) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-hypervisors/:id/uptime', async (req) => {
    if (atLeast(req, '2.88')) throw new NotFound('The resource could not be found.');
    enforce(req.ctx.auth, 'os_compute_api:os-hypervisors');
    const h = await findHypervisor(req, req.params.id);
    if (!isUp(h)) throw new BadRequest(`Compute service of ${h.host} is unavailable at this time.`);
    const uptime = uptimeOf(h);
    if (uptime === null) throw new GureumError(501, 'The requested functionality is not supported.');
    return { hypervisor: { ...renderHypervisor(req, h, false), uptime } };
  });

  for (const what of ['search', 'servers'] as const) {
    app.get<{ Params: { pattern: string } }>(`/v2.1/os-hypervisors/:pattern/${what}`, async (req) => {
      if (atLeast(req, '2.53')) throw new NotFound('The resource could not be found.');
      enforce(req.ctx.auth, 'os_compute_api:os-hypervisors');
      const hosts = matching(await store.listHosts(db), req.params.pattern);
      if (hosts.length === 0) throw new NotFound(`No hypervisor matching '${req.params.pattern}' could be found.`);
      const servers = what === 'servers' ? await store.instancesOnHosts(db, hosts.map((h) => h.host)) : [];
      return { hypervisors: hosts.map((h) => renderHypervisor(req, h, false, what === 'servers' ? servers.filter((s) => s.host === h.host) : undefined)) };
    });
  }

  // ---- services ----

  app.get('/v2.1/os-services', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-services');
    const q = req.query as Query;
    const host = q1(q.host);
    const binary = q1(q.binary);
    const list = (await services()).filter((s) => (host === undefined || s.host === host) && (binary === undefined || s.binary === binary));
    return { services: list.map((s) => renderService(req, s)) };
  });

  const LegacyBody = Type.Object({
    host: Type.String({ minLength: 1, maxLength: 255 }),
    binary: Type.String({ minLength: 1, maxLength: 255 }),
    disabled_reason: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    forced_down: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
  }, { additionalProperties: false });
  const UpdateBody = Type.Object({
    status: Type.Optional(Type.Union([Type.Literal('enabled'), Type.Literal('disabled')])),
    disabled_reason: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    forced_down: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
  }, { additionalProperties: false, minProperties: 1 });

  const onlyCompute = (s: Service): ComputeHost => {
    if (!s.compute) throw new BadRequest(`Updating a ${s.binary} service is not supported. Only nova-compute services can be updated.`);
    return s.compute;
  };

  app.put<{ Params: { id: string }; Body: unknown }>('/v2.1/os-services/:id', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-services');
    const id = req.params.id;
    if (!atLeast(req, '2.53')) {
      const action = id;
      if (!['enable', 'disable', 'disable-log-reason', 'force-down'].includes(action) || (action === 'force-down' && !atLeast(req, '2.11'))) {
        throw new NotFound(`Unknown action`);
      }
      const body = validateBody(LegacyBody, req.body, 'body');
      const s = (await services()).find((x) => x.host === body.host && x.binary === body.binary);
      if (!s) throw new NotFound(`Compute host ${body.host} with binary ${body.binary} could not be found.`);
      const h = onlyCompute(s);
      switch (action) {
        case 'enable':
          await store.updateHost(db, h.host, { enabled: 1, disabled_reason: null });
          return { service: { host: body.host, binary: body.binary, status: 'enabled' } };
        case 'disable':
          await store.updateHost(db, h.host, { enabled: 0 });
          return { service: { host: body.host, binary: body.binary, status: 'disabled' } };
        case 'disable-log-reason': {
          if (body.disabled_reason === undefined) throw new BadRequest('Missing disabled reason field');
          await store.updateHost(db, h.host, { enabled: 0, disabled_reason: body.disabled_reason });
          return { service: { host: body.host, binary: body.binary, status: 'disabled', disabled_reason: body.disabled_reason } };
        }
        default: {
          const forced = boolParam(body.forced_down);
          if (forced === undefined) throw new BadRequest('Invalid input for field/attribute forced_down.');
          await store.updateHost(db, h.host, { forced_down: forced ? 1 : 0 });
          return { service: { host: body.host, binary: body.binary, forced_down: forced } };
        }
      }
    }
    if (!UUID_RE.test(id)) throw new BadRequest(`Invalid uuid ${id}`);
    const body = validateBody(UpdateBody, req.body, 'body');
    const s = (await services()).find((x) => x.uuid === id);
    if (!s) throw new NotFound(`Service ${id} could not be found.`);
    const h = onlyCompute(s);
    if (body.disabled_reason !== undefined && body.status !== 'disabled') {
      throw new BadRequest("Specifying 'disabled_reason' with status other than 'disabled' is invalid.");
    }
    const patch: store.HostPatch = {};
    if (body.status === 'enabled') Object.assign(patch, { enabled: 1, disabled_reason: null });
    if (body.status === 'disabled') Object.assign(patch, { enabled: 0, disabled_reason: body.disabled_reason ?? null });
    if (body.forced_down !== undefined) {
      const forced = boolParam(body.forced_down);
      if (forced === undefined) throw new BadRequest(`Invalid input for field/attribute forced_down. Value: ${String(body.forced_down)}.`);
      patch.forced_down = forced ? 1 : 0;
    }
    await store.updateHost(db, h.host, patch);
    return { service: renderService(req, computeService((await store.getHost(db, h.host))!)) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-services/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'os_compute_api:os-services');
    const id = req.params.id;
    if (atLeast(req, '2.53') && !UUID_RE.test(id)) throw new BadRequest(`Invalid uuid ${id}`);
    const s = (await services()).find((x) => (atLeast(req, '2.53') ? x.uuid === id : String(x.id) === id));
    if (!s) throw new NotFound(`Service ${id} could not be found.`);
    if (!s.compute) throw new BadRequest(`Deleting a ${s.binary} service is not supported: it is part of the controller.`);
    if ((await store.instancesOnHosts(db, [s.host])).length > 0) {
      throw new Conflict('Unable to delete compute service that is hosting instances. Migrate or delete the instances first.');
    }
    await db.transaction().execute((tx) => store.deleteHost(tx, s.host));
    return reply.code(204).send();
  });

  // ---- availability zones ----

  app.get('/v2.1/os-availability-zone', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-availability-zone:list');
    const hosts = await store.listHosts(db);
    const zones = new Map<string, boolean>();
    for (const h of hosts) zones.set(h.availabilityZone, (zones.get(h.availabilityZone) ?? false) || h.enabled);
    return {
      availabilityZoneInfo: [...zones].sort(([a], [b]) => a.localeCompare(b))
        .map(([zoneName, available]) => ({ zoneName, zoneState: { available }, hosts: null })),
    };
  });

  app.get('/v2.1/os-availability-zone/detail', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-availability-zone:detail');
    const all = await services();
    const zones = new Map<string, { available: boolean; hosts: Record<string, Record<string, unknown>> }>();
    for (const s of all) {
      const z = zones.get(s.zone) ?? { available: false, hosts: {} };
      z.available ||= s.enabled;
      (z.hosts[s.host] ??= {})[s.binary] = { available: s.up, active: s.enabled, updated_at: dbTime(s.updatedAt) };
      zones.set(s.zone, z);
    }
    return {
      availabilityZoneInfo: [...zones].sort(([a], [b]) => (a === INTERNAL_ZONE ? -1 : b === INTERNAL_ZONE ? 1 : a.localeCompare(b)))
        .map(([zoneName, z]) => ({ zoneName, zoneState: { available: z.available }, hosts: z.hosts })),
    };
  });

  // ---- aggregates ----

  const AzName = Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^[^:]*$' }), Type.Null()]);
  const AggName = Type.String({ minLength: 1, maxLength: 255, pattern: '^(?!\\s)[^\\x00-\\x1f\\x7f]*(?<!\\s)$' });
  const AggCreate = Type.Object({
    aggregate: Type.Object({ name: AggName, availability_zone: Type.Optional(AzName) }, { additionalProperties: false }),
  }, { additionalProperties: false });
  const AggUpdate = Type.Object({
    aggregate: Type.Object({ name: Type.Optional(AggName), availability_zone: Type.Optional(AzName) }, { additionalProperties: false, minProperties: 1 }),
  }, { additionalProperties: false });
  const HostBody = Type.Object({ host: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false });
  const AggAction = Type.Union([
    Type.Object({ add_host: HostBody }, { additionalProperties: false }),
    Type.Object({ remove_host: HostBody }, { additionalProperties: false }),
    Type.Object({
      set_metadata: Type.Object({
        metadata: Type.Record(Type.String({ pattern: '^[a-zA-Z0-9-_:. /]{1,255}$' }), Type.Union([Type.String({ maxLength: 255 }), Type.Null()]), { additionalProperties: false }),
      }, { additionalProperties: false }),
    }, { additionalProperties: false }),
  ]);

  const renderAggregate = (req: FastifyRequest, a: store.Aggregate, full = true): Record<string, unknown> => ({
    availability_zone: a.availabilityZone, created_at: dbTime(a.createdAt), deleted: false, deleted_at: null, id: a.id, name: a.name,
    updated_at: dbTime(a.updatedAt), ...(full ? { hosts: a.hosts, metadata: a.metadata } : {}), ...(atLeast(req, '2.41') ? { uuid: a.uuid } : {}),
  });

  async function findAggregate(id: string): Promise<store.Aggregate> {
    let a: store.Aggregate | undefined;
    if (/^\d+$/.test(id)) a = await store.getAggregate(db, Number(id));
    else if (UUID_RE.test(id)) a = (await store.listAggregates(db)).find((x) => x.uuid === id);
    if (!a) throw new NotFound(`Aggregate ${id} could not be found.`);
    return a;
  }

  /**
   * Refuse a zone for an aggregate's hosts that would move a host with instances, or put a
   * host into two zones at once (Nova's rules); `reason` formats the refusal.
   */
  async function checkZone(a: store.Aggregate, hosts: string[], zone: string | null, fail: (reason: string) => GureumError): Promise<void> {
    if (zone === INTERNAL_ZONE) throw fail(`The availability zone name cannot be '${INTERNAL_ZONE}', the zone of the controller services.`);
    if (hosts.length === 0) return;
    const others = (await store.listAggregates(db)).filter((x) => x.id !== a.id && x.availabilityZone !== null && x.hosts.some((h) => hosts.includes(h)));
    const conflicting = others.filter((x) => x.availabilityZone !== zone);
    if (zone !== null && conflicting.length > 0) {
      throw fail(`One or more hosts already in availability zone(s) [${[...new Set(conflicting.map((x) => `'${x.availabilityZone}'`))].join(', ')}]`);
    }
    const current = new Map((await store.listHosts(db)).map((h) => [h.host, h.availabilityZone]));
    const target = zone ?? (others.length > 0 ? others[0]!.availabilityZone! : DEFAULT_ZONE);
    const moving = hosts.filter((h) => (current.get(h) ?? target) !== target);
    // Only instances placed in the zone the host leaves would change zone under their users.
    const stranded = moving.length === 0 ? [] : await db.selectFrom('instances').select('uuid').where('deleted', '=', 0)
      .where((eb) => eb.or(moving.map((h) => eb.and([eb('host', '=', h), eb('availability_zone', '=', current.get(h) ?? DEFAULT_ZONE)])))).execute();
    if (stranded.length > 0) {
      throw fail('One or more hosts contain instances in this zone.');
    }
  }

  app.get('/v2.1/os-aggregates', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-aggregates');
    return { aggregates: (await store.listAggregates(db)).map((a) => renderAggregate(req, a)) };
  });

  app.post<{ Body: Static<typeof AggCreate> }>('/v2.1/os-aggregates', { schema: { body: AggCreate } }, async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-aggregates');
    const { name, availability_zone: az } = req.body.aggregate;
    if (az === INTERNAL_ZONE) throw new BadRequest(`The availability zone name cannot be '${INTERNAL_ZONE}', the zone of the controller services.`);
    if ((await store.listAggregates(db)).some((a) => a.name === name)) throw new Conflict(`Aggregate ${name} already exists.`);
    const id = await store.nextId(db, 'aggregates');
    try {
      await store.insertAggregate(db, {
        id, uuid: randomUUID(), name, availability_zone: az ?? null, metadata: JSON.stringify(az ? { availability_zone: az } : {}),
        created_at: isoNow(), updated_at: null,
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Aggregate ${name} already exists.`);
      throw err;
    }
    return { aggregate: renderAggregate(req, (await store.getAggregate(db, id))!, false) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-aggregates');
    return { aggregate: renderAggregate(req, await findAggregate(req.params.id)) };
  });

  app.put<{ Params: { id: string }; Body: Static<typeof AggUpdate> }>('/v2.1/os-aggregates/:id', { schema: { body: AggUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-aggregates');
    const a = await findAggregate(req.params.id);
    const b = req.body.aggregate;
    if (b.name !== undefined && b.name !== a.name && (await store.listAggregates(db)).some((x) => x.name === b.name)) {
      throw new Conflict(`Aggregate ${b.name} already exists.`);
    }
    const fail = (reason: string) => new BadRequest(`Cannot update aggregate ${a.id}. Reason: ${reason}.`.replace('..', '.'));
    const metadata = { ...a.metadata };
    if (b.availability_zone !== undefined) {
      await checkZone(a, a.hosts, b.availability_zone, fail);
      if (b.availability_zone === null) delete metadata.availability_zone;
      else metadata.availability_zone = b.availability_zone;
    }
    await db.transaction().execute(async (tx) => {
      await store.updateAggregate(tx, a.id, {
        ...(b.name !== undefined ? { name: b.name } : {}),
        ...(b.availability_zone !== undefined ? { availability_zone: b.availability_zone, metadata: JSON.stringify(metadata) } : {}),
        updated_at: isoNow(),
      });
      await store.refreshHostZones(tx, a.hosts, DEFAULT_ZONE);
    });
    return { aggregate: renderAggregate(req, (await store.getAggregate(db, a.id))!) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'os_compute_api:os-aggregates');
    const a = await findAggregate(req.params.id);
    if (a.hosts.length > 0) throw new BadRequest(`Cannot remove aggregate ${a.id}. Reason: Host aggregate is not empty.`);
    await store.deleteAggregate(db, a.id);
    return reply.code(200).send();
  });

  app.post<{ Params: { id: string }; Body: Static<typeof AggAction> }>('/v2.1/os-aggregates/:id/action', { schema: { body: AggAction } }, async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-aggregates');
    const a = await findAggregate(req.params.id);
    const body = req.body;
    if ('add_host' in body) {
      const host = body.add_host.host;
      if (!(await store.getHost(db, host))) throw new NotFound(`Compute host ${host} could not be found.`);
      if (a.hosts.includes(host)) throw new Conflict(`Aggregate ${a.id} already has host ${host}.`);
      await checkZone(a, [host], a.availabilityZone, (r) => new Conflict(`Cannot add host to aggregate ${a.id}. Reason: ${r}`));
      await db.transaction().execute(async (tx) => {
        await store.addAggregateHost(tx, a.id, host);
        await store.refreshHostZones(tx, [host], DEFAULT_ZONE);
      });
    } else if ('remove_host' in body) {
      const host = body.remove_host.host;
      if (!a.hosts.includes(host)) throw new NotFound(`Aggregate ${a.id} has no host ${host}.`);
      if (a.availabilityZone !== null) {
        await checkZone({ ...a, hosts: a.hosts.filter((h) => h !== host) }, [host], null, (r) => new Conflict(`Cannot remove host from aggregate ${a.id}. Reason: ${r}`));
      }
      await db.transaction().execute(async (tx) => {
        await store.removeAggregateHost(tx, a.id, host);
        await store.refreshHostZones(tx, [host], DEFAULT_ZONE);
      });
    } else {
      const changes = body.set_metadata.metadata;
      const metadata = { ...a.metadata };
      for (const [k, v] of Object.entries(changes)) {
        if (v === null) delete metadata[k];
        else metadata[k] = v;
      }
      const zone = metadata.availability_zone ?? null;
      if (zone !== a.availabilityZone) {
        if (zone !== null && zone.includes(':')) throw new BadRequest('Invalid input for field/attribute availability_zone: it may not contain ":".');
        await checkZone(a, a.hosts, zone, (r) => new BadRequest(`Cannot update metadata of aggregate ${a.id}. Reason: ${r}`));
      }
      await db.transaction().execute(async (tx) => {
        await store.updateAggregate(tx, a.id, { metadata: JSON.stringify(metadata), availability_zone: zone, updated_at: isoNow() });
        await store.refreshHostZones(tx, a.hosts, DEFAULT_ZONE);
      });
    }
    return { aggregate: renderAggregate(req, (await store.getAggregate(db, a.id))!) };
  });
}

