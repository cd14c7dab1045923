import type { Db } from '../../db/index.ts';
import type { ImageTable } from '../../db/schema/image.ts';
import type { ImageMember, ImageRecord, ImageStatus, MemberStatus, Visibility } from './types.ts';

/** SQL for images. Every function takes the Kysely handle, so it runs inside a transaction too. */

const b = (n: number): boolean => Number(n) === 1;
const n = (v: boolean): number => (v ? 1 : 0);
const num = (v: number | string | null): number | null => (v === null ? null : Number(v));
const props = (s: string): Record<string, string> => {
  try {
    const v: unknown = JSON.parse(s);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => typeof x === 'string')) as Record<string, string>;
  } catch { return {}; }
};

function toRecord(r: ImageTable, tags: string[]): ImageRecord {
  return {
    id: r.id, name: r.name, status: r.status as ImageStatus, visibility: r.visibility as Visibility, protected: b(r.protected),
    os_hidden: b(r.os_hidden), owner: r.owner, checksum: r.checksum, os_hash_algo: r.os_hash_algo, os_hash_value: r.os_hash_value,
    size: num(r.size), virtual_size: num(r.virtual_size), min_disk: Number(r.min_disk), min_ram: Number(r.min_ram),
    container_format: r.container_format, disk_format: r.disk_format, created_at: r.created_at, updated_at: r.updated_at,
    tags, properties: props(r.properties),
  };
}

function toRow(i: ImageRecord): ImageTable {
  return {
    id: i.id, name: i.name, status: i.status, visibility: i.visibility, protected: n(i.protected), os_hidden: n(i.os_hidden),
    owner: i.owner, checksum: i.checksum, os_hash_algo: i.os_hash_algo, os_hash_value: i.os_hash_value, size: i.size,
    virtual_size: i.virtual_size, min_disk: i.min_disk, min_ram: i.min_ram, container_format: i.container_format,
    disk_format: i.disk_format, properties: JSON.stringify(i.properties), created_at: i.created_at, updated_at: i.updated_at,
  };
}

async function withTags(db: Db, rows: ImageTable[]): Promise<ImageRecord[]> {
  if (rows.length === 0) return [];
  const by = new Map<string, string[]>();
  // Chunk the IN list: SQLite limits bound parameters per statement.
  for (let i = 0; i < rows.length; i += 500) {
    const ids = rows.slice(i, i + 500).map((r) => r.id);
    for (const t of await db.selectFrom('image_tags').selectAll().where('image_id', 'in', ids).orderBy('tag').execute()) {
      (by.get(t.image_id) ?? by.set(t.image_id, []).get(t.image_id)!).push(t.tag);
    }
  }
  return rows.map((r) => toRecord(r, by.get(r.id) ?? []));
}

export async function insertImage(db: Db, i: ImageRecord): Promise<void> {
  await db.insertInto('images').values(toRow(i)).execute();
  await setTags(db, i.id, i.tags);
}

/** Write every mutable column (and the tags) of an image. */
export async function updateImage(db: Db, i: ImageRecord): Promise<void> {
  const { id: _id, created_at: _c, ...rest } = toRow(i);
  await db.updateTable('images').set(rest).where('id', '=', i.id).execute();
  await setTags(db, i.id, i.tags);
}

export async function setTags(db: Db, id: string, tags: string[]): Promise<void> {
  await db.deleteFrom('image_tags').where('image_id', '=', id).execute();
  if (tags.length) await db.insertInto('image_tags').values(tags.map((tag) => ({ image_id: id, tag }))).execute();
}

export async function getImage(db: Db, id: string): Promise<ImageRecord | undefined> {
  const r = await db.selectFrom('images').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? (await withTags(db, [r]))[0] : undefined;
}

/** Move an image from one status to another only if it is still in `from`; true when it moved. */
export async function transition(db: Db, id: string, from: ImageStatus[], to: ImageStatus, set: Partial<ImageTable> = {}, at: string): Promise<boolean> {
  const r = await db.updateTable('images').set({ ...set, status: to, updated_at: at }).where('id', '=', id).where('status', 'in', from).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function deleteImage(db: Db, id: string): Promise<void> {
  await db.deleteFrom('image_members').where('image_id', '=', id).execute();
  await db.deleteFrom('image_tags').where('image_id', '=', id).execute();
  await db.deleteFrom('images').where('id', '=', id).execute();
}

/**
 * Candidate images for a listing by `project` (admins: undefined = every image): the
 * project's own, public and community images, and shared images it is a member of.
 * Finer visibility rules and filters are applied by the service.
 */
export async function candidateImages(db: Db, project: string | undefined): Promise<ImageRecord[]> {
  let q = db.selectFrom('images').selectAll();
  if (project !== undefined) {
    q = q.where((eb) => eb.or([
      eb('owner', '=', project),
      eb('visibility', 'in', ['public', 'community']),
      eb('id', 'in', eb.selectFrom('image_members').select('image_id').where('member_id', '=', project)),
    ]));
  }
  return withTags(db, await q.execute());
}

export async function listByStatus(db: Db, status: ImageStatus): Promise<ImageRecord[]> {
  return withTags(db, await db.selectFrom('images').selectAll().where('status', '=', status).execute());
}

export async function findByName(db: Db, name: string): Promise<ImageRecord[]> {
  return withTags(db, await db.selectFrom('images').selectAll().where('name', '=', name).orderBy('created_at').execute());
}

// Members
const toMember = (r: { image_id: string; member_id: string; status: string; created_at: string; updated_at: string }): ImageMember => ({
  image_id: r.image_id, member_id: r.member_id, status: r.status as MemberStatus, created_at: r.created_at, updated_at: r.updated_at,
});
export async function listMembers(db: Db, imageId: string): Promise<ImageMember[]> {
  return (await db.selectFrom('image_members').selectAll().where('image_id', '=', imageId).orderBy('created_at').execute()).map(toMember);
}
/** Membership rows of one project for many images. */
export async function membershipsOf(db: Db, project: string): Promise<Map<string, MemberStatus>> {
  const rows = await db.selectFrom('image_members').select(['image_id', 'status']).where('member_id', '=', project).execute();
  return new Map(rows.map((r) => [r.image_id, r.status as MemberStatus]));
}
export async function getMember(db: Db, imageId: string, memberId: string): Promise<ImageMember | undefined> {
  const r = await db.selectFrom('image_members').selectAll().where('image_id', '=', imageId).where('member_id', '=', memberId).executeTakeFirst();
  return r && toMember(r);
}
export async function insertMember(db: Db, m: ImageMember): Promise<void> {
  await db.insertInto('image_members').values(m).execute();
}
export async function updateMember(db: Db, m: ImageMember): Promise<void> {
  await db.updateTable('image_members').set({ status: m.status, updated_at: m.updated_at }).where('image_id', '=', m.image_id).where('member_id', '=', m.member_id).execute();
}
export async function deleteMember(db: Db, imageId: string, memberId: string): Promise<void> {
  await db.deleteFrom('image_members').where('image_id', '=', imageId).where('member_id', '=', memberId).execute();
}
