/**
 * NBD exports of pool volumes for instances on other hosts: one qemu-storage-daemon per
 * exported volume, serving NBD on the host's underlay address with TLS (a pre-shared key
 * per export: `tls-creds-psk` reading keys.psk, mode 0600). Its files live in
 * `exports/<volumeId>/`: export.json (port, export name, PSK identity and key, the
 * attachments using it), keys.psk, the QMP socket and the pid file. The daemon outlives
 * the agent; start() adopts it again (or restarts it on the same port with the same key,
 * after a host reboot, so the connection the hypervisor holds stays valid).
 *
 * While exported the daemon holds the volume open; a snapshot goes through its QMP socket
 * (blockdev-add + blockdev-snapshot). An extend cannot: the export does not share the
 * resize permission (block_resize answers "Permission conflict ... 'resize'"), and QEMU's
 * NBD client could not grow the disk anyway ("Cannot grow NBD nodes").
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { VolumeConnection } from '../../../bus/volume.ts';
import type { Logger } from '../../../common/logger.ts';
import { QmpClient } from '../../hypervisor/qemu/qmp.ts';
import { checkId, Mutex, writeFileDurable } from './files.ts';

interface ExportRecord {
  volumeId: string;
  port: number;
  exportName: string;
  identity: string;
  /** The pre-shared key, hex (what keys.psk holds). */
  psk: string;
  attachments: string[];
}

type Json = Record<string, unknown>;
/** QMP commands of the storage daemon that the hypervisor's typed client does not list. */
function qmp<T>(c: QmpClient, name: string, args?: Json): Promise<T> {
  const exec = c.execute as unknown as (n: string, a?: Json, o?: { timeoutMs?: number }) => Promise<T>;
  return exec.call(c, name, args, { timeoutMs: 30_000 });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** A free TCP port on `host` (the daemon binds it right after; a lost race is retried). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class NbdExports {
  private readonly lock = new Mutex();

  /** Open volumes with O_DIRECT (cache.direct=on, native AIO): the pool's filesystem takes it. */
  direct = false;

  constructor(private readonly opts: { dir: string; hostIp: string; log: Logger }) {}

  private exportDir(volumeId: string): string { return join(this.opts.dir, checkId('volume', volumeId)); }

  private async record(volumeId: string): Promise<ExportRecord | undefined> {
    try { return JSON.parse(await readFile(join(this.exportDir(volumeId), 'export.json'), 'utf8')) as ExportRecord; } catch { return undefined; }
  }

  private async pid(volumeId: string): Promise<number | undefined> {
    const text = await readFile(join(this.exportDir(volumeId), 'qsd.pid'), 'utf8').catch(() => '');
    const pid = Number.parseInt(text.trim(), 10);
    if (!(pid > 0) || !alive(pid)) return undefined;
    // A recycled pid must not be taken for our daemon: its command line names this export's directory.
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    return cmd.includes('qemu-storage-daemon') && cmd.includes(this.exportDir(volumeId)) ? pid : undefined;
  }

  /** True when the volume is exported and its daemon runs (it holds the volume open). */
  async running(volumeId: string): Promise<boolean> {
    return (await this.pid(volumeId)) !== undefined;
  }

  /** Adopt the daemons of every recorded export; restart those that are gone (host reboot). */
  async start(topPath: (volumeId: string) => string): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    for (const volumeId of await readdir(this.opts.dir)) {
      const rec = await this.record(volumeId).catch(() => undefined);
      if (!rec || !rec.attachments.length) { await rm(join(this.opts.dir, volumeId), { recursive: true, force: true }); continue; }
      const pid = await this.pid(volumeId);
      if (pid) { this.opts.log.info({ volume: volumeId, pid, port: rec.port }, 'adopted NBD export'); continue; }
      const top = topPath(volumeId);
      if (!existsSync(top)) { await rm(join(this.opts.dir, volumeId), { recursive: true, force: true }); continue; }
      await this.launch(rec, top).catch((err: unknown) => this.opts.log.error({ volume: volumeId, err: (err as Error).message }, 'restarting NBD export failed'));
    }
  }

  async export(volumeId: string, attachmentId: string, top: string, log: Logger): Promise<VolumeConnection> {
    return this.lock.run(async () => {
      let rec = await this.record(volumeId);
      if (!rec) {
        rec = {
          volumeId, port: 0, exportName: `volume-${volumeId}`, identity: `gureum-${volumeId.slice(0, 8)}-${randomBytes(4).toString('hex')}`,
          psk: randomBytes(32).toString('hex'), attachments: [],
        };
      }
      if (!rec.attachments.includes(attachmentId)) {
        rec.attachments.push(attachmentId);
        if (rec.port) await this.save(rec);
      }
      if (!(await this.pid(volumeId))) await this.launch(rec, top);
      log.info({ volume: volumeId, attachment: attachmentId, port: rec.port }, 'volume exported over NBD');
      return this.connection(rec);
    });
  }

  private connection(rec: ExportRecord): VolumeConnection {
    return { type: 'nbd', host: this.opts.hostIp, port: rec.port, exportName: rec.exportName, tls: { identity: rec.identity, psk: rec.psk } };
  }

  private async save(rec: ExportRecord): Promise<void> {
    await writeFileDurable(join(this.exportDir(rec.volumeId), 'export.json'), JSON.stringify(rec), 0o600);
  }

  /** Start the daemon for `rec` (on its port, or a free one the first time), recording it. */
  private async launch(rec: ExportRecord, top: string): Promise<void> {
    const dir = this.exportDir(rec.volumeId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileDurable(join(dir, 'keys.psk'), `${rec.identity}:${rec.psk}\n`, 0o600);
    let lastErr: Error | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = rec.port || (await freePort(this.opts.hostIp));
      try {
        await this.spawnDaemon(dir, top, rec.exportName, port);
        if (rec.port !== port) { rec.port = port; }
        await this.save(rec);
        return;
      } catch (e) {
        lastErr = e as Error;
        if (rec.port || !/Address already in use/i.test(lastErr.message)) break;
      }
    }
    throw new Error(`starting the NBD export of volume ${rec.volumeId} failed: ${lastErr?.message}`);
  }

  private spawnDaemon(dir: string, top: string, exportName: string, port: number): Promise<void> {
    const args = [
      '--blockdev', `driver=qcow2,node-name=vol0,file.driver=file,file.filename=${top}${this.direct ? ',cache.direct=on,file.cache.direct=on,file.aio=native' : ''}`,
      '--object', `tls-creds-psk,id=tls0,endpoint=server,dir=${dir}`,
      '--nbd-server', `addr.type=inet,addr.host=${this.opts.hostIp},addr.port=${port},tls-creds=tls0`,
      '--export', `type=nbd,id=exp0,node-name=vol0,name=${exportName},writable=on`,
      '--chardev', `socket,id=qmp0,path=${join(dir, 'qmp.sock')},server=on,wait=off`,
      '--monitor', 'chardev=qmp0',
      '--pidfile', join(dir, 'qsd.pid'),
      '--daemonize',
    ];
    return new Promise((resolve, reject) => {
      // --daemonize: this child exits once the daemon is listening; the daemon itself lives on, detached.
      const child = spawn('qemu-storage-daemon', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.once('error', (e) => reject(new Error(`qemu-storage-daemon: ${e.message}`)));
      child.once('exit', (code) => {
        if (code === 0) resolve();
        else reject(new Error(stderr.trim().replace(/^qemu-storage-daemon: /, '') || `qemu-storage-daemon exited with ${code}`));
      });
    });
  }

  async unexport(volumeId: string, attachmentId: string, log: Logger): Promise<boolean> {
    return this.lock.run(async () => {
      const rec = await this.record(volumeId);
      if (!rec || !rec.attachments.includes(attachmentId)) return false;
      rec.attachments = rec.attachments.filter((a) => a !== attachmentId);
      if (rec.attachments.length) { await this.save(rec); return true; }
      await this.stopDaemon(volumeId);
      await rm(this.exportDir(volumeId), { recursive: true, force: true });
      log.info({ volume: volumeId, attachment: attachmentId }, 'NBD export removed');
      return true;
    });
  }

  /** Quit the daemon through QMP (it flushes and closes the image), SIGKILL if it hangs. */
  private async stopDaemon(volumeId: string): Promise<void> {
    const pid = await this.pid(volumeId);
    if (!pid) return;
    try {
      await this.withQmp(volumeId, (c) => qmp(c, 'quit'));
    } catch { /* fall through to the signal */ }
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }

  private async withQmp<T>(volumeId: string, fn: (c: QmpClient) => Promise<T>): Promise<T> {
    const c = await QmpClient.connect(join(this.exportDir(volumeId), 'qmp.sock'), { timeoutMs: 10_000, retryMs: 2000 });
    try { return await fn(c); } finally { c.close(); }
  }

  /** The node the export serves now (its top: it moves with every snapshot). */
  private async topNode(c: QmpClient): Promise<string> {
    const exps = await qmp<Array<{ id: string; 'node-name': string }>>(c, 'query-block-exports');
    const e = exps.find((x) => x.id === 'exp0');
    if (!e) throw new Error('the storage daemon has no export exp0');
    return e['node-name'];
  }

  /** Move the export onto `overlayPath` (already created over the old top's new name) at one instant. */
  async snapshot(volumeId: string, overlayPath: string): Promise<void> {
    await this.withQmp(volumeId, async (c) => {
      const top = await this.topNode(c);
      const node = `top-${randomBytes(4).toString('hex')}`;
      const cache = this.direct ? { direct: true, 'no-flush': false } : undefined;
      await qmp(c, 'blockdev-add', {
        driver: 'qcow2', 'node-name': node, ...(cache ? { cache } : {}),
        file: { driver: 'file', filename: overlayPath, ...(cache ? { cache, aio: 'native' } : {}) }, backing: null,
      });
      try {
        await qmp(c, 'blockdev-snapshot', { node: top, overlay: node });
      } catch (e) {
        await qmp(c, 'blockdev-del', { 'node-name': node }).catch(() => undefined);
        throw e;
      }
    });
  }
}
