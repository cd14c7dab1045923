/**
 * Stand-ins for the volume unit tests (imported only by *.test.ts): a VolumeApi that keeps
 * Cinder's volume and attachment state machine in memory, an agent that answers the
 * compute protocol over a real nats-server, and a harness wiring them to the real
 * ComputeService, Conductor, scheduler and routes.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../../api/context.ts';
import { isAllowed } from '../../../api/policy.ts';
import { AgentHeartbeat, agentSubjects, type AttachVolumeRequest, type BuildRequest, type HostReport } from '../../../bus/compute.ts';
import { Bus } from '../../../bus/index.ts';
import { NatsChild } from '../../../cli/nats.ts';
import { BadRequest, NotFound } from '../../../common/errors.ts';
import { createLogger } from '../../../common/logger.ts';
import { isoNow, type Db, type OpenDatabase } from '../../../db/index.ts';
import { Conductor } from '../conductor.ts';
import type { ComputeImage, ImageApi } from '../images.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { ComputeService } from '../service.ts';
import type { ComputeVolume, VolumeApi } from '../volumes.ts';
import { serverRoutes } from './servers.ts';
import { actionRoutes } from './actions.ts';
import { volumeAttachmentRoutes } from './volume-attachments.ts';
import { caller, harness, type App } from './test-harness.ts';

const log = createLogger('silent');

interface FakeAttachment { id: string; volumeId: string; instanceUuid: string; status: 'reserved' | 'attaching' | 'attached' | 'detaching'; host?: string; mountpoint?: string }

/** Cinder's attachment API in memory: reserve → connect → complete; beginDetach/rollDetach; deleteAttachment. */
export class FakeVolumes implements VolumeApi {
  readonly volumes = new Map<string, ComputeVolume>();
  /** Where each volume the service created came from. */
  readonly sources = new Map<string, { imageId?: string; snapshotId?: string }>();
  readonly attachments = new Map<string, FakeAttachment>();
  readonly snapshots = new Map<string, { volumeId: string; size: number; imageMetadata: Record<string, string> }>();
  readonly deleted: string[] = [];
  /** Make connect fail (the pool cannot export). */
  failConnect = false;

  add(projectId: string, o: Partial<ComputeVolume> = {}): string {
    const id = randomUUID();
    this.volumes.set(id, {
      id, projectId, name: 'v', status: 'available', size: 1, bootable: false, multiattach: false, availabilityZone: 'nova',
      imageMetadata: {}, attachments: [], ...o,
    });
    return id;
  }

  private vol(id: string): ComputeVolume {
    const v = this.volumes.get(id);
    if (!v) throw new NotFound(`Volume ${id} could not be found.`);
    return v;
  }

  private status(volumeId: string): void {
    const v = this.vol(volumeId);
    const atts = [...this.attachments.values()].filter((a) => a.volumeId === volumeId);
    v.attachments = atts.filter((a) => a.status === 'attached' || a.status === 'detaching')
      .map((a) => ({ attachmentId: a.id, instanceUuid: a.instanceUuid, device: a.mountpoint ?? null }));
    const order = ['detaching', 'attaching', 'reserved', 'attached'] as const;
    const top = order.find((s) => atts.some((a) => a.status === s));
    v.status = top === undefined ? 'available' : top === 'attached' ? 'in-use' : top;
  }

  async get(auth: AuthContext, id: string): Promise<ComputeVolume> {
    const v = this.volumes.get(id);
    if (!v || (v.projectId !== auth.projectId && !isAllowed(auth, 'os_compute_api:servers:index:get_all_tenants'))) throw new NotFound(`Volume ${id} could not be found.`);
    return structuredClone(v);
  }
  async getInternal(id: string): Promise<ComputeVolume | undefined> { const v = this.volumes.get(id); return v && structuredClone(v); }

  async reserve(auth: AuthContext, volumeId: string, instance: { uuid: string; projectId: string }): Promise<string> {
    const v = await this.get(auth, volumeId);
    if ([...this.attachments.values()].some((a) => a.volumeId === volumeId && a.instanceUuid === instance.uuid)) {
      throw new BadRequest(`Invalid volume: volume ${volumeId} is already attached to instance ${instance.uuid}.`);
    }
    if (v.status !== 'available' && !(v.status === 'in-use' && v.multiattach)) {
      throw new BadRequest(`Invalid volume: Volume ${volumeId} status must be available or in-use (multiattach), but current status is: ${v.status}.`);
    }
    const id = randomUUID();
    this.attachments.set(id, { id, volumeId, instanceUuid: instance.uuid, status: 'reserved' });
    this.status(volumeId);
    return id;
  }

  async connect(attachmentId: string, instanceHost: string, mountpoint: string) {
    const a = this.attachments.get(attachmentId);
    if (!a) throw new NotFound(`Attachment ${attachmentId} could not be found.`);
    if (this.failConnect) throw new Error('the pool could not export the volume');
    Object.assign(a, { status: 'attaching', host: instanceHost, mountpoint });
    this.status(a.volumeId);
    return { connection: { type: 'file' as const, path: `/pool/${a.volumeId}.qcow2`, format: 'qcow2' as const }, readonly: false };
  }

  async complete(attachmentId: string): Promise<void> {
    const a = this.attachments.get(attachmentId);
    if (!a) throw new NotFound(`Attachment ${attachmentId} could not be found.`);
    a.status = 'attached';
    this.status(a.volumeId);
  }

  async beginDetach(attachmentId: string): Promise<void> {
    const a = this.attachments.get(attachmentId);
    if (!a || a.status !== 'attached') throw new BadRequest('Invalid volume: the volume is not attached there.');
    a.status = 'detaching';
    this.status(a.volumeId);
  }

  async rollDetach(attachmentId: string): Promise<void> {
    const a = this.attachments.get(attachmentId);
    if (a?.status === 'detaching') { a.status = 'attached'; this.status(a.volumeId); }
  }

  async deleteAttachment(attachmentId: string): Promise<void> {
    const a = this.attachments.get(attachmentId);
    if (!a) return;
    this.attachments.delete(attachmentId);
    this.status(a.volumeId);
  }

  async attachmentsOf(instanceUuid: string) {
    return [...this.attachments.values()].filter((a) => a.instanceUuid === instanceUuid)
      .map((a) => ({ attachmentId: a.id, volumeId: a.volumeId, device: a.mountpoint ?? null, status: a.status }));
  }

  async createForInstance(req: Parameters<VolumeApi['createForInstance']>[0]): Promise<string> {
    let imageMetadata: Record<string, string> = {};
    if (req.snapshotId) {
      const s = this.snapshots.get(req.snapshotId);
      if (!s) throw new BadRequest(`Invalid snapshot: snapshot ${req.snapshotId} could not be found.`);
      imageMetadata = s.imageMetadata;
    }
    if (req.imageId) imageMetadata = { image_id: req.imageId, kernel_id: 'kernel-1', ramdisk_id: 'ramdisk-1' };
    const id = this.add(req.projectId, { size: req.sizeGb, bootable: !!(req.imageId || req.snapshotId), imageMetadata });
    this.sources.set(id, { imageId: req.imageId, snapshotId: req.snapshotId });
    return id;
  }

  async delete(volumeId: string): Promise<void> {
    if (this.volumes.delete(volumeId)) this.deleted.push(volumeId);
  }

  async snapshot(volumeId: string): Promise<{ snapshotId: string; size: number }> {
    const v = this.vol(volumeId);
    const snapshotId = randomUUID();
    this.snapshots.set(snapshotId, { volumeId, size: v.size, imageMetadata: v.imageMetadata });
    return { snapshotId, size: v.size };
  }
}

/** An agent on one host over the real bus: builds, hot-plugs and unplugs volumes, remembers each guest's volumes. */
export class FakeAgent {
  readonly spec = new Map<string, Set<string>>();
  readonly builds: BuildRequest[] = [];
  readonly attachRequests: AttachVolumeRequest[] = [];
  /** Fail the next hot-plug / unplug with this message. */
  failAttach?: string;
  failDetach?: string;
  /** Delay replies to attach (simulates a slow guest). */
  attachDelayMs = 0;

  constructor(readonly bus: Bus, readonly host: string) {
    const s = agentSubjects(host);
    bus.serve(s.build, (req) => {
      this.builds.push(req);
      this.spec.set(req.uuid, new Set((req.volumes ?? []).map((v) => v.volumeId)));
      return { power: 1 };
    });
    bus.serve(s.remove, (req) => ({ removed: this.spec.delete(req.uuid) }));
    bus.serve(s.attachVolume, async (req) => {
      this.attachRequests.push(req);
      if (this.attachDelayMs) await new Promise((r) => setTimeout(r, this.attachDelayMs));
      if (this.failAttach) { const m = this.failAttach; this.failAttach = undefined; throw new Error(m); }
      (this.spec.get(req.uuid) ?? this.spec.set(req.uuid, new Set()).get(req.uuid)!).add(req.volume.volumeId);
      return { attached: true };
    });
    bus.serve(s.detachVolume, (req) => {
      if (this.failDetach) { const m = this.failDetach; this.failDetach = undefined; throw new Error(m); }
      return { detached: this.spec.get(req.uuid)?.delete(req.volumeId) ?? false };
    });
  }

  report(): HostReport {
    return {
      host: this.host, hostIp: '10.0.0.1', agentVersion: '1', hypervisorType: 'QEMU', hypervisorVersion: 8002000, accel: 'tcg', cpuModel: 'qemu64',
      arch: 'x86_64', vcpus: 8, memoryMb: 16384, diskGb: 100,
      instances: Object.fromEntries([...this.spec.keys()].map((u) => [u, 1 as const])),
      attachedVolumes: Object.fromEntries([...this.spec].map(([u, v]) => [u, [...v]])),
    };
  }

  async heartbeat(): Promise<void> { this.bus.publish(AgentHeartbeat, this.report()); }
}

/** Images the fake image service knows: a kernel-booted image with its kernel and ramdisk. */
export class FakeImages implements ImageApi {
  readonly images = new Map<string, ComputeImage>();
  readonly created: { id: string; name: string; properties: Record<string, string>; diskFormat: string }[] = [];
  constructor() {
    const img = (id: string, properties: Record<string, string> = {}, diskFormat = 'qcow2'): ComputeImage => ({
      id, name: id, status: 'active', diskFormat, containerFormat: 'bare', size: 20 << 20, virtualSize: 64 << 20, minDisk: 0, minRam: 0, sha512: null, properties,
    });
    this.images.set('image-1', img('image-1', { kernel_id: 'kernel-1', ramdisk_id: 'ramdisk-1', os_type: 'linux' }));
    this.images.set('kernel-1', img('kernel-1', {}, 'aki'));
    this.images.set('ramdisk-1', img('ramdisk-1', {}, 'ari'));
  }
  async get(_auth: AuthContext, id: string): Promise<ComputeImage> {
    const i = this.images.get(id);
    if (!i) throw new NotFound(`Image ${id} could not be found.`);
    return i;
  }
  /** Where the stand-in upload endpoint listens (volumeCloud starts it). */
  base = 'http://127.0.0.1:9';
  fileUrl(id: string): string { return `${this.base}/v2/images/${id}/file`; }
  localPath(): string | null { return null; }
  async createSnapshot(_auth: AuthContext, f: { name: string; diskFormat: 'qcow2' | 'raw'; properties: Record<string, string> }): Promise<string> {
    const id = randomUUID();
    this.created.push({ id, name: f.name, properties: f.properties, diskFormat: f.diskFormat });
    this.images.set(id, { id, name: f.name, status: 'queued', diskFormat: f.diskFormat, containerFormat: 'bare', size: null, virtualSize: null, minDisk: 0, minRam: 0, sha512: null, properties: f.properties });
    return id;
  }
  async status(_auth: AuthContext, id: string): Promise<string> { return this.images.get(id)?.status ?? 'deleted'; }
  async discard(_auth: AuthContext, id: string): Promise<void> { this.images.delete(id); }
  async delete(_auth: AuthContext, id: string): Promise<void> { this.images.delete(id); }
  async list() { return []; }
  async show(auth: AuthContext, id: string) { return { ...(await this.get(auth, id)), createdAt: isoNow(), updatedAt: isoNow() }; }
  async updateProperties(auth: AuthContext, id: string) { return this.show(auth, id); }
}

export const FLAVOR = { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0, rxtx_factor: 1, is_public: true, disabled: false, description: null, extra_specs: {} };

export async function addFlavor(db: Db): Promise<void> {
  const { extra_specs: _specs, ...f } = FLAVOR;
  await db.insertInto('flavors').values({ ...f, is_public: 1, disabled: 0, created_at: isoNow() }).execute();
}

/** An instance placed on `host` (as if built), in project p-one. */
export async function addInstance(db: Db, o: { host?: string | null; vm?: string; task?: string | null; locked?: boolean; imageRef?: string } = {}): Promise<string> {
  const uuid = randomUUID();
  const now = isoNow();
  await db.insertInto('instances').values({
    uuid, id: Math.floor(Math.random() * 1e9), display_name: 'vm', display_description: null, hostname: 'vm', project_id: 'p-one', user_id: 'u-alice',
    image_ref: o.imageRef ?? 'image-1', flavor: JSON.stringify(FLAVOR), vcpus: 1, memory_mb: 512, root_gb: 1, ephemeral_gb: 0, swap_mb: 0,
    host: o.host === undefined ? 'node1' : o.host, availability_zone: 'nova', requested_az: null, vm_state: o.vm ?? 'active', task_state: o.task ?? null,
    power_state: 1, key_name: null, key_data: null, user_data: null, config_drive: '', access_ip_v4: '', access_ip_v6: '', networks: '"auto"', ssh_port: null,
    locked: o.locked ? 1 : 0, locked_by: o.locked ? 'owner' : null, locked_reason: null, server_group_id: null, reservation_id: 'r-1', launch_index: 0,
    progress: 0, fault: null, system_metadata: JSON.stringify({ image: JSON.stringify((new FakeImages()).images.get('image-1')) }), created_at: now, updated_at: now,
    launched_at: now, terminated_at: null, deleted: 0, deleted_at: null,
  }).execute();
  return uuid;
}

export interface VolumeCloud {
  app: App; dbh: OpenDatabase; call: ReturnType<typeof caller>; nats: NatsChild; bus: Bus; agentBus: Bus;
  conductor: Conductor; compute: ComputeService; volumes: FakeVolumes; images: FakeImages; agent: FakeAgent;
  close(): Promise<void>;
}

/** The routes behind the real API server, the real conductor and scheduler, a fake agent on 'node1' over a real nats-server. */
export async function volumeCloud(): Promise<VolumeCloud> {
  const nats = new NatsChild(mkdtempSync(join(tmpdir(), 'compute-volumes-')), log);
  const url = await nats.start();
  const bus = await Bus.connect(url, log);
  const agentBus = await Bus.connect(url, log);
  const volumes = new FakeVolumes();
  const images = new FakeImages();
  // Glance's upload endpoint: a PUT of the data makes a queued image active.
  const glance = createServer((req, res) => {
    const id = /^\/v2\/images\/([^/]+)\/file$/.exec(req.url ?? '')?.[1];
    const img = id ? images.images.get(id) : undefined;
    req.resume();
    req.on('end', () => {
      if (req.method !== 'PUT' || !img || !req.headers['x-auth-token']) { res.writeHead(404).end(); return; }
      img.status = 'active';
      img.size = 0;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => glance.listen(0, '127.0.0.1', r));
  images.base = `http://127.0.0.1:${(glance.address() as AddressInfo).port}`;
  let compute!: ComputeService;
  let conductor!: Conductor;
  const { app, dbh } = await harness((a, deps) => {
    deps.volumes = volumes;
    conductor = new Conductor(deps, bus, images, new Scheduler({}), log);
    compute = new ComputeService(deps, images, conductor);
    serverRoutes(a, compute, () => 'UP');
    actionRoutes(a, compute);
    volumeAttachmentRoutes(a, compute);
  });
  await addFlavor(dbh.db);
  await conductor.start();
  const agent = new FakeAgent(agentBus, 'node1');
  await agent.heartbeat();
  await until(async () => (await dbh.db.selectFrom('compute_hosts').select('host').execute()).length === 1, 'the host registered');
  return {
    app, dbh, call: caller(app), nats, bus, agentBus, conductor, compute, volumes, images, agent,
    async close() { glance.close(); conductor.stop(); await agentBus.close(); await bus.close(); await nats.stop(); await app.close(); await dbh.close(); },
  };
}

/** Poll until `f` holds (the conductor's work is asynchronous). */
export async function until(f: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
