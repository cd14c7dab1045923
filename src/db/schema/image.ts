/** Glance's tables (migration 003_image). */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface ImageTables {}
