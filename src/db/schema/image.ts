/**
 * Glance's tables (migration 003_image). Sizes are bigint columns: PostgreSQL returns
 * them as strings, so readers convert with Number().
 */
export interface ImageTable {
  id: string; name: string | null; status: string; visibility: string; protected: number; os_hidden: number;
  owner: string | null; checksum: string | null; os_hash_algo: string | null; os_hash_value: string | null;
  size: number | string | null; virtual_size: number | string | null; min_disk: number; min_ram: number;
  container_format: string | null; disk_format: string | null;
  /** JSON object of custom properties (string values). */
  properties: string;
  created_at: string; updated_at: string;
}
export interface ImageTagTable { image_id: string; tag: string }
export interface ImageMemberTable { image_id: string; member_id: string; status: string; created_at: string; updated_at: string }

export interface ImageTables {
  images: ImageTable;
  image_tags: ImageTagTable;
  image_members: ImageMemberTable;
}
