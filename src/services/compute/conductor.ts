import { sql } from 'kysely';
import { randomBytes } from 'node:crypto';
import { Bus, BusRemoteError, BusTimeout } from '../../bus/index.ts';
import {
  AgentHeartbeat, AgentHello, agentSubjects, type BuildRequest, type HostReport, type ImageRef, type InstanceVerb, type StateReply,
} from '../../bus/compute.ts';
import type { Logger } from '../../common/logger.ts';
import { isoNow } from '../../db/index.ts';
import type { ComputeDeps } from './deps.ts';
import type { ComputeImage, ImageApi } from './images.ts';
import type { HostState, RequestSpec, Selection, ServerGroupPolicy } from './scheduler/types.ts';
import * as store from './store.ts';
import type { Instance, TaskState, VmState } from './types.ts';
import { isVolumeBacked, listBdms } from './bdm.ts';
import { VolumeWork } from './volume-work.ts';
import { imageById, imageFromVolumeMetadata } from './block-devices.ts';

/** Places instances and drives the agents; the scheduler itself is a pure module. */
export interface PlacementEngine {
  select(hosts: HostState[], spec: RequestSpec, count?: number): Selection;
}

/** What the conductor needs to act for a request: the caller's token and request id. */
export interface WorkContext { requestId: string; token: string; log: Logger }

const BUILD_TIMEOUT_MS = 180_000;
const ACTION_TIMEOUT_MS = 90_000;
const REMOVE_TIMEOUT_MS = 30_000;
const NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.';

/** The outcome each agent verb leads to: the vm_state once it is done. */
const VERB_RESULT: Record<InstanceVerb, VmState> = {
  stop: 'stopped', start: 'active', 'reboot-soft': 'active', 'reboot-hard': 'active',
  pause: 'paused', unpause: 'active', suspend: 'suspended', resume: 'active',
};

/** A fault record for an instance (shown in the server's `fault` while in ERROR). */
export function faultOf(err: unknown, code = 500): { code: number; message: string; details?: string; created: string } {
  const message = err instanceof Error ? err.message : String(err);
  return { code, message: message.slice(0, 255), details: message.length > 255 ? message : undefined, created: isoNow() };
}

/** The ephemeral disk's filesystem: ext4 for Linux images (os_type linux), else vfat, as Nova's defaults. */
export function ephemeralFormat(image: ComputeImage | null): 'vfat' | 'ext4' {
  return image?.properties.os_type === 'linux' ? 'ext4' : 'vfat';
}

export function randomMac(): string {
  const b = randomBytes(3);
  return `fa:16:3e:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

/**
 * The conductor: turns accepted API requests into work on the agents and records the
 * outcome. The instance row is the durable record of each operation (its task_state);
 * every transition is a guarded update, so a late reply, a restarted agent and the
 * reconcile loop can race without corrupting state, and a crash of any process leaves
 * something the next start settles (`resume`, agent hello).
 */
export class Conductor {
  private readonly inflight = new Set<string>();
  private timer?: NodeJS.Timeout;
  /** The volume half of the work (attach, detach, build volumes, recovery). */
  readonly volumes: VolumeWork;

  constructor(
    private readonly deps: ComputeDeps,
    readonly bus: Bus,
    private readonly images: ImageApi,
    private readonly scheduler: PlacementEngine,
    private readonly log: Logger,
  ) {
    this.volumes = new VolumeWork(deps, bus, log);
  }

  /** Listen to agents and settle work a previous controller left unfinished. */
  async start(): Promise<void> {
    this.bus.serve(AgentHello, async (report) => this.onHello(report), 'controllers');
    this.bus.subscribe(AgentHeartbeat, (report) => { void this.onHeartbeat(report).catch((err: unknown) => this.log.warn({ err }, 'heartbeat failed')); });
    const pending = await this.deps.db.selectFrom('instances').select(['uuid', 'task_state']).where('deleted', '=', 0)
      .where((eb) => eb.or([eb('task_state', '=', 'scheduling'), eb.and([eb('task_state', '=', 'unshelving'), eb('host', 'is', null)])])).execute();
    for (const p of pending) this.build(p.uuid, { requestId: `req-resume-${p.uuid}`, token: '', log: this.log }, p.task_state === 'unshelving' ? 'unshelving' : 'scheduling');
    // Volume operations a previous controller left mid-way on servers without a host (placed ones settle on their agent's next report).
    await this.volumes.reconcileUnplaced().catch((err: unknown) => this.log.warn({ err }, 'settling interrupted volume operations failed'));
    this.timer = setInterval(() => { void this.reconcile().catch((err: unknown) => this.log.warn({ err }, 'reconcile failed')); }, 15_000);
    this.timer.unref();
  }

  stop(): void { if (this.timer) clearInterval(this.timer); }

  // ---- host registry ----

  private async upsertHost(r: HostReport): Promise<void> {
    const db = this.deps.db;
    const now = isoNow();
    const existing = await db.selectFrom('compute_hosts').select('host').where('host', '=', r.host).executeTakeFirst();
    const facts = {
      host_ip: r.hostIp, hypervisor_type: r.hypervisorType, hypervisor_version: r.hypervisorVersion, accel: r.accel,
      cpu_model: r.cpuModel, arch: r.arch, vcpus: r.vcpus, memory_mb: r.memoryMb, local_gb: r.diskGb, agent_version: r.agentVersion, last_seen: now,
    };
    if (existing) await db.updateTable('compute_hosts').set(facts).where('host', '=', r.host).execute();
    else {
      const id = await store.nextId(db, 'compute_hosts');
      await db.insertInto('compute_hosts').values({
        host: r.host, id, uuid: crypto.randomUUID(), service_uuid: crypto.randomUUID(), ...facts,
        vcpus_used: 0, memory_mb_used: 0, local_gb_used: 0, running_vms: 0, availability_zone: 'nova', enabled: 1,
        disabled_reason: null, forced_down: 0, created_at: now,
      }).onConflict((oc) => oc.column('host').doUpdateSet(facts)).execute();
      this.log.info({ host: r.host, accel: r.accel, vcpus: r.vcpus, memoryMb: r.memoryMb }, 'compute host registered');
    }
    await this.recomputeUsage(r.host);
  }

  /** Usage from the instances placed on the host (self-healing; Nova's update_available_resource). */
  async recomputeUsage(host: string): Promise<void> {
    const live = (col: string) => sql<number>`(select coalesce(sum(${sql.ref(col)}), 0) from instances where instances.host = ${host} and instances.deleted = 0)`;
    await this.deps.db.updateTable('compute_hosts').set({
      vcpus_used: live('vcpus'), memory_mb_used: live('memory_mb'),
      local_gb_used: sql<number>`(select coalesce(sum(root_gb + ephemeral_gb), 0) from instances where instances.host = ${host} and instances.deleted = 0)`,
      running_vms: sql<number>`(select count(*) from instances where instances.host = ${host} and instances.deleted = 0)`,
    }).where('host', '=', host).execute();
  }

  /** An agent (re)started: settle whatever was in flight on it and tell it what to clean up. */
  private async onHello(r: HostReport): Promise<{ remove: string[] }> {
    await this.upsertHost(r);
    const db = this.deps.db;
    const mine = await db.selectFrom('instances').select(['uuid', 'task_state', 'vm_state', 'deleted', 'host']).where('host', '=', r.host).where('deleted', '=', 0).execute();
    const known = new Set(mine.map((m) => m.uuid));
    for (const m of mine) {
      const power = r.instances[m.uuid];
      if (m.task_state === null) continue;
      if (m.task_state === 'spawning' || m.task_state === 'scheduling' || m.task_state === 'unshelving' || m.task_state === 'block_device_mapping') {
        if (power === 1) await this.settle(m.uuid, [m.task_state], { vm_state: 'active', task_state: null, power_state: 1, launched_at: isoNow() }, 'agent restarted; the guest was running');
        else await this.fail(m.uuid, [m.task_state], new Error(`The compute agent on ${r.host} restarted while building the instance.`));
      } else if (m.task_state === 'deleting') {
        await this.markDeleted(m.uuid, r.host);
        known.delete(m.uuid);
      } else {
        await this.syncPower(m.uuid, power ?? 0, [m.task_state as TaskState]);
      }
    }
    await this.volumes.reconcileHost(r, true).catch((err: unknown) => this.log.warn({ err, host: r.host }, 'settling volume operations failed'));
    const remove = Object.keys(r.instances).filter((u) => !known.has(u));
    if (remove.length) this.log.info({ host: r.host, remove }, 'agent holds instances this cloud does not place there; removing');
    return { remove };
  }

  /** The power-state sync: the agent's view of each guest becomes the API's. */
  private async onHeartbeat(r: HostReport): Promise<void> {
    await this.upsertHost(r);
    const rows = await this.deps.db.selectFrom('instances').select(['uuid', 'task_state', 'vm_state', 'power_state', 'deleted'])
      .where('host', '=', r.host).where('task_state', 'is', null).where('deleted', '=', 0).execute();
    for (const row of rows) {
      const power = r.instances[row.uuid];
      if (power === undefined) {
        if (row.vm_state !== 'error' && row.power_state !== 0) await store.updateInstance(this.deps.db, row.uuid, { power_state: 0 }, [null]);
        continue;
      }
      if (power !== row.power_state) await this.syncPower(row.uuid, power, [null]);
    }
    const known = new Set(rows.map((x) => x.uuid));
    const strays = Object.keys(r.instances).filter((u) => !known.has(u));
    if (strays.length) {
      // Only remove what the database says is deleted or placed elsewhere (never an instance mid-operation here).
      const live = await this.deps.db.selectFrom('instances').select(['uuid', 'host', 'deleted']).where('uuid', 'in', strays).execute();
      const keep = new Set(live.filter((l) => l.deleted === 0 && l.host === r.host).map((l) => l.uuid));
      for (const u of strays.filter((s) => !keep.has(s))) void this.removeOnAgent(r.host, u, this.log).catch(() => undefined);
    }
    await this.volumes.reconcileHost(r, false);
  }

  private async syncPower(uuid: string, power: number, expect: (TaskState | null)[]): Promise<void> {
    const patch: store.InstancePatch = { power_state: power, task_state: null };
    const inst = await store.getInstance(this.deps.db, uuid);
    if (!inst || inst.vmState === 'error') { await store.updateInstance(this.deps.db, uuid, { power_state: power, task_state: null }, expect); return; }
    if (power === 1) patch.vm_state = 'active';
    else if (power === 3) patch.vm_state = 'paused';
    else if (power === 7) patch.vm_state = 'suspended';
    else if (power === 4 || power === 6 || power === 0) patch.vm_state = 'stopped';
    if (patch.vm_state !== inst.vmState) this.log.info({ instance: uuid, from: inst.vmState, to: patch.vm_state, power }, 'power state sync');
    await store.updateInstance(this.deps.db, uuid, patch, expect);
  }

  // ---- host states for the scheduler ----

  async hostStates(): Promise<HostState[]> {
    const db = this.deps.db;
    const cfg = this.deps.cfg;
    const hosts = await store.listHosts(db);
    const aggs = await db.selectFrom('aggregates').innerJoin('aggregate_hosts', 'aggregate_hosts.aggregate_id', 'aggregates.id')
      .select(['aggregate_hosts.host', 'aggregates.name', 'aggregates.metadata']).execute();
    const cutoff = Date.now() - cfg.serviceDownTimeSec * 1000;
    return hosts.map((h) => ({
      host: h.host, enabled: h.enabled, up: !h.forcedDown && Date.parse(h.lastSeen) >= cutoff, availabilityZone: h.availabilityZone,
      vcpus: h.vcpus, vcpusUsed: h.vcpusUsed, memoryMb: h.memoryMb, memoryMbUsed: h.memoryMbUsed, diskGb: h.localGb, diskGbUsed: h.localGbUsed,
      instances: h.runningVms, cpuAllocationRatio: cfg.cpuAllocationRatio, ramAllocationRatio: cfg.ramAllocationRatio,
      diskAllocationRatio: cfg.diskAllocationRatio, hypervisorType: h.hypervisorType, hypervisorVersion: h.hypervisorVersion, arch: h.arch,
      aggregates: aggs.filter((a) => a.host === h.host).map((a) => ({ name: a.name, metadata: JSON.parse(a.metadata) as Record<string, string> })),
    }));
  }

  // ---- build ----

  /** Schedule and boot an accepted instance (returns at once; the outcome lands in the database). */
  build(uuid: string, wc: WorkContext, task: 'scheduling' | 'unshelving' = 'scheduling'): void {
    if (this.inflight.has(uuid)) return;
    this.inflight.add(uuid);
    void this.doBuild(uuid, wc, task).catch((err: unknown) => wc.log.error({ err, instance: uuid }, 'build crashed'))
      .finally(() => this.inflight.delete(uuid));
  }

  private async actionId(uuid: string, requestId: string, action: string): Promise<number | undefined> {
    const row = await this.deps.db.selectFrom('instance_actions').select('id').where('instance_uuid', '=', uuid).where('request_id', '=', requestId).executeTakeFirst();
    if (row) return row.id;
    const any = await this.deps.db.selectFrom('instance_actions').select('id').where('instance_uuid', '=', uuid).where('action', '=', action)
      .orderBy('id', 'desc').executeTakeFirst();
    return any?.id;
  }

  /**
   * Place and boot an instance: a new one (task scheduling → spawning → ACTIVE) or an
   * offloaded shelved one (task unshelving, from its shelved snapshot image). A new one
   * that finds no host goes to ERROR; an unshelve stays SHELVED_OFFLOADED.
   */
  private async doBuild(uuid: string, wc: WorkContext, task: 'scheduling' | 'unshelving'): Promise<void> {
    const db = this.deps.db;
    const inst = await store.getInstance(db, uuid);
    if (!inst || inst.taskState !== task) return;
    const unshelve = task === 'unshelving';
    const spawnTask: TaskState = unshelve ? 'unshelving' : 'spawning';
    const log = wc.log.child({ instance: uuid });
    const actionId = await this.actionId(uuid, wc.requestId, unshelve ? 'unshelve' : 'create');
    const failEarly = async (err: unknown) => {
      if (!unshelve) return this.fail(uuid, ['scheduling'], err);
      if (await store.updateInstance(db, uuid, { task_state: null }, ['unshelving'])) log.warn({ err: (err as Error).message }, 'unshelve failed; the instance stays offloaded');
    };
    const event = async (name: string, f: () => Promise<void>) => {
      if (actionId !== undefined) await store.startEvent(db, actionId, name, inst.host);
      try {
        await f();
        if (actionId !== undefined) await store.finishEvent(db, actionId, name, true);
      } catch (err) {
        if (actionId !== undefined) await store.finishEvent(db, actionId, name, false, err instanceof Error ? err.message : String(err));
        throw err;
      }
    };

    let image: ComputeImage;
    let kernel: ComputeImage | undefined;
    let ramdisk: ComputeImage | undefined;
    const sys = JSON.parse((await db.selectFrom('instances').select('system_metadata').where('uuid', '=', uuid).executeTakeFirstOrThrow()).system_metadata) as Record<string, string>;
    const bdms = await listBdms(db, uuid);
    const volumeBacked = isVolumeBacked(bdms);
    try {
      // The image facts were captured when the API accepted the request (an unshelve boots the shelved snapshot);
      // a server booted from a snapshot-made volume learns them from the volume once it exists.
      image = JSON.parse((unshelve ? sys.shelved_image ?? sys.image : sys.image) ?? 'null') as ComputeImage;
      if (!image && volumeBacked) image = imageFromVolumeMetadata({});
      if (!image) throw new Error('The instance has no image record.');
      if (sys.kernel) kernel = JSON.parse(sys.kernel) as ComputeImage;
      if (sys.ramdisk) ramdisk = JSON.parse(sys.ramdisk) as ComputeImage;
    } catch (err) {
      await failEarly(err);
      return;
    }

    // 1. Schedule: filters and weighers over every host, then an atomic claim on the best one that still has room.
    let chosen: string | undefined;
    try {
      await event('conductor_schedule_and_build_instances', async () => {
        const spec = await this.requestSpec(inst, image);
        if (volumeBacked) spec.diskGb -= inst.flavor.disk;
        const hosts = await this.hostStates();
        const sel = this.scheduler.select(hosts, spec, 1);
        if (!sel.ok) {
          log.warn({ reports: sel.reports }, 'no valid host');
          throw Object.assign(new Error(sel.message), { noValidHost: true });
        }
        // A volume-backed root takes no local disk (Nova claims no root_gb for it).
        const res = { vcpus: inst.flavor.vcpus, memoryMb: inst.flavor.ram, diskGb: (volumeBacked ? 0 : inst.flavor.disk) + inst.flavor.ephemeral };
        const ratios = { cpu: this.deps.cfg.cpuAllocationRatio, ram: this.deps.cfg.ramAllocationRatio, disk: this.deps.cfg.diskAllocationRatio };
        for (const h of sel.hosts) {
          const az = hosts.find((x) => x.host === h)?.availabilityZone ?? 'nova';
          const won = await db.transaction().execute(async (tx) => {
            if (!(await store.claim(tx, h, res, ratios))) return false;
            if (!(await store.updateInstance(tx, uuid, { host: h, availability_zone: az, task_state: spawnTask }, [task]))) {
              throw new Error('instance changed while scheduling');
            }
            return true;
          }).catch((err: unknown) => { if ((err as Error).message === 'instance changed while scheduling') return null; throw err; });
          if (won === null) return;
          if (won) { chosen = h; break; }
          log.info({ host: h }, 'claim lost to a concurrent request; trying the next host');
        }
        if (!chosen) throw Object.assign(new Error(`${NO_VALID_HOST} Every candidate host was claimed by concurrent requests.`), { noValidHost: true });
      });
    } catch (err) {
      await failEarly(err);
      return;
    }
    if (!chosen) return;
    log.info({ host: chosen }, 'scheduled');

    // 2. Networking: the instance's ports, bound to the chosen host (Nova's allocate_for_instance).
    //    An unshelve finds its ports kept from before and binds them here.
    const net = this.deps.networks;
    if (net && Array.isArray(inst.networks)) {
      try {
        let vifs;
        if (inst.vifs.length > 0) {
          await net.bind(uuid, chosen);
          vifs = await net.vifs(uuid);
        } else {
          vifs = await net.allocate({
            instanceUuid: uuid, projectId: inst.projectId, hostname: inst.hostname, host: chosen,
            availabilityZone: inst.availabilityZone ?? 'nova', nics: inst.networks,
            securityGroups: JSON.parse(sys.security_groups ?? '[]') as string[], log,
          });
        }
        await store.updateInstance(db, uuid, { network_info: JSON.stringify(vifs) }, [spawnTask]);
      } catch (err) {
        await this.fail(uuid, [spawnTask], err);
        return;
      }
    }

    // 3. Volumes (Nova's prep_block_device): made, reserved and exported for the chosen host.
    if (bdms.some((b) => b.destinationType === 'volume')) {
      try {
        if (!unshelve) await store.updateInstance(db, uuid, { task_state: 'block_device_mapping' }, [spawnTask]);
        await this.volumes.prepareBuild((await store.getInstance(db, uuid))!, chosen, wc.token, log);
        if (!sys.image && !unshelve) {
          // Booted from a volume made from a snapshot: the volume's image metadata is the image.
          const root = (await listBdms(db, uuid)).find((b) => b.bootIndex === 0);
          const md = (root?.volumeId && (await this.deps.volumes?.getInternal(root.volumeId))?.imageMetadata) || {};
          image = imageFromVolumeMetadata(md);
          if (md.kernel_id) kernel = imageById(md.kernel_id, 'aki');
          if (md.ramdisk_id) ramdisk = imageById(md.ramdisk_id, 'ari');
        }
        if (!unshelve && !(await store.updateInstance(db, uuid, { task_state: spawnTask }, ['block_device_mapping']))) return;
      } catch (err) {
        await this.fail(uuid, [spawnTask, 'block_device_mapping'], err);
        return;
      }
    }

    // 4. Boot on the chosen host.
    const fresh = (await store.getInstance(db, uuid))!;
    const req = await this.buildRequest(fresh, image, kernel, ramdisk, wc.token);
    try {
      await event(unshelve ? 'compute_unshelve_instance' : 'compute__do_build_and_run_instance', async () => {
        const reply = await this.bus.request(agentSubjects(chosen!).build, req, { timeoutMs: BUILD_TIMEOUT_MS, requestId: wc.requestId });
        const ok = await store.updateInstance(db, uuid, {
          vm_state: 'active', task_state: null, power_state: reply.power, launched_at: isoNow(), ssh_port: reply.sshHostPort ?? null,
        }, [spawnTask]);
        if (ok) await this.volumes.completeBuild(uuid);
        if (ok) log.info({ host: chosen, power: reply.power }, unshelve ? 'instance unshelved' : 'instance active');
        if (ok && unshelve) await this.afterUnshelve?.(uuid, wc);
      });
    } catch (err) {
      await this.fail(uuid, [spawnTask], err instanceof BusTimeout ? new Error(`The compute agent on ${chosen} did not finish the build in time.`) : err);
    }
  }

  private async requestSpec(inst: Instance, image: ComputeImage): Promise<RequestSpec> {
    const spec: RequestSpec = {
      instanceUuid: inst.uuid, projectId: inst.projectId, vcpus: inst.flavor.vcpus, memoryMb: inst.flavor.ram,
      diskGb: inst.flavor.disk + inst.flavor.ephemeral + Math.ceil(inst.flavor.swap / 1024),
      imageProperties: image.properties, flavorExtraSpecs: inst.flavor.extra_specs,
    };
    const sys = await this.deps.db.selectFrom('instances').select(['requested_az']).where('uuid', '=', inst.uuid).executeTakeFirstOrThrow();
    if (sys.requested_az) {
      const [zone, host] = sys.requested_az.split(':');
      if (zone) spec.availabilityZone = zone;
      if (host) spec.forceHost = host;
    }
    if (inst.serverGroupId) {
      const g = await store.getServerGroup(this.deps.db, inst.serverGroupId);
      if (g) {
        const others = g.members.filter((m) => m !== inst.uuid);
        const hosts = others.length
          ? (await this.deps.db.selectFrom('instances').select('host').where('uuid', 'in', others).where('deleted', '=', 0).where('host', 'is not', null).execute()).map((r) => r.host!)
          : [];
        spec.serverGroup = { policy: g.policy as ServerGroupPolicy, memberHosts: hosts, maxServerPerHost: g.rules.max_server_per_host };
      }
    }
    return spec;
  }

  /** Called once an offloaded instance runs again (drops the shelved snapshot image). */
  afterUnshelve?: (uuid: string, wc: WorkContext) => Promise<void>;

  imageRef(img: ComputeImage): ImageRef {
    return { id: img.id, sha512: img.sha512 ?? undefined, diskFormat: img.diskFormat ?? 'raw', url: this.images.fileUrl(img.id), localPath: this.images.localPath(img.id) ?? undefined };
  }

  async buildRequest(inst: Instance, image: ComputeImage, kernel: ComputeImage | undefined, ramdisk: ComputeImage | undefined, token: string): Promise<BuildRequest> {
    const keys = inst.keyName && inst.keyData ? { [inst.keyName]: inst.keyData } : undefined;
    // The volumes as last exported for the instance's host (a build just connected them).
    const volumes = await this.volumes.disksOf(inst.uuid);
    const metaData: Record<string, unknown> = {
      uuid: inst.uuid, name: inst.name, hostname: inst.hostname, launch_index: inst.launchIndex,
      availability_zone: inst.availabilityZone, project_id: inst.projectId, meta: inst.metadata, devices: [],
      ...(keys ? { public_keys: keys, keys: [{ name: inst.keyName, type: 'ssh', data: inst.keyData }] } : {}),
    };
    return {
      uuid: inst.uuid, name: `instance-${inst.id.toString(16).padStart(8, '0')}`, hostname: inst.hostname,
      vcpus: inst.flavor.vcpus, memoryMb: inst.flavor.ram, rootGb: inst.flavor.disk, ephemeralGb: inst.flavor.ephemeral, swapMb: inst.flavor.swap,
      ephemeralFormat: ephemeralFormat(image),
      image: this.imageRef(image), kernel: kernel && this.imageRef(kernel), ramdisk: ramdisk && this.imageRef(ramdisk),
      cmdline: image.properties.os_command_line, token, mac: randomMac(),
      ...(Array.isArray(inst.networks)
        ? { network: 'ports' as const, ports: inst.vifs.map((v) => ({ portId: v.portId, networkId: v.networkId, mac: v.mac, mtu: v.mtu, ips: v.fixedIps.map((f) => f.ip) })) }
        : { network: inst.networks }),
      configDrive: inst.configDrive === 'True' || this.deps.cfg.forceConfigDrive,
      ec2: {
        instanceId: `i-${inst.id.toString(16).padStart(8, '0')}`, amiId: `ami-${image.id.replace(/-/g, '').slice(0, 8)}`,
        instanceType: inst.flavor.name, reservationId: inst.reservationId,
      },
      metaData, userData: inst.userData ?? undefined,
      networkData: networkData(inst),
      ...(volumes.length ? { volumes } : {}),
    };
  }

  /** Record a failure: ERROR with a fault, unless the instance already moved on. */
  async fail(uuid: string, expect: TaskState[], err: unknown): Promise<void> {
    const noValid = (err as { noValidHost?: boolean }).noValidHost === true;
    const fault = faultOf(err, 500);
    if (noValid) { fault.message = NO_VALID_HOST; fault.details = err instanceof Error ? err.message : String(err); }
    const ok = await store.updateInstance(this.deps.db, uuid, { vm_state: 'error', task_state: null, fault: JSON.stringify(fault) }, expect);
    if (ok) this.log.warn({ instance: uuid, fault: fault.message, details: fault.details }, 'instance failed');
    // No volume stays attaching for a build that failed.
    if (ok) await this.volumes.rollBackBuild(uuid, this.log);
  }

  private async settle(uuid: string, expect: TaskState[], patch: store.InstancePatch, why: string): Promise<void> {
    if (await store.updateInstance(this.deps.db, uuid, patch, expect)) this.log.info({ instance: uuid, why }, 'settled');
  }

  // ---- actions ----

  /** Carry out a power action the API accepted (task_state already set). */
  act(uuid: string, verb: InstanceVerb, task: TaskState, actionId: number, wc: WorkContext): void {
    void (async () => {
      const db = this.deps.db;
      const inst = await store.getInstance(db, uuid);
      if (!inst?.host) { await store.updateInstance(db, uuid, { task_state: null }, [task]); return; }
      const event = `compute_${verb.replace('-', '_')}_instance`;
      await store.startEvent(db, actionId, event, inst.host);
      try {
        const reply: StateReply = await this.bus.request(agentSubjects(inst.host).action, { uuid, verb, timeoutMs: 60_000 }, { timeoutMs: ACTION_TIMEOUT_MS, requestId: wc.requestId });
        await store.updateInstance(db, uuid, { vm_state: VERB_RESULT[verb], task_state: null, power_state: reply.power }, [task]);
        await store.finishEvent(db, actionId, event, true);
      } catch (err) {
        const msg = err instanceof BusTimeout ? `The compute agent on ${inst.host} did not answer.` : err instanceof Error ? err.message : String(err);
        wc.log.warn({ instance: uuid, verb, err: msg }, 'action failed');
        await store.finishEvent(db, actionId, event, false, msg);
        await store.updateInstance(db, uuid, { task_state: null, fault: JSON.stringify(faultOf(new Error(msg))) }, [task]);
      }
    })().catch((err: unknown) => wc.log.error({ err, instance: uuid }, 'action crashed'));
  }

  // ---- snapshot ----

  /** createImage: the agent copies the root disk consistently and uploads it to the image API. */
  snapshot(uuid: string, imageId: string, actionId: number, auth: Parameters<ImageApi['discard']>[0], wc: WorkContext, onUploaded?: () => Promise<void>): void {
    void (async () => {
      const db = this.deps.db;
      const inst = await store.getInstance(db, uuid);
      if (!inst?.host) return;
      await store.startEvent(db, actionId, 'compute_snapshot_instance', inst.host);
      try {
        await store.updateInstance(db, uuid, { task_state: 'image_uploading' }, ['image_snapshot']);
        await this.bus.request(agentSubjects(inst.host).snapshot, { uuid, imageId, uploadUrl: this.images.fileUrl(imageId), token: wc.token, diskFormat: 'qcow2' },
          { timeoutMs: 30 * 60_000, requestId: wc.requestId });
        const status = await this.images.status(auth, imageId);
        if (status !== 'active') throw new Error(`the uploaded snapshot image is ${status}`);
        await store.finishEvent(db, actionId, 'compute_snapshot_instance', true);
        wc.log.info({ instance: uuid, image: imageId }, 'snapshot uploaded');
        await onUploaded?.();
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        wc.log.warn({ instance: uuid, image: imageId, err: msg }, 'snapshot failed');
        await store.finishEvent(db, actionId, 'compute_snapshot_instance', false, msg);
        await this.images.discard(auth, imageId).catch(() => undefined);
      } finally {
        await store.updateInstance(db, uuid, { task_state: null }, ['image_snapshot', 'image_uploading']);
      }
    })().catch((err: unknown) => wc.log.error({ err, instance: uuid }, 'snapshot crashed'));
  }

  // ---- delete ----

  delete(uuid: string, actionId: number | undefined, wc: WorkContext): void {
    void (async () => {
      const inst = await store.getInstance(this.deps.db, uuid);
      if (!inst) return;
      if (inst.host) {
        if (actionId !== undefined) await store.startEvent(this.deps.db, actionId, 'compute_terminate_instance', inst.host);
        try {
          await this.removeOnAgent(inst.host, uuid, wc.log, wc.requestId);
          if (actionId !== undefined) await store.finishEvent(this.deps.db, actionId, 'compute_terminate_instance', true);
        } catch (err) {
          // The host is gone or not answering: delete locally; the agent removes the guest when it comes back.
          wc.log.warn({ instance: uuid, host: inst.host, err: (err as Error).message }, 'agent did not confirm the delete; deleting locally');
          if (actionId !== undefined) await store.finishEvent(this.deps.db, actionId, 'compute_terminate_instance', true, (err as Error).message);
        }
      }
      await this.markDeleted(uuid, inst.host);
    })().catch((err: unknown) => wc.log.error({ err, instance: uuid }, 'delete crashed'));
  }

  private async removeOnAgent(host: string, uuid: string, log: Logger, requestId?: string): Promise<void> {
    await this.bus.request(agentSubjects(host).remove, { uuid }, { timeoutMs: REMOVE_TIMEOUT_MS, requestId });
    log.info({ instance: uuid, host }, 'instance removed from its host');
  }

  async markDeleted(uuid: string, host: string | null): Promise<void> {
    const db = this.deps.db;
    const now = isoNow();
    await db.transaction().execute(async (tx) => {
      await tx.updateTable('instances').set({ deleted: 1, deleted_at: now, terminated_at: now, vm_state: 'deleted', task_state: null, power_state: 0, updated_at: now })
        .where('uuid', '=', uuid).where('deleted', '=', 0).execute();
      await tx.deleteFrom('server_group_members').where('instance_uuid', '=', uuid).execute();
    });
    if (host) await this.recomputeUsage(host);
    // Attachments go; volumes marked delete_on_termination with them.
    await this.volumes.releaseAll(uuid, this.log);
    // Ports compute made go with the instance; ports the user brought are only unbound.
    await this.deps.networks?.deallocate(uuid, this.log).catch((err: unknown) => this.log.error({ err, instance: uuid }, 'releasing the instance\'s ports failed'));
  }

  /**
   * Re-read the ports of instances on tenant networks into their network info cache (what
   * Nova does on Neutron's network-changed events): after floating IPs or ports changed.
   * Debounced; `uuids` narrows it, none means every such instance.
   */
  refreshNetworkInfo(uuids?: string[]): void {
    const api = this.deps.networks;
    if (!api) return;
    if (uuids) for (const u of uuids) this.refreshQueue.add(u); else this.refreshAll = true;
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      const all = this.refreshAll;
      const some = [...this.refreshQueue];
      this.refreshAll = false;
      this.refreshQueue.clear();
      void (async () => {
        let q = this.deps.db.selectFrom('instances').select(['uuid', 'network_info']).where('deleted', '=', 0).where('networks', 'like', '[%');
        if (!all) {
          if (some.length === 0) return;
          q = q.where('uuid', 'in', some);
        }
        for (const r of await q.execute()) {
          const vifs = JSON.stringify(await api.vifs(r.uuid));
          if (vifs !== r.network_info) await this.deps.db.updateTable('instances').set({ network_info: vifs }).where('uuid', '=', r.uuid).execute();
        }
      })().catch((err: unknown) => this.log.warn({ err }, 'refreshing network info failed'));
    }, 20);
    this.refreshTimer.unref();
  }
  private refreshTimer?: NodeJS.Timeout;
  private refreshAll = false;
  private readonly refreshQueue = new Set<string>();

  // ---- queries the API forwards to agents ----

  async consoleOutput(inst: Instance, lines: number | undefined, requestId: string): Promise<string> {
    if (!inst.host) return '';
    const r = await this.bus.request(agentSubjects(inst.host).console, { uuid: inst.uuid, lines }, { timeoutMs: 10_000, requestId });
    return r.output;
  }

  /** Further periodic work (shelved offload, soft-delete reclaim), run with each reconcile pass. */
  readonly periodic: (() => Promise<void>)[] = [];

  /** Anything stuck in a task on a host that stopped answering gets settled; unscheduled work resumes. */
  private async reconcile(): Promise<void> {
    const db = this.deps.db;
    for (const task of this.periodic) await task().catch((err: unknown) => this.log.warn({ err }, 'periodic task failed'));
    const stale = new Date(Date.now() - 5 * 60_000).toISOString();
    const stuck = await db.selectFrom('instances').select(['uuid', 'task_state', 'host']).where('deleted', '=', 0)
      .where('task_state', 'is not', null).where('updated_at', '<', stale).execute();
    for (const s of stuck) {
      if (this.inflight.has(s.uuid)) continue;
      if (s.task_state === 'scheduling') { this.build(s.uuid, { requestId: `req-reconcile-${s.uuid}`, token: '', log: this.log }); continue; }
      if (s.task_state === 'unshelving' && !s.host) { this.build(s.uuid, { requestId: `req-reconcile-${s.uuid}`, token: '', log: this.log }, 'unshelving'); continue; }
      if (s.task_state === 'deleting') { await this.markDeleted(s.uuid, s.host); continue; }
      if (!s.host) continue;
      try {
        const st = await this.bus.request(agentSubjects(s.host).state, { uuid: s.uuid }, { timeoutMs: 5000 });
        if (s.task_state === 'spawning' || s.task_state === 'unshelving' || s.task_state === 'block_device_mapping') {
          if (st.exists && st.power === 1) await this.settle(s.uuid, [s.task_state], { vm_state: 'active', task_state: null, power_state: 1, launched_at: isoNow() }, 'reconcile');
          else await this.fail(s.uuid, [s.task_state], new Error('The build did not complete on the compute host.'));
        } else await this.syncPower(s.uuid, st.exists ? st.power : 0, [s.task_state as TaskState]);
      } catch (err) {
        if (err instanceof BusTimeout || err instanceof BusRemoteError) continue;
        throw err;
      }
    }
  }

}

/**
 * network_data.json as Nova writes it for Neutron ports: a link per port (its MAC and MTU),
 * a DHCP-configured network per fixed address, and the DNS servers nobody configured (none).
 */
export function networkData(inst: Instance): Record<string, unknown> {
  if (!Array.isArray(inst.networks)) return { links: [], networks: [], services: [] };
  const links = inst.vifs.map((v) => ({ id: `tap${v.portId.slice(0, 11)}`, vif_id: v.portId, type: 'bridge', mtu: v.mtu, ethernet_mac_address: v.mac }));
  const networks = inst.vifs.flatMap((v) => v.fixedIps.map((f, i) => ({
    id: `network${i}`, type: f.version === 4 ? 'ipv4_dhcp' : 'ipv6_dhcp', link: `tap${v.portId.slice(0, 11)}`, network_id: v.networkId,
  }))).map((n, i) => ({ ...n, id: `network${i}` }));
  return { links, networks, services: [] };
}
