import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import type { VolumeQos } from '../../bus/compute.ts';
import { err } from './errors.ts';
import { allowed, authorize, isAdmin } from './policy.ts';
import * as store from './store.ts';
import type { QosSpecRecord, VolumeDeps, VolumeTypeRecord } from './types.ts';

/**
 * Volume types (with extra specs and project access for private types), Cinder's
 * `__DEFAULT__` type, and QoS specs associated with types. Front-end QoS (consumer
 * front-end or both) reaches compute in `connect` and QEMU throttles the disk.
 */

export const DEFAULT_TYPE = '__DEFAULT__';

/** Create `__DEFAULT__` once, as Cinder's migration does. */
export async function ensureDefaultType(deps: VolumeDeps): Promise<void> {
  if (await store.getTypeByName(deps.db, DEFAULT_TYPE)) return;
  const t = store.now();
  await deps.db.insertInto('volume_types').values({
    id: randomUUID(), name: DEFAULT_TYPE, description: 'Default Volume Type', is_public: 1, extra_specs: '{}', qos_specs_id: null, created_at: t, updated_at: t,
  }).execute().catch(async (e: unknown) => { if (!(await store.getTypeByName(deps.db, DEFAULT_TYPE))) throw e; });
}

/** Whether a caller may use/see a type: public, or private with access for their project, or admin. */
async function visible(deps: VolumeDeps, auth: AuthContext, t: VolumeTypeRecord): Promise<boolean> {
  if (t.is_public || isAdmin(auth)) return true;
  return auth.projectId !== undefined && (await store.typeProjects(deps.db, t.id)).includes(auth.projectId);
}

/** A type by id or name as the caller may use it; 404 otherwise. */
export async function findType(deps: VolumeDeps, auth: AuthContext, idOrName: string): Promise<VolumeTypeRecord> {
  const t = (await store.getType(deps.db, idOrName)) ?? (await store.getTypeByName(deps.db, idOrName));
  if (!t || !(await visible(deps, auth, t))) throw err.typeNotFound(idOrName);
  return t;
}

/** The type a new volume gets when none is named. */
export async function defaultType(deps: VolumeDeps): Promise<VolumeTypeRecord> {
  const t = (await store.getTypeByName(deps.db, deps.cfg.defaultType)) ?? (await store.getTypeByName(deps.db, DEFAULT_TYPE));
  if (!t) throw err.typeNotFound(deps.cfg.defaultType);
  return t;
}

/** A type as Cinder shows it: `show` (show, list) with qos_specs_id for admins, `create` without it, `update` also without the access flag. */
export function typeView(auth: AuthContext, t: VolumeTypeRecord, kind: 'show' | 'create' | 'update' = 'show'): Record<string, unknown> {
  const admin = allowed(auth, 'volume_extension:types_extra_specs:read_sensitive');
  const out: Record<string, unknown> = {
    id: t.id, name: t.name, description: t.description || null, is_public: t.is_public,
    extra_specs: admin ? t.extra_specs : Object.fromEntries(Object.entries(t.extra_specs).filter(([k]) => ['multiattach', 'RESKEY:availability_zones', 'replication_enabled'].includes(k))),
  };
  if (kind !== 'update') out['os-volume-type-access:is_public'] = t.is_public;
  if (kind === 'show' && admin) out.qos_specs_id = t.qos_specs_id;
  return out;
}

export async function listTypes(deps: VolumeDeps, auth: AuthContext, isPublic?: boolean | 'all'): Promise<VolumeTypeRecord[]> {
  authorize(auth, 'volume_extension:type_get_all');
  const out: VolumeTypeRecord[] = [];
  for (const t of await store.listTypes(deps.db)) {
    if (!(await visible(deps, auth, t))) continue;
    // Cinder: non-admins see public types (and private ones shared with them); admins filter with is_public.
    if (isAdmin(auth) && isPublic !== 'all' && isPublic !== undefined && t.is_public !== isPublic) continue;
    if (isAdmin(auth) && isPublic === undefined && !t.is_public) continue;
    out.push(t);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const SPEC_KEY = /^[\w.:\-/ ]{1,255}$/;
function checkSpecs(specs: Record<string, string>): void {
  for (const [k, v] of Object.entries(specs)) {
    if (!SPEC_KEY.test(k)) throw err.invalidInput(`Invalid extra_specs key: ${k}`);
    if (typeof v !== 'string' || v.length > 255) throw err.invalidInput(`Invalid extra_specs value for ${k}`);
  }
}

export async function createType(deps: VolumeDeps, auth: AuthContext, f: { name: string; description?: string; isPublic: boolean; extraSpecs: Record<string, string> }): Promise<VolumeTypeRecord> {
  authorize(auth, 'volume_extension:types_manage');
  const name = f.name.trim();
  if (name === '' || name.length > 255) throw err.invalidType('Volume type name can not be empty.');
  checkSpecs(f.extraSpecs);
  if (await store.getTypeByName(deps.db, name)) throw err.typeExists(name);
  const t = store.now();
  const rec: VolumeTypeRecord = { id: randomUUID(), name, description: f.description ?? '', is_public: f.isPublic, extra_specs: f.extraSpecs, qos_specs_id: null, created_at: t, updated_at: t };
  await deps.db.insertInto('volume_types').values({ ...rec, is_public: rec.is_public ? 1 : 0, extra_specs: JSON.stringify(rec.extra_specs) }).execute();
  return rec;
}

export async function updateType(deps: VolumeDeps, auth: AuthContext, id: string, f: { name?: string; description?: string; isPublic?: boolean }): Promise<VolumeTypeRecord> {
  authorize(auth, 'volume_extension:types_manage');
  const t = await store.getType(deps.db, id);
  if (!t) throw err.typeNotFound(id);
  if (f.name !== undefined) {
    const name = f.name.trim();
    if (name === '') throw err.invalidType('Volume type name can not be empty.');
    if (t.name === DEFAULT_TYPE && name !== DEFAULT_TYPE) throw err.badRequest('The default volume type cannot be renamed.');
    const other = await store.getTypeByName(deps.db, name);
    if (other && other.id !== id) throw err.typeExists(name);
  }
  await deps.db.updateTable('volume_types').set({
    ...(f.name !== undefined ? { name: f.name.trim() } : {}), ...(f.description !== undefined ? { description: f.description } : {}),
    ...(f.isPublic !== undefined ? { is_public: f.isPublic ? 1 : 0 } : {}), updated_at: store.now(),
  }).where('id', '=', id).execute();
  return (await store.getType(deps.db, id))!;
}

export async function deleteType(deps: VolumeDeps, auth: AuthContext, id: string): Promise<void> {
  authorize(auth, 'volume_extension:types_manage');
  const t = await store.getType(deps.db, id);
  if (!t) throw err.typeNotFound(id);
  if (t.name === DEFAULT_TYPE || t.name === deps.cfg.defaultType) throw err.badRequest('Default volume type can not be deleted.');
  const used = await deps.db.selectFrom('volumes').select('id').where('volume_type_id', '=', id).executeTakeFirst();
  if (used) throw err.typeInUse(id);
  await deps.db.deleteFrom('volume_types').where('id', '=', id).execute();
}

export async function setExtraSpecs(deps: VolumeDeps, auth: AuthContext, id: string, specs: Record<string, string>, replace = false): Promise<Record<string, string>> {
  authorize(auth, 'volume_extension:types_manage');
  checkSpecs(specs);
  const t = await store.getType(deps.db, id);
  if (!t) throw err.typeNotFound(id);
  const next = replace ? specs : { ...t.extra_specs, ...specs };
  await deps.db.updateTable('volume_types').set({ extra_specs: JSON.stringify(next), updated_at: store.now() }).where('id', '=', id).execute();
  return next;
}

export async function deleteExtraSpec(deps: VolumeDeps, auth: AuthContext, id: string, key: string): Promise<void> {
  authorize(auth, 'volume_extension:types_manage');
  const t = await store.getType(deps.db, id);
  if (!t) throw err.typeNotFound(id);
  if (!(key in t.extra_specs)) throw err.extraSpecNotFound(id, key);
  const next = { ...t.extra_specs };
  delete next[key];
  await deps.db.updateTable('volume_types').set({ extra_specs: JSON.stringify(next), updated_at: store.now() }).where('id', '=', id).execute();
}

export async function typeAccess(deps: VolumeDeps, auth: AuthContext, id: string): Promise<{ volume_type_id: string; project_id: string }[]> {
  authorize(auth, 'volume_extension:volume_type_access');
  const t = await store.getType(deps.db, id);
  if (!t) throw err.typeNotFound(id);
  if (t.is_public) throw err.invalidType('Access list not available for public volume types.');
  return (await store.typeProjects(deps.db, id)).map((project_id) => ({ volume_type_id: id, project_id }));
}

export async function addTypeAccess(deps: VolumeDeps, auth: AuthContext, id: string, projectId: string): Promise<void> {
  authorize(auth, 'volume_extension:volume_type_access:addProjectAccess');
  const t = await store.getType(deps.db, id);
  if (!t) throw err.typeNotFound(id);
  if (t.is_public) throw err.invalidType('Invalid volume type: Type access modification is not applicable to public volume type.');
  if ((await store.typeProjects(deps.db, id)).includes(projectId)) throw err.typeAccessExists(id, projectId);
  await deps.db.insertInto('volume_type_projects').values({ volume_type_id: id, project_id: projectId }).execute();
}

export async function removeTypeAccess(deps: VolumeDeps, auth: AuthContext, id: string, projectId: string): Promise<void> {
  authorize(auth, 'volume_extension:volume_type_access:removeProjectAccess');
  const t = await store.getType(deps.db, id);
  if (!t) throw err.typeNotFound(id);
  const res = await deps.db.deleteFrom('volume_type_projects').where('volume_type_id', '=', id).where('project_id', '=', projectId).executeTakeFirst();
  if (Number(res.numDeletedRows) === 0) throw err.typeAccessNotFound(id, projectId);
}

// ---- QoS specs ----

const QOS_KEYS: Record<string, keyof VolumeQos> = {
  total_iops_sec: 'totalIopsSec', read_iops_sec: 'readIopsSec', write_iops_sec: 'writeIopsSec',
  total_bytes_sec: 'totalBytesSec', read_bytes_sec: 'readBytesSec', write_bytes_sec: 'writeBytesSec',
};
const CONSUMERS = ['front-end', 'back-end', 'both'];

function checkQosSpecs(specs: Record<string, string>): void {
  for (const [k, v] of Object.entries(specs)) {
    if (k in QOS_KEYS && !/^\d+$/.test(v)) throw err.invalidQos(`${k} must be a non-negative integer, not '${v}'.`);
  }
}

export async function createQos(deps: VolumeDeps, auth: AuthContext, name: string, specs: Record<string, string>): Promise<QosSpecRecord> {
  authorize(auth, 'volume_extension:qos_specs_manage');
  const consumer = specs.consumer ?? 'back-end';
  const rest = { ...specs };
  delete rest.consumer;
  if (!CONSUMERS.includes(consumer)) throw err.invalidQos(`Consumer ${consumer} is not valid: it must be one of ${CONSUMERS.join(', ')}.`);
  if (name.trim() === '' || name.length > 255) throw err.invalidQos('QoS specs name must be 1 to 255 characters.');
  checkQosSpecs(rest);
  if ((await store.listQos(deps.db)).some((q) => q.name === name)) throw err.qosExists(name);
  const rec: QosSpecRecord = { id: randomUUID(), name, consumer, specs: rest, created_at: store.now() };
  await deps.db.insertInto('qos_specs').values({ ...rec, specs: JSON.stringify(rest) }).execute();
  return rec;
}

export async function getQos(deps: VolumeDeps, auth: AuthContext, id: string): Promise<QosSpecRecord> {
  authorize(auth, 'volume_extension:qos_specs_manage');
  const q = await store.getQos(deps.db, id);
  if (!q) throw err.qosNotFound(id);
  return q;
}

export async function listQos(deps: VolumeDeps, auth: AuthContext): Promise<QosSpecRecord[]> {
  authorize(auth, 'volume_extension:qos_specs_manage');
  return store.listQos(deps.db);
}

export async function setQosKeys(deps: VolumeDeps, auth: AuthContext, id: string, specs: Record<string, string>): Promise<Record<string, string>> {
  const q = await getQos(deps, auth, id);
  const next = { ...q.specs, ...specs };
  const consumer = next.consumer ?? q.consumer;
  delete next.consumer;
  if (!CONSUMERS.includes(consumer)) throw err.invalidQos(`Consumer ${consumer} is not valid: it must be one of ${CONSUMERS.join(', ')}.`);
  checkQosSpecs(next);
  await deps.db.updateTable('qos_specs').set({ specs: JSON.stringify(next), consumer }).where('id', '=', id).execute();
  return specs;
}

export async function unsetQosKeys(deps: VolumeDeps, auth: AuthContext, id: string, keys: string[]): Promise<void> {
  const q = await getQos(deps, auth, id);
  const next = { ...q.specs };
  for (const k of keys) {
    if (!(k in next)) throw err.qosKeyNotFound(id, k);
    delete next[k];
  }
  await deps.db.updateTable('qos_specs').set({ specs: JSON.stringify(next) }).where('id', '=', id).execute();
}

export async function deleteQos(deps: VolumeDeps, auth: AuthContext, id: string, force: boolean): Promise<void> {
  await getQos(deps, auth, id);
  const users = await deps.db.selectFrom('volume_types').select('id').where('qos_specs_id', '=', id).execute();
  if (users.length && !force) throw err.qosInUse(id);
  await deps.db.transaction().execute(async (trx) => {
    await trx.updateTable('volume_types').set({ qos_specs_id: null }).where('qos_specs_id', '=', id).execute();
    await trx.deleteFrom('qos_specs').where('id', '=', id).execute();
  });
}

export async function qosAssociations(deps: VolumeDeps, auth: AuthContext, id: string): Promise<{ association_type: string; name: string; id: string }[]> {
  await getQos(deps, auth, id);
  const types = await deps.db.selectFrom('volume_types').select(['id', 'name']).where('qos_specs_id', '=', id).execute();
  return types.map((t) => ({ association_type: 'volume_type', name: t.name, id: t.id }));
}

export async function associateQos(deps: VolumeDeps, auth: AuthContext, id: string, typeId: string | undefined, on: boolean): Promise<void> {
  await getQos(deps, auth, id);
  if (!typeId) throw err.invalidInput('Volume Type id must not be None.');
  const t = await store.getType(deps.db, typeId);
  if (!t) throw err.typeNotFound(typeId);
  if (on && t.qos_specs_id && t.qos_specs_id !== id) throw err.invalidType(`Type ${typeId} is already associated with another qos specs: ${t.qos_specs_id}`);
  if (!on && t.qos_specs_id !== id) return;
  await deps.db.updateTable('volume_types').set({ qos_specs_id: on ? id : null }).where('id', '=', typeId).execute();
}

export async function disassociateAllQos(deps: VolumeDeps, auth: AuthContext, id: string): Promise<void> {
  await getQos(deps, auth, id);
  await deps.db.updateTable('volume_types').set({ qos_specs_id: null }).where('qos_specs_id', '=', id).execute();
}

/** The front-end limits of a volume type (consumer front-end or both), as compute's VolumeQos. */
export async function frontEndQos(deps: VolumeDeps, typeId: string): Promise<VolumeQos | undefined> {
  const t = await store.getType(deps.db, typeId);
  const q = t?.qos_specs_id ? await store.getQos(deps.db, t.qos_specs_id) : undefined;
  if (!q || q.consumer === 'back-end') return undefined;
  const out: VolumeQos = {};
  for (const [k, field] of Object.entries(QOS_KEYS)) if (q.specs[k] !== undefined && Number(q.specs[k]) > 0) out[field] = Number(q.specs[k]);
  return Object.keys(out).length ? out : undefined;
}
