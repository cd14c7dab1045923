import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Glance's metadata definitions catalog: namespaces, resource types and their
 * associations, objects, properties and tags. Seeds the resource types a fresh Glance
 * knows (protected: the API never deletes them).
 */
const SEEDED_RESOURCE_TYPES = ['OS::Glance::Image', 'OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Aggregate', 'OS::Nova::Server'];

export const m006_metadefs: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('metadef_namespaces')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('namespace', 'varchar(80)', (c) => c.notNull().unique())
      .addColumn('display_name', 'varchar(80)')
      .addColumn('description', 'text')
      .addColumn('visibility', 'varchar(32)', (c) => c.notNull())
      .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('owner', 'varchar(255)')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('metadef_namespaces_owner').on('metadef_namespaces').column('owner').execute();

    await db.schema.createTable('metadef_resource_types')
      .addColumn('name', 'varchar(80)', (c) => c.primaryKey())
      .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema.createTable('metadef_namespace_resource_types')
      .addColumn('namespace_id', 'varchar(36)', (c) => c.notNull().references('metadef_namespaces.id').onDelete('cascade'))
      .addColumn('resource_type', 'varchar(80)', (c) => c.notNull().references('metadef_resource_types.name'))
      .addColumn('prefix', 'varchar(80)')
      .addColumn('properties_target', 'varchar(80)')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_namespace_resource_types_pk', ['namespace_id', 'resource_type'])
      .execute();
    await db.schema.createIndex('metadef_namespace_resource_types_rt').on('metadef_namespace_resource_types').column('resource_type').execute();

    await db.schema.createTable('metadef_objects')
      .addColumn('namespace_id', 'varchar(36)', (c) => c.notNull().references('metadef_namespaces.id').onDelete('cascade'))
      .addColumn('name', 'varchar(80)', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('required', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('properties', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_objects_pk', ['namespace_id', 'name'])
      .execute();

    await db.schema.createTable('metadef_properties')
      .addColumn('namespace_id', 'varchar(36)', (c) => c.notNull().references('metadef_namespaces.id').onDelete('cascade'))
      .addColumn('name', 'varchar(80)', (c) => c.notNull())
      .addColumn('definition', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_properties_pk', ['namespace_id', 'name'])
      .execute();

    await db.schema.createTable('metadef_tags')
      .addColumn('namespace_id', 'varchar(36)', (c) => c.notNull().references('metadef_namespaces.id').onDelete('cascade'))
      .addColumn('name', 'varchar(80)', (c) => c.notNull())
      .addColumn('name_key', 'varchar(80)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_tags_pk', ['namespace_id', 'name_key'])
      .execute();

    // One millisecond apart, so listing by creation time keeps Glance's order (Image first).
    const t0 = Date.now();
    for (const [i, name] of SEEDED_RESOURCE_TYPES.entries()) {
      const at = new Date(t0 + i).toISOString();
      await sql`insert into metadef_resource_types (name, protected, created_at, updated_at) values (${name}, 1, ${at}, ${at})`.execute(db);
    }
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['metadef_tags', 'metadef_properties', 'metadef_objects', 'metadef_namespace_resource_types', 'metadef_resource_types', 'metadef_namespaces']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
