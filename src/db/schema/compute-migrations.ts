/** Migration records (resize now; cold and live migration later). */
export interface MigrationTable {
  id: number; uuid: string; instance_uuid: string; migration_type: string; status: string;
  source_compute: string | null; dest_compute: string | null; source_node: string | null; dest_node: string | null; dest_host: string | null;
  old_flavor_id: string | null; new_flavor_id: string | null; project_id: string; user_id: string; hidden: number;
  created_at: string; updated_at: string | null;
}

export interface ComputeMigrationTables { migrations: MigrationTable }
