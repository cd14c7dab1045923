/** Identity resources as the service handles them (API shapes are built in routes). */
export interface Domain { id: string; name: string; description: string; enabled: boolean; extra: Record<string, unknown> }
export interface Project {
  id: string; name: string; domain_id: string; parent_id: string | null; description: string; enabled: boolean;
  is_domain: boolean; tags: string[]; extra: Record<string, unknown>;
}
export interface User {
  id: string; name: string; domain_id: string; enabled: boolean; default_project_id: string | null;
  password_hash: string | null; password_created_at: string | null; extra: Record<string, unknown>;
}
export interface Group { id: string; name: string; domain_id: string; description: string; extra: Record<string, unknown> }
export interface Role { id: string; name: string; domain_id: string | null; description: string; extra: Record<string, unknown> }
export interface Region { id: string; description: string; parent_region_id: string | null; extra: Record<string, unknown> }
export interface CatalogService { id: string; type: string; name: string; description: string; enabled: boolean; extra: Record<string, unknown> }
export interface Endpoint {
  id: string; service_id: string; interface: 'public' | 'internal' | 'admin'; url: string; region_id: string | null;
  enabled: boolean; extra: Record<string, unknown>;
}
export interface AppCred {
  id: string; name: string; user_id: string; project_id: string; secret_hash: string; description: string;
  expires_at: string | null; unrestricted: boolean; roles: { id: string; name: string; domain_id: string | null }[];
}
export interface Credential {
  id: string; user_id: string; project_id: string | null; type: string; blob: string; extra: Record<string, unknown>;
}
export type ActorType = 'User' | 'Group';
export type TargetType = 'Project' | 'Domain' | 'System';
export interface Assignment {
  actorType: ActorType; actorId: string; targetType: TargetType; targetId: string; roleId: string; inherited: boolean;
}
export interface RevocationEvent {
  id: string; user_id: string | null; project_id: string | null; domain_id: string | null; audit_id: string | null;
  audit_chain_id: string | null; role_id: string | null; app_cred_id: string | null; issued_before: string; revoked_at: string;
}

export interface Policy { id: string; type: string; blob: string; extra: Record<string, unknown> }
export interface EndpointFilters { service_id?: string; region_id?: string; interface?: string }
export interface EndpointGroup { id: string; name: string; description: string; filters: EndpointFilters }

/** The id Keystone gives the default domain. */
export const DEFAULT_DOMAIN_ID = 'default';
/** The target id of system role assignments. */
export const SYSTEM_TARGET = 'system';
