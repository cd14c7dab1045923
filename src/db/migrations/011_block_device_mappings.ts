import type { Kysely, Migration } from 'kysely';

/**
 * Nova's block_device_mapping table: how each instance's disks map to images, volumes,
 * snapshots and blank disks. Compute keeps rows with destination 'volume' (the Cinder
 * volumes of a server: attached ones, and the ones a boot from volume creates) and the
 * image row of an image-backed server is implied by instances.image_ref.
 *
 * `attach_status` persists the intent of an operation in flight ('attaching',
 * 'detaching', 'creating' while a boot-from-volume build makes the volume, 'attached'
 * once settled), so a controller or agent that dies mid-way leaves something the next
 * start completes or rolls back. `connection_info` is the connection the volume service
 * last gave for the instance's host (JSON), re-sent to the agent on unshelve and rebuild.
 * Rows are soft-deleted (deleted = 1) when the volume leaves the instance, as Nova's.
 */
export const m011_block_device_mappings: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('block_device_mappings')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
      .addColumn('instance_uuid', 'varchar(36)', (c) => c.notNull())
      .addColumn('source_type', 'varchar(16)', (c) => c.notNull())
      .addColumn('destination_type', 'varchar(16)', (c) => c.notNull())
      .addColumn('boot_index', 'integer')
      .addColumn('device_name', 'varchar(255)')
      .addColumn('volume_id', 'varchar(36)')
      .addColumn('snapshot_id', 'varchar(36)')
      .addColumn('image_id', 'varchar(36)')
      .addColumn('volume_size', 'integer')
      .addColumn('volume_type', 'varchar(255)')
      .addColumn('delete_on_termination', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('attachment_id', 'varchar(36)')
      .addColumn('tag', 'varchar(255)')
      .addColumn('attach_status', 'varchar(16)')
      .addColumn('connection_info', 'text')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('deleted_at', 'varchar(32)')
      .execute();
    await db.schema.createIndex('bdm_instance_idx').on('block_device_mappings').columns(['instance_uuid', 'deleted']).execute();
    await db.schema.createIndex('bdm_volume_idx').on('block_device_mappings').columns(['volume_id', 'deleted']).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('block_device_mappings').execute();
  },
};
