import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { AuthContext } from '../../api/context.ts';
import { enforce, isAllowed } from '../../api/policy.ts';
import { BadRequest, Conflict, Forbidden, GureumError, NotFound, PayloadTooLarge } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { isUniqueViolation, type Db } from '../../db/index.ts';
import type { ByteRange, ImageStore } from './data-store.ts';
import { inspect } from './format.ts';
import './policy.ts';
import * as store from './store.ts';
import {
  BASE_FIELDS, CONTAINER_FORMATS, DISK_FORMATS, MEMBER_STATUSES, READ_ONLY, RESERVED, VISIBILITIES,
  type ImageCreate, type ImageListQuery, type ImageMember, type ImageRecord, type MemberStatus, type SortKey, type Visibility,
} from './types.ts';

export interface ImageServiceOptions {
  /** Largest image accepted, in bytes (Glance's image_size_cap; default 1 TiB). */
  maxImageSize?: number;
  /** Most tags per image (Glance's image_tag_quota). */
  maxTags?: number;
  /** Most members per image (Glance's image_member_quota). */
  maxMembers?: number;
}

/** One JSON-patch operation on an image (already normalised from either patch media type). */
export interface PatchOp { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown }

export interface Download { image: ImageRecord; stream: Readable | null; range?: ByteRange }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const now = (): string => new Date().toISOString();
const isAdmin = (a: AuthContext): boolean => a.roles.includes('admin');
const base = new Set<string>(BASE_FIELDS);
const readOnly = new Set<string>(READ_ONLY);
const reserved = new Set<string>(RESERVED);

/** 403 for properties no caller may set (computed, reserved, os_glance_*). */
function checkSettable(key: string): void {
  if (readOnly.has(key)) throw new Forbidden(`Attribute '${key}' is read-only.`);
  if (reserved.has(key)) throw new Forbidden(`Attribute '${key}' is reserved.`);
  if (key.startsWith('os_glance')) throw new Forbidden(`Attribute '${key}' is reserved.`);
  if (key === 'locations') throw new Forbidden('It\'s not allowed to update locations if locations are invisible.');
}

function checkCustom(key: string, value: unknown): string {
  if (key.length === 0 || key.length > 255) throw new BadRequest(`Property key '${key.slice(0, 64)}' must be 1 to 255 characters.`);
  if (typeof value !== 'string') throw new BadRequest(`Provided object does not match schema 'image': ${JSON.stringify(value)} is not of type 'string' (property '${key}').`);
  if (value.length > 65535) throw new BadRequest(`Property '${key}' is too long.`);
  return value;
}

function checkTag(t: unknown): string {
  if (typeof t !== 'string' || t.length === 0 || t.length > 255) throw new BadRequest(`Invalid tag: tags are strings of 1 to 255 characters.`);
  return t;
}

const nonNegInt = (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) throw new BadRequest(`Invalid value for '${field}': expected a non-negative integer.`);
  return v;
};
const bool = (field: string, v: unknown): boolean => {
  if (typeof v !== 'boolean') throw new BadRequest(`Invalid value for '${field}': expected a boolean.`);
  return v;
};
const oneOf = (field: string, allowed: readonly string[], v: unknown, nullable: boolean): string | null => {
  if (v === null && nullable) return null;
  if (typeof v !== 'string' || !allowed.includes(v)) throw new BadRequest(`Invalid value '${String(v)}' for '${field}': must be one of ${allowed.join(', ')}.`);
  return v;
};

/**
 * Glance v2 rules: visibility, ownership, the image status machine (queued → saving →
 * active, killed on a failed upload, deactivated ↔ active), members and tags. The HTTP
 * routes and other services (compute's snapshots, `gureum up`'s built-in images) call it.
 */
export class ImageService {
  readonly maxImageSize: number;
  private readonly maxTags: number;
  private readonly maxMembers: number;

  constructor(readonly db: Db, readonly data: ImageStore, private readonly log: Logger, opts: ImageServiceOptions = {}) {
    this.maxImageSize = opts.maxImageSize ?? 1024 ** 4;
    this.maxTags = opts.maxTags ?? 128;
    this.maxMembers = opts.maxMembers ?? 128;
  }

  /**
   * Reconcile after a crash: an upload cannot survive its process, so images left in
   * `saving` go back to `queued` with any data removed, and partial files are dropped.
   * (With several controllers sharing a database, only the one that ran the upload
   * should do this; today a controller restart resets every `saving` image.)
   */
  async start(): Promise<void> {
    await this.data.cleanup();
    for (const img of await store.listByStatus(this.db, 'saving')) {
      await this.data.delete(img.id);
      const moved = await store.transition(this.db, img.id, ['saving'], 'queued', {
        size: null, checksum: null, os_hash_algo: null, os_hash_value: null, virtual_size: null,
      }, now());
      if (moved) this.log.warn({ image: img.id }, 'upload interrupted by a restart: image back to queued');
    }
  }

  // ---- visibility ----

  /** Whether `auth` may see `img` at all (404 otherwise). */
  private async visible(auth: AuthContext, img: ImageRecord): Promise<boolean> {
    if (isAdmin(auth)) return true;
    if (auth.projectId !== undefined && img.owner === auth.projectId) return true;
    if (img.visibility === 'public' || img.visibility === 'community') return true;
    if (img.visibility === 'shared' && auth.projectId !== undefined) {
      return (await store.getMember(this.db, img.id, auth.projectId)) !== undefined;
    }
    return false;
  }

  private notFound(id: string): NotFound { return new NotFound(`No image found with ID ${id}`, 'ImageNotFound'); }

  /** An image the caller may see, or NotFound. */
  async getImage(auth: AuthContext, id: string): Promise<ImageRecord> {
    enforce(auth, 'image:get_image');
    const img = UUID.test(id) ? await store.getImage(this.db, id) : undefined;
    if (!img || !(await this.visible(auth, img))) throw this.notFound(id);
    return img;
  }

  /** Visible and modifiable by the caller: 404 when invisible, 403 when only visible. */
  private async forWrite(auth: AuthContext, id: string, action: string): Promise<ImageRecord> {
    const img = await this.getImage(auth, id);
    if (!isAllowed(auth, action, { owner: img.owner })) throw new Forbidden(`You are not permitted to modify image ${id}.`);
    return img;
  }

  /** Images with this exact name (no visibility applied: for in-process callers). */
  async findByName(name: string): Promise<ImageRecord[]> { return store.findByName(this.db, name); }

  /** A path on this host to an active image's data, when the store is local. */
  localPath(id: string): string | null { return this.data.localPath(id); }

  // ---- listing ----

  async listImages(auth: AuthContext, q: ImageListQuery): Promise<{ images: ImageRecord[]; more: boolean }> {
    enforce(auth, 'image:get_images');
    const adminView = isAdmin(auth);
    const project = auth.projectId;
    const all = await store.candidateImages(this.db, adminView ? undefined : project ?? '');
    const memberships = project ? await store.membershipsOf(this.db, project) : new Map<string, MemberStatus>();
    const memberOk = (img: ImageRecord): boolean => {
      const s = memberships.get(img.id);
      return s !== undefined && (q.memberStatus === 'all' || s === q.memberStatus);
    };
    const own = (img: ImageRecord): boolean => project !== undefined && img.owner === project;
    const sharedOk = (img: ImageRecord): boolean => img.visibility === 'shared' && (own(img) || memberOk(img) || (adminView && !memberships.has(img.id)));
    let items = all.filter((img) => {
      switch (q.visibility) {
        case undefined:
          if (img.visibility === 'community') return own(img);
          if (img.visibility === 'public') return true;
          if (img.visibility === 'shared') return sharedOk(img);
          return own(img) || adminView;
        case 'all':
          if (img.visibility === 'shared') return sharedOk(img);
          return img.visibility !== 'private' || own(img) || adminView;
        case 'shared': return sharedOk(img);
        case 'private': return img.visibility === 'private' && (own(img) || adminView);
        default: return img.visibility === q.visibility;
      }
    });
    items = items.filter((img) => {
      if (img.os_hidden !== q.osHidden) return false;
      for (const t of q.tags) if (!img.tags.includes(t)) return false;
      if (q.sizeMin !== undefined && (img.size === null || img.size < q.sizeMin)) return false;
      if (q.sizeMax !== undefined && (img.size === null || img.size > q.sizeMax)) return false;
      for (const [field, values] of Object.entries(q.fields)) {
        const v = (img as unknown as Record<string, unknown>)[field];
        if (!values.includes(v === null || v === undefined ? '' : String(v))) return false;
      }
      for (const t of q.times) {
        const v = img[t.field];
        const ok = t.op === 'gt' ? v > t.value : t.op === 'gte' ? v >= t.value : t.op === 'lt' ? v < t.value : t.op === 'lte' ? v <= t.value : t.op === 'eq' ? v.slice(0, 19) === t.value.slice(0, 19) : v.slice(0, 19) !== t.value.slice(0, 19);
        if (!ok) return false;
      }
      for (const [k, v] of Object.entries(q.properties)) if (img.properties[k] !== v) return false;
      return true;
    });
    const keys: { key: SortKey; dir: 'asc' | 'desc' }[] = [...q.sort];
    if (!keys.some((k) => k.key === 'created_at')) keys.push({ key: 'created_at', dir: q.sort[0]?.dir ?? 'desc' });
    if (!keys.some((k) => k.key === 'id')) keys.push({ key: 'id', dir: q.sort[0]?.dir ?? 'desc' });
    items.sort((a, b) => {
      for (const { key, dir } of keys) {
        const c = compare(a[key], b[key]);
        if (c !== 0) return dir === 'asc' ? c : -c;
      }
      return 0;
    });
    let start = 0;
    if (q.marker !== undefined) {
      const i = items.findIndex((x) => x.id === q.marker);
      if (i < 0) throw new BadRequest(`marker ${q.marker} could not be found.`);
      start = i + 1;
    }
    const page = items.slice(start, start + q.limit);
    return { images: page, more: start + q.limit < items.length };
  }

  // ---- create, update, delete ----

  async createImage(auth: AuthContext, f: ImageCreate): Promise<ImageRecord> {
    enforce(auth, 'image:add_image');
    const t = now();
    const owner = f.owner !== undefined && f.owner !== null ? f.owner : auth.projectId ?? null;
    if (owner !== (auth.projectId ?? null)) enforce(auth, 'image:set_image_owner');
    const visibility = (oneOf('visibility', VISIBILITIES, f.visibility ?? 'shared', false) ?? 'shared') as Visibility;
    this.checkVisibility(auth, owner, visibility);
    if (f.id !== undefined && !UUID.test(f.id)) throw new BadRequest(`Invalid image id '${f.id}': must be a UUID.`);
    const tags = [...new Set((f.tags ?? []).map(checkTag))];
    if (tags.length > this.maxTags) throw new PayloadTooLarge(`Maximum number of tags (${this.maxTags}) exceeded.`);
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(f.properties ?? {})) {
      checkSettable(k);
      if (base.has(k)) throw new BadRequest(`Property '${k}' is a standard image attribute.`);
      properties[k] = checkCustom(k, v);
    }
    if (f.name !== undefined && f.name !== null && f.name.length > 255) throw new BadRequest('Image name is too long (255 characters at most).');
    const img: ImageRecord = {
      id: (f.id ?? randomUUID()).toLowerCase(), name: f.name ?? null, status: 'queued', visibility,
      protected: f.protected !== undefined ? bool('protected', f.protected) : false,
      os_hidden: f.os_hidden !== undefined ? bool('os_hidden', f.os_hidden) : false,
      owner, checksum: null, os_hash_algo: null, os_hash_value: null, size: null, virtual_size: null,
      min_disk: f.min_disk !== undefined ? nonNegInt('min_disk', f.min_disk) : 0,
      min_ram: f.min_ram !== undefined ? nonNegInt('min_ram', f.min_ram) : 0,
      container_format: f.container_format === undefined ? null : oneOf('container_format', CONTAINER_FORMATS, f.container_format, true),
      disk_format: f.disk_format === undefined ? null : oneOf('disk_format', DISK_FORMATS, f.disk_format, true),
      created_at: t, updated_at: t, tags, properties,
    };
    try {
      await this.db.transaction().execute((tx) => store.insertImage(tx, img));
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Image with identifier ${img.id} already exists!`);
      throw err;
    }
    this.log.info({ image: img.id, owner }, 'image created');
    return img;
  }

  private checkVisibility(auth: AuthContext, owner: string | null, v: Visibility): void {
    if (v === 'public') enforce(auth, 'image:publicize_image');
    if (v === 'community') enforce(auth, 'image:communitize_image', { owner });
  }

  /** Apply JSON-patch operations all or nothing. */
  async updateImage(auth: AuthContext, id: string, ops: PatchOp[]): Promise<ImageRecord> {
    const img = await this.forWrite(auth, id, 'image:modify_image');
    const next: ImageRecord = { ...img, tags: [...img.tags], properties: { ...img.properties } };
    for (const op of ops) this.applyOp(auth, img, next, op);
    if (next.visibility !== img.visibility) this.checkVisibility(auth, next.owner, next.visibility);
    if (next.owner !== img.owner) enforce(auth, 'image:set_image_owner');
    if (next.tags.length > this.maxTags) throw new PayloadTooLarge(`Maximum number of tags (${this.maxTags}) exceeded.`);
    next.updated_at = now();
    await this.db.transaction().execute((tx) => store.updateImage(tx, next));
    return next;
  }

  private applyOp(auth: AuthContext, before: ImageRecord, img: ImageRecord, op: PatchOp): void {
    const m = /^\/([^/]+)$/.exec(op.path);
    if (!m) throw new BadRequest(`Invalid JSON pointer for this resource: '${op.path}'`);
    const key = m[1]!.replaceAll('~1', '/').replaceAll('~0', '~');
    checkSettable(key);
    if ((op.op === 'add' || op.op === 'replace') && !('value' in op)) throw new BadRequest(`Operation '${op.op}' requires a value.`);
    if (base.has(key)) {
      if (op.op === 'remove') throw new Forbidden(`Properties ${key} cannot be removed.`);
      const v = op.value;
      switch (key) {
        case 'name':
          if (v !== null && (typeof v !== 'string' || v.length > 255)) throw new BadRequest(`Invalid value for 'name'.`);
          img.name = v; break;
        case 'visibility': img.visibility = oneOf('visibility', VISIBILITIES, v, false) as Visibility; break;
        case 'protected': img.protected = bool('protected', v); break;
        case 'os_hidden': img.os_hidden = bool('os_hidden', v); break;
        case 'min_disk': img.min_disk = nonNegInt('min_disk', v); break;
        case 'min_ram': img.min_ram = nonNegInt('min_ram', v); break;
        case 'owner':
          if (v !== null && (typeof v !== 'string' || v.length > 255)) throw new BadRequest(`Invalid value for 'owner'.`);
          if (!isAdmin(auth) && v !== before.owner) throw new Forbidden('Attribute owner can be changed by an admin only.');
          img.owner = v; break;
        case 'container_format': case 'disk_format': {
          const f = oneOf(key, key === 'disk_format' ? DISK_FORMATS : CONTAINER_FORMATS, v, true);
          if (before.status !== 'queued' && f !== before[key]) throw new Forbidden(`Attribute ${key} can be only replaced for a queued image.`);
          img[key] = f; break;
        }
        case 'tags':
          if (!Array.isArray(v)) throw new BadRequest(`Invalid value for 'tags': expected an array.`);
          img.tags = [...new Set(v.map(checkTag))]; break;
        default: throw new Forbidden(`Attribute '${key}' is read-only.`);
      }
      return;
    }
    const exists = Object.prototype.hasOwnProperty.call(img.properties, key);
    if (op.op === 'remove') {
      if (!exists) throw new Conflict(`Property ${key} does not exist.`);
      delete img.properties[key];
      return;
    }
    if (op.op === 'replace' && !exists) throw new Conflict(`Property ${key} does not exist.`);
    img.properties[key] = checkCustom(key, op.value);
  }

  async deleteImage(auth: AuthContext, id: string): Promise<void> {
    const img = await this.forWrite(auth, id, 'image:delete_image');
    if (img.protected) throw new Forbidden(`Image ${id} is protected and cannot be deleted.`);
    await this.db.transaction().execute((tx) => store.deleteImage(tx, id));
    await this.data.delete(id);
    this.log.info({ image: id }, 'image deleted');
  }

  // ---- data ----

  /**
   * Stream data into a queued image: queued → saving → active. The bytes are hashed
   * (md5 checksum, sha512 os_hash_value), checked against the disk format, and only then
   * committed. Bad data: 400 and the image is queued again. An interrupted or failed
   * transfer: the image is `killed`.
   */
  async uploadImage(auth: AuthContext, id: string, data: NodeJS.ReadableStream | Readable, opts: { contentLength?: number } = {}): Promise<ImageRecord> {
    const img = await this.forWrite(auth, id, 'image:upload_image');
    if (!img.disk_format || !img.container_format) {
      throw new BadRequest('Properties disk_format, container_format must be set prior to saving data.');
    }
    if (opts.contentLength !== undefined && opts.contentLength > this.maxImageSize) {
      throw new PayloadTooLarge(`Image exceeds the image size limit of ${this.maxImageSize} bytes.`);
    }
    if (!(await store.transition(this.db, id, ['queued'], 'saving', {}, now()))) {
      const cur = await store.getImage(this.db, id);
      throw new Conflict(`Image status transition from ${cur?.status ?? 'deleted'} to saving is not allowed`);
    }
    let virtualSize: number | null = null;
    try {
      const r = await this.data.put(id, data, {
        maxBytes: this.maxImageSize,
        check: (s) => { virtualSize = inspect(img.disk_format, s); },
      });
      const done = await store.transition(this.db, id, ['saving'], 'active', {
        size: r.size, checksum: r.md5, os_hash_algo: 'sha512', os_hash_value: r.sha512, virtual_size: virtualSize,
      }, now());
      if (!done) {
        await this.data.delete(id);
        throw new GureumError(410, `Image ${id} could not be found after upload. The image may have been deleted during the upload.`);
      }
      this.log.info({ image: id, size: r.size }, 'image uploaded');
    } catch (err) {
      const bad = err instanceof GureumError && (err.status === 400 || err.status === 413);
      const to = bad ? 'queued' : 'killed';
      await store.transition(this.db, id, ['saving'], to, {}, now()).catch(() => false);
      this.log.warn({ image: id, err: err instanceof Error ? err.message : String(err), status: to }, 'image upload failed');
      if (err instanceof GureumError) throw err;
      throw new GureumError(400, 'Image upload failed: the data could not be stored (the transfer was interrupted).');
    }
    return (await store.getImage(this.db, id))!;
  }

  /** The image's data (or a byte range); stream is null when the image has none yet. */
  async download(auth: AuthContext, id: string, range?: { start?: number; end?: number; suffix?: number }): Promise<Download> {
    const img = await this.getImage(auth, id);
    enforce(auth, 'image:download_image', { owner: img.owner });
    if (img.status === 'deactivated' && !isAllowed(auth, 'image:download_deactivated')) {
      throw new Forbidden('The requested image has been deactivated. Image data download is forbidden.');
    }
    if (img.status !== 'active' && img.status !== 'deactivated') return { image: img, stream: null };
    const size = img.size ?? 0;
    let r: ByteRange | undefined;
    if (range) {
      let start: number; let end: number;
      if (range.suffix !== undefined) { start = Math.max(0, size - range.suffix); end = size - 1; }
      else { start = range.start ?? 0; end = Math.min(range.end ?? size - 1, size - 1); }
      if (start > end || start >= size) throw new GureumError(416, 'Requested range not satisfiable.', undefined, { 'Content-Range': `bytes */${size}` });
      r = { start, end };
    }
    return { image: img, stream: await this.data.get(id, r), range: r };
  }

  async deactivate(auth: AuthContext, id: string): Promise<void> {
    const img = await this.getImage(auth, id);
    if (!isAllowed(auth, 'image:deactivate', { owner: img.owner })) throw new Forbidden(`You are not permitted to deactivate image ${id}.`);
    if (img.status === 'deactivated') return;
    if (!(await store.transition(this.db, id, ['active'], 'deactivated', {}, now()))) {
      throw new Forbidden(`Not allowed to deactivate image in status '${img.status}'`);
    }
  }

  async reactivate(auth: AuthContext, id: string): Promise<void> {
    const img = await this.getImage(auth, id);
    if (!isAllowed(auth, 'image:reactivate', { owner: img.owner })) throw new Forbidden(`You are not permitted to reactivate image ${id}.`);
    if (img.status === 'active') return;
    if (!(await store.transition(this.db, id, ['deactivated'], 'active', {}, now()))) {
      throw new Forbidden(`Not allowed to reactivate image in status '${img.status}'`);
    }
  }

  // ---- tags ----

  async addTag(auth: AuthContext, id: string, tag: string): Promise<void> {
    const img = await this.forWrite(auth, id, 'image:modify_image');
    checkTag(tag);
    if (img.tags.includes(tag)) return;
    if (img.tags.length >= this.maxTags) throw new PayloadTooLarge(`Maximum number of tags (${this.maxTags}) exceeded.`);
    await this.db.transaction().execute(async (tx) => {
      await store.setTags(tx, id, [...img.tags, tag]);
      await tx.updateTable('images').set({ updated_at: now() }).where('id', '=', id).execute();
    });
  }

  async deleteTag(auth: AuthContext, id: string, tag: string): Promise<void> {
    const img = await this.forWrite(auth, id, 'image:modify_image');
    if (!img.tags.includes(tag)) throw new NotFound(`Tag ${tag} not found`);
    await this.db.transaction().execute(async (tx) => {
      await store.setTags(tx, id, img.tags.filter((t) => t !== tag));
      await tx.updateTable('images').set({ updated_at: now() }).where('id', '=', id).execute();
    });
  }

  // ---- members ----

  private sharedOnly(img: ImageRecord): void {
    if (img.visibility !== 'shared') throw new Forbidden(`Only shared images have members.`);
  }

  async listMembers(auth: AuthContext, id: string): Promise<ImageMember[]> {
    const img = await this.getImage(auth, id);
    enforce(auth, 'image:get_members');
    this.sharedOnly(img);
    const all = await store.listMembers(this.db, id);
    if (isAdmin(auth) || img.owner === auth.projectId) return all;
    return all.filter((m) => m.member_id === auth.projectId);
  }

  async getMember(auth: AuthContext, id: string, memberId: string): Promise<ImageMember> {
    const img = await this.getImage(auth, id);
    enforce(auth, 'image:get_members');
    this.sharedOnly(img);
    const m = await store.getMember(this.db, id, memberId);
    if (!m || !(isAdmin(auth) || img.owner === auth.projectId || memberId === auth.projectId)) {
      throw new NotFound(`${memberId} is not a member of image ${id}`);
    }
    return m;
  }

  async addMember(auth: AuthContext, id: string, memberId: string): Promise<ImageMember> {
    const img = await this.getImage(auth, id);
    if (!isAllowed(auth, 'image:add_member', { owner: img.owner })) throw new Forbidden(`You are not permitted to modify the members of image ${id}.`);
    this.sharedOnly(img);
    if (typeof memberId !== 'string' || memberId.length === 0 || memberId.length > 255) throw new BadRequest('Invalid member id.');
    const members = await store.listMembers(this.db, id);
    if (members.some((m) => m.member_id === memberId)) throw new Conflict(`Member ${memberId} already exists for image ${id}`);
    if (members.length >= this.maxMembers) throw new PayloadTooLarge(`Maximum number of image members (${this.maxMembers}) exceeded.`);
    const t = now();
    const m: ImageMember = { image_id: id, member_id: memberId, status: 'pending', created_at: t, updated_at: t };
    try { await store.insertMember(this.db, m); } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Member ${memberId} already exists for image ${id}`);
      throw err;
    }
    return m;
  }

  async updateMember(auth: AuthContext, id: string, memberId: string, status: unknown): Promise<ImageMember> {
    const img = await this.getImage(auth, id);
    this.sharedOnly(img);
    const m = await store.getMember(this.db, id, memberId);
    if (!m || !(isAdmin(auth) || img.owner === auth.projectId || memberId === auth.projectId)) {
      throw new NotFound(`${memberId} is not a member of image ${id}`);
    }
    if (typeof status !== 'string' || !(MEMBER_STATUSES as readonly string[]).includes(status)) {
      throw new BadRequest(`Invalid status '${String(status)}': must be one of ${MEMBER_STATUSES.join(', ')}.`);
    }
    if (!isAllowed(auth, 'image:modify_member', { member_id: memberId })) {
      throw new Forbidden('Only the member project may accept or reject a shared image.');
    }
    m.status = status as MemberStatus;
    m.updated_at = now();
    await store.updateMember(this.db, m);
    return m;
  }

  async deleteMember(auth: AuthContext, id: string, memberId: string): Promise<void> {
    const img = await this.getImage(auth, id);
    this.sharedOnly(img);
    const m = await store.getMember(this.db, id, memberId);
    const canSeeMember = isAdmin(auth) || img.owner === auth.projectId || memberId === auth.projectId;
    if (!m || !canSeeMember) throw new NotFound(`${memberId} is not a member of image ${id}`);
    if (!isAllowed(auth, 'image:delete_member', { owner: img.owner })) throw new Forbidden(`You are not permitted to modify the members of image ${id}.`);
    await store.deleteMember(this.db, id, memberId);
  }
}

/** Order for sorting: nulls first, numbers numerically, booleans false < true, strings by code point. */
function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const sa = String(a); const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}
