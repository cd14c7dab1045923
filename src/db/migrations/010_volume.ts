import type { Kysely, Migration } from 'kysely';

/**
 * Cinder (block storage v3) tables: volume types with their extra specs and project
 * access, QoS specs, volumes and their attachments, snapshots, backups, transfers,
 * quotas, and the pools the hosts report. Statuses are Cinder's words; JSON documents
 * (metadata, extra specs, connection info) are text. Rows are deleted for real once the
 * pool has confirmed the data is gone (the status 'deleting' is the durable intent
 * until then), so a crash mid-delete resumes, never forgets.
 */
export const m010_volume: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('qos_specs')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('consumer', 'varchar(16)', (c) => c.notNull().defaultTo('back-end'))
      .addColumn('specs', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema.createTable('volume_types')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('is_public', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('extra_specs', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('qos_specs_id', 'varchar(36)', (c) => c.references('qos_specs.id'))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createTable('volume_type_projects')
      .addColumn('volume_type_id', 'varchar(36)', (c) => c.notNull().references('volume_types.id').onDelete('cascade'))
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addPrimaryKeyConstraint('volume_type_projects_pk', ['volume_type_id', 'project_id'])
      .execute();

    await db.schema.createTable('volumes')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('status', 'varchar(32)', (c) => c.notNull())
      .addColumn('previous_status', 'varchar(32)')
      .addColumn('attach_status', 'varchar(16)', (c) => c.notNull().defaultTo('detached'))
      .addColumn('migration_status', 'varchar(32)')
      .addColumn('availability_zone', 'varchar(255)', (c) => c.notNull())
      .addColumn('volume_type_id', 'varchar(36)', (c) => c.notNull().references('volume_types.id'))
      .addColumn('host', 'varchar(255)')
      .addColumn('bootable', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('multiattach', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('encrypted', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('admin_metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('image_metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('source_volid', 'varchar(36)')
      .addColumn('snapshot_id', 'varchar(36)')
      .addColumn('image_id', 'varchar(36)')
      .addColumn('backup_id', 'varchar(36)')
      .addColumn('group_id', 'varchar(36)')
      .addColumn('fail_reason', 'text')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('launched_at', 'varchar(32)')
      .execute();
    await db.schema.createIndex('volumes_project_idx').on('volumes').column('project_id').execute();
    await db.schema.createIndex('volumes_host_idx').on('volumes').column('host').execute();

    await db.schema.createTable('volume_attachments')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('volume_id', 'varchar(36)', (c) => c.notNull().references('volumes.id').onDelete('cascade'))
      .addColumn('instance_uuid', 'varchar(36)')
      .addColumn('attached_host', 'varchar(255)')
      .addColumn('mountpoint', 'varchar(255)')
      .addColumn('attach_mode', 'varchar(4)', (c) => c.notNull().defaultTo('rw'))
      .addColumn('attach_status', 'varchar(32)', (c) => c.notNull())
      .addColumn('connector', 'text')
      .addColumn('connection_info', 'text')
      .addColumn('attach_time', 'varchar(32)')
      .addColumn('detach_time', 'varchar(32)')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('volume_attachments_volume_idx').on('volume_attachments').column('volume_id').execute();
    await db.schema.createIndex('volume_attachments_instance_idx').on('volume_attachments').column('instance_uuid').execute();

    await db.schema.createTable('volume_snapshots')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('volume_id', 'varchar(36)', (c) => c.notNull().references('volumes.id'))
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('status', 'varchar(32)', (c) => c.notNull())
      .addColumn('progress', 'varchar(8)', (c) => c.notNull().defaultTo('0%'))
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('fail_reason', 'text')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('volume_snapshots_volume_idx').on('volume_snapshots').column('volume_id').execute();
    await db.schema.createIndex('volume_snapshots_project_idx').on('volume_snapshots').column('project_id').execute();

    await db.schema.createTable('volume_backups')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('volume_id', 'varchar(36)', (c) => c.notNull())
      .addColumn('snapshot_id', 'varchar(36)')
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('status', 'varchar(32)', (c) => c.notNull())
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('object_count', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('container', 'varchar(255)')
      .addColumn('parent_id', 'varchar(36)')
      .addColumn('is_incremental', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('availability_zone', 'varchar(255)', (c) => c.notNull())
      .addColumn('host', 'varchar(255)')
      .addColumn('restore_volume_id', 'varchar(36)')
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('fail_reason', 'text')
      .addColumn('data_timestamp', 'varchar(32)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('volume_backups_project_idx').on('volume_backups').column('project_id').execute();
    await db.schema.createIndex('volume_backups_volume_idx').on('volume_backups').column('volume_id').execute();

    await db.schema.createTable('volume_transfers')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('volume_id', 'varchar(36)', (c) => c.notNull().references('volumes.id').onDelete('cascade'))
      .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
      .addColumn('salt', 'varchar(64)', (c) => c.notNull())
      .addColumn('crypt_hash', 'varchar(255)', (c) => c.notNull())
      .addColumn('source_project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('no_snapshots', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(32)')
      .execute();

    await db.schema.createTable('volume_quotas')
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('resource', 'varchar(255)', (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('volume_quotas_pk', ['project_id', 'resource'])
      .execute();

    await db.schema.createTable('volume_pools')
      .addColumn('host', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('backend', 'varchar(64)', (c) => c.notNull())
      .addColumn('pool', 'varchar(64)', (c) => c.notNull())
      .addColumn('host_ip', 'varchar(64)', (c) => c.notNull())
      .addColumn('total_gb', 'integer', (c) => c.notNull())
      .addColumn('free_gb', 'integer', (c) => c.notNull())
      .addColumn('provisioned_gb', 'integer', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('disabled_reason', 'varchar(255)')
      .addColumn('last_seen', 'varchar(32)', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['volume_pools', 'volume_quotas', 'volume_transfers', 'volume_backups', 'volume_snapshots', 'volume_attachments', 'volumes', 'volume_type_projects', 'volume_types', 'qos_specs']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
