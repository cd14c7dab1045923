import type { Kysely, Migration } from 'kysely';

/** Keystone's policy blobs and endpoint filtering (OS-EP-FILTER). */
export const m002_policies_endpoint_filter: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('policies')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('type', 'varchar(255)', (c) => c.notNull())
      .addColumn('blob', 'text', (c) => c.notNull())
      .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createTable('endpoint_groups')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('filters', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createTable('project_endpoint_groups')
      .addColumn('endpoint_group_id', 'varchar(64)', (c) => c.notNull().references('endpoint_groups.id').onDelete('cascade'))
      .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('project_endpoint_groups_pk', ['endpoint_group_id', 'project_id'])
      .execute();
    await db.schema.createTable('project_endpoints')
      .addColumn('endpoint_id', 'varchar(64)', (c) => c.notNull().references('endpoints.id').onDelete('cascade'))
      .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('project_endpoints_pk', ['endpoint_id', 'project_id'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['project_endpoints', 'project_endpoint_groups', 'endpoint_groups', 'policies']) await db.schema.dropTable(t).execute();
  },
};
