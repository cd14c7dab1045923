import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CinderError, err } from '../errors.ts';
import { isObj, member, optBool, send, v3, who, type Obj } from '../http.ts';
import { authorize } from '../policy.ts';
import { time } from '../render.ts';
import * as quotas from '../quotas.ts';
import type { VolumeService } from '../service.ts';
import { VOLUME_FILTERS } from '../volumes.ts';

/**
 * Quotas (os-quota-sets, os-quota-class-sets), limits, availability zones, services,
 * scheduler-stats/get_pools, resource_filters (3.33) and the extension list.
 */

const VENDOR = 'Gureum';
const DRIVER_VERSION = '1.0';
const PROTOCOL = 'NBD';

const projectOf = (req: FastifyRequest) => (req.params as { target: string }).target;

export function adminRoutes(app: FastifyInstance, svc: VolumeService): void {
  const r = v3(app);
  const deps = svc.deps;

  /** Cinder's services: the scheduler (this controller), and a volume and a backup service per reporting pool. */
  async function serviceRows() {
    const cutoff = Date.now() - deps.cfg.serviceDownTimeSec * 1000;
    const zone = deps.cfg.availabilityZone;
    const rows = [{ binary: 'cinder-scheduler', host: 'controller', zone, enabled: true, up: true, updatedAt: time(new Date().toISOString())!, disabledReason: null as string | null }];
    for (const p of await svc.manager.poolStates()) {
      const common = { zone, enabled: p.enabled === 1, up: Date.parse(p.last_seen) >= cutoff, updatedAt: time(p.last_seen)!, disabledReason: p.disabled_reason };
      rows.push({ binary: 'cinder-volume', host: `${p.host}@local`, ...common }, { binary: 'cinder-backup', host: p.host, ...common });
    }
    return rows;
  }

  r.get('/os-quota-sets/:target', async (req, reply) => {
    const usage = optBool((req.query as Obj).usage, 'usage') ?? false;
    return send(reply, 200, { quota_set: await quotas.showQuotaSet(deps, who(req), projectOf(req), usage) });
  });
  r.get('/os-quota-sets/:target/defaults', async (req, reply) => send(reply, 200, { quota_set: await quotas.defaultQuotaSet(deps, who(req), projectOf(req)) }));
  r.put('/os-quota-sets/:target', async (req, reply) =>
    send(reply, 200, { quota_set: await quotas.updateQuotaSet(deps, who(req), projectOf(req), member(req.body, 'quota_set')) }));
  r.delete('/os-quota-sets/:target', async (req, reply) => { await quotas.deleteQuotaSet(deps, who(req), projectOf(req)); return send(reply, 200); });
  r.get('/os-quota-class-sets/:target', async (req, reply) => send(reply, 200, { quota_class_set: await quotas.showQuotaClass(deps, who(req), projectOf(req)) }));
  r.put('/os-quota-class-sets/:target', async (req, reply) =>
    send(reply, 200, { quota_class_set: await quotas.updateQuotaClass(deps, who(req), projectOf(req), member(req.body, 'quota_class_set')) }));

  r.get('/limits', async (req, reply) => {
    const auth = who(req);
    const q = req.query as Obj;
    const project = typeof q.project_id === 'string' && auth.roles.includes('admin') ? q.project_id : auth.projectId ?? '';
    authorize(auth, 'limits_extension:used_limits', { project_id: project });
    const l = await quotas.projectLimits(deps, deps.db, project);
    const u = await quotas.projectUsage(deps.db, project);
    return send(reply, 200, { limits: { rate: [], absolute: {
      maxTotalVolumes: l.volumes, maxTotalSnapshots: l.snapshots, maxTotalVolumeGigabytes: l.gigabytes, maxTotalBackups: l.backups,
      maxTotalBackupGigabytes: l.backup_gigabytes, totalVolumesUsed: u.volumes, totalSnapshotsUsed: u.snapshots, totalGigabytesUsed: u.gigabytes,
      totalBackupsUsed: u.backups, totalBackupGigabytesUsed: u.backup_gigabytes,
    } } });
  });

  r.get('/os-availability-zone', async (req, reply) => {
    authorize(who(req), 'volume_extension:availability_zone_list');
    const pools = await svc.manager.poolStates();
    const cutoff = Date.now() - deps.cfg.serviceDownTimeSec * 1000;
    const up = pools.some((p) => p.enabled && Date.parse(p.last_seen) >= cutoff);
    return send(reply, 200, { availabilityZoneInfo: [{ zoneName: deps.cfg.availabilityZone, zoneState: { available: up } }] });
  });

  r.get('/os-services', async (req, reply) => {
    authorize(who(req), 'volume_extension:services:index');
    const q = req.query as Obj;
    const services = (await serviceRows()).filter((s) =>
      (typeof q.binary !== 'string' || s.binary === q.binary) && (typeof q.host !== 'string' || s.host === q.host || s.host.split('@')[0] === q.host));
    return send(reply, 200, { services: services.map((s) => ({
      binary: s.binary, host: s.host, zone: s.zone, status: s.enabled ? 'enabled' : 'disabled', state: s.up ? 'up' : 'down', updated_at: s.updatedAt, disabled_reason: s.disabledReason,
    })) });
  });
  r.put('/os-services/:action', async (req, reply) => {
    const auth = who(req);
    authorize(auth, 'volume_extension:services:update');
    const action = (req.params as { action: string }).action;
    const b = isObj(req.body) ? req.body : {};
    const host = typeof b.host === 'string' ? b.host.split('@')[0]! : undefined;
    if (!host) throw err.badRequest('Missing required element \'host\' in request body.');
    if (!['enable', 'disable', 'disable-log-reason'].includes(action)) throw err.badRequest(`Unknown action ${action}`);
    const enabled = action === 'enable';
    if (action === 'disable-log-reason' && (typeof b.disabled_reason !== 'string' || b.disabled_reason.trim() === '' || b.disabled_reason.length > 255)) {
      throw err.invalidInput('Disabled reason contains invalid characters or is too long');
    }
    const reason = action === 'disable-log-reason' ? String(b.disabled_reason) : null;
    const res = await deps.db.updateTable('volume_pools').set({ enabled: enabled ? 1 : 0, disabled_reason: reason }).where('host', '=', host).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new CinderError(404, `Service ${String(b.host)} could not be found.`, 'ServiceNotFound');
    return send(reply, 200, { host: b.host, binary: b.binary ?? 'cinder-volume', status: enabled ? 'enabled' : 'disabled', ...(reason ? { disabled_reason: reason } : {}) });
  });

  // Cinder's os-hosts (admin): the volume hosts, and one host's totals.
  r.get('/os-hosts', async (req, reply) => {
    authorize(who(req), 'volume_extension:hosts');
    return send(reply, 200, { hosts: (await serviceRows()).map((s) => ({
      host_name: s.host, service: s.binary, zone: s.zone, 'service-status': s.up ? 'available' : 'unavailable', 'service-state': s.enabled ? 'enabled' : 'disabled', 'last-update': s.updatedAt,
    })) });
  });
  r.get('/os-hosts/:host', async (req, reply) => {
    authorize(who(req), 'volume_extension:hosts');
    const name = (req.params as { host: string }).host;
    const host = name.split('@')[0]!.split('#')[0]!;
    if (!(await svc.manager.poolStates()).some((p) => p.host === host)) throw new CinderError(404, `Host ${name} could not be found.`, 'HostNotFound');
    const vols = await deps.db.selectFrom('volumes').select(['id', 'project_id', 'size']).where('host', '=', host).execute();
    const snaps = await deps.db.selectFrom('volume_snapshots').innerJoin('volumes', 'volumes.id', 'volume_snapshots.volume_id')
      .select(['volume_snapshots.project_id as project_id', 'volume_snapshots.size as size']).where('volumes.host', '=', host).execute();
    const row = (project: string, v: { size: number }[], s: { size: number }[]) => ({ resource: {
      host: name, project, volume_count: String(v.length), total_volume_gb: String(v.reduce((a, x) => a + x.size, 0)),
      snapshot_count: String(s.length), total_snapshot_gb: String(s.reduce((a, x) => a + x.size, 0)),
    } });
    const projects = [...new Set([...vols.map((v) => v.project_id), ...snaps.map((x) => x.project_id)])];
    return send(reply, 200, { host: [row('(total)', vols, snaps), ...projects.map((p) => row(p, vols.filter((v) => v.project_id === p), snaps.filter((x) => x.project_id === p)))] });
  });

  r.get('/capabilities/:host', async (req, reply) => {
    authorize(who(req), 'volume_extension:capabilities');
    const name = (req.params as { host: string }).host;
    const pool = (await svc.manager.poolStates()).find((p) => p.host === name.split('@')[0]!.split('#')[0]);
    if (!pool) throw new CinderError(404, `Host ${name} could not be found.`, 'HostNotFound');
    return send(reply, 200, {
      namespace: 'OS::Storage::Capabilities::local', vendor_name: VENDOR, volume_backend_name: pool.backend, pool_name: pool.pool, driver_version: DRIVER_VERSION,
      storage_protocol: PROTOCOL, display_name: null, description: null, visibility: null, replication_targets: [],
      properties: {
        thin_provisioning: { title: 'Thin Provisioning', description: 'Volumes are thin (qcow2) and clones copy-on-write.', type: 'boolean' },
        multiattach: { title: 'Multi-attach', description: 'A volume may be attached to several servers.', type: 'boolean' },
      },
    });
  });

  r.get('/scheduler-stats/get_pools', async (req, reply) => {
    authorize(who(req), 'scheduler_extension:scheduler_stats:get_pools');
    const detail = optBool((req.query as Obj).detail, 'detail') ?? false;
    const pools = await svc.manager.poolStates();
    return send(reply, 200, { pools: pools.map((p) => ({
      name: `${p.host}@local#${p.pool}`,
      ...(detail ? { capabilities: {
        volume_backend_name: p.backend, vendor_name: VENDOR, driver_version: DRIVER_VERSION, storage_protocol: PROTOCOL, total_capacity_gb: p.total_gb,
        free_capacity_gb: p.free_gb, provisioned_capacity_gb: p.provisioned_gb + p.pendingGb, allocated_capacity_gb: p.provisioned_gb,
        max_over_subscription_ratio: String(deps.cfg.overSubscriptionRatio), reserved_percentage: deps.cfg.reservedPercentage,
        thin_provisioning_support: true, thick_provisioning_support: false, multiattach: true, pool_name: p.pool, timestamp: p.last_seen,
      } } : {}),
    })) });
  });

  r.get('/resource_filters', async (req, reply) => {
    who(req);
    return send(reply, 200, { resource_filters: [
      { resource: 'volume', filters: VOLUME_FILTERS },
      { resource: 'snapshot', filters: ['name', 'status', 'volume_id', 'metadata'] },
      { resource: 'backup', filters: ['name', 'status', 'volume_id'] },
      { resource: 'attachment', filters: ['volume_id', 'status', 'instance_id'] },
    ] });
  });

  r.get('/extensions', async (req, reply) => {
    who(req);
    const ext = (alias: string, name: string) => ({ alias, name, namespace: `https://docs.openstack.org/volume/ext/${alias}/api/v1`, updated: '2024-01-01T00:00:00+00:00', description: name, links: [] });
    return send(reply, 200, { extensions: [
      ext('os-availability-zone', 'AvailabilityZones'), ext('os-quota-sets', 'Quotas'), ext('os-quota-class-sets', 'QuotaClasses'),
      ext('os-services', 'Services'), ext('os-types-manage', 'TypesManage'), ext('os-types-extra-specs', 'TypesExtraSpecs'),
      ext('os-volume-type-access', 'VolumeTypeAccess'), ext('qos-specs', 'Qos_specs_manage'), ext('os-volume-actions', 'VolumeActions'),
      ext('os-admin-actions', 'AdminActions'), ext('os-vol-host-attr', 'VolumeHostAttribute'), ext('os-vol-tenant-attr', 'VolumeTenantAttribute'),
      ext('os-vol-mig-status-attr', 'VolumeMigStatusAttribute'), ext('os-vol-image-meta', 'VolumeImageMetadata'), ext('backups', 'Backups'),
      ext('os-volume-transfer', 'VolumeTransfer'), ext('scheduler-stats', 'Scheduler_stats'), ext('os-extended-snapshot-attributes', 'ExtendedSnapshotAttributes'),
      ext('os-snapshot-actions', 'SnapshotActions'), ext('os-used-limits', 'UsedLimits'), ext('os-hosts', 'Hosts'), ext('capabilities', 'Capabilities'),
    ] });
  });
}
