import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { Bus, HealthPing } from '../bus/index.ts';
import {
  AgentHeartbeat, AgentHello, agentSubjects, type HostReport, type ImageRef, type InstanceVerb, type PowerCode, type StateReply,
} from '../bus/compute.ts';
import type { Logger } from '../common/logger.ts';
import { PowerStateCode, type HostCapabilities, type InstanceSpec, type InstanceState } from './hypervisor/driver.ts';
import { QemuDriver } from './hypervisor/qemu/driver.ts';
import { InstanceLifecycle } from './lifecycle.ts';
import { NetworkAgent } from './network/agent.ts';
import { NetworkLink } from './network-link.ts';
import { clearPassword, MetadataServers, readPassword } from './metadata/index.ts';
import { ImageCache, type ImageSource } from './storage/image-cache.ts';
import { startVolumeAgent } from './volume-agent.ts';

export interface AgentOptions {
  host?: string;
  dataDir: string;
  natsUrl: string;
  log: Logger;
  accel?: 'auto' | 'kvm' | 'tcg';
  heartbeatMs?: number;
  version?: string;
  /**
   * Tenant networking on this host (needs root): the underlay address VXLAN uses (also
   * reported as the host's address), physical network → host bridge, and optionally the
   * network namespace standing for this host (`gureum up --hosts N`). Unset: no tenant
   * networking; servers get the user-mode NIC only.
   */
  network?: { tunnelIp: string; physicalBridges: Record<string, string>; hostNamespace?: string; namespacePrefix?: string };
}

export interface RunningAgent { host: string; caps: HostCapabilities; stop(): Promise<void> }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function code(s: InstanceState): PowerCode { return PowerStateCode[s.power] as PowerCode; }

/**
 * The compute agent: one per host. Registers the host, answers the conductor's commands
 * through the hypervisor driver, reports power states on a heartbeat, and on start
 * re-adopts the QEMU processes that outlived its previous run.
 */
export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const host = opts.host ?? osHostname();
  const log = opts.log.child({ component: 'agent', host });
  const instancesDir = join(opts.dataDir, 'instances');
  await mkdir(instancesDir, { recursive: true });
  const driver = new QemuDriver({ instancesDir, log, accel: opts.accel });
  const caps = await driver.init();
  const cache = new ImageCache({ dataDir: opts.dataDir, log });
  const bus = await Bus.connect(opts.natsUrl, log, `gureum-agent-${host}`);
  const subjects = agentSubjects(host);
  const startedAt = new Date().toISOString();
  const hostIp = opts.network?.tunnelIp ?? '127.0.0.1';

  async function report(): Promise<HostReport> {
    const instances: Record<string, PowerCode> = {};
    for (const name of readdirSync(instancesDir)) {
      if (!UUID.test(name)) continue;
      if (building.has(name) || !existsSync(join(instancesDir, name, 'spec.json'))) { instances[name] = 0; continue; }
      try { instances[name] = code(await driver.getState(name)); } catch { instances[name] = 0; }
    }
    // What each instance's spec has attached (not those still building: their volumes are not attached yet).
    const attachedVolumes = await life.attachedVolumes(Object.keys(instances).filter((uuid) => !building.has(uuid)));
    return {
      host, hostIp, agentVersion: opts.version ?? '0', hypervisorType: caps.hypervisorType, hypervisorVersion: caps.hypervisorVersion,
      accel: caps.accel, cpuModel: caps.cpuModel, arch: 'x86_64', vcpus: caps.vcpus, memoryMb: caps.memoryMb, diskGb: caps.diskGb, instances, attachedVolumes,
    };
  }

  const source = (ref: ImageRef, token: string): ImageSource => {
    if (ref.localPath && existsSync(ref.localPath)) return { localPath: ref.localPath };
    return async () => {
      const res = await fetch(ref.url, { headers: { 'X-Auth-Token': token } });
      if (!res.ok || !res.body) throw new Error(`downloading image ${ref.id} failed: HTTP ${res.status}`);
      return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    };
  };

  async function act(uuid: string, verb: InstanceVerb, timeoutMs: number): Promise<StateReply> {
    switch (verb) {
      case 'stop': await driver.powerOff(uuid, timeoutMs); break;
      case 'start': await driver.powerOn(uuid); break;
      case 'reboot-soft': await driver.reboot(uuid, false); break;
      case 'reboot-hard': {
        const st = await driver.getState(uuid);
        if (st.power === 'running' || st.power === 'paused') await driver.reboot(uuid, true);
        else if (st.power === 'suspended') { await driver.resume(uuid); await driver.reboot(uuid, true); }
        else await driver.powerOn(uuid);
        break;
      }
      case 'pause': await driver.pause(uuid); break;
      case 'unpause': await driver.unpause(uuid); break;
      case 'suspend': await driver.suspend(uuid); break;
      case 'resume': await driver.resume(uuid); break;
    }
    const st = await driver.getState(uuid);
    return { power: code(st), cpuTimeNs: st.cpuTimeNs, memoryKb: st.memoryKb };
  }

  const metadata = new MetadataServers({ log });
  let link: NetworkLink | undefined;
  let plane: NetworkAgent | undefined;
  if (opts.network) {
    plane = new NetworkAgent({
      log: log.child({ component: 'network' }), stateDir: networkStateDir(opts.dataDir), tunnelIp: opts.network.tunnelIp,
      physicalBridges: opts.network.physicalBridges, hostNamespace: opts.network.hostNamespace, namespacePrefix: opts.network.namespacePrefix,
      metadata: { resolveSocket: (uuid) => metadata.socketOf(uuid) },
    });
    link = new NetworkLink({ bus, host, plane, log: log.child({ component: 'network-link' }) });
  }
  const life = new InstanceLifecycle({ driver, cache, metadata, instancesDir, log, source, network: link });
  const building = life.building;
  const rlog = (requestId: string, uuid: string) => log.child({ request_id: requestId, instance: uuid });
  bus.serve(subjects.build, (req, meta) => life.build(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.rebuild, (req, meta) => life.rebuild(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.resize, (req, meta) => life.resize(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.resizeConfirm, async (req) => { await life.confirmResize(req.uuid); return { ok: true as const }; });
  bus.serve(subjects.resizeRevert, (req, meta) => life.revertResize(req.uuid, req.powerOn, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.rescue, (req, meta) => life.rescue(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.password, async (req) => {
    const dir = life.dir(req.uuid);
    if (!req.clear) return { password: (await readPassword(dir)) ?? '' };
    await clearPassword(dir);
    return { password: '' };
  });
  bus.serve(subjects.unrescue, (req, meta) => life.unrescue(req.uuid, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.action, (req) => act(req.uuid, req.verb, req.timeoutMs ?? 60_000));
  bus.serve(subjects.attachInterface, (req, meta) => life.attachInterface(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.detachInterface, (req, meta) => life.detachInterface(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.attachVolume, (req, meta) => life.attachVolume(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.detachVolume, (req, meta) => life.detachVolume(req, rlog(meta.requestId, req.uuid)));
  bus.serve(subjects.remove, async (req) => ({ removed: await life.remove(req.uuid) }));
  bus.serve(subjects.state, async (req) => {
    if (!existsSync(join(instancesDir, req.uuid, 'spec.json'))) return { exists: false, power: 0 as PowerCode };
    const st = await driver.getState(req.uuid);
    return { exists: true, power: code(st), cpuTimeNs: st.cpuTimeNs, memoryKb: st.memoryKb };
  });
  bus.serve(subjects.console, async (req) => {
    const output = await driver.consoleOutput(req.uuid, req.lines);
    if (req.lines !== undefined) return { output };
    // Until tenant networking exists a guest is reachable only through its forwarded SSH port;
    // the full console log (openstack console log show) starts by saying so.
    const spec = JSON.parse(await readFile(join(instancesDir, req.uuid, 'spec.json'), 'utf8').catch(() => '{}')) as Partial<InstanceSpec>;
    const nic = spec.nics?.find((n) => n.kind === 'user');
    const port = nic?.kind === 'user' ? nic.sshHostPort : undefined;
    return { output: port ? `gureum: SSH to this guest: ssh -p ${port} root@127.0.0.1\n${output}` : output };
  });
  bus.serve(subjects.snapshot, async (req, meta) => {
    const tmp = join(opts.dataDir, 'snapshots', `${req.imageId}.${req.diskFormat}`);
    await mkdir(join(opts.dataDir, 'snapshots'), { recursive: true });
    try {
      const t0 = Date.now();
      await driver.snapshotRootDisk(req.uuid, tmp, req.diskFormat);
      const size = statSync(tmp).size;
      const res = await fetch(req.uploadUrl, {
        method: 'PUT', headers: { 'X-Auth-Token': req.token, 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
        body: Readable.toWeb(createReadStream(tmp)) as unknown as BodyInit, duplex: 'half',
      } as RequestInit & { duplex: 'half' });
      if (!res.ok) throw new Error(`uploading the snapshot failed: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
      log.info({ request_id: meta.requestId, instance: req.uuid, image: req.imageId, size, ms: Date.now() - t0 }, 'snapshot uploaded');
      return { size };
    } finally {
      await rm(tmp, { force: true });
    }
  });
  bus.serve(HealthPing, () => ({ process: 'agent', host, pid: process.pid, startedAt }));

  // The volume pool (Cinder's volume service on this host): volumes a running QEMU here holds
  // are snapshotted and resized through that QEMU.
  const volumes = await startVolumeAgent({
    bus, host, hostIp, dataDir: opts.dataDir, log, cache, source,
    live: {
      holderOf: (volumeId) => driver.volumeHolder(volumeId),
      snapshot: (uuid, volumeId, overlayPath) => driver.snapshotVolumeLive(uuid, volumeId, overlayPath),
      resize: (uuid, volumeId, bytes) => driver.resizeVolumeLive(uuid, volumeId, bytes),
    },
  });

  // Re-adopt what survived the last run, then introduce ourselves; the controller says what to clean up.
  const adopted = await driver.adopt();
  await life.adoptMetadata([...adopted.keys()]);
  const hello = await bus.request(AgentHello, await report(), { timeoutMs: 30_000 }).catch((err: unknown) => {
    log.warn({ err: (err as Error).message }, 'controller did not answer hello; continuing with heartbeats');
    return { remove: [] as string[] };
  });
  for (const uuid of hello.remove) {
    log.info({ instance: uuid }, 'removing an instance the controller does not know here');
    await life.remove(uuid).catch((err: unknown) => log.warn({ instance: uuid, err: (err as Error).message }, 'remove failed'));
  }
  link?.start();
  const beat = async () => { if (!bus.closed) bus.publish(AgentHeartbeat, await report()); };
  driver.on('lifecycle', () => { void beat().catch(() => undefined); });
  const timer = setInterval(() => { void beat().catch((err: unknown) => log.warn({ err }, 'heartbeat failed')); }, opts.heartbeatMs ?? 5000);
  await beat();
  log.info({ accel: caps.accel, vcpus: caps.vcpus, memoryMb: caps.memoryMb }, 'agent ready');

  return {
    host, caps,
    async stop() {
      clearInterval(timer);
      await volumes.stop();
      link?.stop();
      await plane?.close();
      await metadata.close();
      await driver.close();
      await bus.close();
    },
  };
}

/**
 * Where the network side keeps its files (dnsmasq hosts/options, haproxy config, the
 * metadata socket): under /run, not the data directory, because dnsmasq and haproxy run
 * as an unprivileged user who must read them (the data directory is private, mode 0700),
 * and because what they describe — namespaces, devices — ends with the running kernel too.
 * One directory per data directory, so several clouds on one machine stay apart.
 */
function networkStateDir(dataDir: string): string {
  const id = createHash('sha1').update(resolve(dataDir)).digest('hex').slice(0, 12);
  mkdirSync('/run/gureum', { recursive: true, mode: 0o755 });
  return join('/run/gureum', `net-${id}`);
}
