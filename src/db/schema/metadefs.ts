/**
 * Glance's metadata definitions catalog (migration 006_metadefs). Booleans are 0/1, times
 * ISO-8601 text, JSON documents text. Objects, properties, tags and resource type
 * associations hang off the namespace's internal id (deleted with it).
 */
export interface MetadefNamespaceTable {
  id: string; namespace: string; display_name: string | null; description: string | null; visibility: string;
  protected: number; owner: string | null; created_at: string; updated_at: string;
}
export interface MetadefResourceTypeTable { name: string; protected: number; created_at: string; updated_at: string }
export interface MetadefAssociationTable {
  namespace_id: string; resource_type: string; prefix: string | null; properties_target: string | null; created_at: string; updated_at: string;
}
/** required: JSON array of property names; properties: JSON object name -> definition. */
export interface MetadefObjectTable {
  namespace_id: string; name: string; description: string | null; required: string; properties: string; created_at: string; updated_at: string;
}
/** definition: the JSON property definition (title, type, enum, ...) without its name. */
export interface MetadefPropertyTable { namespace_id: string; name: string; definition: string; created_at: string; updated_at: string }
/** Tag names are unique per namespace ignoring case: name_key is the lower-cased name. */
export interface MetadefTagTable { namespace_id: string; name: string; name_key: string; created_at: string; updated_at: string }

export interface MetadefTables {
  metadef_namespaces: MetadefNamespaceTable;
  metadef_resource_types: MetadefResourceTypeTable;
  metadef_namespace_resource_types: MetadefAssociationTable;
  metadef_objects: MetadefObjectTable;
  metadef_properties: MetadefPropertyTable;
  metadef_tags: MetadefTagTable;
}
