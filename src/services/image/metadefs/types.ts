import { Type, type Static } from 'typebox';

/**
 * Glance's metadata definitions catalog (metadefs): namespaces that hold property
 * definitions, objects (named groups of properties), tags and resource type associations.
 * The TypeBox schemas here are the request bodies the routes validate; the interfaces are
 * what the service and the store pass around.
 */

export const NS_VISIBILITIES = ['public', 'private'] as const;
export type NsVisibility = typeof NS_VISIBILITIES[number];
export const PROPERTY_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string'] as const;

/** Names of namespaces, objects, properties, tags and resource types: 1 to 80 characters. */
export const NAME_MAX = 80;
const Name = Type.String({ minLength: 1, maxLength: NAME_MAX });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
/** Fields the server computes; a body that carries them is refused (403), as Glance does. */
export const READ_ONLY_KEYS = ['created_at', 'updated_at', 'schema', 'self'] as const;
const RO = Type.Optional(Type.Unknown());
const readOnlySlots = { created_at: RO, updated_at: RO, schema: RO, self: RO };

const PropertyTypeName = Type.Union([
  Type.Literal('array'), Type.Literal('boolean'), Type.Literal('integer'), Type.Literal('number'), Type.Literal('object'), Type.Literal('string'),
]);
const NonNegInt = Type.Integer({ minimum: 0 });

/** One property definition: a subset of JSON schema (what a UI needs to offer a value). */
const definitionFields = {
  title: Type.String({ maxLength: 255 }),
  type: PropertyTypeName,
  description: Type.Optional(Type.String()),
  enum: Type.Optional(Type.Array(Type.Unknown())),
  default: Type.Optional(Type.Unknown()),
  items: Type.Optional(Type.Object({
    type: Type.Optional(PropertyTypeName),
    enum: Type.Optional(Type.Array(Type.Unknown())),
  }, { additionalProperties: false })),
  operators: Type.Optional(Type.Array(Type.String())),
  minimum: Type.Optional(Type.Number()),
  maximum: Type.Optional(Type.Number()),
  minLength: Type.Optional(NonNegInt),
  maxLength: Type.Optional(NonNegInt),
  pattern: Type.Optional(Type.String()),
  minItems: Type.Optional(NonNegInt),
  maxItems: Type.Optional(NonNegInt),
  uniqueItems: Type.Optional(Type.Boolean()),
  additionalItems: Type.Optional(Type.Boolean()),
  readonly: Type.Optional(Type.Boolean()),
};
export const PropertyDefinitionSchema = Type.Object(definitionFields, { additionalProperties: false });
export type PropertyDefinition = Static<typeof PropertyDefinitionSchema>;
export const PropertyMapSchema = Type.Record(Type.String({ minLength: 1, maxLength: NAME_MAX }), PropertyDefinitionSchema);

/** POST …/properties and PUT …/properties/{name}: a definition plus its name. */
export const PropertyBody = Type.Object({ name: Name, ...definitionFields }, { additionalProperties: false });
export type PropertyBody = Static<typeof PropertyBody>;

export const ObjectBody = Type.Object({
  name: Name,
  description: Type.Optional(Nullable(Type.String())),
  required: Type.Optional(Type.Array(Type.String())),
  properties: Type.Optional(PropertyMapSchema),
  ...readOnlySlots,
}, { additionalProperties: false });
export type ObjectBody = Static<typeof ObjectBody>;

export const AssociationBody = Type.Object({
  name: Name,
  prefix: Type.Optional(Nullable(Type.String({ maxLength: NAME_MAX }))),
  properties_target: Type.Optional(Nullable(Type.String({ maxLength: NAME_MAX }))),
  created_at: RO,
  updated_at: RO,
}, { additionalProperties: false });
export type AssociationBody = Static<typeof AssociationBody>;

export const TagBody = Type.Object({
  name: Name,
  created_at: RO,
  updated_at: RO,
}, { additionalProperties: false });
export type TagBody = Static<typeof TagBody>;
export const TagsBody = Type.Object({ tags: Type.Array(TagBody) }, { additionalProperties: false });
export type TagsBody = Static<typeof TagsBody>;

/** POST /v2/metadefs/namespaces (with optional contents) and PUT …/namespaces/{ns}. */
export const NamespaceBody = Type.Object({
  namespace: Name,
  display_name: Type.Optional(Nullable(Type.String({ maxLength: NAME_MAX }))),
  description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  visibility: Type.Optional(Type.Union([Type.Literal('public'), Type.Literal('private')])),
  protected: Type.Optional(Type.Boolean()),
  owner: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
  resource_type_associations: Type.Optional(Type.Array(AssociationBody)),
  properties: Type.Optional(PropertyMapSchema),
  objects: Type.Optional(Type.Array(ObjectBody)),
  tags: Type.Optional(Type.Array(TagBody)),
  ...readOnlySlots,
}, { additionalProperties: false });
export type NamespaceBody = Static<typeof NamespaceBody>;

// ---- domain records ----

export interface Namespace {
  /** Internal id: children hang off it, so a rename touches one row. */
  id: string;
  namespace: string;
  display_name: string | null;
  description: string | null;
  visibility: NsVisibility;
  protected: boolean;
  /** The owning project (null: nobody's, visible to all). */
  owner: string | null;
  created_at: string;
  updated_at: string;
}
export interface ResourceType { name: string; created_at: string; updated_at: string }
export interface Association { name: string; prefix: string | null; properties_target: string | null; created_at: string; updated_at: string }
export interface MetadefObject {
  name: string; description: string | null; required: string[]; properties: Record<string, PropertyDefinition>;
  created_at: string; updated_at: string;
}
export interface MetadefProperty { name: string; definition: PropertyDefinition; created_at: string; updated_at: string }
export interface MetadefTag { name: string; created_at: string; updated_at: string }

/** A namespace with everything in it (GET …/namespaces/{ns}, and the create response). */
export interface NamespaceDetail {
  namespace: Namespace;
  associations: Association[];
  properties: MetadefProperty[];
  objects: MetadefObject[];
  tags: MetadefTag[];
}

export type SortDir = 'asc' | 'desc';
export const NAMESPACE_SORT_KEYS = ['namespace', 'display_name', 'created_at', 'updated_at'] as const;
export type NamespaceSortKey = typeof NAMESPACE_SORT_KEYS[number];
export const CHILD_SORT_KEYS = ['name', 'created_at', 'updated_at'] as const;
export type ChildSortKey = typeof CHILD_SORT_KEYS[number];

export interface Page<K> { limit: number; marker?: string; sortKey: K; sortDir: SortDir }
export interface NamespaceListQuery extends Page<NamespaceSortKey> {
  visibility?: NsVisibility;
  /** Namespaces associated with any of these resource types. */
  resourceTypes: string[];
}

