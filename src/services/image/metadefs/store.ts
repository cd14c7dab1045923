import type { Db } from '../../../db/index.ts';
import type { MetadefNamespaceTable, MetadefObjectTable } from '../../../db/schema/metadefs.ts';
import type {
  Association, MetadefObject, MetadefProperty, MetadefTag, Namespace, NsVisibility, PropertyDefinition, ResourceType,
} from './types.ts';

/** SQL for the metadefs catalog. Every function takes the Kysely handle, so it runs inside a transaction too. */

function json<T>(text: string, fallback: T): T {
  try { return JSON.parse(text) as T; } catch { return fallback; }
}

const toNamespace = (r: MetadefNamespaceTable): Namespace => ({
  id: r.id, namespace: r.namespace, display_name: r.display_name, description: r.description,
  visibility: r.visibility as NsVisibility, protected: Number(r.protected) === 1, owner: r.owner,
  created_at: r.created_at, updated_at: r.updated_at,
});
const fromNamespace = (n: Namespace): MetadefNamespaceTable => ({
  id: n.id, namespace: n.namespace, display_name: n.display_name, description: n.description, visibility: n.visibility,
  protected: n.protected ? 1 : 0, owner: n.owner, created_at: n.created_at, updated_at: n.updated_at,
});

// ---- namespaces ----

export async function getNamespace(db: Db, name: string): Promise<Namespace | undefined> {
  const r = await db.selectFrom('metadef_namespaces').selectAll().where('namespace', '=', name).executeTakeFirst();
  return r && toNamespace(r);
}

/**
 * Namespaces a project may see (admins: project undefined = all): public ones, its own,
 * and those nobody owns; narrowed by visibility and by associated resource types.
 */
export async function listNamespaces(db: Db, project: string | undefined | null, filter: { visibility?: NsVisibility; resourceTypes: string[] }): Promise<Namespace[]> {
  let q = db.selectFrom('metadef_namespaces').selectAll();
  if (project !== undefined) {
    q = q.where((eb) => eb.or([
      eb('visibility', '=', 'public'),
      eb('owner', 'is', null),
      ...(project !== null ? [eb('owner', '=', project)] : []),
    ]));
  }
  if (filter.visibility) q = q.where('visibility', '=', filter.visibility);
  if (filter.resourceTypes.length) {
    q = q.where('id', 'in', (eb) => eb.selectFrom('metadef_namespace_resource_types').select('namespace_id')
      .where('resource_type', 'in', filter.resourceTypes));
  }
  return (await q.execute()).map(toNamespace);
}

export async function insertNamespace(db: Db, n: Namespace): Promise<void> {
  await db.insertInto('metadef_namespaces').values(fromNamespace(n)).execute();
}

export async function updateNamespace(db: Db, n: Namespace): Promise<void> {
  const { id: _id, created_at: _c, ...rest } = fromNamespace(n);
  await db.updateTable('metadef_namespaces').set(rest).where('id', '=', n.id).execute();
}

export async function deleteNamespace(db: Db, id: string): Promise<void> {
  for (const t of ['metadef_tags', 'metadef_properties', 'metadef_objects', 'metadef_namespace_resource_types'] as const) {
    await db.deleteFrom(t).where('namespace_id', '=', id).execute();
  }
  await db.deleteFrom('metadef_namespaces').where('id', '=', id).execute();
}

/** Bump a namespace's updated_at when something in it changes. */
export async function touchNamespace(db: Db, id: string, at: string): Promise<void> {
  await db.updateTable('metadef_namespaces').set({ updated_at: at }).where('id', '=', id).execute();
}

// ---- resource types and associations ----

export async function listResourceTypes(db: Db): Promise<ResourceType[]> {
  return db.selectFrom('metadef_resource_types').select(['name', 'created_at', 'updated_at']).orderBy('created_at').orderBy('name').execute();
}

export async function getResourceType(db: Db, name: string): Promise<ResourceType | undefined> {
  return db.selectFrom('metadef_resource_types').select(['name', 'created_at', 'updated_at']).where('name', '=', name).executeTakeFirst();
}

export async function insertResourceType(db: Db, rt: ResourceType): Promise<void> {
  await db.insertInto('metadef_resource_types').values({ ...rt, protected: 0 }).execute();
}

const assocColumns = ['resource_type as name', 'prefix', 'properties_target', 'created_at', 'updated_at'] as const;

/** Associations of many namespaces at once (for listings), by namespace id. */
export async function associationsOf(db: Db, ids: string[]): Promise<Map<string, Association[]>> {
  const out = new Map<string, Association[]>();
  // Chunk the IN list: SQLite limits bound parameters per statement.
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db.selectFrom('metadef_namespace_resource_types').select(['namespace_id', ...assocColumns])
      .where('namespace_id', 'in', ids.slice(i, i + 500)).orderBy('created_at').orderBy('resource_type').execute();
    for (const { namespace_id, ...a } of rows) (out.get(namespace_id) ?? out.set(namespace_id, []).get(namespace_id)!).push(a);
  }
  return out;
}

export async function listAssociations(db: Db, nsId: string): Promise<Association[]> {
  return db.selectFrom('metadef_namespace_resource_types').select(assocColumns).where('namespace_id', '=', nsId)
    .orderBy('created_at').orderBy('resource_type').execute();
}

export async function getAssociation(db: Db, nsId: string, resourceType: string): Promise<Association | undefined> {
  return db.selectFrom('metadef_namespace_resource_types').select(assocColumns).where('namespace_id', '=', nsId)
    .where('resource_type', '=', resourceType).executeTakeFirst();
}

export async function insertAssociation(db: Db, nsId: string, a: Association): Promise<void> {
  await db.insertInto('metadef_namespace_resource_types').values({
    namespace_id: nsId, resource_type: a.name, prefix: a.prefix, properties_target: a.properties_target, created_at: a.created_at, updated_at: a.updated_at,
  }).execute();
}

export async function deleteAssociation(db: Db, nsId: string, resourceType: string): Promise<boolean> {
  const r = await db.deleteFrom('metadef_namespace_resource_types').where('namespace_id', '=', nsId).where('resource_type', '=', resourceType).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

// ---- objects ----

const toObject = (r: MetadefObjectTable): MetadefObject => ({
  name: r.name, description: r.description, required: json<string[]>(r.required, []),
  properties: json<Record<string, PropertyDefinition>>(r.properties, {}), created_at: r.created_at, updated_at: r.updated_at,
});
const objectRow = (nsId: string, o: MetadefObject): MetadefObjectTable => ({
  namespace_id: nsId, name: o.name, description: o.description, required: JSON.stringify(o.required),
  properties: JSON.stringify(o.properties), created_at: o.created_at, updated_at: o.updated_at,
});

export async function listObjects(db: Db, nsId: string): Promise<MetadefObject[]> {
  return (await db.selectFrom('metadef_objects').selectAll().where('namespace_id', '=', nsId).orderBy('created_at').orderBy('name').execute()).map(toObject);
}
export async function getObject(db: Db, nsId: string, name: string): Promise<MetadefObject | undefined> {
  const r = await db.selectFrom('metadef_objects').selectAll().where('namespace_id', '=', nsId).where('name', '=', name).executeTakeFirst();
  return r && toObject(r);
}
export async function insertObject(db: Db, nsId: string, o: MetadefObject): Promise<void> {
  await db.insertInto('metadef_objects').values(objectRow(nsId, o)).execute();
}
/** Replace object `oldName` (which may be renamed) with `o`. */
export async function replaceObject(db: Db, nsId: string, oldName: string, o: MetadefObject): Promise<void> {
  const { namespace_id: _n, created_at: _c, ...rest } = objectRow(nsId, o);
  await db.updateTable('metadef_objects').set(rest).where('namespace_id', '=', nsId).where('name', '=', oldName).execute();
}
export async function deleteObject(db: Db, nsId: string, name: string): Promise<boolean> {
  const r = await db.deleteFrom('metadef_objects').where('namespace_id', '=', nsId).where('name', '=', name).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
export async function deleteObjects(db: Db, nsId: string): Promise<void> {
  await db.deleteFrom('metadef_objects').where('namespace_id', '=', nsId).execute();
}

// ---- properties ----

const toProperty = (r: { name: string; definition: string; created_at: string; updated_at: string }): MetadefProperty => ({
  name: r.name, definition: json<PropertyDefinition>(r.definition, { title: r.name, type: 'string' }), created_at: r.created_at, updated_at: r.updated_at,
});

export async function listProperties(db: Db, nsId: string): Promise<MetadefProperty[]> {
  return (await db.selectFrom('metadef_properties').selectAll().where('namespace_id', '=', nsId).orderBy('created_at').orderBy('name').execute()).map(toProperty);
}
export async function getProperty(db: Db, nsId: string, name: string): Promise<MetadefProperty | undefined> {
  const r = await db.selectFrom('metadef_properties').selectAll().where('namespace_id', '=', nsId).where('name', '=', name).executeTakeFirst();
  return r && toProperty(r);
}
export async function insertProperty(db: Db, nsId: string, p: MetadefProperty): Promise<void> {
  await db.insertInto('metadef_properties').values({
    namespace_id: nsId, name: p.name, definition: JSON.stringify(p.definition), created_at: p.created_at, updated_at: p.updated_at,
  }).execute();
}
export async function replaceProperty(db: Db, nsId: string, oldName: string, p: MetadefProperty): Promise<void> {
  await db.updateTable('metadef_properties').set({ name: p.name, definition: JSON.stringify(p.definition), updated_at: p.updated_at })
    .where('namespace_id', '=', nsId).where('name', '=', oldName).execute();
}
export async function deleteProperty(db: Db, nsId: string, name: string): Promise<boolean> {
  const r = await db.deleteFrom('metadef_properties').where('namespace_id', '=', nsId).where('name', '=', name).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
export async function deleteProperties(db: Db, nsId: string): Promise<void> {
  await db.deleteFrom('metadef_properties').where('namespace_id', '=', nsId).execute();
}

// ---- tags (unique per namespace ignoring case) ----

export const tagKey = (name: string): string => name.toLowerCase();

export async function listTags(db: Db, nsId: string): Promise<MetadefTag[]> {
  return db.selectFrom('metadef_tags').select(['name', 'created_at', 'updated_at']).where('namespace_id', '=', nsId)
    .orderBy('created_at').orderBy('name').execute();
}
/** The tag whose name matches ignoring case. */
export async function getTag(db: Db, nsId: string, name: string): Promise<MetadefTag | undefined> {
  return db.selectFrom('metadef_tags').select(['name', 'created_at', 'updated_at']).where('namespace_id', '=', nsId)
    .where('name_key', '=', tagKey(name)).executeTakeFirst();
}
export async function insertTags(db: Db, nsId: string, tags: MetadefTag[]): Promise<void> {
  if (!tags.length) return;
  await db.insertInto('metadef_tags').values(tags.map((t) => ({ namespace_id: nsId, name: t.name, name_key: tagKey(t.name), created_at: t.created_at, updated_at: t.updated_at }))).execute();
}
export async function renameTag(db: Db, nsId: string, oldName: string, name: string, at: string): Promise<void> {
  await db.updateTable('metadef_tags').set({ name, name_key: tagKey(name), updated_at: at })
    .where('namespace_id', '=', nsId).where('name_key', '=', tagKey(oldName)).execute();
}
export async function deleteTag(db: Db, nsId: string, name: string): Promise<boolean> {
  const r = await db.deleteFrom('metadef_tags').where('namespace_id', '=', nsId).where('name_key', '=', tagKey(name)).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
export async function deleteTags(db: Db, nsId: string): Promise<void> {
  await db.deleteFrom('metadef_tags').where('namespace_id', '=', nsId).execute();
}
