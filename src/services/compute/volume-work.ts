import type { AuthContext } from '../../api/context.ts';
import { agentSubjects, type HostReport, type VolumeDisk } from '../../bus/compute.ts';
import { BusTimeout, type Bus } from '../../bus/index.ts';
import type { Logger } from '../../common/logger.ts';
import { bdmsOf, listBdms, removeBdm, updateBdm, type BlockDeviceMapping, type SavedConnection } from './bdm.ts';
import type { ComputeDeps } from './deps.ts';
import type { Instance } from './types.ts';
import type { VolumeApi } from './volumes.ts';

/**
 * The asynchronous half of Nova's volume work, done by the conductor: attach (connect for
 * the instance's host → the agent hot-plugs → complete), detach (the agent unplugs →
 * attachment deleted), the volumes of a build (create, reserve, connect; complete once the
 * guest runs), the cleanup when a server goes, and the recovery of rows whose operation
 * was in flight when an agent or this controller stopped.
 *
 * Every change of a row is guarded by its attach_status, so the request's own work, a
 * recovery pass and a second controller can race without double-settling.
 */

/** How long the agent gets to hot-plug a volume, and the guest to let go of one. */
export const ATTACH_TIMEOUT_MS = 90_000;
export const DETACH_GUEST_TIMEOUT_MS = 60_000;
/** A row in flight longer than this (and not ours) is an orphan of a dead controller. */
const ORPHAN_AFTER_MS = 10 * 60_000;

/** One chain of operations per key: an instance's volume operations run one at a time. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, f: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await f();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** The instance owner's scope, for the volume calls the conductor makes on its behalf (Nova uses the request context the same way). */
export function ownerAuth(inst: Pick<Instance, 'userId' | 'projectId'>, token: string): AuthContext {
  const now = Date.now();
  return {
    token, userId: inst.userId, userName: inst.userId, userDomainId: 'default', projectId: inst.projectId, projectDomainId: 'default',
    roles: ['member', 'reader'], roleIds: [], methods: ['token'], auditIds: [], issuedAt: now, expiresAt: now + 3_600_000,
  };
}

function message(err: unknown, host: string | null): string {
  if (err instanceof BusTimeout) return `The compute agent on ${host ?? 'the host'} did not answer in time.`;
  return err instanceof Error ? err.message : String(err);
}

export function volumeDisk(b: BlockDeviceMapping, c: SavedConnection): VolumeDisk {
  return {
    volumeId: b.volumeId!, connection: c.connection, device: b.deviceName ?? '', readonly: c.readonly,
    ...(b.bootIndex !== null && b.bootIndex >= 0 ? { bootIndex: b.bootIndex } : {}), ...(c.qos ? { qos: c.qos } : {}),
  };
}

export class VolumeWork {
  /** Serializes the volume operations of each instance (key: instance uuid). */
  readonly locks = new KeyedMutex();
  /** Rows this process is working on: recovery leaves them alone. */
  private readonly inflight = new Set<string>();
  private readonly startedAt = Date.now();

  constructor(private readonly deps: ComputeDeps, private readonly bus: Bus, private readonly log: Logger) {}

  get api(): VolumeApi | undefined { return this.deps.volumes; }

  private need(): VolumeApi {
    if (!this.deps.volumes) throw new Error('This cloud runs no volume service.');
    return this.deps.volumes;
  }

  /** Run `f` with the row marked as ours (recovery skips it meanwhile). */
  async owned<T>(bdmUuid: string, f: () => Promise<T>): Promise<T> {
    this.inflight.add(bdmUuid);
    try { return await f(); } finally { this.inflight.delete(bdmUuid); }
  }

  markOwned(bdmUuid: string): void { this.inflight.add(bdmUuid); }

  /** Export the volume for the instance's host; the connection is kept on the row. */
  private async connect(b: BlockDeviceMapping, host: string, log: Logger): Promise<SavedConnection> {
    const c = await this.need().connect(b.attachmentId!, host, b.deviceName ?? '', log);
    const saved: SavedConnection = { connection: c.connection, readonly: c.readonly, ...(c.qos ? { qos: c.qos } : {}) };
    await updateBdm(this.deps.db, b.uuid, { connection_info: JSON.stringify(saved) });
    return saved;
  }

  /**
   * Attach (after the API reserved the volume and wrote the row 'attaching'): connect,
   * hot-plug through the agent, complete. A server without a host (shelved offloaded)
   * only completes: its volumes are connected when it is unshelved. Any failure rolls
   * back: the attachment is deleted (the volume is available again) and the row goes.
   */
  async attach(inst: Instance, b: BlockDeviceMapping, requestId: string, log: Logger): Promise<void> {
    const api = this.need();
    await this.owned(b.uuid, () => this.locks.run(`agent:${inst.uuid}`, async () => {
      try {
        if (inst.host && inst.vmState !== 'shelved_offloaded') {
          const c = await this.connect(b, inst.host, log);
          await this.bus.request(agentSubjects(inst.host).attachVolume, { uuid: inst.uuid, volume: volumeDisk(b, c) },
            { timeoutMs: ATTACH_TIMEOUT_MS, requestId });
        }
        await api.complete(b.attachmentId!);
        await updateBdm(this.deps.db, b.uuid, { attach_status: 'attached' }, ['attaching']);
        log.info({ instance: inst.uuid, volume: b.volumeId, device: b.deviceName }, 'volume attached');
      } catch (err) {
        const msg = message(err, inst.host);
        log.warn({ instance: inst.uuid, volume: b.volumeId, err: msg }, 'volume attach failed; rolling back');
        await this.rollBackAttach(b, log);
        throw new Error(msg);
      }
    }));
  }

  private async rollBackAttach(b: BlockDeviceMapping, log: Logger): Promise<void> {
    if (b.attachmentId) await this.need().deleteAttachment(b.attachmentId, log);
    await removeBdm(this.deps.db, b.uuid, ['attaching', 'creating']);
  }

  /**
   * Detach (the API began it: volume detaching, row 'detaching'): the agent unplugs the
   * disk, then the attachment is deleted and the row goes. A failed unplug rolls the
   * detach back (the volume is in-use again).
   */
  async detach(inst: Instance, b: BlockDeviceMapping, requestId: string, log: Logger): Promise<void> {
    const api = this.need();
    await this.owned(b.uuid, () => this.locks.run(`agent:${inst.uuid}`, async () => {
      try {
        if (inst.host && inst.vmState !== 'shelved_offloaded') {
          await this.bus.request(agentSubjects(inst.host).detachVolume, { uuid: inst.uuid, volumeId: b.volumeId!, timeoutMs: DETACH_GUEST_TIMEOUT_MS },
            { timeoutMs: DETACH_GUEST_TIMEOUT_MS + 30_000, requestId });
        }
      } catch (err) {
        const msg = message(err, inst.host);
        log.warn({ instance: inst.uuid, volume: b.volumeId, err: msg }, 'volume detach failed; the volume stays attached');
        await api.rollDetach(b.attachmentId!);
        await updateBdm(this.deps.db, b.uuid, { attach_status: 'attached' }, ['detaching']);
        throw new Error(msg);
      }
      await api.deleteAttachment(b.attachmentId!, log);
      await removeBdm(this.deps.db, b.uuid, ['detaching']);
      log.info({ instance: inst.uuid, volume: b.volumeId }, 'volume detached');
    }));
  }

  // ---- build ----

  /**
   * The volumes of a build on `host` (Nova's prep_block_device): volumes to create are
   * created in the owner's project and reserved; each is exported for the host. Returns the
   * disks for the BuildRequest, root first. Throws on any failure (the caller rolls back).
   */
  async prepareBuild(inst: Instance, host: string, token: string, log: Logger): Promise<VolumeDisk[]> {
    const api = this.need();
    const db = this.deps.db;
    const disks: VolumeDisk[] = [];
    const bdms = (await listBdms(db, inst.uuid)).filter((b) => b.destinationType === 'volume');
    bdms.sort((a, c) => rank(a) - rank(c));
    for (let b of bdms) {
      await this.owned(b.uuid, async () => {
        if (!b.volumeId) {
          const volumeId = await api.createForInstance({
            projectId: inst.projectId, userId: inst.userId, sizeGb: b.volumeSize ?? 1, name: '', availabilityZone: inst.availabilityZone ?? undefined,
            volumeType: b.volumeType ?? undefined, imageId: b.sourceType === 'image' ? b.imageId ?? undefined : undefined,
            snapshotId: b.sourceType === 'snapshot' ? b.snapshotId ?? undefined : undefined, log,
          });
          await updateBdm(db, b.uuid, { volume_id: volumeId });
          log.info({ instance: inst.uuid, volume: volumeId, source: b.sourceType }, 'volume created for the instance');
          b = { ...b, volumeId };
        }
        if (!b.attachmentId) {
          const attachmentId = await api.reserve(ownerAuth(inst, token), b.volumeId!, { uuid: inst.uuid, projectId: inst.projectId });
          await updateBdm(db, b.uuid, { attachment_id: attachmentId, attach_status: 'attaching' });
          b = { ...b, attachmentId, attachStatus: 'attaching' };
        }
        const c = await this.connect(b, host, log);
        disks.push(volumeDisk(b, c));
      });
    }
    return disks;
  }

  /** The guest runs with its volumes: every attachment of the build is complete (volumes in-use). */
  async completeBuild(uuid: string): Promise<void> {
    const api = this.need();
    for (const b of await listBdms(this.deps.db, uuid)) {
      if (b.attachmentId && b.attachStatus === 'attaching') {
        await api.complete(b.attachmentId);
        await updateBdm(this.deps.db, b.uuid, { attach_status: 'attached' }, ['attaching']);
      }
    }
  }

  /**
   * The build failed: no volume stays attaching. Attachments are deleted (volumes the
   * build made stay with the row, for delete_on_termination when the server is deleted).
   */
  async rollBackBuild(uuid: string, log: Logger): Promise<void> {
    const api = this.deps.volumes;
    if (!api) return;
    for (const b of await listBdms(this.deps.db, uuid)) {
      if (!b.attachmentId || b.attachStatus === 'attached') continue;
      try {
        await api.deleteAttachment(b.attachmentId, log);
        await updateBdm(this.deps.db, b.uuid, { attachment_id: null, attach_status: null, connection_info: null });
      } catch (err) {
        log.error({ err, instance: uuid, volume: b.volumeId }, 'releasing a volume of a failed build failed');
      }
    }
  }

  /** Volume disks of an instance's attached volumes as last connected (for a build on the same host: rebuild). */
  async disksOf(uuid: string): Promise<VolumeDisk[]> {
    return (await listBdms(this.deps.db, uuid)).filter((b) => b.connection && b.volumeId).sort((a, c) => rank(a) - rank(c))
      .map((b) => volumeDisk(b, b.connection!));
  }

  // ---- delete ----

  /**
   * A deleted server lets go of its volumes: every attachment is deleted and the volumes
   * marked delete_on_termination are deleted; the rows go. Failures are logged and the
   * row kept, so the next start (or delete) retries.
   */
  async releaseAll(uuid: string, log: Logger): Promise<void> {
    const api = this.deps.volumes;
    if (!api) return;
    for (const b of await listBdms(this.deps.db, uuid)) {
      try {
        if (b.attachmentId) await api.deleteAttachment(b.attachmentId, log);
        if (b.volumeId && b.deleteOnTermination) await api.delete(b.volumeId, log);
        await removeBdm(this.deps.db, b.uuid);
        log.info({ instance: uuid, volume: b.volumeId, deleted: b.deleteOnTermination }, 'volume released by the deleted server');
      } catch (err) {
        log.error({ err, instance: uuid, volume: b.volumeId }, 'releasing a volume of a deleted server failed');
      }
    }
  }

  // ---- recovery ----

  private orphan(b: BlockDeviceMapping, agentRestarted: boolean): boolean {
    if (this.inflight.has(b.uuid)) return false;
    const at = Date.parse(b.updatedAt);
    return agentRestarted || at < this.startedAt || Date.now() - at > ORPHAN_AFTER_MS;
  }

  /**
   * Settle rows left attaching/detaching on a host from what its agent reports: a volume
   * in the instance's saved spec is attached (complete / roll the detach back), one not in
   * it is not (the attachment is deleted). Rows of instances still building are the
   * build's (or its failure's) to settle.
   */
  async reconcileHost(r: HostReport, agentRestarted: boolean): Promise<void> {
    const api = this.deps.volumes;
    if (!api || !r.attachedVolumes) return;
    const db = this.deps.db;
    const insts = await db.selectFrom('instances').select(['uuid', 'task_state', 'vm_state']).where('host', '=', r.host).where('deleted', '=', 0).execute();
    const settled = insts.filter((i) => i.task_state === null && i.vm_state !== 'building' && i.vm_state !== 'shelved_offloaded');
    if (settled.length === 0) return;
    const rows = (await bdmsOf(db, settled.map((i) => i.uuid))).filter((b) => (b.attachStatus === 'attaching' || b.attachStatus === 'detaching') && this.orphan(b, agentRestarted));
    for (const b of rows) await this.settle(b, (r.attachedVolumes[b.instanceUuid] ?? []).includes(b.volumeId ?? ''));
  }

  /** Rows of servers without a host (shelved offloaded) have nothing to ask an agent: an attach completes, a detach finishes. */
  async reconcileUnplaced(): Promise<void> {
    if (!this.deps.volumes) return;
    const db = this.deps.db;
    const rows = await db.selectFrom('block_device_mappings').innerJoin('instances', 'instances.uuid', 'block_device_mappings.instance_uuid')
      .select('block_device_mappings.instance_uuid').where('block_device_mappings.deleted', '=', 0).where('instances.host', 'is', null)
      .where('instances.vm_state', '=', 'shelved_offloaded').where('block_device_mappings.attach_status', 'in', ['attaching', 'detaching']).execute();
    const bdms = await bdmsOf(db, [...new Set(rows.map((r) => r.instance_uuid))]);
    for (const b of bdms.filter((x) => (x.attachStatus === 'attaching' || x.attachStatus === 'detaching') && this.orphan(x, false))) {
      await this.settle(b, b.attachStatus === 'attaching');
    }
    // Rows of servers deleted while their cleanup did not finish.
    const dead = await db.selectFrom('block_device_mappings').innerJoin('instances', 'instances.uuid', 'block_device_mappings.instance_uuid')
      .select('block_device_mappings.instance_uuid').where('block_device_mappings.deleted', '=', 0).where('instances.deleted', '=', 1).execute();
    for (const u of new Set(dead.map((d) => d.instance_uuid))) await this.releaseAll(u, this.log);
  }

  private async settle(b: BlockDeviceMapping, attached: boolean): Promise<void> {
    const api = this.need();
    const log = this.log.child({ instance: b.instanceUuid, volume: b.volumeId, was: b.attachStatus });
    await this.owned(b.uuid, async () => {
      try {
        if (b.attachStatus === 'attaching') {
          if (attached) {
            await api.complete(b.attachmentId!);
            if (await updateBdm(this.deps.db, b.uuid, { attach_status: 'attached' }, ['attaching'])) log.info('interrupted attach completed: the volume is in the guest');
          } else {
            await this.rollBackAttach(b, log);
            log.info('interrupted attach rolled back: the volume is not in the guest');
          }
        } else if (attached) {
          await api.rollDetach(b.attachmentId!);
          if (await updateBdm(this.deps.db, b.uuid, { attach_status: 'attached' }, ['detaching'])) log.info('interrupted detach rolled back: the volume is still in the guest');
        } else {
          await api.deleteAttachment(b.attachmentId!, log);
          if (await removeBdm(this.deps.db, b.uuid, ['detaching'])) log.info('interrupted detach finished: the volume left the guest');
        }
      } catch (err) {
        log.warn({ err: message(err, null) }, 'settling an interrupted volume operation failed; retried on the next report');
      }
    });
  }
}

/** Boot volume first, then the others in the order they were mapped. */
function rank(b: BlockDeviceMapping): number {
  return b.bootIndex === 0 ? -1 : b.id;
}
