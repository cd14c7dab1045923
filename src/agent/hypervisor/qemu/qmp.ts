/**
 * A small typed QMP client (QEMU Machine Protocol) over a unix socket: greeting and
 * capabilities negotiation, commands matched to replies by id, asynchronous events
 * re-emitted by name, a timeout on every command. QEMU's monitor socket accepts one
 * client at a time, so the driver keeps one QmpClient per running instance.
 *
 * Only the commands Gureum uses are typed (QmpCommands); the wire format is the
 * one in QEMU's docs/interop/qmp-spec.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { BlockDeviceArgs, BlockdevOptions, IoThrottle, TlsPskObject } from './cmdline.ts';

/** QEMU's RunState (qapi/run-state.json). */
export type RunState =
  | 'debug' | 'inmigrate' | 'internal-error' | 'io-error' | 'paused' | 'postmigrate' | 'prelaunch'
  | 'finish-migrate' | 'restore-vm' | 'running' | 'save-vm' | 'shutdown' | 'suspended' | 'watchdog'
  | 'guest-panicked' | 'colo';

export type MigrationStatus =
  | 'none' | 'setup' | 'cancelling' | 'cancelled' | 'active' | 'postcopy-active' | 'postcopy-paused'
  | 'postcopy-recover' | 'completed' | 'failed' | 'colo' | 'pre-switchover' | 'device' | 'wait-unplug';

export interface BlockDeviceStats {
  rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number;
  flush_operations: number; rd_total_time_ns: number; wr_total_time_ns: number;
}

type NoArgs = undefined;
type Empty = Record<string, never>;

/** Commands in use: arguments and return value of each. */
export interface QmpCommands {
  qmp_capabilities: { args: { enable?: string[] } | NoArgs; ret: Empty };
  'query-status': { args: NoArgs; ret: { status: RunState; running: boolean; singlestep?: boolean } };
  'query-version': { args: NoArgs; ret: { qemu: { major: number; minor: number; micro: number }; package: string } };
  cont: { args: NoArgs; ret: Empty };
  stop: { args: NoArgs; ret: Empty };
  system_powerdown: { args: NoArgs; ret: Empty };
  system_reset: { args: NoArgs; ret: Empty };
  quit: { args: NoArgs; ret: Empty };
  migrate: { args: { uri: string; detach?: boolean }; ret: Empty };
  'migrate-incoming': { args: { uri: string }; ret: Empty };
  'query-migrate': {
    args: NoArgs;
    ret: {
      status?: MigrationStatus; 'error-desc'?: string; 'total-time'?: number;
      ram?: { transferred: number; total: number; remaining: number };
    };
  };
  'query-blockstats': { args: { 'query-nodes'?: boolean } | NoArgs; ret: Array<{ device: string; 'node-name'?: string; qdev?: string; stats: BlockDeviceStats }> };
  'query-block': { args: NoArgs; ret: Array<{ device: string; qdev?: string; inserted?: { file: string; 'node-name': string; drv: string; ro: boolean; iops: number; bps: number; iops_rd: number; iops_wr: number; bps_rd: number; bps_wr: number } }> };
  'query-named-block-nodes': { args: { flat?: boolean } | NoArgs; ret: Array<{ 'node-name': string; drv: string; file: string; ro: boolean }> };
  'blockdev-add': { args: BlockdevOptions; ret: Empty };
  'blockdev-del': { args: { 'node-name': string }; ret: Empty };
  'blockdev-snapshot': { args: { node: string; overlay: string }; ret: Empty };
  block_resize: { args: { 'node-name': string; size: number }; ret: Empty };
  block_set_io_throttle: { args: IoThrottle & { id: string }; ret: Empty };
  'object-add': { args: TlsPskObject; ret: Empty };
  'object-del': { args: { id: string }; ret: Empty };
  'query-cpus-fast': { args: NoArgs; ret: Array<{ 'cpu-index': number; 'thread-id': number; 'qom-path': string; target: string }> };
  'blockdev-backup': { args: { device: string; target: string; sync: 'full' | 'top' | 'none' | 'incremental'; 'job-id'?: string }; ret: Empty };
  'query-block-jobs': { args: NoArgs; ret: Array<{ device: string; type: string; len: number; offset: number; busy: boolean; paused: boolean; ready: boolean; status: string }> };
  'human-monitor-command': { args: { 'command-line': string }; ret: string };
  netdev_add: { args: { type: 'tap'; id: string; ifname: string; script: 'no'; downscript: 'no' }; ret: Empty };
  netdev_del: { args: { id: string }; ret: Empty };
  device_add: { args: { driver: string; id: string; bus?: string; netdev?: string; mac?: string; romfile?: string } | BlockDeviceArgs; ret: Empty };
  device_del: { args: { id: string }; ret: Empty };
  'qom-list': { args: { path: string }; ret: Array<{ name: string; type: string }> };
}
export type QmpCommand = keyof QmpCommands;

/** Events the driver listens to (data fields per qapi/run-state.json). */
export interface QmpEvents {
  SHUTDOWN: { guest: boolean; reason: string };
  RESET: { guest: boolean; reason: string };
  POWERDOWN: Record<string, never>;
  STOP: Record<string, never>;
  RESUME: Record<string, never>;
  SUSPEND: Record<string, never>;
  GUEST_PANICKED: { action: string };
  MIGRATION: { status: MigrationStatus };
  BLOCK_JOB_COMPLETED: { device: string; len: number; offset: number; error?: string };
  /** A device_del finished (the guest released the device); `device` is the id. */
  DEVICE_DELETED: { device?: string; path: string };
}
export interface QmpEvent { event: string; data?: Record<string, unknown>; timestamp: { seconds: number; microseconds: number } }

/** An error QEMU answered with ({"error": {"class", "desc"}}), or a transport failure. */
export class QmpError extends Error {
  constructor(readonly command: string, readonly errorClass: string, desc: string) {
    super(`QMP ${command}: ${desc}`);
    this.name = 'QmpError';
  }
}

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; command: string }

type ArgsOf<K extends QmpCommand> = undefined extends QmpCommands[K]['args']
  ? [args?: QmpCommands[K]['args'], opts?: { timeoutMs?: number }]
  : [args: QmpCommands[K]['args'], opts?: { timeoutMs?: number }];

export interface QmpClientEvents {
  event: [QmpEvent];
  close: [];
}

export class QmpClient extends EventEmitter {
  private buf = '';
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private closed = false;
  /** The greeting's QEMU version. */
  version?: { major: number; minor: number; micro: number };

  private constructor(private readonly sock: Socket, readonly path: string, private readonly defaultTimeoutMs: number) {
    super();
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', () => { /* surfaced through close */ });
    sock.on('close', () => this.onClose());
  }

  /**
   * Connect to a QMP socket and negotiate capabilities. `retryMs`: keep retrying a
   * refused/missing socket for that long (QEMU still starting).
   */
  static async connect(path: string, opts: { timeoutMs?: number; retryMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + (opts.retryMs ?? 0);
    for (;;) {
      try {
        return await QmpClient.connectOnce(path, timeoutMs);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // EAGAIN: the listen backlog is full for a moment (QEMU accepts one client at a time).
        if ((code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EAGAIN') && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 25));
          continue;
        }
        throw e instanceof QmpError ? e : new Error(`QMP connect ${path}: ${(e as Error).message}`);
      }
    }
  }

  private static connectOnce(path: string, timeoutMs: number): Promise<QmpClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      let greetingBuf = '';
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no QMP greeting within ${timeoutMs} ms (another client connected?)`)); }, timeoutMs);
      const fail = (e: Error) => { clearTimeout(timer); sock.destroy(); reject(e); };
      sock.once('error', fail);
      const onGreeting = (d: Buffer) => {
        greetingBuf += d.toString('utf8');
        const nl = greetingBuf.indexOf('\n');
        if (nl < 0) return;
        sock.off('data', onGreeting);
        sock.off('error', fail);
        clearTimeout(timer);
        let greeting: { QMP?: { version?: { qemu?: { major: number; minor: number; micro: number } } } };
        try { greeting = JSON.parse(greetingBuf.slice(0, nl)); } catch { fail(new Error('QMP greeting is not JSON')); return; }
        if (!greeting.QMP) { fail(new Error('not a QMP socket (no greeting)')); return; }
        const client = new QmpClient(sock, path, timeoutMs);
        client.version = greeting.QMP.version?.qemu;
        const rest = greetingBuf.slice(nl + 1);
        if (rest) client.onData(rest);
        client.execute('qmp_capabilities').then(() => resolve(client), (e: Error) => { client.close(); reject(e); });
      };
      sock.on('data', onGreeting);
    });
  }

  /** Run a command; rejects with QmpError on an error reply, a timeout or a closed socket. */
  execute<K extends QmpCommand>(name: K, ...rest: ArgsOf<K>): Promise<QmpCommands[K]['ret']> {
    const [args, opts] = rest;
    if (this.closed) return Promise.reject(new QmpError(name, 'Closed', 'monitor connection is closed'));
    const id = String(this.nextId++);
    const msg: { execute: string; id: string; arguments?: unknown } = { execute: name, id };
    if (args !== undefined) msg.arguments = args;
    return new Promise((resolve, reject) => {
      const ms = opts?.timeoutMs ?? this.defaultTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpError(name, 'Timeout', `no reply within ${ms} ms`));
      }, ms);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, command: name });
      this.sock.write(JSON.stringify(msg) + '\n');
    });
  }

  /** Resolves with the event's data the next time `name` arrives (or rejects after timeoutMs / on close). */
  waitEvent<E extends keyof QmpEvents>(name: E, timeoutMs: number): Promise<QmpEvents[E]> {
    return new Promise((resolve, reject) => {
      const onEvent = (ev: QmpEvent) => {
        if (ev.event !== name) return;
        cleanup(); resolve((ev.data ?? {}) as QmpEvents[E]);
      };
      const onClose = () => { cleanup(); reject(new QmpError(name, 'Closed', 'monitor closed while waiting for the event')); };
      const timer = setTimeout(() => { cleanup(); reject(new QmpError(name, 'Timeout', `event not seen within ${timeoutMs} ms`)); }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.off('event', onEvent); this.off('close', onClose); };
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  get isClosed(): boolean { return this.closed; }

  /** Resolves when the socket has closed (QEMU exited or close() was called). */
  closedPromise(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.once('close', () => r()));
  }

  close(): void {
    this.sock.destroy();
    this.onClose();
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: { id?: string; return?: unknown; error?: { class: string; desc: string }; event?: string };
      try { msg = JSON.parse(line); } catch { continue; }
      if (msg.event) {
        this.emit('event', msg as QmpEvent);
        this.emit(msg.event, (msg as QmpEvent).data ?? {});
        continue;
      }
      const p = msg.id !== undefined ? this.pending.get(String(msg.id)) : undefined;
      if (!p) continue;
      this.pending.delete(String(msg.id));
      clearTimeout(p.timer);
      if (msg.error) p.reject(new QmpError(p.command, msg.error.class, msg.error.desc));
      else p.resolve(msg.return);
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      // `quit` is answered and then the socket closes; a close before the reply still means it worked.
      if (p.command === 'quit') p.resolve({});
      else p.reject(new QmpError(p.command, 'Closed', 'monitor connection closed (QEMU exited?)'));
    }
    this.pending.clear();
    this.emit('close');
  }
}
