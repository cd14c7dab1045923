/**
 * Live operations and NBD exports with real QEMU processes: qemu-storage-daemon as the
 * pool's NBD server, qemu-img / qemu-io as NBD clients with and without the PSK, and a
 * second storage daemon standing in for an instance's QEMU that holds a volume through a
 * file connection (the LiveVolumeOps the hypervisor driver implements, done here over QMP
 * the same way: blockdev-add with backing null + blockdev-snapshot, block_resize).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import type { ImageRef } from '../../../bus/compute.ts';
import type { VolumeConnection } from '../../../bus/volume.ts';
import { QmpClient } from '../../hypervisor/qemu/qmp.ts';
import type { LiveVolumeOps } from '../../volume-agent.ts';
import { ImageCache } from '../image-cache.ts';
import { LocalQcow2Pool } from './local-pool.ts';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const log = pino({ level: 'silent' });
let dir: string;
const started: number[] = [];

before(() => { dir = mkdtempSync(join(tmpdir(), 'volexp-')); });
after(() => {
  for (const pid of started) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  rmSync(dir, { recursive: true, force: true });
});

/** A stand-in for the instance QEMU on this host: a storage daemon holding one volume file. */
class FakeInstance implements LiveVolumeOps {
  held = new Map<string, { sock: string; pid: number }>();
  calls: string[] = [];
  async hold(volumeId: string, path: string) {
    const sock = join(dir, `inst-${volumeId}.sock`);
    const pidfile = join(dir, `inst-${volumeId}.pid`);
    await new Promise<void>((resolve, reject) => {
      const c = spawn('qemu-storage-daemon', [
        '--blockdev', `driver=qcow2,node-name=disk0,file.driver=file,file.filename=${path}`,
        '--chardev', `socket,id=m,path=${sock},server=on,wait=off`, '--monitor', 'chardev=m', '--pidfile', pidfile, '--daemonize',
      ], { stdio: 'ignore' });
      c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`qsd exited ${code}`))));
    });
    const pid = Number(readFileSync(pidfile, 'utf8'));
    started.push(pid);
    this.held.set(volumeId, { sock, pid });
  }
  async release(volumeId: string) {
    const h = this.held.get(volumeId)!;
    process.kill(h.pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) { try { process.kill(h.pid, 0); await new Promise((r) => setTimeout(r, 20)); } catch { break; } }
    this.held.delete(volumeId);
  }
  async holderOf(volumeId: string) { return this.held.has(volumeId) ? `inst-${volumeId}` : undefined; }
  private async qmp(volumeId: string, name: string, args: Record<string, unknown>) {
    const c = await QmpClient.connect(this.held.get(volumeId)!.sock, { retryMs: 2000 });
    try { return await (c.execute as unknown as (n: string, a: unknown) => Promise<unknown>).call(c, name, args); } finally { c.close(); }
  }
  async snapshot(_uuid: string, volumeId: string, overlayPath: string) {
    this.calls.push(`snapshot ${volumeId}`);
    const top = this.current.get(volumeId) ?? 'disk0';
    const node = `n${this.calls.length}`;
    await this.qmp(volumeId, 'blockdev-add', { driver: 'qcow2', 'node-name': node, file: { driver: 'file', filename: overlayPath }, backing: null });
    await this.qmp(volumeId, 'blockdev-snapshot', { node: top, overlay: node });
    this.current.set(volumeId, node);
  }
  current = new Map<string, string>();
  async resize(_uuid: string, volumeId: string, bytes: number) {
    this.calls.push(`resize ${volumeId} ${bytes}`);
    await this.qmp(volumeId, 'block_resize', { 'node-name': this.current.get(volumeId) ?? 'disk0', size: bytes });
  }
  /** Write through the holder, as the guest would. */
  async write(volumeId: string, pattern: number) {
    const node = this.current.get(volumeId) ?? 'disk0';
    // The guest's writes, through the daemon's current top: a temporary NBD export on a unix socket.
    const sock = join(dir, `w-${volumeId}.nbd`);
    await this.qmp(volumeId, 'nbd-server-start', { addr: { type: 'unix', data: { path: sock } } });
    await this.qmp(volumeId, 'block-export-add', { type: 'nbd', id: 'w', 'node-name': node, writable: true, name: 'w' });
    try {
      await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x${pattern.toString(16)} 0 1M`, `nbd+unix:///w?socket=${sock}`]);
    } finally {
      await this.qmp(volumeId, 'block-export-del', { id: 'w' });
      await this.qmp(volumeId, 'nbd-server-stop', {});
    }
  }
}

function newPool(name: string, live: LiveVolumeOps) {
  const dataDir = join(dir, name);
  return new LocalQcow2Pool({
    dataDir, host: 'h1', hostIp: '127.0.0.1', cache: new ImageCache({ dataDir }), source: (ref: ImageRef) => ({ localPath: ref.localPath! }), live, log,
  });
}
const noLive: LiveVolumeOps = { holderOf: async () => undefined, snapshot: async () => undefined, resize: async () => undefined };

/** qemu-io as an NBD client, with the export's PSK (or `key` instead), running `cmds`. */
async function nbdIo(conn: VolumeConnection, cmds: string[], key?: { identity: string; psk: string } | null): Promise<string> {
  assert.equal(conn.type, 'nbd');
  if (conn.type !== 'nbd') throw new Error('not nbd');
  const creds = key === undefined ? conn.tls : key;
  const args: string[] = [];
  let opts = `driver=nbd,host=${conn.host},port=${conn.port},export=${conn.exportName}`;
  if (creds) {
    const kdir = mkdtempSync(join(dir, 'client-'));
    writeFileSync(join(kdir, 'keys.psk'), `${creds.identity}:${creds.psk}\n`, { mode: 0o600 });
    args.push('--object', `tls-creds-psk,id=tls0,endpoint=client,dir=${kdir},username=${creds.identity}`);
    opts += ',tls-creds=tls0';
  }
  const { stdout } = await run('qemu-io', [...args, '--image-opts', opts, ...cmds.flatMap((c) => ['-c', c])]);
  return stdout;
}
async function readsLocal(path: string, pattern: number): Promise<boolean> {
  const { stdout } = await run('qemu-io', ['-U', '-r', '-f', 'qcow2', '-c', `read -P 0x${pattern.toString(16)} 0 1M`, path]);
  return !/verification failed/.test(stdout);
}

test('NBD export: PSK-protected, same attachment gets the same connection, snapshot through the daemon, adopted after a restart', async () => {
  const pool = newPool('nbd', noLive);
  await pool.start();
  await pool.create('v1', 1, { kind: 'empty' }, log);
  assert.deepEqual(await pool.export({ volumeId: 'v1', attachmentId: 'a0', instanceHost: 'h1' }, log), { type: 'file', path: pool.topPath('v1'), format: 'qcow2', cache: 'none' });

  const conn = await pool.export({ volumeId: 'v1', attachmentId: 'a1', instanceHost: 'h2' }, log);
  assert.equal(conn.type, 'nbd');
  if (conn.type !== 'nbd') return;
  assert.equal(conn.host, '127.0.0.1');
  assert.ok(conn.tls && conn.tls.psk.length === 64);
  assert.deepEqual(await pool.export({ volumeId: 'v1', attachmentId: 'a1', instanceHost: 'h2' }, log), conn);
  const keys = join(pool.dir, 'exports', 'v1', 'keys.psk');
  assert.equal(statSync(keys).mode & 0o777, 0o600);

  // A client with the key reads and writes; without TLS, or with another key, it is refused.
  const out = await nbdIo(conn, ['write -P 0x5a 0 1M', 'read -P 0x5a 0 1M']);
  assert.match(out, /read 1048576\/1048576/);
  assert.doesNotMatch(out, /verification failed/);
  await assert.rejects(nbdIo(conn, ['read 0 4k'], null), /TLS/);
  await assert.rejects(nbdIo(conn, ['read 0 4k'], { identity: conn.tls!.identity, psk: 'ab'.repeat(32) }), /TLS|handshake/i);
  const { stdout: info } = await run('qemu-img', ['info', '--output=json', '--object',
    `tls-creds-psk,id=tls0,endpoint=client,dir=${join(pool.dir, 'exports', 'v1')},username=${conn.tls!.identity}`,
    '--image-opts', `driver=nbd,host=127.0.0.1,port=${conn.port},export=${conn.exportName},tls-creds=tls0`]);
  assert.equal((JSON.parse(info) as { 'virtual-size': number })['virtual-size'], GiB);

  // Held by the daemon: no delete, no restore, no extend (NBD cannot grow an attached disk).
  await assert.rejects(pool.delete('v1', log), /still attached or exported/);
  await assert.rejects(pool.extend('v1', 2, log), /cannot be extended while attached there/);

  // A snapshot while exported: consistent at one instant, the export moves onto the new top.
  assert.deepEqual(await pool.snapshotCreate('v1', 's1', log), { sizeGb: 1, online: true });
  await nbdIo(conn, ['write -P 0x6b 0 1M']);
  await pool.create('c1', 1, { kind: 'snapshot', snapshotId: 's1' }, log);
  assert.ok(await readsLocal(pool.topPath('c1'), 0x5a), 'the snapshot has the data written before it');
  assert.doesNotMatch(await nbdIo(conn, ['read -P 0x6b 0 1M']), /verification failed/);

  // The agent restarts: the daemon is adopted, the connection is the same.
  const pid = Number(readFileSync(join(pool.dir, 'exports', 'v1', 'qsd.pid'), 'utf8'));
  started.push(pid);
  const again = newPool('nbd', noLive);
  await again.start();
  assert.deepEqual(await again.export({ volumeId: 'v1', attachmentId: 'a1', instanceHost: 'h2' }, log), conn);
  assert.equal(Number(readFileSync(join(pool.dir, 'exports', 'v1', 'qsd.pid'), 'utf8')), pid);
  // The daemon died with the host: the next start serves the export again on the same port, same key.
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100; i++) { try { process.kill(pid, 0); await new Promise((r) => setTimeout(r, 20)); } catch { break; } }
  const third = newPool('nbd', noLive);
  await third.start();
  started.push(Number(readFileSync(join(pool.dir, 'exports', 'v1', 'qsd.pid'), 'utf8')));
  assert.doesNotMatch(await nbdIo(conn, ['read -P 0x6b 0 1M']), /verification failed/);

  // A second attachment (multiattach) shares the daemon; the export goes with the last one.
  await third.export({ volumeId: 'v1', attachmentId: 'a2', instanceHost: 'h3' }, log);
  assert.equal(await third.unexport('v1', 'a1', log), true);
  assert.doesNotMatch(await nbdIo(conn, ['read -P 0x6b 0 1M']), /verification failed/);
  assert.equal(await third.unexport('v1', 'a2', log), true);
  assert.equal(await third.unexport('v1', 'a2', log), false);
  await assert.rejects(nbdIo(conn, ['read 0 4k']));
  assert.equal(await third.delete('v1', log), true);
});

/** A pool with volume v1 (1 GB) held open by a stand-in instance QEMU. */
async function heldVolume(name: string) {
  const inst = new FakeInstance();
  const pool = newPool(name, inst);
  await pool.start();
  await pool.create('v1', 1, { kind: 'empty' }, log);
  await inst.hold('v1', pool.topPath('v1'));
  return { inst, pool };
}

test('a volume held by an instance QEMU on this host: snapshot and extend go through it', async () => {
  const { inst, pool } = await heldVolume('live');
  await inst.write('v1', 0x21);
  assert.deepEqual(await pool.snapshotCreate('v1', 's1', log), { sizeGb: 1, online: true });
  await inst.write('v1', 0x22);
  await pool.create('c1', 1, { kind: 'snapshot', snapshotId: 's1' }, log);
  assert.ok(await readsLocal(pool.topPath('c1'), 0x21), 'the snapshot holds what was written before it');
  assert.ok(await readsLocal(pool.topPath('v1'), 0x22), 'writes after it land in the new top, at the same path');
  // A clone of the held volume goes through the same freeze.
  await pool.create('c2', 1, { kind: 'volume', volumeId: 'v1' }, log);
  assert.ok(await readsLocal(pool.topPath('c2'), 0x22));
  assert.deepEqual(await pool.extend('v1', 2, log), { sizeGb: 2, online: true });
  assert.deepEqual(inst.calls, ['snapshot v1', 'snapshot v1', `resize v1 ${2 * GiB}`]);
  await assert.rejects(pool.delete('v1', log), /still attached/);
  await inst.release('v1');
  const { stdout } = await run('qemu-img', ['info', '--output=json', pool.topPath('v1')]);
  assert.equal((JSON.parse(stdout) as { 'virtual-size': number })['virtual-size'], 2 * GiB);
  assert.ok(await readsLocal(pool.topPath('v1'), 0x22));
});

test('recovery of a live snapshot the agent died in: the QEMU never switched, so it is undone', async () => {
  const { inst, pool } = await heldVolume('live-crash');
  // Killed after steps 1 and 2 of freeze(), before the QEMU moved: it still writes to the renamed file.
  const layer = join(pool.dir, 'layer-s1.qcow2');
  writeFileSync(join(pool.dir, 'journal', 's1.json'), JSON.stringify({ volumeId: 'v1', layerId: 's1', snapshotId: 's1', live: true }));
  renameSync(pool.topPath('v1'), layer);
  await run('qemu-img', ['create', '-q', '-u', '-f', 'qcow2', '-b', 'layer-s1.qcow2', '-F', 'qcow2', pool.topPath('v1'), String(GiB)]);
  await inst.write('v1', 0x31);
  const again = newPool('live-crash', inst);
  await again.start();
  assert.deepEqual((await again.capacity()).snapshots, []);
  assert.deepEqual(readdirSync(join(pool.dir, 'journal')), []);
  await inst.release('v1');
  assert.ok(await readsLocal(again.topPath('v1'), 0x31), 'the volume is the file the QEMU kept writing');
  const { stdout } = await run('qemu-img', ['info', '--output=json', again.topPath('v1')]);
  assert.equal((JSON.parse(stdout) as { 'backing-filename'?: string })['backing-filename'], undefined);
});
