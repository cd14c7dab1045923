/** Nova's tables (migration 004_compute). */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface ComputeTables {}
