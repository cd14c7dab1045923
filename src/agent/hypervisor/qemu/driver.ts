/**
 * QemuDriver: one QEMU process per instance, driven through QMP.
 *
 * Each instance lives in `<instancesDir>/<uuid>/` (see instanceFiles()): spec.json (the
 * InstanceSpec, so powerOn/resume/adopt work after an agent restart), launch.json (the
 * last command line), qemu.pid, qmp.sock, console.log (serial), qemu.log (QEMU's own
 * stderr), exit.json (why the last QEMU stopped) and `state` (a suspended guest).
 *
 * QEMU is spawned detached (own session, stdio to qemu.log), so it outlives the agent —
 * even a kill -9 of it; adopt() re-attaches by pid file + /proc cmdline check + QMP.
 * QEMU runs with -no-shutdown: a guest power-off stops the VM and emits SHUTDOWN; the
 * driver records 'guest-shutdown' in exit.json and quits it. A QEMU that vanished with
 * no recorded reason is reported 'crashed'.
 *
 * A microvm also runs with -no-reboot (see cmdline.ts): its resets — the guest's own
 * (SHUTDOWN reason 'guest-reset') and the API's reboots — start a fresh QEMU on the saved
 * spec instead, since QEMU 7.2's in-place reset of a microvm that had hotplug or a resume
 * hangs the guest. No record of that history is needed: every microvm reboot is a restart.
 *
 * Volumes (Cinder) are in the saved spec like NICs: attachVolume records the volume first
 * and then makes the running QEMU have it (blockdev-add + device_add), so a retry after a
 * crash converges; detachVolume unplugs and then drops it from the spec. Live snapshot and
 * resize of a volume a running QEMU holds go through that QEMU (blockdev-snapshot,
 * block_resize) on the disk's current top node, resolved from query-block every time.
 */
import { execFile, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants as fsc, existsSync, openSync, closeSync, readFileSync, statfsSync } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../../../common/logger.ts';
import type { HostCapabilities, HypervisorDriver, InstanceSpec, InstanceState, PowerState, TapNicSpec, VolumeDiskSpec } from '../driver.ts';
import { convertImage } from '../../storage/disks.ts';
import {
  freeSlot, instanceFiles, ioThrottle, pskFileContent, qemuArgv, rootVolume, shQuote, tapDeviceArgs, tapIds, volumeBlockdev, volumeDeviceArgs, volumeIds,
  volumeCacheOptions, volumeTlsObject,
} from './cmdline.ts';
import { QmpClient, QmpError, type QmpEvent, type RunState } from './qmp.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Linux USER_HZ (clock ticks in /proc/<pid>/stat) is 100 on x86. */
const CLK_TCK = 100;

export interface QemuDriverOptions {
  instancesDir: string;
  log: Logger;
  /** 'auto' (default): KVM when the boot probe passes, else TCG. */
  accel?: 'auto' | 'kvm' | 'tcg';
  qemuBinary?: string;
  /** Budget of the KVM probe (default 3000 ms). */
  kvmProbeMs?: number;
}

/** Why the last QEMU of an instance stopped (exit.json). */
export type ExitReason = 'guest-shutdown' | 'powered-off' | 'destroyed' | 'suspended' | 'crashed' | 'start-failed'
  /** Stopped to be started again at once (a microvm reboot); adopt() finishes the restart. */
  | 'rebooting';
interface ExitRecord { reason: ExitReason; at: string; detail?: string }

export interface LifecycleEvent { uuid: string; power: PowerState; reason?: string }

/** QEMU RunState → Nova power state. */
export function powerOf(status: RunState): PowerState {
  switch (status) {
    case 'running': return 'running';
    case 'shutdown': return 'shutdown';
    case 'internal-error': case 'io-error': case 'guest-panicked': return 'crashed';
    case 'suspended': return 'suspended';
    default: return 'paused'; // paused, prelaunch, inmigrate, postmigrate, finish-migrate, save-vm, restore-vm, debug, watchdog, colo
  }
}

/** Host TSC frequency in kHz (what a TCG microvm guest is told through tsc_early_khz). */
export function hostTscKhz(): number {
  try {
    const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return Math.round(Number(m?.[1] ?? 0) * 1000);
  } catch { return 0; }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try { return JSON.parse(await readFile(path, 'utf8')) as T; } catch { return undefined; }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try { await fh.writeFile(JSON.stringify(value, null, 2)); await fh.sync(); } finally { await fh.close(); }
  await rename(tmp, path);
}

/** The pid is alive, not a zombie, and its command line is QEMU with this -uuid. */
export function isOurQemu(pid: number, uuid: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!/qemu-system/.test(argv[0] ?? '')) return false;
    const i = argv.indexOf('-uuid');
    return i >= 0 && argv[i + 1] === uuid;
  } catch { return false; }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch { return false; }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

export class QemuDriver extends EventEmitter implements HypervisorDriver {
  readonly instancesDir: string;
  private readonly log: Logger;
  private readonly qemu: string;
  private caps?: HostCapabilities;
  private tscKhz = 0;
  private monitors = new Map<string, QmpClient>();
  /** Monitor connections being made, by `uuid:pid`: QMP serves one client at a time, so callers share one. */
  private connecting = new Map<string, Promise<QmpClient>>();
  private monitorPid = new WeakMap<QmpClient, number>();
  private locks = new Map<string, Promise<unknown>>();
  /** What the driver is doing to an instance, so a SHUTDOWN event is read right. */
  private removing = new Set<string>();
  private intent = new Map<string, 'rebooting' | 'stopping' | 'powering-off'>();
  /**
   * Instances whose QEMU is being replaced by a fresh one (a microvm reboot): reported
   * running meanwhile (the guest is rebooting, not off), and the old QEMU's exit is not a crash.
   */
  private restarting = new Set<string>();

  constructor(private readonly opts: QemuDriverOptions) {
    super();
    this.instancesDir = opts.instancesDir;
    this.log = opts.log.child({ component: 'qemu' });
    this.qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
  }

  // ---------------------------------------------------------------- host

  async init(): Promise<HostCapabilities> {
    await mkdir(this.instancesDir, { recursive: true });
    let version: string;
    try {
      ({ stdout: version } = await run(this.qemu, ['--version']));
    } catch (e) {
      throw new Error(`cannot run ${this.qemu} (Debian package qemu-system-x86): ${(e as Error).message}`);
    }
    const v = /version (\d+)\.(\d+)\.(\d+)/.exec(version);
    const hypervisorVersion = v ? Number(v[1]) * 1_000_000 + Number(v[2]) * 1000 + Number(v[3]) : 0;
    const want = this.opts.accel ?? (process.env.GUREUM_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto';
    let accel: 'kvm' | 'tcg' = want === 'kvm' ? 'kvm' : 'tcg';
    if (want === 'auto') {
      const probe = await this.probeKvm(this.opts.kvmProbeMs ?? 3000);
      this.log.info({ kvm: probe.ok, detail: probe.detail }, 'KVM probe');
      accel = probe.ok ? 'kvm' : 'tcg';
    }
    this.tscKhz = hostTscKhz();
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    const st = statfsSync(this.instancesDir);
    this.caps = {
      accel,
      hypervisorType: 'QEMU',
      hypervisorVersion,
      cpuModel: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
      vcpus: cpus().length,
      memoryMb: Math.floor(totalmem() / 1024 / 1024),
      diskGb: Math.floor((st.blocks * st.bsize) / 1024 ** 3),
      diskFreeGb: Math.floor((st.bavail * st.bsize) / 1024 ** 3),
    };
    this.log.info({ caps: this.caps }, 'hypervisor ready');
    return this.caps;
  }

  /**
   * Can KVM run guest code at native speed? /dev/kvm opening is not enough (PVM, nested
   * software virtualization, opens it and then runs a kernel at ~1 M instructions/s).
   * The probe boots a 64 KiB firmware that spins 100 M iterations and then writes 'K'
   * to the serial port: milliseconds under real KVM, minutes under PVM, so a budget of a
   * few seconds tells them apart without needing a guest kernel.
   */
  async probeKvm(budgetMs: number): Promise<{ ok: boolean; detail: string }> {
    try {
      closeSync(openSync('/dev/kvm', fsc.O_RDWR));
    } catch (e) {
      return { ok: false, detail: `/dev/kvm: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
    const code = Buffer.from('66B900E1F505664975FCBAF803B04BEEF4EBFD', 'hex'); // mov ecx,1e8; l: dec ecx; jnz l; out 0x3f8,'K'; hlt
    const bios = Buffer.alloc(65536);
    code.copy(bios, 0);
    Buffer.from('EA000000F0', 'hex').copy(bios, 0xfff0); // reset vector: jmp F000:0000
    const file = join(tmpdir(), `gureum-kvm-probe-${process.pid}.bin`);
    await writeFile(file, bios);
    const started = Date.now();
    try {
      const child = spawn(this.qemu, ['-M', 'pc', '-accel', 'kvm', '-cpu', 'host', '-m', '16', '-nodefaults', '-no-user-config',
        '-display', 'none', '-bios', file, '-serial', 'stdio'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      const result = await new Promise<'ok' | 'slow' | 'exited'>((resolve) => {
        const t = setTimeout(() => resolve('slow'), budgetMs);
        child.stdout!.on('data', (d: Buffer) => { if (d.includes('K')) { clearTimeout(t); resolve('ok'); } });
        child.once('exit', () => { clearTimeout(t); resolve('exited'); });
        child.once('error', () => { clearTimeout(t); resolve('exited'); });
      });
      child.kill('SIGKILL');
      const ms = Date.now() - started;
      const last = err.trim().split('\n').pop() ?? '';
      if (result === 'ok') return { ok: true, detail: `probe guest ran in ${ms} ms` };
      if (result === 'exited') return { ok: false, detail: `QEMU with -accel kvm exited after ${ms} ms: ${last}` };
      return { ok: false, detail: `probe guest did not finish within ${budgetMs} ms (software-emulated KVM?)${last ? `: ${last}` : ''}` };
    } finally {
      await rm(file, { force: true });
    }
  }

  capabilities(): HostCapabilities | undefined { return this.caps; }

  private accel(): 'kvm' | 'tcg' {
    return this.caps?.accel ?? (this.opts.accel === 'kvm' ? 'kvm' : 'tcg');
  }

  // ---------------------------------------------------------------- helpers

  dirOf(uuid: string): string {
    if (!UUID.test(uuid)) throw new Error(`invalid instance uuid ${JSON.stringify(uuid)}`);
    return join(this.instancesDir, uuid);
  }

  private files(uuid: string) { return instanceFiles(this.dirOf(uuid)); }

  /** Operations on one instance run one at a time. */
  private serial<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(uuid) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const settled = next.catch(() => undefined);
    this.locks.set(uuid, settled);
    void settled.then(() => { if (this.locks.get(uuid) === settled) this.locks.delete(uuid); });
    return next;
  }

  private async readSpec(uuid: string): Promise<InstanceSpec> {
    const spec = await readJson<InstanceSpec>(this.files(uuid).spec);
    if (!spec) throw new Error(`instance ${uuid} is not on this host (no ${this.files(uuid).spec})`);
    return spec;
  }

  /** The pid of the instance's QEMU when it runs, else undefined. */
  private async livePid(uuid: string): Promise<number | undefined> {
    let text: string;
    try { text = await readFile(this.files(uuid).pid, 'utf8'); } catch { return undefined; }
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 && isOurQemu(pid, uuid) ? pid : undefined;
  }

  private async recordExit(uuid: string, reason: ExitReason, detail?: string, overwrite = false): Promise<void> {
    const f = this.files(uuid);
    if (this.removing.has(uuid) || (!overwrite && existsSync(f.exit))) return;
    if (!existsSync(this.dirOf(uuid))) return;
    const rec: ExitRecord = { reason, at: new Date().toISOString(), ...(detail ? { detail } : {}) };
    await writeJsonAtomic(f.exit, rec).catch(() => undefined);
  }

  private async qemuLogTail(uuid: string): Promise<string> {
    try {
      const text = await readFile(this.files(uuid).qemuLog, 'utf8');
      return text.trim().split('\n').slice(-5).join('\n');
    } catch { return ''; }
  }

  /** The connected monitor of a running instance (re-connecting when needed). */
  private async monitor(uuid: string): Promise<QmpClient> {
    const m = this.monitors.get(uuid);
    if (m && !m.isClosed) return m;
    const pid = await this.livePid(uuid);
    if (!pid) throw new Error(`instance ${uuid} is not running`);
    return this.attach(uuid, pid, 5000);
  }

  /** The open monitor connection to this very QEMU process, if there is one. */
  private heldMonitor(uuid: string, pid: number): QmpClient | undefined {
    const m = this.monitors.get(uuid);
    return m && !m.isClosed && this.monitorPid.get(m) === pid ? m : undefined;
  }

  /**
   * Connect QMP and watch events and the process's end. Concurrent callers for the same
   * QEMU share one connection attempt: a second client would sit in QMP's backlog without
   * a greeting until the first disconnects (a state poll racing a launch did exactly that).
   */
  private attach(uuid: string, pid: number, retryMs: number): Promise<QmpClient> {
    // Checked here, synchronously with the in-flight map: a caller that looked before an
    // await may find the monitor connected by another caller meanwhile. A second client
    // would wait in QMP's backlog until this one goes, i.e. for ever.
    const held = this.heldMonitor(uuid, pid);
    if (held) return Promise.resolve(held);
    const key = `${uuid}:${pid}`;
    const inflight = this.connecting.get(key);
    // A shared attempt with a shorter retry window may give up early; then try on our own.
    if (inflight) return inflight.catch(() => this.attach(uuid, pid, retryMs));
    const p = this.connectMonitor(uuid, pid, retryMs).finally(() => this.connecting.delete(key));
    this.connecting.set(key, p);
    return p;
  }

  private async connectMonitor(uuid: string, pid: number, retryMs: number): Promise<QmpClient> {
    const f = this.files(uuid);
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(f.qmp, { retryMs, timeoutMs: 10_000 });
    } catch (e) {
      throw new Error(`instance ${uuid}: cannot reach QEMU's monitor (pid ${pid}): ${(e as Error).message}`);
    }
    this.monitorPid.set(qmp, pid);
    this.monitors.set(uuid, qmp);
    qmp.on('event', (ev) => {
      this.log.debug({ uuid, event: ev.event, data: ev.data }, 'QMP event');
      if (ev.event === 'STOP') this.emit('lifecycle', { uuid, power: 'paused' } satisfies LifecycleEvent);
      if (ev.event === 'RESUME') this.emit('lifecycle', { uuid, power: 'running' } satisfies LifecycleEvent);
    });
    qmp.on('SHUTDOWN', (data: { guest?: boolean; reason?: string }) => {
      if (!data.guest || this.intent.get(uuid) === 'rebooting') return;
      if (data.reason === 'guest-reset' && !this.intent.has(uuid)) {
        // A microvm's guest rebooted itself (-no-reboot): a fresh QEMU takes over.
        this.guestReset(uuid, pid);
        return;
      }
      // The guest powered off; QEMU waits (-no-shutdown). Record it and end the process.
      void (async () => {
        const reason = this.intent.get(uuid) === 'powering-off' ? 'powered-off' : 'guest-shutdown';
        await this.recordExit(uuid, reason, data.reason);
        this.emit('lifecycle', { uuid, power: 'shutdown', reason } satisfies LifecycleEvent);
        await qmp.execute('quit', undefined, { timeoutMs: 5000 }).catch(() => process.kill(pid, 'SIGKILL'));
      })().catch((e: Error) => this.log.warn({ uuid, err: e.message }, 'quitting after guest shutdown failed'));
    });
    qmp.once('close', () => {
      if (this.monitors.get(uuid) === qmp) this.monitors.delete(uuid);
      void (async () => {
        if (!(await waitGone(pid, 3000))) return; // monitor dropped (close()), QEMU still runs
        if (this.restarting.has(uuid) || (await this.livePid(uuid))) return; // replaced by a fresh QEMU
        if (!existsSync(f.exit)) {
          await this.recordExit(uuid, 'crashed', `QEMU (pid ${pid}) exited unexpectedly: ${await this.qemuLogTail(uuid)}`);
          this.log.warn({ uuid, pid }, 'QEMU exited unexpectedly');
          this.emit('lifecycle', { uuid, power: 'crashed', reason: 'crashed' } satisfies LifecycleEvent);
        }
      })();
    });
    return qmp;
  }

  /** Start QEMU for a spec; resolves once the monitor answers. */
  private async launch(uuid: string, spec: InstanceSpec, opts: { incomingFile?: string; freshConsole: boolean }): Promise<QmpClient> {
    const f = this.files(uuid);
    await rm(f.exit, { force: true });
    await rm(f.qmp, { force: true });
    await rm(f.pid, { force: true });
    if (opts.freshConsole) await truncate(f.console, 0).catch(() => undefined);
    const accel = this.accel();
    await this.writeVolumeKeys(uuid, spec.volumes ?? []);
    // Volume QoS is set over QMP: the guest waits (-S) until its disks are throttled.
    const throttled = (spec.volumes ?? []).filter((v) => ioThrottle(v.qos));
    const holdStart = throttled.length > 0 && !opts.incomingFile;
    const argv = qemuArgv(spec, { accel }, { dir: this.dirOf(uuid), tscKhz: this.tscKhz || hostTscKhz(), incomingFile: opts.incomingFile, startPaused: holdStart });
    await writeJsonAtomic(f.launch, { accel, binary: this.qemu, argv, startedAt: new Date().toISOString() });
    const logFd = openSync(f.qemuLog, 'a');
    let child;
    try {
      child = spawn(this.qemu, argv, { detached: true, stdio: ['ignore', logFd, logFd], cwd: this.dirOf(uuid) });
    } finally {
      closeSync(logFd);
    }
    child.unref();
    const pid = child.pid;
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, sig) => resolve(`exited with ${sig ?? `status ${code}`}`));
      child.once('error', (e) => resolve(e.message));
    });
    if (!pid) {
      const why = await exited;
      await this.recordExit(uuid, 'start-failed', why, true);
      throw new Error(`could not start QEMU for ${uuid}: ${why}`);
    }
    const started = Date.now();
    const connected = this.attach(uuid, pid, 30_000).then((q) => ({ q }), (e: Error) => ({ e }));
    const r = await Promise.race([connected, exited.then((why) => ({ why }))]);
    if ('why' in r || 'e' in r) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await waitGone(pid, 2000);
      const why = 'why' in r ? r.why : r.e.message;
      const tail = await this.qemuLogTail(uuid);
      await this.recordExit(uuid, 'start-failed', `${why}: ${tail}`, true);
      throw new Error(`QEMU failed to start for ${uuid} (${why})${tail ? `: ${tail}` : ''}`);
    }
    try {
      for (const v of throttled) await this.throttleVolume(r.q, v);
      if (holdStart) await r.q.execute('cont');
    } catch (e) {
      await this.hardStop(uuid, 'start-failed');
      throw new Error(`QEMU for ${uuid} started but setting up its volumes failed: ${(e as Error).message}`);
    }
    this.log.info({ uuid, pid, accel, ms: Date.now() - started, incoming: !!opts.incomingFile }, 'QEMU started');
    return r.q;
  }

  /** Stop QEMU now: `quit` over QMP, SIGKILL when it does not go within 3 s. */
  private async hardStop(uuid: string, reason: ExitReason): Promise<void> {
    const pid = await this.livePid(uuid);
    if (!pid) return;
    await this.recordExit(uuid, reason, undefined, true);
    this.intent.set(uuid, 'stopping');
    try {
      const m = await this.attach(uuid, pid, 0).catch(() => undefined);
      if (m) await m.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
      if (!(await waitGone(pid, 3000))) {
        this.log.warn({ uuid, pid }, 'QEMU did not quit; SIGKILL');
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        if (!(await waitGone(pid, 5000))) throw new Error(`QEMU pid ${pid} of ${uuid} survived SIGKILL`);
      }
    } finally {
      this.intent.delete(uuid);
      this.monitors.get(uuid)?.close();
      this.monitors.delete(uuid);
    }
  }

  // ---------------------------------------------------------------- lifecycle

  spawn(spec: InstanceSpec): Promise<void> {
    return this.serial(spec.uuid, async () => {
      const dir = this.dirOf(spec.uuid);
      await mkdir(dir, { recursive: true });
      if (await this.livePid(spec.uuid)) throw new Error(`instance ${spec.uuid} is already running`);
      for (const d of spec.disks) {
        try { await access(d.path, d.readonly ? fsc.R_OK : fsc.R_OK | fsc.W_OK); } catch {
          throw new Error(`instance ${spec.uuid}: disk ${d.path} is missing or not accessible`);
        }
      }
      rootVolume(spec);
      for (const v of spec.volumes ?? []) {
        volumeBlockdev(v);
        ioThrottle(v.qos);
        if (v.connection.type === 'file') {
          try { await access(v.connection.path, v.readonly ? fsc.R_OK : fsc.R_OK | fsc.W_OK); } catch {
            throw new Error(`instance ${spec.uuid}: volume ${v.volumeId} (${v.connection.path}) is missing or not accessible`);
          }
        }
      }
      if (spec.boot.kind === 'kernel') {
        for (const p of [spec.boot.kernel, spec.boot.ramdisk]) {
          if (p && !existsSync(p)) throw new Error(`instance ${spec.uuid}: boot file ${p} is missing`);
        }
      }
      await writeJsonAtomic(this.files(spec.uuid).spec, spec);
      await rm(this.files(spec.uuid).state, { force: true });
      await this.launch(spec.uuid, spec, { freshConsole: true });
    });
  }

  /**
   * Replace the saved spec of an instance that is not running (rebuild, resize or rescue
   * of a stopped guest); it stays shut off until powerOn.
   */
  define(spec: InstanceSpec): Promise<void> {
    return this.serial(spec.uuid, async () => {
      if (await this.livePid(spec.uuid)) throw new Error(`instance ${spec.uuid} is running; stop it before redefining it`);
      await mkdir(this.dirOf(spec.uuid), { recursive: true });
      await writeJsonAtomic(this.files(spec.uuid).spec, spec);
      await rm(this.files(spec.uuid).state, { force: true });
      await this.recordExit(spec.uuid, 'powered-off', undefined, true);
    });
  }

  /** The saved spec of an instance on this host. */
  getSpec(uuid: string): Promise<InstanceSpec> {
    return this.readSpec(uuid);
  }

  destroy(uuid: string): Promise<void> {
    return this.serial(uuid, () => this.hardStop(uuid, 'destroyed'));
  }

  powerOff(uuid: string, timeoutMs: number): Promise<void> {
    return this.serial(uuid, () => this.powerOffLocked(uuid, timeoutMs));
  }

  private async powerOffLocked(uuid: string, timeoutMs: number): Promise<void> {
    {
      const pid = await this.livePid(uuid);
      if (!pid) return;
      const m = await this.monitor(uuid);
      const { status } = await m.execute('query-status');
      if (status === 'running' && timeoutMs > 0) {
        const started = Date.now();
        this.intent.set(uuid, 'powering-off');
        try {
          // A press before the guest's ACPI daemon runs is lost: press again every 2 s (as Nova
          // does with its shutdown retry interval) until the guest is gone or time is up.
          let gone = false;
          while (!gone && Date.now() - started < timeoutMs) {
            await m.execute('system_powerdown').catch(() => undefined);
            gone = await waitGone(pid, Math.min(2000, Math.max(1, timeoutMs - (Date.now() - started))));
          }
          if (gone) {
            this.log.info({ uuid, ms: Date.now() - started }, 'guest powered off');
            return; // the SHUTDOWN handler recorded it and quit QEMU
          }
        } finally {
          this.intent.delete(uuid);
        }
        this.log.info({ uuid, timeoutMs }, 'guest did not power off in time; stopping it');
      }
      await this.hardStop(uuid, 'powered-off');
    }
  }

  powerOn(uuid: string): Promise<void> {
    return this.serial(uuid, async () => {
      if (await this.livePid(uuid)) return;
      if (existsSync(this.files(uuid).state)) return this.resumeLocked(uuid); // libvirt: start restores a managed save
      const spec = await this.readSpec(uuid);
      await this.launch(uuid, spec, { freshConsole: true });
    });
  }

  /**
   * hard: system_reset (a stopped instance is started). soft: ACPI power button, wait up
   * to softTimeoutMs (default 120 s, Nova's wait_soft_reboot_seconds) for the guest to
   * shut down, then reset and continue the same QEMU (libvirt's "fake reboot"); a guest
   * that ignores the button gets a hard reboot. A microvm is never reset in place: after
   * the guest's shutdown (soft) or at once (hard) a fresh QEMU starts on the saved spec.
   */
  reboot(uuid: string, hard: boolean, softTimeoutMs = 120_000): Promise<void> {
    return this.serial(uuid, async () => {
      const pid = await this.livePid(uuid);
      if (!pid) {
        if (existsSync(this.files(uuid).state)) await rm(this.files(uuid).state, { force: true });
        await this.launch(uuid, await this.readSpec(uuid), { freshConsole: true });
        return;
      }
      const micro = (await this.readSpec(uuid)).boot.kind === 'kernel';
      const m = await this.monitor(uuid);
      const { status } = await m.execute('query-status');
      if (!hard && status === 'running') {
        this.intent.set(uuid, 'rebooting');
        try {
          const down = m.waitEvent('SHUTDOWN', softTimeoutMs).then(() => true, () => false);
          await m.execute('system_powerdown');
          if (await down) {
            if (micro) await this.restart(uuid, 'soft reboot');
            else {
              await m.execute('system_reset');
              await m.execute('cont');
            }
            this.log.info({ uuid }, 'soft reboot done');
            return;
          }
          this.log.info({ uuid, softTimeoutMs }, 'guest ignored the power button; hard reboot');
        } finally {
          this.intent.delete(uuid);
        }
      }
      if (micro) {
        await this.restart(uuid, 'hard reboot');
        return;
      }
      await m.execute('system_reset');
      const after = await m.execute('query-status');
      if (after.status !== 'running') await m.execute('cont');
    });
  }

  /**
   * Replace the instance's QEMU by a fresh one on the saved spec, keeping the console log
   * (a microvm reboot; the caller holds the instance's lock).
   */
  private async restart(uuid: string, why: string): Promise<void> {
    const started = Date.now();
    this.restarting.add(uuid);
    try {
      await this.hardStop(uuid, 'rebooting');
      await this.launch(uuid, await this.readSpec(uuid), { freshConsole: false });
    } finally {
      this.restarting.delete(uuid);
    }
    this.log.info({ uuid, why, ms: Date.now() - started }, 'rebooted by starting a fresh QEMU');
  }

  /** The guest of `pid` asked for a reset (SHUTDOWN guest-reset under -no-reboot): restart it. */
  private guestReset(uuid: string, pid: number): void {
    this.restarting.add(uuid); // at once: a heartbeat meanwhile must not see it shut down
    void this.serial(uuid, async () => {
      try {
        // Whatever ran before us (a stop, a delete, an API reboot) may have dealt with it.
        if ((await this.livePid(uuid)) !== pid) return;
        const { status } = await (await this.monitor(uuid)).execute('query-status');
        if (status !== 'shutdown') return;
        await this.restart(uuid, 'the guest rebooted');
      } finally {
        this.restarting.delete(uuid);
      }
    }).catch((e: Error) => {
      this.log.error({ uuid, err: e.message }, 'restarting QEMU after the guest rebooted failed');
      this.emit('lifecycle', { uuid, power: 'crashed', reason: e.message } satisfies LifecycleEvent);
    });
  }

  pause(uuid: string): Promise<void> {
    return this.serial(uuid, async () => {
      const m = await this.monitor(uuid);
      await m.execute('stop');
    });
  }

  unpause(uuid: string): Promise<void> {
    return this.serial(uuid, async () => {
      const m = await this.monitor(uuid);
      const { status } = await m.execute('query-status');
      if (status === 'shutdown') throw new Error(`instance ${uuid} is shut down, cannot unpause`);
      await m.execute('cont');
    });
  }

  /** Save RAM and device state to `<dir>/state` (QMP migrate to `exec:cat`), then quit. */
  suspend(uuid: string): Promise<void> {
    return this.serial(uuid, async () => {
      const f = this.files(uuid);
      const pid = await this.livePid(uuid);
      if (!pid) throw new Error(`instance ${uuid} is not running, cannot suspend`);
      const m = await this.monitor(uuid);
      const before = (await m.execute('query-status')).status;
      const started = Date.now();
      const part = `${f.state}.part`;
      await rm(part, { force: true });
      if (before === 'running') await m.execute('stop');
      try {
        await m.execute('migrate', { uri: `exec:cat > ${shQuote(part)}` });
        const deadline = Date.now() + 600_000;
        for (;;) {
          const q = await m.execute('query-migrate');
          if (q.status === 'completed') break;
          if (q.status === 'failed' || q.status === 'cancelled') throw new Error(`saving the guest state failed: ${q['error-desc'] ?? q.status}`);
          if (Date.now() > deadline) throw new Error('saving the guest state took more than 10 minutes');
          await sleep(50);
        }
        const fh = await open(part, 'r');
        try { await fh.sync(); } finally { await fh.close(); }
        await rename(part, f.state);
      } catch (e) {
        await rm(part, { force: true });
        if (before === 'running') await m.execute('cont').catch(() => undefined);
        throw new Error(`suspend of ${uuid} failed: ${(e as Error).message}`);
      }
      await this.hardStop(uuid, 'suspended');
      const size = (await stat(f.state)).size;
      this.log.info({ uuid, bytes: size, ms: Date.now() - started }, 'suspended');
      this.emit('lifecycle', { uuid, power: 'suspended' } satisfies LifecycleEvent);
    });
  }

  resume(uuid: string): Promise<void> {
    return this.serial(uuid, () => this.resumeLocked(uuid));
  }

  private async resumeLocked(uuid: string): Promise<void> {
    const f = this.files(uuid);
    if (await this.livePid(uuid)) return;
    if (!existsSync(f.state)) throw new Error(`instance ${uuid} has no saved state to resume from`);
    const spec = await this.readSpec(uuid);
    const m = await this.launch(uuid, spec, { incomingFile: f.state, freshConsole: false });
    const deadline = Date.now() + 300_000;
    for (;;) {
      let status: RunState;
      try {
        status = (await m.execute('query-status')).status;
      } catch (e) {
        throw new Error(`resume of ${uuid} failed: ${(e as Error).message}${await this.qemuLogTail(uuid).then((t) => (t ? `: ${t}` : ''))}`);
      }
      if (status !== 'inmigrate') break;
      if (Date.now() > deadline) throw new Error(`resume of ${uuid}: loading the state took more than 5 minutes`);
      await sleep(25);
    }
    const mig = await m.execute('query-migrate');
    if (mig.status === 'failed') throw new Error(`resume of ${uuid} failed: ${mig['error-desc'] ?? 'incoming migration failed'}`);
    await m.execute('cont');
    await rm(f.state, { force: true });
    this.log.info({ uuid }, 'resumed');
  }

  // ---------------------------------------------------------------- state

  getState(uuid: string): Promise<InstanceState> {
    return this.stateOf(uuid);
  }

  private async stateOf(uuid: string): Promise<InstanceState> {
    const f = this.files(uuid);
    if (!existsSync(f.spec)) return { power: 'nostate' };
    const pid = await this.livePid(uuid);
    if (this.restarting.has(uuid)) return { power: 'running', ...(pid ? { pid, ...procStats(pid) } : {}) };
    if (pid) {
      let power: PowerState;
      try {
        const m = await this.monitor(uuid);
        power = powerOf((await m.execute('query-status', undefined, { timeoutMs: 5000 })).status);
      } catch (e) {
        throw new Error(`instance ${uuid}: QEMU pid ${pid} runs but its monitor does not answer: ${(e as Error).message}`);
      }
      return { power, pid, ...procStats(pid) };
    }
    if (existsSync(f.state)) return { power: 'suspended', reason: 'suspended' };
    const exit = await readJson<ExitRecord>(f.exit);
    if (!exit || exit.reason === 'crashed') return { power: 'crashed', reason: exit?.detail ?? 'QEMU is not running and left no exit record' };
    return { power: 'shutdown', reason: exit.reason };
  }

  async consoleOutput(uuid: string, lines?: number): Promise<string> {
    const f = this.files(uuid);
    const MAX = 1024 * 1024;
    let text: string;
    try {
      const st = await stat(f.console);
      const fh = await open(f.console, 'r');
      try {
        const len = Math.min(st.size, MAX);
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, st.size - len);
        text = buf.toString('utf8');
      } finally { await fh.close(); }
    } catch {
      if (!existsSync(f.spec)) throw new Error(`instance ${uuid} is not on this host`);
      return '';
    }
    if (lines === undefined) return text;
    if (lines <= 0) return '';
    const all = text.split('\n');
    const trailing = all[all.length - 1] === '' ? 1 : 0;
    return all.slice(Math.max(0, all.length - trailing - lines)).join('\n');
  }

  /** Standalone copy (no backing file) of the root disk; a running guest is paused for the copy. */
  snapshotRootDisk(uuid: string, destPath: string, format: 'qcow2' | 'raw'): Promise<void> {
    return this.serial(uuid, async () => {
      const spec = await this.readSpec(uuid);
      const root = spec.disks[0];
      if (!root) throw new Error(`instance ${uuid} has no root disk`);
      const pid = await this.livePid(uuid);
      let resume = false;
      const m = pid ? await this.monitor(uuid) : undefined;
      if (m) {
        // `stop` drains and flushes every block device, so the files are consistent while paused.
        if ((await m.execute('query-status')).status === 'running') { await m.execute('stop'); resume = true; }
      }
      const started = Date.now();
      try {
        await convertImage(root.path, destPath, format, { forceShare: !!pid });
      } catch (e) {
        await rm(destPath, { force: true });
        throw new Error(`snapshot of ${uuid} failed: ${(e as Error).message}`);
      } finally {
        if (m && resume) await m.execute('cont');
      }
      this.log.info({ uuid, ms: Date.now() - started, paused: resume }, 'root disk snapshot');
    });
  }

  /** Stop and delete everything of the instance. */
  remove(uuid: string): Promise<void> {
    return this.serial(uuid, async () => {
      this.removing.add(uuid);
      try {
        await this.hardStop(uuid, 'destroyed');
        await rm(this.dirOf(uuid), { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      } finally {
        this.removing.delete(uuid);
      }
    });
  }

  /**
   * After an agent (re)start: every instance directory with a spec, its QEMU re-attached
   * when it still runs. A QEMU found stopped after a guest shutdown is quit ('shutdown');
   * one gone without a record of why is 'crashed'.
   */
  async adopt(): Promise<Map<string, InstanceState>> {
    const out = new Map<string, InstanceState>();
    let names: string[];
    try { names = await readdir(this.instancesDir); } catch { return out; }
    for (const uuid of names) {
      if (!UUID.test(uuid) || !existsSync(this.files(uuid).spec)) continue;
      await this.serial(uuid, async () => {
        const pid = await this.livePid(uuid);
        if (pid) {
          try {
            const m = await this.attach(uuid, pid, 2000);
            const { status } = await m.execute('query-status');
            if (status === 'shutdown' && (await this.resetWhileAway(uuid))) {
              await this.restart(uuid, 'the guest rebooted while the agent was away');
            } else if (status === 'shutdown') {
              await this.recordExit(uuid, 'guest-shutdown', 'guest powered off while the agent was away', true);
              this.intent.set(uuid, 'stopping');
              await m.execute('quit').catch(() => undefined);
              if (!(await waitGone(pid, 3000))) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
              this.intent.delete(uuid);
            }
          } catch (e) {
            this.log.error({ uuid, pid, err: (e as Error).message }, 'cannot re-attach to QEMU');
            out.set(uuid, { power: 'nostate', pid, reason: (e as Error).message });
            return;
          }
        } else if ((await readJson<ExitRecord>(this.files(uuid).exit))?.reason === 'rebooting') {
          // The agent died between stopping the old QEMU of a reboot and starting the new one.
          await this.launch(uuid, await this.readSpec(uuid), { freshConsole: false })
            .catch((e: Error) => this.log.error({ uuid, err: e.message }, 'finishing an interrupted reboot failed'));
        } else if (!existsSync(this.files(uuid).state) && !existsSync(this.files(uuid).exit)) {
          await this.recordExit(uuid, 'crashed', 'QEMU was not running when the agent started');
        }
        out.set(uuid, await this.stateOf(uuid));
      });
    }
    this.log.info({ instances: out.size, running: [...out.values()].filter((s) => s.power === 'running').length }, 'adopted instances');
    return out;
  }

  /**
   * A microvm found stopped in 'shutdown' after the agent was away: was it a reset the guest
   * asked for (-no-reboot turned it into a stop) rather than a power-off? QEMU 7.2 does not
   * keep the reason, so the guest kernel's last word on the console decides: Linux prints
   * "reboot: Restarting system" for a restart, "reboot: Power down" / "System halted" else.
   */
  private async resetWhileAway(uuid: string): Promise<boolean> {
    if ((await this.readSpec(uuid)).boot.kind !== 'kernel') return false;
    const tail = (await this.consoleOutput(uuid).catch(() => '')).slice(-8192);
    const last = [...tail.matchAll(/reboot: (Restarting system|Power down|System halted)/g)].at(-1);
    return last?.[1] === 'Restarting system';
  }

  // ---------------------------------------------------------------- hotplug

  attachNic(uuid: string, nic: TapNicSpec): Promise<void> {
    return this.serial(uuid, async () => {
      const spec = await this.readSpec(uuid);
      if (spec.nics.some((n) => n.kind === 'tap' && n.ifname === nic.ifname)) return;
      if (existsSync(this.files(uuid).state)) throw new Error(`instance ${uuid} is suspended; resume it before changing its devices`);
      const micro = spec.boot.kind === 'kernel';
      const entry: TapNicSpec = { kind: 'tap', mac: nic.mac, ifname: nic.ifname, ...(nic.portId ? { portId: nic.portId } : {}) };
      if (micro) entry.slot = freeSlot(spec);
      const pid = await this.livePid(uuid);
      if (pid) {
        const m = await this.monitor(uuid);
        if (micro && !(await this.hasDevice(m, `hp${entry.slot!}`))) {
          throw new Error(`instance ${uuid} has no free hotplug slot (every root port is in use); stop and start it to get more`);
        }
        const ids = tapIds(nic.ifname);
        const started = Date.now();
        await m.execute('netdev_add', { type: 'tap', id: ids.netdev, ifname: nic.ifname, script: 'no', downscript: 'no' });
        try {
          await m.execute('device_add', tapDeviceArgs(nic.ifname, nic.mac, micro ? `hp${entry.slot!}` : undefined));
        } catch (e) {
          await m.execute('netdev_del', { id: ids.netdev }).catch(() => undefined);
          throw e;
        }
        this.log.info({ uuid, ifname: nic.ifname, slot: entry.slot, ms: Date.now() - started }, 'NIC hot-plugged');
      }
      spec.nics.push(entry);
      await writeJsonAtomic(this.files(uuid).spec, spec);
    });
  }

  detachNic(uuid: string, ifname: string, timeoutMs = 60_000): Promise<boolean> {
    return this.serial(uuid, async () => {
      const spec = await this.readSpec(uuid);
      const i = spec.nics.findIndex((n) => n.kind === 'tap' && n.ifname === ifname);
      if (i < 0) return false;
      if (existsSync(this.files(uuid).state)) throw new Error(`instance ${uuid} is suspended; resume it before changing its devices`);
      const pid = await this.livePid(uuid);
      if (pid) {
        const m = await this.monitor(uuid);
        const ids = tapIds(ifname);
        const started = Date.now();
        if (await this.hasDevice(m, ids.device)) await this.unplug(m, ids.device, timeoutMs);
        await m.execute('netdev_del', { id: ids.netdev }).catch((e: unknown) => {
          if (!(e instanceof QmpError && /not found/i.test(e.message))) throw e;
        });
        this.log.info({ uuid, ifname, ms: Date.now() - started }, 'NIC unplugged');
      }
      spec.nics.splice(i, 1);
      await writeJsonAtomic(this.files(uuid).spec, spec);
      return true;
    });
  }

  /** A device with this id exists in the running QEMU (under /machine/peripheral). */
  private async hasDevice(m: QmpClient, id: string): Promise<boolean> {
    const list = await m.execute('qom-list', { path: '/machine/peripheral' });
    return list.some((p) => p.name === id);
  }

  /**
   * device_del is a request to the guest (PCIe attention button / ACPI eject): the device
   * goes when the guest has let it go, which QEMU reports with DEVICE_DELETED. Linux waits
   * 5 s after the button in case it is pressed again; the request is repeated every 15 s
   * (a press the guest missed, e.g. during its boot) until timeoutMs.
   */
  private async unplug(m: QmpClient, id: string, timeoutMs: number): Promise<void> {
    let onEvent!: (ev: QmpEvent) => void;
    const gone = new Promise<void>((resolve) => {
      onEvent = (ev) => { if (ev.event === 'DEVICE_DELETED' && ev.data?.device === id) resolve(); };
      m.on('event', onEvent);
    });
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const asked = await m.execute('device_del', { id }).then(() => true, (e: unknown) => {
          // A repeated request while the first is pending is refused; an absent device is gone already.
          if (e instanceof QmpError && /not found/i.test(e.message)) return true;
          if (e instanceof QmpError && /in progress|pending/i.test(e.message)) return true;
          // Right after a hotplug the guest is still bringing the slot up (pciehp blinks the
          // power indicator for ~5 s) and QEMU refuses the button press: ask again shortly.
          if (e instanceof QmpError && /busy|blinking/i.test(e.message)) return false;
          throw e;
        });
        const left = deadline - Date.now();
        if (left <= 0) break;
        if (!asked) { await sleep(Math.min(500, left)); continue; }
        const ok = await Promise.race([gone.then(() => true), sleep(Math.min(15_000, left)).then(() => false)]);
        if (ok || !(await this.hasDevice(m, id))) return;
        if (Date.now() >= deadline) break;
      }
      throw new Error(`the guest did not release device ${id} within ${Math.round(timeoutMs / 1000)} s`);
    } finally {
      m.off('event', onEvent);
    }
  }

  // ---------------------------------------------------------------- volumes

  /** keys.psk in the instance directory (mode 0600): the keys of its NBD volumes over TLS; absent when none. */
  private async writeVolumeKeys(uuid: string, volumes: VolumeDiskSpec[]): Promise<void> {
    const path = this.files(uuid).psk;
    const content = pskFileContent(volumes);
    if (!content) { await rm(path, { force: true }); return; }
    const tmp = `${path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try { await fh.chmod(0o600); await fh.writeFile(content); await fh.sync(); } finally { await fh.close(); }
    await rename(tmp, path);
  }

  /** The query-block entry of a volume's disk in a running QEMU (its current top node is `inserted['node-name']`). */
  private async volumeBlock(m: QmpClient, volumeId: string) {
    const { device } = volumeIds(volumeId);
    const entry = (await m.execute('query-block')).find((b) => b.qdev === device || b.qdev?.startsWith(`/machine/peripheral/${device}/`));
    if (!entry?.qdev || !entry.inserted) return undefined;
    return { qdev: entry.qdev, inserted: entry.inserted };
  }

  private async throttleVolume(m: QmpClient, v: VolumeDiskSpec): Promise<void> {
    const t = ioThrottle(v.qos);
    if (!t) return;
    const block = await this.volumeBlock(m, v.volumeId);
    if (!block) throw new Error(`volume ${v.volumeId} has no disk in QEMU to throttle`);
    await m.execute('block_set_io_throttle', { id: block.qdev, ...t });
  }

  /**
   * Remove what a volume left in a running QEMU besides its device: every block node of it
   * the monitor added (overlays of live snapshots first, each before its backing) and its
   * TLS credentials. Nodes not there are fine (a retry, or never added).
   */
  private async dropVolumeNodes(m: QmpClient, volumeId: string): Promise<void> {
    const ids = volumeIds(volumeId);
    const nodes = (await m.execute('query-named-block-nodes', { flat: true }))
      .map((n) => n['node-name']).filter((n) => n === ids.node || n.startsWith(ids.overlayPrefix));
    let left = [...new Set(nodes)];
    // A node still backing another refuses deletion; each round frees the next one down.
    for (let round = 0; left.length > 0 && round <= nodes.length; round++) {
      const busy: string[] = [];
      for (const name of left) {
        await m.execute('blockdev-del', { 'node-name': name }).catch((e: unknown) => {
          if (e instanceof QmpError && /not found|cannot find/i.test(e.message)) return;
          if (e instanceof QmpError && /in use|busy/i.test(e.message)) { busy.push(name); return; }
          throw e;
        });
      }
      left = busy;
    }
    if (left.length > 0) throw new Error(`block nodes of volume ${volumeId} stay in use: ${left.join(', ')}`);
    await m.execute('object-del', { id: ids.tls }).catch(() => undefined);
  }

  /** Give the running QEMU the volume's disk when it does not have it (blockdev-add + device_add), undoing a half-done plug. */
  private async plugVolume(m: QmpClient, uuid: string, v: VolumeDiskSpec, bus: string | undefined): Promise<boolean> {
    const ids = volumeIds(v.volumeId);
    if (await this.hasDevice(m, ids.device)) return false;
    await this.dropVolumeNodes(m, v.volumeId);
    const tls = volumeTlsObject(v, this.dirOf(uuid));
    if (tls) await m.execute('object-add', tls);
    try {
      await m.execute('blockdev-add', volumeBlockdev(v));
      try {
        await m.execute('device_add', volumeDeviceArgs(v, { bus }));
      } catch (e) {
        await m.execute('blockdev-del', { 'node-name': ids.node }).catch(() => undefined);
        throw e;
      }
    } catch (e) {
      if (tls) await m.execute('object-del', { id: tls.id }).catch(() => undefined);
      throw e;
    }
    await this.throttleVolume(m, v);
    return true;
  }

  attachVolume(uuid: string, volume: VolumeDiskSpec): Promise<void> {
    return this.serial(uuid, async () => {
      const spec = await this.readSpec(uuid);
      const vols = spec.volumes ?? [];
      if (existsSync(this.files(uuid).state)) throw new Error(`instance ${uuid} is suspended; resume it before changing its devices`);
      const micro = spec.boot.kind === 'kernel';
      const pid = await this.livePid(uuid);
      let entry = vols.find((v) => v.volumeId === volume.volumeId);
      const known = !!entry;
      if (!entry) {
        // Checked before anything is recorded: a bad connection or QoS fails the attach, changing nothing.
        volumeBlockdev(volume);
        ioThrottle(volume.qos);
        entry = { volumeId: volume.volumeId, connection: volume.connection, ...(volume.readonly ? { readonly: true } : {}), ...(volume.qos ? { qos: volume.qos } : {}) };
        // Only a stopped instance takes a new root disk; a running one gets every volume hot-plugged.
        if (volume.root && !pid && !rootVolume(spec)) entry.root = true;
        if (micro && !entry.root) entry.slot = freeSlot(spec);
        // The spec first: it is what the instance should have; a retry or a restart makes QEMU agree.
        spec.volumes = [...vols, entry];
        await this.writeVolumeKeys(uuid, spec.volumes);
        await writeJsonAtomic(this.files(uuid).spec, spec);
      }
      if (!pid || entry.root) return;
      try {
        const m = await this.monitor(uuid);
        if (micro && !(await this.hasDevice(m, `hp${entry.slot!}`))) {
          throw new Error(`instance ${uuid} has no free hotplug slot (every root port is in use); stop and start it to get more`);
        }
        const started = Date.now();
        if (await this.plugVolume(m, uuid, entry, micro ? `hp${entry.slot!}` : undefined)) {
          this.log.info({ uuid, volume: entry.volumeId, connection: entry.connection.type, slot: entry.slot, ms: Date.now() - started }, 'volume hot-plugged');
        }
      } catch (e) {
        if (!known) {
          spec.volumes = vols;
          await writeJsonAtomic(this.files(uuid).spec, spec);
          await this.writeVolumeKeys(uuid, vols);
        }
        throw e;
      }
    });
  }

  detachVolume(uuid: string, volumeId: string, timeoutMs = 60_000): Promise<boolean> {
    return this.serial(uuid, async () => {
      const spec = await this.readSpec(uuid);
      const vols = spec.volumes ?? [];
      const vol = vols.find((v) => v.volumeId === volumeId);
      if (!vol) return false;
      if (existsSync(this.files(uuid).state)) throw new Error(`instance ${uuid} is suspended; resume it before changing its devices`);
      const pid = await this.livePid(uuid);
      if (pid) {
        if (vol.root && spec.boot.kind === 'kernel') throw new Error(`instance ${uuid} is running: its root volume ${volumeId} cannot be unplugged`);
        const m = await this.monitor(uuid);
        const { device } = volumeIds(volumeId);
        const started = Date.now();
        if (await this.hasDevice(m, device)) await this.unplug(m, device, timeoutMs);
        await this.dropVolumeNodes(m, volumeId);
        this.log.info({ uuid, volume: volumeId, ms: Date.now() - started }, 'volume unplugged');
      }
      spec.volumes = vols.filter((v) => v.volumeId !== volumeId);
      await writeJsonAtomic(this.files(uuid).spec, spec);
      await this.writeVolumeKeys(uuid, spec.volumes);
      return true;
    });
  }

  /** The instance on this host whose running QEMU holds the volume through a file connection (the pool's files). */
  async volumeHolder(volumeId: string): Promise<string | undefined> {
    let names: string[];
    try { names = await readdir(this.instancesDir); } catch { return undefined; }
    for (const uuid of names) {
      if (!UUID.test(uuid)) continue;
      const spec = await readJson<InstanceSpec>(this.files(uuid).spec);
      if (!spec?.volumes?.some((v) => v.volumeId === volumeId && v.connection.type === 'file')) continue;
      if (await this.livePid(uuid)) return uuid;
    }
    return undefined;
  }

  /** The volume's entry in a running instance's spec and its disk in QEMU (for the live operations). */
  private async liveVolume(uuid: string, volumeId: string) {
    const spec = await this.readSpec(uuid);
    const vol = spec.volumes?.find((v) => v.volumeId === volumeId);
    if (!vol) throw new Error(`volume ${volumeId} is not attached to instance ${uuid}`);
    if (!(await this.livePid(uuid))) throw new Error(`instance ${uuid} is not running`);
    const m = await this.monitor(uuid);
    const block = await this.volumeBlock(m, volumeId);
    if (!block) throw new Error(`instance ${uuid}: QEMU has no disk for volume ${volumeId}`);
    return { spec, vol, m, top: block.inserted['node-name'] };
  }

  /**
   * Live snapshot: the volume's disk continues on `overlayPath` (a qcow2 file the pool made,
   * whose header names the disk's current top file as backing) from one instant on; the old
   * top is no longer written. blockdev-add of the overlay without opening its backing, then
   * blockdev-snapshot onto the current top node. The saved spec then names the overlay, so
   * a fresh QEMU (restart, resume) opens the volume's new top.
   */
  snapshotVolumeLive(uuid: string, volumeId: string, overlayPath: string): Promise<void> {
    return this.serial(uuid, async () => {
      const { spec, vol, m, top } = await this.liveVolume(uuid, volumeId);
      if (vol.connection.type !== 'file') throw new Error(`volume ${volumeId} is reached over NBD here: its pool snapshots it`);
      const ids = volumeIds(volumeId);
      const taken = (await m.execute('query-named-block-nodes', { flat: true }))
        .map((n) => n['node-name']).filter((n) => n.startsWith(ids.overlayPrefix))
        .map((n) => parseInt(n.slice(ids.overlayPrefix.length), 36)).filter(Number.isFinite);
      const name = `${ids.overlayPrefix}${(Math.max(0, ...taken) + 1).toString(36)}`;
      const ro = vol.readonly ? { 'read-only': true as const } : { discard: 'unmap' as const };
      const started = Date.now();
      const cache = volumeCacheOptions(vol.connection);
      await m.execute('blockdev-add', { driver: 'qcow2', 'node-name': name, ...ro, ...cache.format, file: { driver: 'file', filename: overlayPath, ...ro, ...cache.file }, backing: null });
      try {
        await m.execute('blockdev-snapshot', { node: top, overlay: name });
      } catch (e) {
        await m.execute('blockdev-del', { 'node-name': name }).catch(() => undefined);
        throw new Error(`live snapshot of volume ${volumeId} on ${uuid} failed: ${(e as Error).message}`);
      }
      vol.connection = { ...vol.connection, path: overlayPath, format: 'qcow2' };
      await writeJsonAtomic(this.files(uuid).spec, spec);
      this.log.info({ uuid, volume: volumeId, top: name, previous: top, ms: Date.now() - started }, 'volume snapshotted live');
    });
  }

  /** Live resize: block_resize of the volume's current top node; the guest sees the new capacity. */
  resizeVolumeLive(uuid: string, volumeId: string, bytes: number): Promise<void> {
    return this.serial(uuid, async () => {
      if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % 512 !== 0) throw new Error(`invalid volume size ${bytes} (a positive multiple of 512 bytes expected)`);
      const { m, top } = await this.liveVolume(uuid, volumeId);
      await m.execute('block_resize', { 'node-name': top, size: bytes });
      this.log.info({ uuid, volume: volumeId, bytes }, 'volume resized live');
    });
  }

  /** Drop every monitor connection, leaving the QEMUs running (agent shutdown). */
  async close(): Promise<void> {
    for (const m of this.monitors.values()) m.close();
    this.monitors.clear();
  }

  /** The instance's QMP client, for callers that need more than this interface. */
  qmp(uuid: string): Promise<QmpClient> { return this.monitor(uuid); }
}

/** CPU time (ns) and RSS (KiB) of a process from /proc. */
export function procStats(pid: number): { cpuTimeNs?: number; memoryKb?: number } {
  const out: { cpuTimeNs?: number; memoryKb?: number } = {};
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (Number.isFinite(ticks)) out.cpuTimeNs = ticks * (1e9 / CLK_TCK);
    const rss = /VmRSS:\s*(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (rss) out.memoryKb = Number(rss[1]);
  } catch { /* process gone */ }
  return out;
}
