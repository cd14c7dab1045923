import type { Kysely, Migration } from 'kysely';

/** Nova's migration records (os-migrations): one row per resize, and later per cold or live migration. */
export const m007_compute_migrations: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('migrations')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
      .addColumn('instance_uuid', 'varchar(36)', (c) => c.notNull())
      .addColumn('migration_type', 'varchar(16)', (c) => c.notNull())
      .addColumn('status', 'varchar(32)', (c) => c.notNull())
      .addColumn('source_compute', 'varchar(255)')
      .addColumn('dest_compute', 'varchar(255)')
      .addColumn('source_node', 'varchar(255)')
      .addColumn('dest_node', 'varchar(255)')
      .addColumn('dest_host', 'varchar(255)')
      .addColumn('old_flavor_id', 'varchar(255)')
      .addColumn('new_flavor_id', 'varchar(255)')
      .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('hidden', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)')
      .execute();
    await db.schema.createIndex('migrations_instance_idx').on('migrations').column('instance_uuid').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('migrations').execute();
  },
};
