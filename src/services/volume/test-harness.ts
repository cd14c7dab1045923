/**
 * For the volume service's unit tests only: a fresh database, a real nats-server, the
 * volume API behind the real API server with three fixed callers, and a fake pool that
 * answers the pool's bus subjects from memory (the real pool is agent/storage/volumes/).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TokenValidator } from '../../api/context.ts';
import { USERS as SHARED_USERS } from '../compute/routes/test-harness.ts';
import { createApiServer } from '../../api/server.ts';
import { Bus } from '../../bus/index.ts';
import { VolumePoolReported, volumeSubjects } from '../../bus/volume.ts';
import { NatsChild } from '../../cli/nats.ts';
import { NotFound, Unauthorized } from '../../common/errors.ts';
import { createLogger } from '../../common/logger.ts';
import type { OpenDatabase } from '../../db/index.ts';
import { freshDatabase } from '../../db/test-database.ts';
import { volumeMount } from './routes.ts';
import { VolumeService } from './service.ts';
import { DEFAULT_VOLUME_CONFIG, type VolumeImage, type VolumeImageApi } from './types.ts';

/** The callers of every service's route tests: admin (p-admin), alice (p-one), bob (p-two). */
export const USERS = { admin: SHARED_USERS.admin!, alice: SHARED_USERS.alice!, bob: SHARED_USERS.bob! };
const validator: TokenValidator = {
  validate: async (token) => { const u = Object.values(USERS).find((x) => x.token === token); if (u) return u; throw new Unauthorized(); },
};

const GiB = 1024 ** 3;

/** What the fake pool holds and was asked. */
export class FakePool {
  volumes = new Map<string, number>();
  snapshots = new Set<string>();
  backups = new Set<string>();
  exports = new Map<string, string>();
  calls: string[] = [];
  /** Make the next calls of a verb fail with this message. */
  failing = new Map<string, string>();
  /** Hold create replies until released (to see transitional statuses). */
  hold = false;
  private held: (() => void)[] = [];

  constructor(readonly host: string, readonly bus: Bus) {}

  release(): void { this.hold = false; for (const r of this.held.splice(0)) r(); }

  serve(): { unsubscribe(): void }[] {
    const s = volumeSubjects(this.host);
    const guard = (verb: string) => { this.calls.push(verb); const f = this.failing.get(verb); if (f) throw new Error(f); };
    return [
      this.bus.serve(s.create, async (r) => {
        guard('create');
        if (this.hold) await new Promise<void>((res) => this.held.push(res));
        const sizeGb = r.source.kind === 'image' ? (r.source.image.id === 'img-big' ? 5 : 1) : r.sizeGb;
        if (sizeGb > r.sizeGb) throw new Error(`image of ${sizeGb} GiB does not fit in ${r.sizeGb} GiB`);
        this.volumes.set(r.volumeId, r.sizeGb);
        return { sizeGb };
      }),
      this.bus.serve(s.delete, (r) => { guard('delete'); return { deleted: this.volumes.delete(r.volumeId) }; }),
      this.bus.serve(s.extend, (r) => { guard('extend'); this.volumes.set(r.volumeId, r.sizeGb); return { sizeGb: r.sizeGb, online: this.exports.size > 0 }; }),
      this.bus.serve(s.snapshotCreate, (r) => { guard('snapshot-create'); this.snapshots.add(r.snapshotId); return { sizeGb: this.volumes.get(r.volumeId) ?? 0, online: false }; }),
      this.bus.serve(s.snapshotDelete, (r) => { guard('snapshot-delete'); return { deleted: this.snapshots.delete(r.snapshotId) }; }),
      this.bus.serve(s.export, (r) => {
        guard('export');
        this.exports.set(r.attachmentId, r.volumeId);
        return r.instanceHost === this.host ? { type: 'file' as const, path: `/pool/${r.volumeId}.qcow2`, format: 'qcow2' as const }
          : { type: 'nbd' as const, host: '10.0.0.1', port: 10809, exportName: r.volumeId, tls: { identity: r.attachmentId, psk: 'secret' } };
      }),
      this.bus.serve(s.unexport, (r) => { guard('unexport'); return { removed: this.exports.delete(r.attachmentId) }; }),
      this.bus.serve(s.backup, (r) => { guard('backup'); this.backups.add(r.backupId); return { sizeBytes: (this.volumes.get(r.volumeId) ?? 0) * GiB, objectCount: 3 }; }),
      this.bus.serve(s.restore, (r) => { guard('restore'); return { sizeGb: this.volumes.get(r.volumeId) ?? 0 }; }),
      this.bus.serve(s.backupDelete, (r) => { guard('backup-delete'); return { deleted: this.backups.delete(r.backupId) }; }),
      this.bus.serve(s.uploadImage, (r) => { guard('upload-image'); return { size: (this.volumes.get(r.volumeId) ?? 0) * GiB }; }),
    ];
  }

  report(): void {
    this.bus.publish(VolumePoolReported, {
      host: this.host, backend: 'local', pool: 'pool', hostIp: '127.0.0.1', totalGb: 100, freeGb: 90, provisionedGb: [...this.volumes.values()].reduce((a, b) => a + b, 0),
      volumes: [...this.volumes.keys()], snapshots: [...this.snapshots], backupDir: '/data/backups',
    });
  }
}

export const IMAGES: Record<string, VolumeImage> = {
  'img-tiny': { id: 'img-tiny', name: 'tiny', status: 'active', diskFormat: 'qcow2', containerFormat: 'bare', size: 20 << 20, virtualSize: 1 * GiB,
    minDisk: 0, minRam: 0, sha512: 'abc', properties: { kernel_id: 'k-1', ramdisk_id: 'r-1', hw_machine_type: 'microvm' } },
  'img-big': { id: 'img-big', name: 'big', status: 'active', diskFormat: 'qcow2', containerFormat: 'bare', size: 30 << 20, virtualSize: 5 * GiB,
    minDisk: 0, minRam: 0, sha512: null, properties: {} },
};

export function fakeImages(): VolumeImageApi & { created: string[] } {
  const created: string[] = [];
  return {
    created,
    async get(_auth, id) { const i = IMAGES[id]; if (!i) throw new NotFound(`Image ${id} not found`); return i; },
    fileUrl: (id) => `http://images/${id}/file`,
    localPath: () => null,
    async create(_auth, f) { const id = `new-${created.length}`; created.push(`${id}:${f.name}`); return id; },
    async discard() { /* nothing */ },
  };
}

export interface Harness {
  app: ReturnType<typeof createApiServer>; svc: VolumeService; pool: FakePool; bus: Bus; dbh: OpenDatabase; images: ReturnType<typeof fakeImages>;
  call(who: keyof typeof USERS, method: string, path: string, body?: unknown, version?: string): Promise<{ status: number; body: any }>;
  /** Poll a volume until its status is not transitional (or `want`). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export async function harness(): Promise<Harness> {
  const log = createLogger('silent');
  const nats = new NatsChild(mkdtempSync(join(tmpdir(), 'vol-nats-')), log);
  const bus = await Bus.connect(await nats.start(), log);
  const dbh = await freshDatabase();
  const images = fakeImages();
  const svc = new VolumeService({ db: dbh.db, bus, log, cfg: { ...DEFAULT_VOLUME_CONFIG, quotas: { ...DEFAULT_VOLUME_CONFIG.quotas } }, images });
  await svc.start();
  const pool = new FakePool('host1', bus);
  const subs = pool.serve();
  await svc.manager.onReport({ host: 'host1', backend: 'local', pool: 'pool', hostIp: '127.0.0.1', totalGb: 100, freeGb: 90, provisionedGb: 0, volumes: [], snapshots: [], backupDir: '/data/backups' });
  const app = createApiServer({ log, validator, maxBodyBytes: 1 << 20 }, [volumeMount(svc)]);
  await app.ready();
  return {
    app, svc, pool, bus, dbh, images,
    async call(who, method, path, body, version) {
      const res = await app.inject({
        method: method as 'GET', url: `/volume/v3${path}`, payload: body === undefined ? undefined : JSON.stringify(body),
        headers: { 'x-auth-token': USERS[who].token, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(version ? { 'openstack-api-version': `volume ${version}` } : {}) },
      });
      return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : {} };
    },
    settle: () => svc.manager.idle(),
    async close() {
      pool.release();
      for (const s of subs) s.unsubscribe();
      await svc.stop();
      await app.close();
      await bus.close();
      await dbh.close();
      await nats.stop();
    },
  };
}
