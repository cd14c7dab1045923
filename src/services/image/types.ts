/** Glance v2 domain types. */

export const IMAGE_STATUSES = ['queued', 'saving', 'active', 'killed', 'deleted', 'pending_delete', 'deactivated', 'uploading', 'importing'] as const;
export type ImageStatus = typeof IMAGE_STATUSES[number];
export const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;
export type Visibility = typeof VISIBILITIES[number];
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'] as const;
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'] as const;
export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;
export type MemberStatus = typeof MEMBER_STATUSES[number];

/** One image as Glance v2 describes it; custom properties live in `properties`. */
export interface ImageRecord {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: Visibility;
  protected: boolean;
  os_hidden: boolean;
  /** The owning project id. */
  owner: string | null;
  /** md5 of the data, hex. */
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  size: number | null;
  virtual_size: number | null;
  min_disk: number;
  min_ram: number;
  container_format: string | null;
  disk_format: string | null;
  /** ISO-8601 UTC, millisecond precision (rendered to the second as Glance does). */
  created_at: string;
  updated_at: string;
  tags: string[];
  /** Custom properties (kernel_id, ramdisk_id, os_command_line, hw_* ...), string values only. */
  properties: Record<string, string>;
}

/** Fields a caller may give when creating an image. */
export interface ImageCreate {
  id?: string;
  name?: string | null;
  visibility?: Visibility;
  protected?: boolean;
  os_hidden?: boolean;
  owner?: string | null;
  min_disk?: number;
  min_ram?: number;
  container_format?: string | null;
  disk_format?: string | null;
  tags?: string[];
  properties?: Record<string, string>;
}

export interface ImageMember {
  image_id: string;
  member_id: string;
  status: MemberStatus;
  created_at: string;
  updated_at: string;
}

export type SortDir = 'asc' | 'desc';
export const SORT_KEYS = ['name', 'status', 'container_format', 'disk_format', 'size', 'virtual_size', 'id', 'created_at', 'updated_at',
  'min_disk', 'min_ram', 'visibility', 'owner', 'protected', 'os_hidden'] as const;
export type SortKey = typeof SORT_KEYS[number];

/** A list request after parsing the query string. */
export interface ImageListQuery {
  limit: number;
  marker?: string;
  sort: { key: SortKey; dir: SortDir }[];
  visibility?: Visibility | 'all';
  memberStatus: MemberStatus | 'all';
  osHidden: boolean;
  tags: string[];
  sizeMin?: number;
  sizeMax?: number;
  /** Base-field filters: field -> accepted rendered values (an `in:` list or one value). */
  fields: Record<string, string[]>;
  /** created_at / updated_at comparisons. */
  times: { field: 'created_at' | 'updated_at'; op: 'gt' | 'gte' | 'lt' | 'lte' | 'eq' | 'neq'; value: string }[];
  /** Custom-property exact-match filters. */
  properties: Record<string, string>;
}

/** Properties a caller can never set: computed by the service. */
export const READ_ONLY = ['id', 'status', 'checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size', 'created_at', 'updated_at',
  'self', 'file', 'schema', 'direct_url', 'stores'] as const;
/** Properties reserved by Glance that no API call may touch. */
export const RESERVED = ['location', 'deleted', 'deleted_at'] as const;
/** Standard (non-custom) fields. */
export const BASE_FIELDS = ['id', 'name', 'status', 'visibility', 'protected', 'os_hidden', 'owner', 'checksum', 'os_hash_algo', 'os_hash_value',
  'size', 'virtual_size', 'min_disk', 'min_ram', 'container_format', 'disk_format', 'created_at', 'updated_at', 'tags', 'self', 'file',
  'schema', 'locations', 'direct_url', 'stores'] as const;
