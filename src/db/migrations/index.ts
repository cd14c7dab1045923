import type { Migration } from 'kysely';
import { m001_identity } from './001_identity.ts';

/** Every migration, in order. Names sort lexically; never rename or edit a landed one. */
export const migrations: Record<string, Migration> = {
  '001_identity': m001_identity,
};
