import type { ColumnType } from 'kysely';

/** Nova's tables (migration 004_compute). Booleans are 0/1, times ISO text, JSON as text. */
export interface FlavorTable {
  id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number;
  rxtx_factor: number; is_public: number; disabled: number; description: string | null; created_at: string;
}
export interface FlavorExtraSpecTable { flavor_id: string; key: string; value: string }
export interface FlavorProjectTable { flavor_id: string; project_id: string }
export interface KeypairTable { user_id: string; name: string; type: string; public_key: string; fingerprint: string; created_at: string }
export interface ComputeHostTable {
  host: string; id: number; uuid: string; service_uuid: string; host_ip: string; hypervisor_type: string;
  hypervisor_version: number; accel: string; cpu_model: string; arch: string; vcpus: number; memory_mb: number;
  local_gb: number; vcpus_used: number; memory_mb_used: number; local_gb_used: number; running_vms: number;
  availability_zone: string; enabled: number; disabled_reason: string | null; forced_down: number;
  agent_version: string; last_seen: string; created_at: string;
}
export interface ServerGroupTable { id: string; name: string; project_id: string; user_id: string; policy: string; rules: string; created_at: string }
export interface InstanceTable {
  uuid: string; id: number; display_name: string; display_description: string | null; hostname: string;
  project_id: string; user_id: string; image_ref: string; flavor: string; vcpus: number; memory_mb: number;
  root_gb: number; ephemeral_gb: number; swap_mb: number; host: string | null; availability_zone: string | null;
  requested_az: string | null; vm_state: string; task_state: string | null; power_state: number;
  key_name: string | null; key_data: string | null; user_data: string | null; config_drive: string;
  access_ip_v4: string; access_ip_v6: string; networks: string; ssh_port: number | null; locked: number;
  locked_by: string | null; locked_reason: string | null; server_group_id: string | null; reservation_id: string;
  launch_index: number; progress: number; fault: string | null; system_metadata: string; created_at: string;
  updated_at: string; launched_at: string | null; terminated_at: string | null; deleted: number; deleted_at: string | null;
  /** JSON VifInfo[] (migration 009): the cached network info. */
  network_info: ColumnType<string, string | undefined, string>;
}
export interface InstanceMetadataTable { instance_uuid: string; key: string; value: string }
export interface InstanceTagTable { instance_uuid: string; tag: string }
export interface ServerGroupMemberTable { group_id: string; instance_uuid: string }
export interface InstanceActionTable {
  id: number; request_id: string; instance_uuid: string; action: string; project_id: string; user_id: string;
  message: string | null; start_time: string; updated_at: string;
}
export interface InstanceActionEventTable {
  action_id: number; event: string; start_time: string; finish_time: string | null; result: string | null;
  traceback: string | null; details: string | null; host: string | null;
}
export interface QuotaTable { project_id: string; resource: string; hard_limit: number }
export interface AggregateTable { id: number; uuid: string; name: string; availability_zone: string | null; metadata: string; created_at: string; updated_at: string | null }
export interface AggregateHostTable { aggregate_id: number; host: string }
export interface IdSequenceTable { name: string; next: number }
/** Nova's block_device_mapping (migration 011): a server's volumes; attach_status is the operation in flight. */
export interface BlockDeviceMappingTable {
  id: number; uuid: string; instance_uuid: string; source_type: string; destination_type: string; boot_index: number | null;
  device_name: string | null; volume_id: string | null; snapshot_id: string | null; image_id: string | null; volume_size: number | null;
  volume_type: string | null; delete_on_termination: number; attachment_id: string | null; tag: string | null;
  attach_status: string | null; connection_info: string | null; created_at: string; updated_at: string; deleted: number; deleted_at: string | null;
}

export interface ComputeTables {
  flavors: FlavorTable; flavor_extra_specs: FlavorExtraSpecTable; flavor_projects: FlavorProjectTable;
  keypairs: KeypairTable; compute_hosts: ComputeHostTable; server_groups: ServerGroupTable; instances: InstanceTable;
  instance_metadata: InstanceMetadataTable; instance_tags: InstanceTagTable; server_group_members: ServerGroupMemberTable;
  instance_actions: InstanceActionTable; instance_action_events: InstanceActionEventTable; quotas: QuotaTable;
  aggregates: AggregateTable; aggregate_hosts: AggregateHostTable; id_sequences: IdSequenceTable;
  block_device_mappings: BlockDeviceMappingTable;
}
