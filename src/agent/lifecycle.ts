/**
 * What the agent does to an instance's files and guest for each lifecycle operation:
 * build, rebuild, resize (+ confirm/revert) and rescue/unrescue. The hypervisor driver
 * runs and stops QEMU; this module decides which disks exist and what the saved spec
 * is. Every operation leaves the instance directory in a state a retry or the
 * conductor's reconcile can read: a pending resize keeps the old disks and spec in
 * `resize-backup/`, a rescued guest keeps its own spec in `spec.unrescue.json`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type {
  AttachInterfaceRequest, AttachVolumeRequest, BuildRequest, DetachInterfaceRequest, DetachVolumeRequest, ImageRef, PortNic, PowerCode, RebuildRequest,
  RescueRequest, ResizeRequest, StateReply, VolumeDisk,
} from '../bus/compute.ts';
import { deviceNames } from '../bus/network.ts';
import type { Logger } from '../common/logger.ts';
import { PowerStateCode, type DiskSpec, type HypervisorDriver, type InstanceSpec, type VolumeDiskSpec } from './hypervisor/driver.ts';
import { USER_NETWORK } from './hypervisor/qemu/cmdline.ts';
import { clearPassword, MetadataServers, writeMetadataDocument } from './metadata/index.ts';
import { buildConfigDrive } from './storage/config-drive.ts';
import { createEphemeral, createRootOverlay, createSwap, growDisk, virtualSize } from './storage/disks.ts';
import type { ImageCache, ImageSource } from './storage/image-cache.ts';

const run = promisify(execFile);

/** A free TCP port on 127.0.0.1 for a guest's forwarded SSH. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface LifecycleDeps {
  driver: HypervisorDriver;
  cache: ImageCache;
  /** The per-instance metadata servers (http://169.254.169.254/ for guests on the user-mode network). */
  metadata: MetadataServers;
  instancesDir: string;
  log: Logger;
  /** Where an image's data comes from (a local file of the image store, or a download with the caller's token). */
  source(ref: ImageRef, token: string): ImageSource;
  /**
   * The host's network side (when tenant networking runs here): makes the ports' tap devices
   * exist and be plugged, filtered and served by DHCP before QEMU starts on them.
   */
  network?: { preparePorts(ports: PortNic[], log: Logger): Promise<void> };
}

/** File names inside an instance directory. */
const F = {
  root: 'disk', ephemeral: 'disk.eph0', swap: 'disk.swap', config: 'disk.config', rescue: 'disk.rescue',
  resizeBackup: 'resize-backup', unrescueSpec: 'spec.unrescue.json',
} as const;

/** A block device mapping's volume as a disk of the spec; bootIndex 0 is the root disk. */
export function volumeDiskSpec(v: VolumeDisk): VolumeDiskSpec {
  return {
    volumeId: v.volumeId, connection: v.connection, ...(v.readonly ? { readonly: true } : {}), ...(v.qos ? { qos: v.qos } : {}),
    ...(v.bootIndex === 0 ? { root: true } : {}),
  };
}

/** The volumes of a build in guest order (the root volume first), keeping the hotplug slots they had in `old`. */
function buildVolumes(volumes: VolumeDisk[], old: VolumeDiskSpec[] = []): VolumeDiskSpec[] {
  const specs = volumes.map(volumeDiskSpec);
  const ordered = [...specs.filter((v) => v.root), ...specs.filter((v) => !v.root)];
  return ordered.map((v) => {
    const slot = old.find((o) => o.volumeId === v.volumeId && !o.root)?.slot;
    return !v.root && slot !== undefined ? { ...v, slot } : v;
  });
}

async function readJsonFile<T>(path: string): Promise<T | undefined> {
  try { return JSON.parse(await readFile(path, 'utf8')) as T; } catch { return undefined; }
}

export class InstanceLifecycle {
  /** Instances with a build in progress (reported as nostate until spawned). */
  readonly building = new Set<string>();

  constructor(private readonly d: LifecycleDeps) {}

  dir(uuid: string): string { return join(this.d.instancesDir, uuid); }

  /** Formatted ephemeral bases live beside the image cache (not in it: the cache prunes what no image names). */
  private ephemeralFormat(fs: 'vfat' | 'ext4' = 'vfat') {
    return { fs, baseDir: join(this.d.cache.dir, '..', '_ephemeral') };
  }

  private async reply(uuid: string): Promise<StateReply> {
    const st = await this.d.driver.getState(uuid);
    const spec = await this.d.driver.getSpec(uuid).catch(() => undefined);
    const nic = spec?.nics.find((n) => n.kind === 'user');
    return {
      power: PowerStateCode[st.power] as PowerCode, cpuTimeNs: st.cpuTimeNs, memoryKb: st.memoryKb,
      sshHostPort: nic?.kind === 'user' ? nic.sshHostPort : undefined,
    };
  }

  /** The image (and kernel/ramdisk images) of a request in this host's cache, fetched when missing. */
  private async images(req: { image: ImageRef; kernel?: ImageRef; ramdisk?: ImageRef; token: string }, withImage = true) {
    const { cache } = this.d;
    const [base, kernel, ramdisk] = await Promise.all([
      withImage ? cache.ensure(req.image.id, req.image.sha512, this.d.source(req.image, req.token)) : undefined,
      req.kernel ? cache.ensure(req.kernel.id, req.kernel.sha512, this.d.source(req.kernel, req.token)) : undefined,
      req.ramdisk ? cache.ensure(req.ramdisk.id, req.ramdisk.sha512, this.d.source(req.ramdisk, req.token)) : undefined,
    ]);
    return { base, kernel, ramdisk };
  }

  /** Disks, config drive and spec for a build request (nothing runs yet). */
  private async prepare(
    req: BuildRequest, keep: { sshHostPort?: number; mac?: string; ephemeral?: boolean; volumes?: VolumeDiskSpec[] } = {},
  ): Promise<InstanceSpec> {
    const dir = this.dir(req.uuid);
    await mkdir(dir, { recursive: true });
    // Volumes from the request (block device mappings), else the ones the instance has (a rebuild keeps them).
    const volumes = req.volumes ? buildVolumes(req.volumes, keep.volumes) : keep.volumes ?? [];
    // Boot from volume: no image disk; the image only lends its kernel and ramdisk (when it has them).
    const fromVolume = volumes.some((v) => v.root);
    const { base, kernel, ramdisk } = await this.images(req, !fromVolume);
    const disks: DiskSpec[] = [];
    if (base) {
      const root = join(dir, F.root);
      await createRootOverlay(base, req.image.diskFormat === 'qcow2' ? 'qcow2' : 'raw', root, req.rootGb > 0 ? req.rootGb : undefined);
      disks.push({ path: root, format: 'qcow2' });
    }
    if (req.ephemeralGb > 0) {
      const eph = join(dir, F.ephemeral);
      if (!(keep.ephemeral && existsSync(eph))) await createEphemeral(eph, req.ephemeralGb, this.ephemeralFormat(req.ephemeralFormat));
      disks.push({ path: eph, format: 'qcow2' });
    }
    if (req.swapMb > 0) {
      await createSwap(join(dir, F.swap), req.swapMb);
      disks.push({ path: join(dir, F.swap), format: 'raw' });
    }
    if (req.configDrive) {
      await buildConfigDrive(join(dir, F.config), {
        metaData: req.metaData, userData: req.userData ? Buffer.from(req.userData, 'base64') : undefined,
        networkData: req.networkData, vendorData: req.vendorData,
      });
      disks.push({ path: join(dir, F.config), format: 'raw', readonly: true });
    }
    // The metadata service answers before QEMU starts: the guest asks early in its boot.
    await writeMetadataDocument(dir, {
      metaData: req.metaData, userData: req.userData, networkData: req.networkData, vendorData: req.vendorData,
      ec2: req.ec2 && { ...req.ec2, localIpv4: this.localIpv4(req) },
    });
    // Guests on tenant networks reach the same per-instance server through the network's metadata proxy.
    const metadataSocket = req.network !== 'none' ? await this.d.metadata.start(req.uuid, dir) : undefined;
    const ports = req.network === 'ports' ? req.ports ?? [] : [];
    if (ports.length > 0) {
      if (!this.d.network) throw new Error('this host has no tenant networking: cannot plug Neutron ports');
      await this.d.network.preparePorts(ports, this.d.log.child({ instance: req.uuid }));
    }
    const sshHostPort = req.network === 'auto' ? keep.sshHostPort ?? req.sshHostPort ?? await freeLoopbackPort() : undefined;
    return {
      uuid: req.uuid, name: req.name, vcpus: req.vcpus, memoryMb: req.memoryMb,
      boot: kernel ? { kind: 'kernel', kernel, ramdisk, cmdline: req.cmdline } : { kind: 'disk' },
      disks,
      nics: req.network === 'auto' ? [{ kind: 'user', mac: keep.mac ?? req.mac, sshHostPort, metadataSocket }]
        : ports.map((p) => ({ kind: 'tap' as const, mac: p.mac, ifname: deviceNames.tap(p.portId), portId: p.portId })),
      ...(volumes.length > 0 ? { volumes } : {}),
    };
  }

  /** The address the EC2 metadata shows as local-ipv4: the first IPv4 of the first port, or the user-mode NIC's. */
  private localIpv4(req: BuildRequest): string {
    if (req.network !== 'ports') return USER_NETWORK.guest;
    return req.ports?.flatMap((p) => p.ips).find((ip) => !ip.includes(':')) ?? '';
  }

  async build(req: BuildRequest, log: Logger): Promise<StateReply> {
    this.building.add(req.uuid);
    try {
      const started = Date.now();
      const spec = await this.prepare(req);
      await this.d.driver.spawn(spec);
      const nic = spec.nics[0];
      log.info({
        ms: Date.now() - started, boot: spec.boot.kind, sshHostPort: nic?.kind === 'user' ? nic.sshHostPort : undefined,
        volumes: spec.volumes?.map((v) => v.volumeId), fromVolume: spec.volumes?.some((v) => v.root) ?? false,
      }, 'instance spawned');
      return { power: 1, sshHostPort: nic?.kind === 'user' ? nic.sshHostPort : undefined };
    } finally {
      this.building.delete(req.uuid);
    }
  }

  /**
   * Rebuild: shut down, new root disk from the (new) image, new config drive; same MAC and SSH
   * port. Volumes stay attached; a volume-backed instance keeps its root volume (no image disk).
   */
  async rebuild(req: RebuildRequest, log: Logger): Promise<StateReply> {
    const old = await this.d.driver.getSpec(req.uuid);
    const oldNic = old.nics.find((n) => n.kind === 'user');
    await this.d.driver.powerOff(req.uuid, req.shutdownTimeoutMs);
    const dir = this.dir(req.uuid);
    for (const f of [F.root, F.swap, F.config, F.rescue, ...(req.preserveEphemeral ? [] : [F.ephemeral])]) await rm(join(dir, f), { force: true });
    await clearPassword(dir);
    const spec = await this.prepare(req, {
      sshHostPort: oldNic?.kind === 'user' ? oldNic.sshHostPort : undefined, mac: oldNic?.mac, ephemeral: req.preserveEphemeral,
      volumes: old.volumes,
    });
    if (req.powerOn) await this.d.driver.spawn(spec);
    else await this.d.driver.define(spec);
    log.info({ image: req.image.id, powerOn: req.powerOn }, 'instance rebuilt');
    return this.reply(req.uuid);
  }

  /**
   * Resize on this host: the guest is shut down; its spec, root disk (a copy: a qcow2
   * overlay, so only what the guest wrote) and any ephemeral/swap disk that changes size go
   * to resize-backup/; the root grows to the new size, changed ephemeral/swap disks are made
   * afresh, and the guest starts with the new vCPUs and RAM.
   */
  async resize(req: ResizeRequest, log: Logger): Promise<StateReply> {
    const dir = this.dir(req.uuid);
    const backup = join(dir, F.resizeBackup);
    if (existsSync(join(backup, 'spec.json'))) throw new Error(`instance ${req.uuid} already has a resize waiting to be confirmed or reverted`);
    const old = await this.d.driver.getSpec(req.uuid);
    await this.d.driver.powerOff(req.uuid, req.shutdownTimeoutMs);
    await rm(backup, { recursive: true, force: true });
    await mkdir(backup);
    const root = join(dir, F.root);
    // A volume-backed instance has no root disk here (its root volume is Cinder's, not the flavor's).
    const hasRoot = old.disks.some((x) => x.path === root);
    if (hasRoot) await run('cp', ['--sparse=always', '--reflink=auto', root, join(backup, F.root)]);
    const oldEph = old.disks.find((x) => x.path.endsWith(`/${F.ephemeral}`));
    const oldSwap = old.disks.find((x) => x.path.endsWith(`/${F.swap}`));
    const config = old.disks.find((x) => x.path.endsWith(`/${F.config}`));
    const ephChanged = (oldEph ? 1 : 0) !== (req.ephemeralGb > 0 ? 1 : 0) || (oldEph !== undefined && req.ephemeralGb > 0 && !(await this.sameSize(oldEph.path, req.ephemeralGb * 1024)));
    const swapChanged = (oldSwap ? 1 : 0) !== (req.swapMb > 0 ? 1 : 0) || (oldSwap !== undefined && req.swapMb > 0 && !(await this.sameSize(oldSwap.path, req.swapMb, 'raw')));
    if (ephChanged && oldEph) await rename(oldEph.path, join(backup, F.ephemeral));
    if (swapChanged && oldSwap) await rename(oldSwap.path, join(backup, F.swap));
    // The spec goes last: its presence marks a complete backup.
    await writeFile(join(backup, 'spec.json'), JSON.stringify(old));
    if (hasRoot && req.rootGb > 0) await growDisk(root, req.rootGb);
    const disks: DiskSpec[] = hasRoot ? [{ path: root, format: 'qcow2' }] : [];
    if (req.ephemeralGb > 0) {
      const eph = join(dir, F.ephemeral);
      if (ephChanged) await createEphemeral(eph, req.ephemeralGb, this.ephemeralFormat(req.ephemeralFormat));
      disks.push({ path: eph, format: 'qcow2' });
    }
    if (req.swapMb > 0) {
      const swap = join(dir, F.swap);
      if (swapChanged) await createSwap(swap, req.swapMb);
      disks.push({ path: swap, format: 'raw' });
    }
    if (config) disks.push(config);
    const spec: InstanceSpec = { ...old, vcpus: req.vcpus, memoryMb: req.memoryMb, disks };
    if (req.powerOn) await this.d.driver.spawn(spec);
    else await this.d.driver.define(spec);
    log.info({ vcpus: req.vcpus, memoryMb: req.memoryMb, rootGb: req.rootGb, ephemeralGb: req.ephemeralGb, swapMb: req.swapMb }, 'instance resized');
    return this.reply(req.uuid);
  }

  private async sameSize(path: string, mb: number, format: 'qcow2' | 'raw' = 'qcow2'): Promise<boolean> {
    return (await virtualSize(path, format).catch(() => -1)) === Math.round(mb * 1024 * 1024);
  }

  /** Confirm: the backup of the old flavor's disks is dropped. Idempotent. */
  async confirmResize(uuid: string): Promise<void> {
    await rm(join(this.dir(uuid), F.resizeBackup), { recursive: true, force: true });
  }

  /** Revert: stop the guest, put the old disks and spec back, start it again when powerOn. Idempotent once done. */
  async revertResize(uuid: string, powerOn: boolean, log: Logger): Promise<StateReply> {
    const dir = this.dir(uuid);
    const backup = join(dir, F.resizeBackup);
    const old = await readJsonFile<InstanceSpec>(join(backup, 'spec.json'));
    if (!old) {
      // Already reverted (a retry after a crash): make the power state what was asked.
      if (powerOn && (await this.d.driver.getState(uuid)).power !== 'running') await this.d.driver.powerOn(uuid);
      return this.reply(uuid);
    }
    await this.d.driver.destroy(uuid);
    const current = await this.d.driver.getSpec(uuid);
    // Volumes are the instance's, not the flavor's: as they are now (attached, detached or snapshotted meanwhile).
    old.volumes = current.volumes;
    for (const f of await readdir(backup)) if (f !== 'spec.json') await rename(join(backup, f), join(dir, f));
    // Disks the new flavor added and the old one did not have.
    for (const disk of current.disks) if (!old.disks.some((o) => o.path === disk.path)) await rm(disk.path, { force: true });
    if (powerOn) await this.d.driver.spawn(old);
    else await this.d.driver.define(old);
    await rm(backup, { recursive: true, force: true });
    log.info({ vcpus: old.vcpus, memoryMb: old.memoryMb }, 'resize reverted');
    return this.reply(uuid);
  }

  /** Rescue: shut down, boot the rescue image with the instance's disks attached after it (root = vdb). */
  async rescue(req: RescueRequest, log: Logger): Promise<StateReply> {
    const dir = this.dir(req.uuid);
    const saved = join(dir, F.unrescueSpec);
    const own = (await readJsonFile<InstanceSpec>(saved)) ?? await this.d.driver.getSpec(req.uuid);
    await this.d.driver.powerOff(req.uuid, req.shutdownTimeoutMs);
    await writeFile(saved, JSON.stringify(own));
    const { base, kernel, ramdisk } = await this.images(req);
    if (!base) throw new Error(`rescue image ${req.image.id} is not available`);
    const disk = join(dir, F.rescue);
    await rm(disk, { force: true });
    await createRootOverlay(base, req.image.diskFormat === 'qcow2' ? 'qcow2' : 'raw', disk);
    const spec: InstanceSpec = {
      ...own,
      boot: kernel ? { kind: 'kernel', kernel, ramdisk, cmdline: req.cmdline } : { kind: 'disk' },
      disks: [{ path: disk, format: 'qcow2' }, ...own.disks],
      // The rescue disk boots; a root volume is one more disk after it.
      ...(own.volumes ? { volumes: own.volumes.map(({ root: _root, ...v }) => v) } : {}),
    };
    await this.d.driver.spawn(spec);
    log.info({ image: req.image.id }, 'instance rescued');
    return this.reply(req.uuid);
  }

  /** Serve metadata again for every instance on this host that has a document (after an agent restart). */
  async adoptMetadata(uuids: string[]): Promise<void> {
    for (const uuid of uuids) {
      if (existsSync(join(this.dir(uuid), 'metadata.json'))) await this.d.metadata.start(uuid, this.dir(uuid));
    }
  }

  /** Stop and delete everything of an instance on this host. */
  async remove(uuid: string): Promise<boolean> {
    const existed = existsSync(this.dir(uuid));
    await this.d.metadata.stop(uuid);
    await this.d.driver.remove(uuid);
    return existed;
  }

  /**
   * Interface attach: the port's tap is made and plugged by the data plane (the port is
   * bound here already), then the NIC goes into the guest. A rescued instance gets it in
   * its own spec too, so unrescue keeps it.
   */
  async attachInterface(req: AttachInterfaceRequest, log: Logger): Promise<{ attached: boolean }> {
    if (!this.d.network) throw new Error('this host has no tenant networking: cannot plug Neutron ports');
    await this.d.network.preparePorts([req.port], log);
    const nic = { kind: 'tap' as const, mac: req.port.mac, ifname: deviceNames.tap(req.port.portId), portId: req.port.portId };
    await this.d.driver.attachNic(req.uuid, nic);
    await this.editSavedSpec(req.uuid, (s) => { if (!s.nics.some((n) => n.kind === 'tap' && n.ifname === nic.ifname)) s.nics.push(nic); });
    log.info({ port: req.port.portId, ifname: nic.ifname }, 'interface attached');
    return { attached: true };
  }

  /** Interface detach: the NIC leaves the guest and its spec (the controller unbinds the port next). */
  async detachInterface(req: DetachInterfaceRequest, log: Logger): Promise<{ detached: boolean }> {
    const ifname = deviceNames.tap(req.portId);
    const detached = await this.d.driver.detachNic(req.uuid, ifname, req.timeoutMs);
    await this.editSavedSpec(req.uuid, (s) => { s.nics = s.nics.filter((n) => !(n.kind === 'tap' && n.ifname === ifname)); });
    log.info({ port: req.portId, ifname, detached }, 'interface detached');
    return { detached };
  }

  /**
   * Volume attach: the volume is exported for this host already (its connection says how to
   * reach it); it goes into the guest (hot-plug) or only into the spec of a stopped instance.
   * A rescued instance's or a pending resize's own spec picks it up when it comes back.
   */
  async attachVolume(req: AttachVolumeRequest, log: Logger): Promise<{ attached: boolean }> {
    const vol = volumeDiskSpec(req.volume);
    await this.d.driver.attachVolume(req.uuid, vol);
    log.info({ volume: vol.volumeId, connection: vol.connection.type, device: req.volume.device }, 'volume attached');
    return { attached: true };
  }

  /** Volume detach: the disk leaves the guest and its spec (the controller removes the export next). */
  async detachVolume(req: DetachVolumeRequest, log: Logger): Promise<{ detached: boolean }> {
    const detached = await this.d.driver.detachVolume(req.uuid, req.volumeId, req.timeoutMs);
    log.info({ volume: req.volumeId, detached }, 'volume detached');
    return { detached };
  }

  /** The volume ids in each instance's saved spec (what is really attached on this host). */
  async attachedVolumes(uuids: string[]): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const uuid of uuids) {
      const spec = await this.d.driver.getSpec(uuid).catch(() => undefined);
      if (spec?.volumes?.length) out[uuid] = spec.volumes.map((v) => v.volumeId);
    }
    return out;
  }

  /** Apply a change to the specs kept aside (a rescued guest's own, a pending resize's old one). */
  private async editSavedSpec(uuid: string, edit: (s: InstanceSpec) => void): Promise<void> {
    for (const path of [join(this.dir(uuid), F.unrescueSpec), join(this.dir(uuid), F.resizeBackup, 'spec.json')]) {
      const s = await readJsonFile<InstanceSpec>(path);
      if (!s) continue;
      edit(s);
      await writeFile(path, JSON.stringify(s));
    }
  }

  /** Unrescue: stop the rescue guest, drop its disk, boot the instance's own spec again. */
  async unrescue(uuid: string, log: Logger): Promise<StateReply> {
    const dir = this.dir(uuid);
    const saved = join(dir, F.unrescueSpec);
    const own = await readJsonFile<InstanceSpec>(saved);
    if (!own) {
      if ((await this.d.driver.getState(uuid)).power !== 'running') await this.d.driver.powerOn(uuid);
      return this.reply(uuid);
    }
    await this.d.driver.destroy(uuid);
    // The volumes as they are now (a live snapshot while rescued moved a volume's top), the root one root again.
    const roots = new Set((own.volumes ?? []).filter((v) => v.root).map((v) => v.volumeId));
    const current = (await this.d.driver.getSpec(uuid)).volumes;
    if (current) own.volumes = current.map(({ slot, ...v }) => (roots.has(v.volumeId) ? { ...v, root: true } : { ...v, ...(slot !== undefined ? { slot } : {}) }));
    await this.d.driver.spawn(own);
    await rm(join(dir, F.rescue), { force: true });
    await rm(saved, { force: true });
    log.info('instance unrescued');
    return this.reply(uuid);
  }
}
