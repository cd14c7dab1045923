import { randomUUID } from 'node:crypto';
import type { AuthContext, RequestContext } from '../../api/context.ts';
import { enforce, isAllowed } from '../../api/policy.ts';
import type { InstanceVerb } from '../../bus/compute.ts';
import { BadRequest, Conflict, Forbidden, GureumError, NotFound } from '../../common/errors.ts';
import { newSecret } from '../../common/ids.ts';
import { isoNow } from '../../db/index.ts';
import type { Conductor } from './conductor.ts';
import type { ComputeDeps } from './deps.ts';
import type { ComputeImage, ImageApi } from './images.ts';
import * as store from './store.ts';
import { STATUS_TO_VM, type Flavor, type Instance, type TaskState, type VmState } from './types.ts';
import { reclaimExpired, softDelete } from './lifecycle/admin.ts';
import { dropShelvedImage, inheritedProperties, offloadExpired } from './lifecycle/shelve.ts';
import './policy.ts';
import { insertBdm, isVolumeBacked, listBdms, nextDeviceName, type BlockDeviceMapping } from './bdm.ts';
import { imageDefinedBdms, snapshotVolumeBacked } from './lifecycle/volume-snapshot.ts';
import { checkBroughtVolumes, checkImageFits, fromLegacy, imageFromVolumeMetadata, planBoot, type BdmInput, type LegacyBdmInput } from './block-devices.ts';

export interface CreateServerInput {
  name: string;
  imageRef: string;
  flavorRef: string;
  keyName?: string;
  userData?: string;
  metadata?: Record<string, string>;
  availabilityZone?: string;
  networks?: 'none' | 'auto' | { uuid?: string; port?: string | null; fixed_ip?: string; tag?: string }[];
  configDrive?: boolean;
  minCount: number;
  maxCount: number;
  description?: string | null;
  tags?: string[];
  hostname?: string;
  accessIPv4?: string;
  accessIPv6?: string;
  securityGroups?: string[];
  group?: string;
  blockDeviceMappings?: BdmInput[];
  /** The legacy block_device_mapping (v1). */
  legacyBlockDeviceMappings?: LegacyBdmInput[];
}

export interface ServerFilters {
  name?: string; status?: string; host?: string; changesSince?: string; changesBefore?: string; allTenants: boolean;
  projectId?: string; userId?: string; image?: string; flavor?: string; reservationId?: string; locked?: boolean;
  tags?: string[]; tagsAny?: string[]; notTags?: string[]; notTagsAny?: string[]; availabilityZone?: string;
  deleted?: boolean; sortKeys: { key: string; dir: 'asc' | 'desc' }[]; limit?: number; marker?: string;
}

/** Nova's error for an action in the wrong state: 409 naming the action and the state. */
export function invalidState(action: string, uuid: string, attr: string, state: string | null): Conflict {
  return new Conflict(`Cannot '${action}' instance ${uuid} while it is in ${attr} ${state}`);
}

/** Power actions: which vm_states allow them, the task_state while running, and what the agent does. */
const ACTIONS: Record<string, { vm: VmState[]; task: TaskState; verb: InstanceVerb; action: string }> = {
  'os-stop': { vm: ['active', 'error'], task: 'powering-off', verb: 'stop', action: 'stop' },
  'os-start': { vm: ['stopped'], task: 'powering-on', verb: 'start', action: 'start' },
  'reboot-soft': { vm: ['active'], task: 'rebooting', verb: 'reboot-soft', action: 'reboot' },
  'reboot-hard': { vm: ['active', 'stopped', 'paused', 'suspended', 'error'], task: 'rebooting_hard', verb: 'reboot-hard', action: 'reboot' },
  pause: { vm: ['active'], task: 'pausing', verb: 'pause', action: 'pause' },
  unpause: { vm: ['paused'], task: 'unpausing', verb: 'unpause', action: 'unpause' },
  suspend: { vm: ['active'], task: 'suspending', verb: 'suspend', action: 'suspend' },
  resume: { vm: ['suspended'], task: 'resuming', verb: 'resume', action: 'resume' },
};

const SORT_COLUMNS: Record<string, string> = {
  created_at: 'created_at', updated_at: 'updated_at', display_name: 'display_name', uuid: 'uuid', vm_state: 'vm_state',
  task_state: 'task_state', power_state: 'power_state', host: 'host', hostname: 'hostname', launched_at: 'launched_at',
  terminated_at: 'terminated_at', availability_zone: 'availability_zone', key_name: 'key_name', project_id: 'project_id',
  user_id: 'user_id', image_ref: 'image_ref', locked: 'locked', launch_index: 'launch_index', id: 'id', memory_mb: 'memory_mb', vcpus: 'vcpus',
  root_gb: 'root_gb', ephemeral_gb: 'ephemeral_gb', display_description: 'display_description', progress: 'progress',
};

/** An IPv6 address in its canonical (compressed, lower-case) form, as Nova stores accessIPv6. */
export function canonicalIPv6(ip: string): string {
  try { return new URL(`http://[${ip}]/`).hostname.replace(/^\[|\]$/g, ''); } catch { return ip; }
}

function hostnameFrom(name: string): string {
  const h = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return h || 'server';
}

function isBase64(s: string): boolean {
  const t = s.replace(/\s+/g, '');
  return t.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(t);
}

/** Nova's server API rules: validation, quotas, the state machine; the work itself goes to the conductor. */
export class ComputeService {
  constructor(readonly deps: ComputeDeps, readonly images: ImageApi, readonly conductor: Conductor) {
    conductor.afterUnshelve = (uuid, wc) => dropShelvedImage(this, uuid, wc);
    const ctx: RequestContext = { requestId: 'req-periodic', log: deps.log };
    conductor.periodic.push(() => offloadExpired(this, { requestId: ctx.requestId, token: '', log: deps.log }));
    conductor.periodic.push(() => reclaimExpired(this, ctx));
  }

  get db() { return this.deps.db; }

  async quotas(projectId: string): Promise<Record<string, number>> {
    return { ...this.deps.cfg.defaultQuotas, ...(await store.quotaLimits(this.db, projectId)) };
  }

  private async image(auth: AuthContext, id: string, what = 'image'): Promise<ComputeImage> {
    try {
      return await this.images.get(auth, id);
    } catch (err) {
      if (err instanceof GureumError && err.status === 404) throw new BadRequest(what === 'image' ? `Image ${id} could not be found.` : `Invalid ${what}: image ${id} could not be found.`);
      throw err;
    }
  }

  /**
   * The image a server boots (create, rebuild) with its kernel and ramdisk images, checked
   * against the flavor (min_ram, min_disk, virtual size); 400 in Nova's words otherwise.
   */
  async resolveImage(auth: AuthContext, imageRef: string, flavor: Flavor): Promise<{ image: ComputeImage; kernel?: ComputeImage; ramdisk?: ComputeImage }> {
    const image = await this.image(auth, imageRef);
    if (image.status !== 'active') throw new BadRequest(`Image ${image.id} is not active.`);
    let kernel: ComputeImage | undefined;
    let ramdisk: ComputeImage | undefined;
    if (image.properties.kernel_id) {
      kernel = await this.image(auth, image.properties.kernel_id, 'kernel_id');
      if (kernel.status !== 'active') throw new BadRequest(`Kernel image ${kernel.id} is not active.`);
    }
    if (image.properties.ramdisk_id) {
      ramdisk = await this.image(auth, image.properties.ramdisk_id, 'ramdisk_id');
      if (ramdisk.status !== 'active') throw new BadRequest(`Ramdisk image ${ramdisk.id} is not active.`);
    }
    if (image.minRam > flavor.ram) throw new BadRequest("Flavor's memory is too small for requested image.");
    if (flavor.disk > 0) {
      const flavorBytes = flavor.disk * 1024 ** 3;
      const imageBytes = image.virtualSize ?? image.size ?? 0;
      if (image.minDisk > flavor.disk) {
        throw new BadRequest(`Flavor's disk is too small for requested image. Flavor disk is ${flavorBytes} bytes, minimum size is ${image.minDisk * 1024 ** 3} bytes.`);
      }
      if (imageBytes > flavorBytes) {
        throw new BadRequest(`Flavor's disk is too small for requested image. Flavor disk is ${flavorBytes} bytes, image is ${imageBytes} bytes.`);
      }
    }
    return { image, kernel, ramdisk };
  }

  // ---- create ----

  async create(ctx: RequestContext, auth: AuthContext, input: CreateServerInput): Promise<Instance[]> {
    if (!auth.projectId) throw new Forbidden('Creating a server needs a project-scoped token.');
    enforce(auth, 'os_compute_api:servers:create', { project_id: auth.projectId });
    const db = this.db;

    const flavor = await store.getFlavor(db, input.flavorRef);
    const flavorVisible = flavor && (flavor.is_public || isAllowed(auth, 'os_compute_api:os-flavor-access') ||
      (await store.flavorProjects(db, flavor.id)).includes(auth.projectId));
    if (!flavor || !flavorVisible) throw new BadRequest(`Flavor ${input.flavorRef} could not be found.`);
    if (flavor.disabled) throw new BadRequest('Flavor is disabled.');

    // Block device mappings: a volume-backed root (boot index 0 → volume) and further volumes.
    const requested = [...(input.blockDeviceMappings ?? []), ...fromLegacy(input.legacyBlockDeviceMappings ?? [])];
    // An image of a volume-backed server defines the mappings (volumes from its snapshots), as Nova merges them.
    const imageBdms = input.imageRef && !requested.some((b) => String(b.boot_index) === '0') ? imageDefinedBdms(await this.image(auth, input.imageRef)) : [];
    const plan = planBoot([...imageBdms, ...requested], input.imageRef);
    const rootMeta = await checkBroughtVolumes(this.deps.volumes, auth, plan, input.maxCount);
    let image: ComputeImage | undefined;
    let kernel: ComputeImage | undefined;
    let ramdisk: ComputeImage | undefined;
    if (!plan.volumeBacked) ({ image, kernel, ramdisk } = await this.resolveImage(auth, input.imageRef, flavor));
    else if (input.imageRef || plan.rootImageId) {
      // The root volume is made from (or the request names) an image: its facts boot the server; the flavor's disk does not apply.
      ({ image, kernel, ramdisk } = await this.resolveImage(auth, input.imageRef || plan.rootImageId!, { ...flavor, disk: 0 }));
      if (plan.rootImageId) checkImageFits(image, plan.volumes[0]!.volumeSize ?? 0);
    } else if (rootMeta && Object.keys(rootMeta).length) {
      // A volume the user brought: its volume_image_metadata (kernel_id, ramdisk_id, hw_*) as Nova uses it.
      image = imageFromVolumeMetadata(rootMeta);
      if (rootMeta.kernel_id) kernel = await this.image(auth, rootMeta.kernel_id, 'kernel_id');
      if (rootMeta.ramdisk_id) ramdisk = await this.image(auth, rootMeta.ramdisk_id, 'ramdisk_id');
    }

    let keyData: string | null = null;
    if (input.keyName !== undefined) {
      const kp = await store.getKeypair(db, auth.userId, input.keyName);
      if (!kp) throw new BadRequest('Invalid key_name provided.');
      keyData = kp.publicKey;
    }
    if (input.userData !== undefined) {
      if (!isBase64(input.userData)) throw new BadRequest("Invalid input for field/attribute user_data. Value: the data is not valid base64.");
      if (input.userData.length > 65535) throw new BadRequest('User data too large. User data must be no larger than 65535 bytes once base64 encoded.');
    }
    const networks = await this.requestedNetworks(auth, input);

    let requestedAz: string | null = null;
    if (input.availabilityZone) {
      const [zone, host] = input.availabilityZone.split(':');
      if (host) enforce(auth, 'os_compute_api:servers:create:forced_host');
      const zones = new Set((await store.listHosts(db)).map((h) => h.availabilityZone));
      if (zone && !zones.has(zone)) throw new BadRequest('The requested availability zone is not available');
      requestedAz = input.availabilityZone;
    }
    let groupId: string | null = null;
    if (input.group) {
      const g = await store.getServerGroup(db, input.group);
      if (!g || (g.projectId !== auth.projectId && !isAllowed(auth, 'os_compute_api:os-server-groups:index:all_projects'))) {
        throw new BadRequest(`Invalid server group: ${input.group} could not be found.`);
      }
      groupId = g.id;
    }

    const meta = input.metadata ?? {};
    const quotas = await this.quotas(auth.projectId);
    if (Object.keys(meta).length > (quotas.metadata_items ?? 128) && (quotas.metadata_items ?? 128) >= 0) {
      throw new Forbidden(`Quota exceeded for metadata_items: Requested ${Object.keys(meta).length}, but the limit is ${quotas.metadata_items}.`);
    }
    const reservationId = `r-${newSecret(6).toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 8)}`;
    const now = isoNow();
    const sysMeta = JSON.stringify({
      ...(input.securityGroups?.length ? { security_groups: JSON.stringify(input.securityGroups) } : {}),
      ...(image ? { image: JSON.stringify(image) } : {}), ...(kernel ? { kernel: JSON.stringify(kernel) } : {}), ...(ramdisk ? { ramdisk: JSON.stringify(ramdisk) } : {}),
    });

    // Quota check and inserts in one transaction: concurrent requests cannot both take the last slot.
    const created = await db.transaction().execute(async (tx) => {
      const used = await store.usage(tx, auth.projectId!);
      let count = input.maxCount;
      const headroom = (limit: number | undefined, inUse: number, per: number) =>
        limit === undefined || limit < 0 ? Infinity : Math.floor((limit - inUse) / Math.max(per, 1));
      const fit = Math.min(
        headroom(quotas.instances, used.instances, 1), headroom(quotas.cores, used.cores, flavor.vcpus), headroom(quotas.ram, used.ram, flavor.ram),
      );
      if (fit < input.minCount) {
        const over = headroom(quotas.instances, used.instances, 1) < input.minCount ? ['instances', 1, used.instances, quotas.instances]
          : headroom(quotas.cores, used.cores, flavor.vcpus) < input.minCount ? ['cores', flavor.vcpus * input.minCount, used.cores, quotas.cores]
            : ['ram', flavor.ram * input.minCount, used.ram, quotas.ram];
        throw new Forbidden(`Quota exceeded for ${String(over[0])}: Requested ${String(over[0] === 'instances' ? input.minCount : over[1])}, but already used ${String(over[2])} of ${String(over[3])} ${String(over[0])}`);
      }
      count = Math.min(count, fit);
      const out: string[] = [];
      for (let i = 0; i < count; i++) {
        const uuid = randomUUID();
        const id = await store.nextId(tx, 'instances');
        const name = count > 1 ? `${input.name}-${i + 1}` : input.name;
        await tx.insertInto('instances').values({
          uuid, id, display_name: name, display_description: input.description ?? null,
          hostname: input.hostname && count === 1 ? input.hostname : hostnameFrom(name),
          project_id: auth.projectId!, user_id: auth.userId, image_ref: input.imageRef ? (image?.id ?? input.imageRef) : '', flavor: JSON.stringify(flavor),
          vcpus: flavor.vcpus, memory_mb: flavor.ram, root_gb: plan.volumeBacked ? 0 : flavor.disk, ephemeral_gb: flavor.ephemeral, swap_mb: flavor.swap,
          host: null, availability_zone: requestedAz?.split(':')[0] || null, requested_az: requestedAz, vm_state: 'building', task_state: 'scheduling',
          power_state: 0, key_name: input.keyName ?? null, key_data: keyData, user_data: input.userData ?? null,
          config_drive: input.configDrive ? 'True' : '', access_ip_v4: input.accessIPv4 ?? '', access_ip_v6: input.accessIPv6 ? canonicalIPv6(input.accessIPv6) : '',
          networks: JSON.stringify(networks), ssh_port: null, locked: 0, locked_by: null, locked_reason: null, server_group_id: groupId,
          reservation_id: reservationId, launch_index: i, progress: 0, fault: null, system_metadata: sysMeta,
          created_at: now, updated_at: now, launched_at: null, terminated_at: null, deleted: 0, deleted_at: null,
        }).execute();
        for (const [k, v] of Object.entries(meta)) await tx.insertInto('instance_metadata').values({ instance_uuid: uuid, key: k, value: v }).execute();
        for (const t of new Set(input.tags ?? [])) await tx.insertInto('instance_tags').values({ instance_uuid: uuid, tag: t }).execute();
        if (groupId) await tx.insertInto('server_group_members').values({ group_id: groupId, instance_uuid: uuid }).execute();
        const mapped: BlockDeviceMapping[] = [];
        for (const b of plan.volumes) {
          const deviceName = b.deviceName ?? nextDeviceName({ flavor, configDrive: input.configDrive ? 'True' : '' }, mapped, this.deps.cfg.forceConfigDrive);
          mapped.push(await insertBdm(tx, { ...b, deviceName, instanceUuid: uuid, attachmentId: null, attachStatus: b.volumeId ? null : 'creating' }));
        }
        await store.startAction(tx, { requestId: ctx.requestId, uuid, action: 'create', projectId: auth.projectId!, userId: auth.userId });
        out.push(uuid);
      }
      return out;
    });
    const instances: Instance[] = [];
    for (const uuid of created) {
      this.conductor.build(uuid, { requestId: ctx.requestId, token: auth.token, log: ctx.log });
      instances.push((await store.getInstance(db, uuid))!);
    }
    ctx.log.info({ instances: created, flavor: flavor.name, image: image?.id, volumes: plan.volumes.length, volumeBacked: plan.volumeBacked }, 'servers accepted');
    return instances;
  }

  /**
   * The NICs a create asks for. With the network service: the named networks and ports,
   * checked in the caller's scope; nothing named → the project's one usable network; none
   * usable → the user-mode NIC ('auto', so a cloud without tenant networks still boots
   * reachable servers). `networks: none` → no NIC.
   */
  private async requestedNetworks(auth: AuthContext, input: CreateServerInput): Promise<Instance['networks']> {
    if (input.networks === 'none') return 'none';
    const groups = input.securityGroups ?? [];
    const api = this.deps.networks;
    if (!api) {
      if (Array.isArray(input.networks) && input.networks.length > 0) {
        const n = input.networks[0]!;
        if (n.port) throw new BadRequest(`Port id ${n.port} could not be found.`);
        throw new BadRequest(`Network ${n.uuid ?? ''} could not be found.`);
      }
      for (const sg of groups) if (sg !== 'default') throw new BadRequest(`Security group ${sg} not found.`);
      return 'auto';
    }
    if (input.networks === 'auto') {
      await api.resolve(auth, [], groups);
      return 'auto';
    }
    const requested = Array.isArray(input.networks)
      ? input.networks.map((n) => ({ networkId: n.uuid, portId: n.port ?? undefined, fixedIp: n.fixed_ip, tag: n.tag }))
      : undefined;
    const nics = await api.resolve(auth, requested, groups);
    return nics.length > 0 ? nics : 'auto';
  }

  // ---- read ----

  /** The instance when the caller may see it (admins: any; others: their project's); else 404. */
  async get(auth: AuthContext | undefined, uuid: string, rule = 'os_compute_api:servers:show', withDeleted = false): Promise<Instance> {
    const inst = await store.getInstance(this.db, uuid, withDeleted);
    if (!inst || !auth || !isAllowed(auth, rule, { project_id: inst.projectId })) {
      if (inst && auth && isAllowed(auth, 'os_compute_api:servers:show', { project_id: inst.projectId })) {
        throw new Forbidden(`Policy doesn't allow ${rule} to be performed.`);
      }
      throw new NotFound(`Instance ${uuid} could not be found.`);
    }
    return inst;
  }

  async list(auth: AuthContext, f: ServerFilters): Promise<{ items: Instance[]; more: boolean }> {
    enforce(auth, 'os_compute_api:servers:index');
    const admin = isAllowed(auth, 'os_compute_api:servers:index:get_all_tenants');
    let q = this.db.selectFrom('instances').selectAll();
    if (!(admin && f.deleted)) q = q.where('deleted', '=', 0);
    else q = q.where('deleted', '=', 1);
    if (admin && f.allTenants) {
      if (f.projectId) q = q.where('project_id', '=', f.projectId);
    } else {
      // Without all_tenants a project filter is ignored, even for admins (Nova bug 1659811).
      q = q.where('project_id', '=', auth.projectId ?? '');
    }
    if (f.status) {
      const vms = STATUS_TO_VM[f.status.toUpperCase()];
      if (!vms) return { items: [], more: false };
      q = q.where('vm_state', 'in', vms);
    }
    if (admin && f.host) q = q.where('host', '=', f.host);
    if (f.changesSince) q = q.where('updated_at', '>=', f.changesSince);
    if (f.changesBefore) q = q.where('updated_at', '<=', f.changesBefore);
    if (admin && f.userId) q = q.where('user_id', '=', f.userId);
    if (f.image) q = q.where('image_ref', '=', f.image);
    if (f.reservationId) q = q.where('reservation_id', '=', f.reservationId);
    if (f.locked !== undefined) q = q.where('locked', '=', f.locked ? 1 : 0);
    if (f.availabilityZone) q = q.where('availability_zone', '=', f.availabilityZone);
    for (const t of f.tags ?? []) q = q.where('uuid', 'in', this.db.selectFrom('instance_tags').select('instance_uuid').where('tag', '=', t));
    if (f.tagsAny?.length) q = q.where('uuid', 'in', this.db.selectFrom('instance_tags').select('instance_uuid').where('tag', 'in', f.tagsAny));
    if (f.notTagsAny?.length) q = q.where('uuid', 'not in', this.db.selectFrom('instance_tags').select('instance_uuid').where('tag', 'in', f.notTagsAny));
    const sorts = f.sortKeys.length ? f.sortKeys : [{ key: 'created_at', dir: 'desc' as const }];
    for (const s of sorts) {
      const col = SORT_COLUMNS[s.key];
      if (!col) throw new BadRequest(`Invalid sort_key: ${s.key}`);
      q = q.orderBy(col as 'created_at', s.dir);
    }
    q = q.orderBy('id', sorts[0]!.dir);
    let rows = await q.execute();
    if (f.name) {
      let re: RegExp;
      try { re = new RegExp(f.name); } catch { throw new BadRequest(`Invalid regular expression in name filter: ${f.name}`); }
      rows = rows.filter((r) => re.test(r.display_name));
    }
    if (f.flavor) rows = rows.filter((r) => (JSON.parse(r.flavor) as { id: string }).id === f.flavor);
    if (f.notTags?.length) {
      const tagged = await this.db.selectFrom('instance_tags').select(['instance_uuid', 'tag']).where('tag', 'in', f.notTags).execute();
      const per = new Map<string, number>();
      for (const t of tagged) per.set(t.instance_uuid, (per.get(t.instance_uuid) ?? 0) + 1);
      const excluded = new Set([...per].filter(([, n]) => n === f.notTags!.length).map(([u]) => u));
      rows = rows.filter((r) => !excluded.has(r.uuid));
    }
    let start = 0;
    if (f.marker) {
      const i = rows.findIndex((r) => r.uuid === f.marker);
      if (i < 0) throw new BadRequest(`marker [${f.marker}] not found`);
      start = i + 1;
    }
    const end = f.limit === undefined ? rows.length : start + f.limit;
    const page = rows.slice(start, end);
    return { items: await store.hydrate(this.db, page), more: end < rows.length };
  }

  // ---- update / delete ----

  async update(auth: AuthContext, uuid: string, patch: { name?: string; description?: string | null; accessIPv4?: string; accessIPv6?: string; hostname?: string }): Promise<Instance> {
    const inst = await this.get(auth, uuid, 'os_compute_api:servers:update');
    await store.updateInstance(this.db, inst.uuid, {
      ...(patch.name !== undefined ? { display_name: patch.name } : {}),
      ...(patch.description !== undefined ? { display_description: patch.description } : {}),
      ...(patch.accessIPv4 !== undefined ? { access_ip_v4: patch.accessIPv4 } : {}),
      ...(patch.accessIPv6 !== undefined ? { access_ip_v6: patch.accessIPv6 ? canonicalIPv6(patch.accessIPv6) : '' } : {}),
      ...(patch.hostname !== undefined ? { hostname: patch.hostname } : {}),
    });
    return (await store.getInstance(this.db, uuid))!;
  }

  checkLock(auth: AuthContext, inst: Instance): void {
    if (inst.locked && !isAllowed(auth, 'os_compute_api:os-lock-server:unlock:unlock_override')) {
      throw new Conflict(`Instance ${inst.uuid} is locked`);
    }
  }

  async delete(ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
    const inst = await this.get(auth, uuid, 'os_compute_api:servers:delete');
    this.checkLock(auth, inst);
    if (inst.taskState === 'deleting') return;
    // Deferred delete: a placed server that is not mid-operation is kept restorable for a while.
    if (this.deps.cfg.reclaimInstanceIntervalSec > 0 && inst.host && inst.taskState === null && inst.vmState !== 'soft-delete' &&
      inst.vmState !== 'building' && !inst.vmState.startsWith('shelved')) {
      return softDelete(this, ctx, auth, uuid);
    }
    return this.hardDelete(ctx, auth, inst);
  }

  /** Delete now, whatever the state (the server's task is cancelled). */
  async hardDelete(ctx: RequestContext, auth: AuthContext, inst: Instance): Promise<void> {
    const uuid = inst.uuid;
    const ok = await store.updateInstance(this.db, uuid, { task_state: 'deleting' });
    if (!ok) throw new NotFound(`Instance ${uuid} could not be found.`);
    const actionId = await store.startAction(this.db, { requestId: ctx.requestId, uuid, action: 'delete', projectId: inst.projectId, userId: auth.userId });
    this.conductor.delete(uuid, actionId, { requestId: ctx.requestId, token: auth.token, log: ctx.log });
  }

  // ---- actions ----

  async powerAction(ctx: RequestContext, auth: AuthContext, uuid: string, kind: keyof typeof ACTIONS | string): Promise<void> {
    const spec = ACTIONS[kind];
    if (!spec) throw new BadRequest(`Unsupported action: ${kind}`);
    const inst = await this.get(auth, uuid, 'os_compute_api:servers:action');
    this.checkLock(auth, inst);
    if (inst.taskState !== null) throw invalidState(spec.action, uuid, 'task_state', inst.taskState);
    if (!spec.vm.includes(inst.vmState)) throw invalidState(spec.action, uuid, 'vm_state', inst.vmState);
    if (!inst.host) throw invalidState(spec.action, uuid, 'vm_state', inst.vmState);
    const ok = await store.updateInstance(this.db, uuid, { task_state: spec.task }, [null], spec.vm);
    if (!ok) {
      const now = (await store.getInstance(this.db, uuid))!;
      throw invalidState(spec.action, uuid, now.taskState ? 'task_state' : 'vm_state', now.taskState ?? now.vmState);
    }
    const actionId = await store.startAction(this.db, { requestId: ctx.requestId, uuid, action: spec.action, projectId: inst.projectId, userId: auth.userId });
    this.conductor.act(uuid, spec.verb, spec.task, actionId, { requestId: ctx.requestId, token: auth.token, log: ctx.log });
  }

  async lock(ctx: RequestContext, auth: AuthContext, uuid: string, reason: string | undefined): Promise<void> {
    const inst = await this.get(auth, uuid, 'os_compute_api:servers:action');
    const by = inst.projectId === auth.projectId ? 'owner' : 'admin';
    await store.updateInstance(this.db, uuid, { locked: 1, locked_by: by, locked_reason: reason ?? null });
    await store.startAction(this.db, { requestId: ctx.requestId, uuid, action: 'lock', projectId: inst.projectId, userId: auth.userId });
  }

  async unlock(ctx: RequestContext, auth: AuthContext, uuid: string): Promise<void> {
    const inst = await this.get(auth, uuid, 'os_compute_api:servers:action');
    if (inst.locked && inst.lockedBy === 'admin' && !isAllowed(auth, 'os_compute_api:os-lock-server:unlock:unlock_override')) {
      throw new Forbidden('Policy doesn\'t allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.');
    }
    await store.updateInstance(this.db, uuid, { locked: 0, locked_by: null, locked_reason: null });
    await store.startAction(this.db, { requestId: ctx.requestId, uuid, action: 'unlock', projectId: inst.projectId, userId: auth.userId });
  }

  async consoleOutput(ctx: RequestContext, auth: AuthContext, uuid: string, length: number | undefined): Promise<string> {
    const inst = await this.get(auth, uuid, 'os_compute_api:os-console-output');
    if (!inst.host || inst.vmState === 'building' && inst.taskState === 'scheduling') {
      throw new Conflict(`Cannot 'get_console_output' instance ${uuid} while it is in vm_state ${inst.vmState}`);
    }
    try {
      return await this.conductor.consoleOutput(inst, length, ctx.requestId);
    } catch (err) {
      throw new GureumError(409, `Console log of instance ${uuid} is not available: ${(err as Error).message}`);
    }
  }

  /** createImage: snapshot the root disk into a new private Glance image while the VM keeps running. */
  async createImage(ctx: RequestContext, auth: AuthContext, uuid: string, name: string, metadata: Record<string, string>,
    backup?: { properties: Record<string, string>; onUploaded: () => Promise<void> }): Promise<string> {
    const inst = await this.get(auth, uuid, backup ? 'os_compute_api:os-create-backup' : 'os_compute_api:servers:action');
    const action = backup ? 'createBackup' : 'createImage';
    this.checkLock(auth, inst);
    const allowed: VmState[] = ['active', 'stopped', 'paused', 'suspended'];
    if (inst.taskState !== null) throw invalidState(action, uuid, 'task_state', inst.taskState);
    if (!allowed.includes(inst.vmState) || !inst.host) throw invalidState(action, uuid, 'vm_state', inst.vmState);
    if (!backup && this.deps.volumes && isVolumeBacked(await listBdms(this.db, uuid))) return snapshotVolumeBacked(this, ctx, auth, inst, name, metadata);
    const sys = JSON.parse((await this.db.selectFrom('instances').select('system_metadata').where('uuid', '=', uuid).executeTakeFirstOrThrow()).system_metadata) as Record<string, string>;
    const base = JSON.parse(sys.image ?? 'null') as ComputeImage | null;
    // The snapshot boots like its source: kernel/ramdisk and the hw_/os_ properties carry over.
    const inherited = inheritedProperties(base);
    const properties = {
      // The caller's metadata wins over the recorded facts, as in Nova.
      ...inherited, image_type: 'snapshot', instance_uuid: uuid, base_image_ref: inst.imageRef, user_id: auth.userId, image_location: 'snapshot',
      ...backup?.properties, ...metadata,
    };
    if (!(await store.updateInstance(this.db, uuid, { task_state: 'image_snapshot' }, [null], allowed))) {
      throw invalidState(action, uuid, 'task_state', 'image_snapshot');
    }
    let imageId: string;
    try {
      imageId = await this.images.createSnapshot(auth, { name, diskFormat: 'qcow2', properties, minDisk: inst.flavor.disk, minRam: base?.minRam ?? 0 });
    } catch (err) {
      await store.updateInstance(this.db, uuid, { task_state: null }, ['image_snapshot']);
      throw err;
    }
    const actionId = await store.startAction(this.db, { requestId: ctx.requestId, uuid, action, projectId: inst.projectId, userId: auth.userId });
    this.conductor.snapshot(uuid, imageId, actionId, auth, { requestId: ctx.requestId, token: auth.token, log: ctx.log }, backup?.onUploaded);
    return imageId;
  }

  // ---- metadata and tags ----

  async setMetadata(auth: AuthContext, uuid: string, meta: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
    const inst = await this.get(auth, uuid, 'os_compute_api:server-metadata:update');
    this.checkLock(auth, inst);
    const merged = replace ? { ...meta } : { ...inst.metadata, ...meta };
    const limit = (await this.quotas(inst.projectId)).metadata_items ?? 128;
    if (limit >= 0 && Object.keys(merged).length > limit) throw new Forbidden(`Quota exceeded for metadata_items: the limit is ${limit}.`);
    await this.db.transaction().execute(async (tx) => {
      if (replace) await tx.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).execute();
      for (const [k, v] of Object.entries(meta)) {
        await tx.insertInto('instance_metadata').values({ instance_uuid: uuid, key: k, value: v })
          .onConflict((oc) => oc.columns(['instance_uuid', 'key']).doUpdateSet({ value: v })).execute();
      }
    });
    return merged;
  }

  async deleteMetadata(auth: AuthContext, uuid: string, key: string): Promise<void> {
    const inst = await this.get(auth, uuid, 'os_compute_api:server-metadata:update');
    this.checkLock(auth, inst);
    if (!(key in inst.metadata)) throw new NotFound(`Metadata item was not found`);
    await this.db.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).where('key', '=', key).execute();
  }

  async setTags(auth: AuthContext, uuid: string, tags: string[], replace: boolean): Promise<string[]> {
    const inst = await this.get(auth, uuid, 'os_compute_api:os-server-tags:update');
    const all = replace ? [...new Set(tags)] : [...new Set([...inst.tags, ...tags])];
    if (all.length > 50) throw new BadRequest('The number of tags exceeded the per-server limit 50');
    await this.db.transaction().execute(async (tx) => {
      if (replace) await tx.deleteFrom('instance_tags').where('instance_uuid', '=', uuid).execute();
      for (const t of tags) await tx.insertInto('instance_tags').values({ instance_uuid: uuid, tag: t }).onConflict((oc) => oc.doNothing()).execute();
    });
    return all.sort();
  }

  async deleteTag(auth: AuthContext, uuid: string, tag: string | null): Promise<void> {
    const inst = await this.get(auth, uuid, 'os_compute_api:os-server-tags:update');
    let q = this.db.deleteFrom('instance_tags').where('instance_uuid', '=', uuid);
    if (tag !== null) {
      if (!inst.tags.includes(tag)) throw new NotFound(`Tag ${tag} could not be found.`);
      q = q.where('tag', '=', tag);
    }
    await q.execute();
  }
}
