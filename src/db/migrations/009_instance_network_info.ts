import type { Kysely, Migration } from 'kysely';

/**
 * Compute's cache of an instance's networking (Nova's instance_info_caches): its ports,
 * addresses and floating IPs as JSON, refreshed whenever the network service changes them,
 * so server views never wait on the network service.
 */
export const m009_instance_network_info: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('instances').addColumn('network_info', 'text', (c) => c.notNull().defaultTo('[]')).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('instances').dropColumn('network_info').execute();
  },
};
