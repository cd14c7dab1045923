import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import { err } from './errors.ts';
import { authorize, isAdmin } from './policy.ts';
import { checkQuota } from './quotas.ts';
import * as store from './store.ts';
import type { TransferRecord, VolumeDeps } from './types.ts';
import { visibleVolume, type Ctx } from './volumes.ts';

/**
 * Volume transfers between projects: the owner creates a request (the volume becomes
 * awaiting-transfer; an auth key is shown once, only its salted hash is kept); anyone who
 * knows the id and key accepts it into their project (quotas checked there), taking the
 * volume and — unless no_snapshots — its snapshots. Deleting the request cancels it.
 */

const hash = (salt: string, key: string): string => createHash('sha256').update(`${salt}${key}`).digest('hex');

export async function createTransfer(deps: VolumeDeps, ctx: Ctx, f: { volumeId: string; name?: string; noSnapshots: boolean }): Promise<{ t: TransferRecord; authKey: string }> {
  const v = await visibleVolume(deps, ctx.auth, f.volumeId, 'volume:create_transfer');
  if (v.status !== 'available') throw err.invalidVolume(`Status of volume ${v.id} must be available, but is ${v.status}.`);
  const snaps = await store.listSnapshots(deps.db, { volumeIds: [v.id] });
  if (!f.noSnapshots && snaps.some((s) => s.status !== 'available')) throw err.invalidSnapshot('One or more of the volume\'s snapshots is not available.');
  const authKey = randomBytes(8).toString('hex');
  const salt = randomBytes(8).toString('hex');
  const t: TransferRecord = {
    id: randomUUID(), volume_id: v.id, name: f.name ?? '', salt, crypt_hash: hash(salt, authKey), source_project_id: v.project_id,
    no_snapshots: f.noSnapshots, created_at: store.now(), expires_at: null,
  };
  await deps.db.transaction().execute(async (trx) => {
    if (!(await store.updateVolume(trx, v.id, { status: 'awaiting-transfer' }, ['available']))) throw err.invalidVolume(`Status of volume ${v.id} must be available.`);
    await trx.insertInto('volume_transfers').values({ ...t, no_snapshots: t.no_snapshots ? 1 : 0 }).execute();
  });
  deps.log.info({ transfer: t.id, volume: v.id, request_id: ctx.requestId }, 'volume transfer created');
  return { t, authKey };
}

export async function visibleTransfer(deps: VolumeDeps, auth: AuthContext, id: string): Promise<TransferRecord> {
  const t = await store.getTransfer(deps.db, id);
  if (!t || (!isAdmin(auth) && t.source_project_id !== auth.projectId)) throw err.transferNotFound(id);
  authorize(auth, 'volume:get_transfer', { project_id: t.source_project_id });
  return t;
}

export async function listTransfers(deps: VolumeDeps, auth: AuthContext, allTenants: boolean): Promise<TransferRecord[]> {
  authorize(auth, 'volume:get_all_transfers', { project_id: auth.projectId });
  return store.listTransfers(deps.db, allTenants && isAdmin(auth) ? undefined : auth.projectId ?? '');
}

export async function deleteTransfer(deps: VolumeDeps, auth: AuthContext, id: string): Promise<void> {
  const t = await visibleTransfer(deps, auth, id);
  authorize(auth, 'volume:delete_transfer', { project_id: t.source_project_id });
  await deps.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('volume_transfers').where('id', '=', id).execute();
    await store.updateVolume(trx, t.volume_id, { status: 'available' }, ['awaiting-transfer']);
  });
}

export async function acceptTransfer(deps: VolumeDeps, ctx: Ctx, id: string, authKey: string): Promise<{ id: string; name: string; volume_id: string }> {
  const auth = ctx.auth;
  authorize(auth, 'volume:accept_transfer', {});
  const to = auth.projectId;
  if (!to) throw err.badRequest('A project-scoped token is required to accept a transfer.');
  const t = await store.getTransfer(deps.db, id);
  if (!t) throw err.transferNotFound(id);
  const want = Buffer.from(t.crypt_hash, 'hex');
  const got = Buffer.from(hash(t.salt, authKey), 'hex');
  if (want.length !== got.length || !timingSafeEqual(want, got)) throw err.invalidAuthKey(id);
  await deps.db.transaction().execute(async (trx) => {
    const v = await store.getVolume(trx, t.volume_id);
    if (!v || v.status !== 'awaiting-transfer') throw err.invalidVolume(`Volume ${t.volume_id} is not awaiting transfer.`);
    const snaps = t.no_snapshots ? [] : await store.listSnapshots(trx, { volumeIds: [v.id] });
    await checkQuota(deps, trx, to, { volumes: 1, gigabytes: v.size + snaps.reduce((a, s) => a + s.size, 0), snapshots: snaps.length }, v.size);
    await store.updateVolume(trx, v.id, { project_id: to, user_id: auth.userId, status: 'available' }, ['awaiting-transfer']);
    if (!t.no_snapshots) await trx.updateTable('volume_snapshots').set({ project_id: to, user_id: auth.userId, updated_at: store.now() }).where('volume_id', '=', v.id).execute();
    await trx.deleteFrom('volume_transfers').where('id', '=', id).execute();
  });
  deps.log.info({ transfer: id, volume: t.volume_id, from: t.source_project_id, to, request_id: ctx.requestId }, 'volume transfer accepted');
  return { id, name: t.name, volume_id: t.volume_id };
}
