import type { ComputeTables } from './schema/compute.ts';
import type { ComputeMigrationTables } from './schema/compute-migrations.ts';
import type { ImageTables } from './schema/image.ts';
import type { MetadefTables } from './schema/metadefs.ts';
import type { NetworkTables } from './schema/network.ts';
import type { VolumeTables } from './schema/volume.ts';

/**
 * Table shapes as Kysely sees them. Booleans are stored as 0/1 integers and times as
 * ISO-8601 UTC text (fixed width, so they compare correctly as strings) in both SQLite
 * and PostgreSQL, which keeps one code path for both dialects.
 */
export interface DomainTable { id: string; name: string; description: string; enabled: number; extra: string }
export interface ProjectTable {
  id: string; name: string; domain_id: string; parent_id: string | null; description: string;
  enabled: number; extra: string;
}
export interface ProjectTagTable { project_id: string; name: string }
export interface UserTable {
  id: string; name: string; domain_id: string; enabled: number; password_hash: string | null;
  password_created_at: string | null; default_project_id: string | null; extra: string; created_at: string;
}
export interface GroupTable { id: string; name: string; domain_id: string; description: string; extra: string }
export interface UserGroupTable { user_id: string; group_id: string }
/** domain_id is '' for global roles (a NULL would not take part in the unique index). */
export interface RoleTable { id: string; name: string; domain_id: string; description: string; extra: string }
export interface ImpliedRoleTable { prior_role_id: string; implied_role_id: string }
export type AssignmentType = 'UserProject' | 'GroupProject' | 'UserDomain' | 'GroupDomain' | 'UserSystem' | 'GroupSystem';
export interface AssignmentTable { type: AssignmentType; actor_id: string; target_id: string; role_id: string; inherited: number }
export interface RegionTable { id: string; description: string; parent_region_id: string | null; extra: string }
export interface ServiceTable { id: string; type: string; name: string; description: string; enabled: number; extra: string }
export interface EndpointTable {
  id: string; service_id: string; interface: string; url: string; region_id: string | null; enabled: number; extra: string;
}
export interface AppCredTable {
  id: string; name: string; user_id: string; project_id: string; secret_hash: string; description: string;
  expires_at: string | null; unrestricted: number; created_at: string;
}
export interface AppCredRoleTable { app_cred_id: string; role_id: string }
export interface CredentialTable {
  id: string; user_id: string; project_id: string | null; type: string; blob: string; key_hash: string | null; extra: string;
}
/** Keystone-style revocation event: a token matches when every non-null field matches and it was issued at or before issued_before. */
export interface RevocationEventTable {
  id: string; user_id: string | null; project_id: string | null; domain_id: string | null; audit_id: string | null;
  audit_chain_id: string | null; role_id: string | null; app_cred_id: string | null; issued_before: string; revoked_at: string;
}
export interface PolicyTable { id: string; type: string; blob: string; extra: string }
/** filters: JSON object with any of service_id, region_id, interface. */
export interface EndpointGroupTable { id: string; name: string; description: string; filters: string }
export interface ProjectEndpointGroupTable { endpoint_group_id: string; project_id: string }
export interface ProjectEndpointTable { endpoint_id: string; project_id: string }
/** Every table; each service's tables are declared in schema/<service>.ts. */
export interface Database extends ImageTables, ComputeTables, ComputeMigrationTables, MetadefTables, NetworkTables, VolumeTables {
  domains: DomainTable; projects: ProjectTable; project_tags: ProjectTagTable; users: UserTable;
  groups: GroupTable; user_groups: UserGroupTable; roles: RoleTable; implied_roles: ImpliedRoleTable;
  assignments: AssignmentTable; regions: RegionTable; services: ServiceTable; endpoints: EndpointTable;
  app_creds: AppCredTable; app_cred_roles: AppCredRoleTable; credentials: CredentialTable;
  revocation_events: RevocationEventTable; policies: PolicyTable; endpoint_groups: EndpointGroupTable;
  project_endpoint_groups: ProjectEndpointGroupTable; project_endpoints: ProjectEndpointTable;
}
