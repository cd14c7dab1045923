import { randomUUID } from 'node:crypto';
import type { AuthContext } from '../../../api/context.ts';
import { enforce, type Target } from '../../../api/policy.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../common/errors.ts';
import { isUniqueViolation, type Db } from '../../../db/index.ts';
import './policy.ts';
import * as store from './store.ts';
import {
  NAME_MAX, READ_ONLY_KEYS,
  type Association, type AssociationBody, type ChildSortKey, type MetadefObject, type MetadefProperty, type MetadefTag,
  type Namespace, type NamespaceBody, type NamespaceDetail, type NamespaceListQuery, type ObjectBody, type Page,
  type PropertyBody, type PropertyDefinition, type ResourceType,
} from './types.ts';

const now = (): string => new Date().toISOString();
const isAdmin = (a: AuthContext): boolean => a.roles.includes('admin');
const target = (ns: Namespace): Target => ({ owner: ns.owner, visibility: ns.visibility });

// Glance's messages for the metadefs errors.
const nsNotFound = (name: string) => new NotFound(`Metadata definition namespace=${name} was not found.`, 'MetadefNamespaceNotFound');
const nsExists = (name: string) => new Conflict(`The metadata definition namespace=${name} already exists.`, 'MetadefDuplicateNamespace');
const nsProtected = (name: string) => new Forbidden(`Metadata definition namespace ${name} is protected and cannot be deleted.`);
const objNotFound = (ns: string, name: string) => new NotFound(`The metadata definition object with name=${name} was not found in namespace=${ns}.`, 'MetadefObjectNotFound');
const objExists = (ns: string, name: string) => new Conflict(`A metadata definition object with name=${name} already exists in namespace=${ns}.`, 'MetadefDuplicateObject');
const propNotFound = (ns: string, name: string) => new NotFound(`The metadata definition property with name=${name} was not found in namespace=${ns}.`, 'MetadefPropertyNotFound');
const propExists = (ns: string, name: string) => new Conflict(`A metadata definition property with name=${name} already exists in namespace=${ns}.`, 'MetadefDuplicateProperty');
const tagNotFound = (ns: string, name: string) => new NotFound(`The metadata definition tag with name=${name} was not found in namespace=${ns}.`, 'MetadefTagNotFound');
const tagExists = (ns: string, name: string) => new Conflict(
  `A metadata tag with name=${name} already exists in namespace=${ns}. (Please note that metadata tag names are case insensitive).`, 'MetadefDuplicateTag');
const rtNotFound = (name: string) => new NotFound(`The metadata definition resource-type with name=${name}, was not found.`, 'MetadefResourceTypeNotFound');
const assocNotFound = (ns: string, rt: string) => new NotFound(
  `The metadata definition resource-type association of resource-type=${rt} to namespace=${ns}, was not found.`, 'MetadefResourceTypeAssociationNotFound');
const assocExists = (ns: string, rt: string) => new Conflict(
  `The metadata definition resource-type association of resource-type=${rt} to namespace=${ns} already exists.`, 'MetadefDuplicateResourceTypeAssociation');

/** Run `fn`, turning a unique-key violation into `conflict`. */
async function unique<T>(fn: () => Promise<T>, conflict: () => Error): Promise<T> {
  try { return await fn(); } catch (err) { if (isUniqueViolation(err)) throw conflict(); throw err; }
}

/** Top-level computed fields in a body: 403, as Glance answers. */
function refuseReadOnly(body: object): void {
  for (const k of READ_ONLY_KEYS) if (k in body) throw new Forbidden(`Attribute '${k}' is read-only.`);
}

/** What JSON schema alone cannot say about a property definition. */
function checkDefinition(name: string, d: PropertyDefinition): PropertyDefinition {
  if (name.length === 0 || name.length > NAME_MAX) throw new BadRequest(`Invalid property name '${name.slice(0, 100)}': names are 1 to ${NAME_MAX} characters.`);
  if (d.pattern !== undefined) {
    try { new RegExp(d.pattern); } catch { throw new BadRequest(`Invalid pattern for property '${name}': ${d.pattern} is not a regular expression.`); }
  }
  if (d.minimum !== undefined && d.maximum !== undefined && d.minimum > d.maximum) throw new BadRequest(`Property '${name}': minimum is greater than maximum.`);
  if (d.minLength !== undefined && d.maxLength !== undefined && d.minLength > d.maxLength) throw new BadRequest(`Property '${name}': minLength is greater than maxLength.`);
  if (d.minItems !== undefined && d.maxItems !== undefined && d.minItems > d.maxItems) throw new BadRequest(`Property '${name}': minItems is greater than maxItems.`);
  return d;
}
function checkProperties(map: Record<string, PropertyDefinition> | undefined): Record<string, PropertyDefinition> {
  const out: Record<string, PropertyDefinition> = {};
  for (const [k, d] of Object.entries(map ?? {})) out[k] = checkDefinition(k, d);
  return out;
}
/** The definition part of a property body (everything but its name). */
function definitionOf(body: PropertyBody): PropertyDefinition {
  const { name, ...def } = body;
  return checkDefinition(name, def);
}

function newObject(body: ObjectBody, at: string): MetadefObject {
  return {
    name: body.name, description: body.description ?? null, required: body.required ?? [],
    properties: checkProperties(body.properties), created_at: at, updated_at: at,
  };
}

/** Sort and page a child list (objects, tags) the way Glance's list calls do. */
function pageOf<T extends { name: string; created_at: string; updated_at: string }>(
  items: T[], page: Page<ChildSortKey>, notFound: (marker: string) => Error,
): T[] {
  const dir = page.sortDir === 'asc' ? 1 : -1;
  const sorted = [...items].sort((a, b) => {
    const c = a[page.sortKey] < b[page.sortKey] ? -1 : a[page.sortKey] > b[page.sortKey] ? 1 : 0;
    return (c || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) * dir;
  });
  let start = 0;
  if (page.marker !== undefined) {
    const i = sorted.findIndex((x) => x.name === page.marker);
    if (i < 0) throw notFound(page.marker);
    start = i + 1;
  }
  return sorted.slice(start, start + page.limit);
}

/** Prefix the property names of a namespace's details (GET …/namespaces/{ns}?resource_type=…). */
function withPrefix(d: NamespaceDetail, prefix: string): NamespaceDetail {
  const rename = (m: Record<string, PropertyDefinition>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [`${prefix}${k}`, v]));
  return {
    ...d,
    properties: d.properties.map((p) => ({ ...p, name: `${prefix}${p.name}` })),
    objects: d.objects.map((o) => ({ ...o, properties: rename(o.properties), required: o.required.map((r) => `${prefix}${r}`) })),
  };
}

/**
 * Glance's metadata definitions catalog: who sees which namespace (public ones, the
 * caller's project's, and for admins all; anything else is a 404), who may change it
 * (policy.ts), protection against deletion, and the contents of a namespace.
 */
export class MetadefService {
  constructor(readonly db: Db) {}

  // ---- visibility ----

  private visible(auth: AuthContext, ns: Namespace): boolean {
    return isAdmin(auth) || ns.visibility === 'public' || ns.owner === null || (auth.projectId !== undefined && ns.owner === auth.projectId);
  }

  /** A namespace the caller may see, after the read rule `action`; 404 otherwise. */
  private async readable(auth: AuthContext, name: string, action: string): Promise<Namespace> {
    enforce(auth, action);
    const ns = await store.getNamespace(this.db, name);
    if (!ns || !this.visible(auth, ns)) throw nsNotFound(name);
    return ns;
  }

  /** A namespace the caller may see (404) and change by the rule `action` (403). */
  private async writable(auth: AuthContext, name: string, action: string): Promise<Namespace> {
    const ns = await store.getNamespace(this.db, name);
    if (!ns || !this.visible(auth, ns)) throw nsNotFound(name);
    enforce(auth, action, target(ns));
    return ns;
  }

  /** Make sure a resource type exists; creating a new one is admin-only. */
  private async ensureResourceType(db: Db, auth: AuthContext, name: string, at: string): Promise<void> {
    if (await store.getResourceType(db, name)) return;
    enforce(auth, 'image:add_metadef_resource_type');
    await unique(() => store.insertResourceType(db, { name, created_at: at, updated_at: at }),
      () => new Conflict(`The metadata definition resource-type with name=${name} was created concurrently; try again.`));
  }

  // ---- namespaces ----

  async listNamespaces(auth: AuthContext, q: NamespaceListQuery): Promise<{ namespaces: { ns: Namespace; associations: Association[] }[]; more: boolean }> {
    enforce(auth, 'image:get_metadef_namespaces');
    const project = isAdmin(auth) ? undefined : auth.projectId ?? null;
    const all = await store.listNamespaces(this.db, project, { visibility: q.visibility, resourceTypes: q.resourceTypes });
    const dir = q.sortDir === 'asc' ? 1 : -1;
    const key = (n: Namespace): string => n[q.sortKey] ?? '';
    all.sort((a, b) => {
      const c = key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
      return (c || (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0)) * dir;
    });
    let start = 0;
    if (q.marker !== undefined) {
      const i = all.findIndex((n) => n.namespace === q.marker);
      if (i < 0) throw nsNotFound(q.marker);
      start = i + 1;
    }
    const page = all.slice(start, start + q.limit);
    const assoc = await store.associationsOf(this.db, page.map((n) => n.id));
    return { namespaces: page.map((ns) => ({ ns, associations: assoc.get(ns.id) ?? [] })), more: start + q.limit < all.length };
  }

  /** A namespace with its contents; with `resourceType`, property names carry that association's prefix. */
  async getNamespace(auth: AuthContext, name: string, resourceType?: string): Promise<NamespaceDetail> {
    const ns = await this.readable(auth, name, 'image:get_metadef_namespace');
    const detail: NamespaceDetail = {
      namespace: ns,
      associations: await store.listAssociations(this.db, ns.id),
      properties: await store.listProperties(this.db, ns.id),
      objects: await store.listObjects(this.db, ns.id),
      tags: await store.listTags(this.db, ns.id),
    };
    if (resourceType) {
      const prefix = detail.associations.find((a) => a.name === resourceType)?.prefix;
      if (prefix) return withPrefix(detail, prefix);
    }
    return detail;
  }

  /** Create a namespace, with any properties, objects, tags and associations in the body: all or nothing. */
  async createNamespace(auth: AuthContext, body: NamespaceBody): Promise<NamespaceDetail> {
    enforce(auth, 'image:add_metadef_namespace');
    refuseReadOnly(body);
    const visibility = body.visibility ?? 'private';
    if (visibility === 'public') enforce(auth, 'image:publicize_metadef_namespace');
    const owner = body.owner === undefined ? auth.projectId ?? null : body.owner;
    if (owner !== (auth.projectId ?? null)) enforce(auth, 'image:set_metadef_namespace_owner');
    const at = now();
    const ns: Namespace = {
      id: randomUUID(), namespace: body.namespace, display_name: body.display_name ?? null, description: body.description ?? null,
      visibility, protected: body.protected ?? false, owner, created_at: at, updated_at: at,
    };
    const properties = Object.entries(checkProperties(body.properties)).map(([name, definition]): MetadefProperty => ({ name, definition, created_at: at, updated_at: at }));
    const objects = (body.objects ?? []).map((o) => newObject(o, at));
    const tags = (body.tags ?? []).map((t): MetadefTag => ({ name: t.name, created_at: at, updated_at: at }));
    const associations = (body.resource_type_associations ?? []).map((a: AssociationBody): Association => ({
      name: a.name, prefix: a.prefix ?? null, properties_target: a.properties_target ?? null, created_at: at, updated_at: at,
    }));
    await this.db.transaction().execute(async (tx) => {
      if (await store.getNamespace(tx, ns.namespace)) throw nsExists(ns.namespace);
      await unique(() => store.insertNamespace(tx, ns), () => nsExists(ns.namespace));
      for (const a of associations) {
        await this.ensureResourceType(tx, auth, a.name, at);
        await unique(() => store.insertAssociation(tx, ns.id, a), () => assocExists(ns.namespace, a.name));
      }
      for (const p of properties) await unique(() => store.insertProperty(tx, ns.id, p), () => propExists(ns.namespace, p.name));
      for (const o of objects) await unique(() => store.insertObject(tx, ns.id, o), () => objExists(ns.namespace, o.name));
      for (const t of tags) await unique(() => store.insertTags(tx, ns.id, [t]), () => tagExists(ns.namespace, t.name));
    });
    return { namespace: ns, associations, properties, objects, tags };
  }

  /**
   * Replace a namespace's own fields (not its contents), as Glance's PUT does: an omitted
   * display_name or description becomes null, visibility private, protected false. The
   * owner stays unless given. Renaming is allowed (409 when the name is taken).
   */
  async updateNamespace(auth: AuthContext, name: string, body: NamespaceBody): Promise<Namespace> {
    const cur = await this.writable(auth, name, 'image:modify_metadef_namespace');
    refuseReadOnly(body);
    const next: Namespace = {
      ...cur, namespace: body.namespace, display_name: body.display_name ?? null, description: body.description ?? null,
      visibility: body.visibility ?? 'private', protected: body.protected ?? false,
      owner: body.owner === undefined ? cur.owner : body.owner, updated_at: now(),
    };
    if (next.visibility === 'public' && cur.visibility !== 'public') enforce(auth, 'image:publicize_metadef_namespace');
    if (next.owner !== cur.owner) enforce(auth, 'image:set_metadef_namespace_owner');
    if (next.namespace !== cur.namespace && await store.getNamespace(this.db, next.namespace)) throw nsExists(next.namespace);
    await unique(() => store.updateNamespace(this.db, next), () => nsExists(next.namespace));
    return next;
  }

  async deleteNamespace(auth: AuthContext, name: string): Promise<void> {
    const ns = await this.writable(auth, name, 'image:delete_metadef_namespace');
    if (ns.protected) throw nsProtected(ns.namespace);
    await this.db.transaction().execute((tx) => store.deleteNamespace(tx, ns.id));
  }

  // ---- resource types ----

  async listResourceTypes(auth: AuthContext): Promise<ResourceType[]> {
    enforce(auth, 'image:list_metadef_resource_types');
    return store.listResourceTypes(this.db);
  }

  async listAssociations(auth: AuthContext, ns: string): Promise<Association[]> {
    const n = await this.readable(auth, ns, 'image:get_metadef_resource_type');
    return store.listAssociations(this.db, n.id);
  }

  /** Associate a resource type (created as a side effect when new, admins only). */
  async associate(auth: AuthContext, ns: string, body: AssociationBody): Promise<Association> {
    const n = await this.writable(auth, ns, 'image:add_metadef_resource_type_association');
    const at = now();
    const a: Association = { name: body.name, prefix: body.prefix ?? null, properties_target: body.properties_target ?? null, created_at: at, updated_at: at };
    await this.db.transaction().execute(async (tx) => {
      await this.ensureResourceType(tx, auth, a.name, at);
      if (await store.getAssociation(tx, n.id, a.name)) throw assocExists(n.namespace, a.name);
      await unique(() => store.insertAssociation(tx, n.id, a), () => assocExists(n.namespace, a.name));
      await store.touchNamespace(tx, n.id, at);
    });
    return a;
  }

  async deassociate(auth: AuthContext, ns: string, resourceType: string): Promise<void> {
    const n = await this.writable(auth, ns, 'image:remove_metadef_resource_type_association');
    if (!(await store.getResourceType(this.db, resourceType))) throw rtNotFound(resourceType);
    if (!(await store.getAssociation(this.db, n.id, resourceType))) throw assocNotFound(n.namespace, resourceType);
    if (n.protected) throw new Forbidden(`Metadata definition resource-type-association ${resourceType} is protected and cannot be deleted.`);
    await store.deleteAssociation(this.db, n.id, resourceType);
  }

  // ---- objects ----

  async listObjects(auth: AuthContext, ns: string, page: Page<ChildSortKey>): Promise<MetadefObject[]> {
    const n = await this.readable(auth, ns, 'image:get_metadef_objects');
    return pageOf(await store.listObjects(this.db, n.id), page, (m) => objNotFound(n.namespace, m));
  }

  async getObject(auth: AuthContext, ns: string, name: string): Promise<MetadefObject> {
    const n = await this.readable(auth, ns, 'image:get_metadef_object');
    const o = await store.getObject(this.db, n.id, name);
    if (!o) throw objNotFound(n.namespace, name);
    return o;
  }

  async createObject(auth: AuthContext, ns: string, body: ObjectBody): Promise<MetadefObject> {
    const n = await this.writable(auth, ns, 'image:add_metadef_object');
    refuseReadOnly(body);
    const o = newObject(body, now());
    if (await store.getObject(this.db, n.id, o.name)) throw objExists(n.namespace, o.name);
    await unique(() => store.insertObject(this.db, n.id, o), () => objExists(n.namespace, o.name));
    return o;
  }

  /** Replace an object wholesale (omitted fields are dropped); renaming allowed. */
  async updateObject(auth: AuthContext, ns: string, name: string, body: ObjectBody): Promise<MetadefObject> {
    const n = await this.writable(auth, ns, 'image:modify_metadef_object');
    refuseReadOnly(body);
    const cur = await store.getObject(this.db, n.id, name);
    if (!cur) throw objNotFound(n.namespace, name);
    const o = { ...newObject(body, now()), created_at: cur.created_at };
    if (o.name !== name && await store.getObject(this.db, n.id, o.name)) throw objExists(n.namespace, o.name);
    await unique(() => store.replaceObject(this.db, n.id, name, o), () => objExists(n.namespace, o.name));
    return o;
  }

  async deleteObject(auth: AuthContext, ns: string, name: string): Promise<void> {
    const n = await this.writable(auth, ns, 'image:delete_metadef_object');
    if (!(await store.getObject(this.db, n.id, name))) throw objNotFound(n.namespace, name);
    if (n.protected) throw new Forbidden(`Metadata definition object ${name} is protected and cannot be deleted.`);
    await store.deleteObject(this.db, n.id, name);
  }

  async deleteObjects(auth: AuthContext, ns: string): Promise<void> {
    const n = await this.writable(auth, ns, 'image:delete_metadef_objects');
    if (n.protected) throw nsProtected(n.namespace);
    await store.deleteObjects(this.db, n.id);
  }

  // ---- properties ----

  async listProperties(auth: AuthContext, ns: string): Promise<MetadefProperty[]> {
    const n = await this.readable(auth, ns, 'image:get_metadef_properties');
    return store.listProperties(this.db, n.id);
  }

  /**
   * One property. With `resourceType`, `name` carries that association's prefix, which is
   * removed before the lookup (404 when the name does not start with it).
   */
  async getProperty(auth: AuthContext, ns: string, name: string, resourceType?: string): Promise<MetadefProperty> {
    const n = await this.readable(auth, ns, 'image:get_metadef_property');
    let key = name;
    if (resourceType) {
      const a = await store.getAssociation(this.db, n.id, resourceType);
      if (!a) throw assocNotFound(n.namespace, resourceType);
      if (a.prefix) {
        if (!name.startsWith(a.prefix)) {
          throw new NotFound(`Property ${name} does not start with the expected resource type association prefix of '${a.prefix}'.`);
        }
        key = name.slice(a.prefix.length);
      }
    }
    const p = await store.getProperty(this.db, n.id, key);
    if (!p) throw propNotFound(n.namespace, key);
    return p;
  }

  async createProperty(auth: AuthContext, ns: string, body: PropertyBody): Promise<MetadefProperty> {
    const n = await this.writable(auth, ns, 'image:add_metadef_property');
    const at = now();
    const p: MetadefProperty = { name: body.name, definition: definitionOf(body), created_at: at, updated_at: at };
    if (await store.getProperty(this.db, n.id, p.name)) throw propExists(n.namespace, p.name);
    await unique(() => store.insertProperty(this.db, n.id, p), () => propExists(n.namespace, p.name));
    return p;
  }

  async updateProperty(auth: AuthContext, ns: string, name: string, body: PropertyBody): Promise<MetadefProperty> {
    const n = await this.writable(auth, ns, 'image:modify_metadef_property');
    const cur = await store.getProperty(this.db, n.id, name);
    if (!cur) throw propNotFound(n.namespace, name);
    const p: MetadefProperty = { name: body.name, definition: definitionOf(body), created_at: cur.created_at, updated_at: now() };
    if (p.name !== name && await store.getProperty(this.db, n.id, p.name)) throw propExists(n.namespace, p.name);
    await unique(() => store.replaceProperty(this.db, n.id, name, p), () => propExists(n.namespace, p.name));
    return p;
  }

  async deleteProperty(auth: AuthContext, ns: string, name: string): Promise<void> {
    const n = await this.writable(auth, ns, 'image:remove_metadef_property');
    if (!(await store.getProperty(this.db, n.id, name))) throw propNotFound(n.namespace, name);
    if (n.protected) throw new Forbidden(`Metadata definition property ${name} is protected and cannot be deleted.`);
    await store.deleteProperty(this.db, n.id, name);
  }

  async deleteProperties(auth: AuthContext, ns: string): Promise<void> {
    const n = await this.writable(auth, ns, 'image:remove_metadef_properties');
    if (n.protected) throw nsProtected(n.namespace);
    await store.deleteProperties(this.db, n.id);
  }

  // ---- tags ----

  async listTags(auth: AuthContext, ns: string, page: Page<ChildSortKey>): Promise<MetadefTag[]> {
    const n = await this.readable(auth, ns, 'image:get_metadef_tags');
    return pageOf(await store.listTags(this.db, n.id), page, (m) => tagNotFound(n.namespace, m));
  }

  async getTag(auth: AuthContext, ns: string, name: string): Promise<MetadefTag> {
    const n = await this.readable(auth, ns, 'image:get_metadef_tag');
    const t = await store.getTag(this.db, n.id, name);
    if (!t) throw tagNotFound(n.namespace, name);
    return t;
  }

  async createTag(auth: AuthContext, ns: string, name: string): Promise<MetadefTag> {
    const n = await this.writable(auth, ns, 'image:add_metadef_tag');
    if (name.length === 0 || name.length > NAME_MAX) throw new BadRequest(`Invalid tag name: tag names are 1 to ${NAME_MAX} characters.`);
    const at = now();
    const t: MetadefTag = { name, created_at: at, updated_at: at };
    if (await store.getTag(this.db, n.id, name)) throw tagExists(n.namespace, name);
    await unique(() => store.insertTags(this.db, n.id, [t]), () => tagExists(n.namespace, name));
    return t;
  }

  /**
   * Create many tags at once. Without `append` they replace every tag of the namespace;
   * with it they are added (409 when one exists). Duplicates within the request: 409.
   */
  async createTags(auth: AuthContext, ns: string, names: string[], append: boolean): Promise<MetadefTag[]> {
    const n = await this.writable(auth, ns, 'image:add_metadef_tags');
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(store.tagKey(name))) throw tagExists(n.namespace, name);
      seen.add(store.tagKey(name));
    }
    const at = now();
    const tags = names.map((name): MetadefTag => ({ name, created_at: at, updated_at: at }));
    await this.db.transaction().execute(async (tx) => {
      if (!append) await store.deleteTags(tx, n.id);
      for (const t of tags) {
        if (append && await store.getTag(tx, n.id, t.name)) throw tagExists(n.namespace, t.name);
        await unique(() => store.insertTags(tx, n.id, [t]), () => tagExists(n.namespace, t.name));
      }
    });
    return tags;
  }

  async updateTag(auth: AuthContext, ns: string, name: string, newName: string): Promise<MetadefTag> {
    const n = await this.writable(auth, ns, 'image:modify_metadef_tag');
    const cur = await store.getTag(this.db, n.id, name);
    if (!cur) throw tagNotFound(n.namespace, name);
    const at = now();
    if (store.tagKey(newName) !== store.tagKey(cur.name) && await store.getTag(this.db, n.id, newName)) throw tagExists(n.namespace, newName);
    await unique(() => store.renameTag(this.db, n.id, cur.name, newName, at), () => tagExists(n.namespace, newName));
    return { name: newName, created_at: cur.created_at, updated_at: at };
  }

  async deleteTag(auth: AuthContext, ns: string, name: string): Promise<void> {
    const n = await this.writable(auth, ns, 'image:delete_metadef_tag');
    if (!(await store.getTag(this.db, n.id, name))) throw tagNotFound(n.namespace, name);
    if (n.protected) throw new Forbidden(`Metadata definition tag ${name} is protected and cannot be deleted.`);
    await store.deleteTag(this.db, n.id, name);
  }

  async deleteTags(auth: AuthContext, ns: string): Promise<void> {
    const n = await this.writable(auth, ns, 'image:delete_metadef_tags');
    if (n.protected) throw nsProtected(n.namespace);
    await store.deleteTags(this.db, n.id);
  }
}
