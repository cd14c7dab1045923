import type { Migration } from 'kysely';
import { m001_identity } from './001_identity.ts';
import { m002_policies_endpoint_filter } from './002_policies_endpoint_filter.ts';

/** Every migration, in order. Names sort lexically; never rename or edit a landed one. */
export const migrations: Record<string, Migration> = {
  '001_identity': m001_identity,
  '002_policies_endpoint_filter': m002_policies_endpoint_filter,
};
