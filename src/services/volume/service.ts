import type { AuthContext } from '../../api/context.ts';
import { VolumeManager } from './manager.ts';
import * as store from './store.ts';
import type { VolumeDeps, VolumeRecord } from './types.ts';
import { ensureDefaultType } from './volume-types.ts';
import type { VolumeOps } from './volumes.ts';

/**
 * The volume service (Cinder's API + scheduler + volume manager, on the controller): its
 * dependencies and its manager, started once (the default type, pool reports, the resumption
 * of interrupted work) and stopped with the controller. Routes and the compute adapter call
 * the operation modules with `ops`.
 */
export class VolumeService {
  readonly manager: VolumeManager;
  readonly ops: VolumeOps;

  constructor(readonly deps: VolumeDeps) {
    this.manager = new VolumeManager(deps);
    this.ops = { deps, manager: this.manager };
  }

  async start(): Promise<void> {
    await ensureDefaultType(this.deps);
    await this.manager.start();
  }

  async stop(): Promise<void> { await this.manager.stop(); }

  /** The volume type's name (views show the name). */
  async typeName(typeId: string): Promise<string> {
    return (await store.getType(this.deps.db, typeId))?.name ?? typeId;
  }

  async attachmentsOf(volumeIds: string[]) { return store.attachmentsOf(this.deps.db, { volumeIds }); }

  getVolume(id: string): Promise<VolumeRecord | undefined> { return store.getVolume(this.deps.db, id); }
}

/** The controller acting on its own behalf for a project (compute's boot-from-volume, ...). */
export function serviceAuth(projectId: string, userId = 'gureum-volume'): AuthContext {
  const now = Date.now();
  return {
    token: '', userId, userName: 'gureum-volume', userDomainId: 'default', projectId, projectDomainId: 'default',
    roles: ['admin', 'member', 'reader'], roleIds: [], methods: ['internal'], auditIds: [], issuedAt: now, expiresAt: now + 3_600_000,
  };
}
