import { NAME_MAX, NS_VISIBILITIES, PROPERTY_TYPES } from './types.ts';

/**
 * The JSON schemas published at /v2/schemas/metadefs/*. python-glanceclient builds its
 * models from them and validates both what it sends and what it receives, so they
 * describe exactly the documents the metadefs routes return (absent fields are omitted,
 * never null).
 */

const when = (what: string) => ({ type: 'string', readOnly: true, format: 'date-time', description: `Date and time of ${what}` });
const stamps = (what: string) => ({ created_at: when(`${what} creation`), updated_at: when(`the last ${what} modification`) });
const link = { type: 'string', readOnly: true };
const listLinks = [{ rel: 'first', href: '{first}' }, { rel: 'next', href: '{next}' }, { rel: 'describedby', href: '{schema}' }];
const typeName = { type: 'string', enum: [...PROPERTY_TYPES] };

const definitions = {
  positiveInteger: { type: 'integer', minimum: 0 },
  positiveIntegerDefault0: { allOf: [{ $ref: '#/definitions/positiveInteger' }, { default: 0 }] },
  stringArray: { type: 'array', items: { type: 'string' }, uniqueItems: true },
};

/** The fields of one property definition (a small subset of JSON schema). */
const definitionFields = {
  title: { type: 'string', description: 'Human-readable name of the property.' },
  type: { ...typeName, description: 'JSON type of the property value.' },
  description: { type: 'string' },
  enum: { type: 'array', description: 'The allowed values.' },
  default: {},
  items: { type: 'object', description: 'For arrays: the type and allowed values of the items.', properties: { type: typeName, enum: { type: 'array' } } },
  operators: { type: 'array', items: { type: 'string' }, description: 'Operators a value may carry, e.g. <or>.' },
  minimum: { type: 'number' },
  maximum: { type: 'number' },
  minLength: { $ref: '#/definitions/positiveIntegerDefault0' },
  maxLength: { $ref: '#/definitions/positiveInteger' },
  pattern: { type: 'string', format: 'regex' },
  minItems: { $ref: '#/definitions/positiveIntegerDefault0' },
  maxItems: { $ref: '#/definitions/positiveInteger' },
  uniqueItems: { type: 'boolean', default: false },
  additionalItems: { type: 'boolean' },
  readonly: { type: 'boolean' },
};
/** A map of property name -> definition, as namespaces and objects hold them. */
const propertyMap = {
  type: 'object',
  additionalProperties: { type: 'object', required: ['title', 'type'], properties: definitionFields },
};
const withProperty = { ...definitions, property: propertyMap };

const name = (description: string) => ({ type: 'string', maxLength: NAME_MAX, description });

const associationFields = {
  name: name('Name of the resource type, e.g. OS::Glance::Image (Heat resource type names where they exist).'),
  prefix: { type: 'string', maxLength: NAME_MAX, description: 'Prefix the namespace\'s property names take on this resource type, separator included (e.g. hw_ or hw:).' },
  properties_target: { type: 'string', maxLength: NAME_MAX, description: 'Which metadata of the resource the properties apply to, where it has several (e.g. image for a volume\'s image metadata).' },
  ...stamps('resource type association'),
};

const objectFields = {
  name: name('Name of the object, unique in its namespace.'),
  description: { type: 'string', description: 'What the object groups.' },
  required: { $ref: '#/definitions/stringArray' },
  properties: { $ref: '#/definitions/property' },
  ...stamps('object'),
  schema: link,
  self: link,
};

const tagFields = { name: name('The tag, unique in its namespace ignoring case.'), ...stamps('tag') };

export const namespaceSchema = {
  name: 'namespace',
  additionalProperties: false,
  required: ['namespace'],
  definitions: withProperty,
  properties: {
    namespace: name('The namespace\'s unique name.'),
    display_name: { type: 'string', maxLength: NAME_MAX, description: 'Name for a user interface to show.' },
    description: { type: 'string', maxLength: 500, description: 'What the namespace defines.' },
    visibility: { type: 'string', enum: [...NS_VISIBILITIES], description: 'Who sees the namespace: everyone (public) or its owner\'s project (private).' },
    protected: { type: 'boolean', description: 'If true, the namespace and its contents cannot be deleted.' },
    owner: { type: 'string', maxLength: 255, description: 'The owning project.' },
    ...stamps('namespace'),
    schema: link,
    self: link,
    resource_type_associations: { type: 'array', items: { type: 'object', properties: associationFields } },
    properties: { $ref: '#/definitions/property' },
    objects: { type: 'array', items: { type: 'object', properties: objectFields } },
    tags: { type: 'array', items: { type: 'object', properties: tagFields } },
  },
};

/** An item of a list: the same document; the definitions live at the list's top level. */
function item<T extends { definitions?: unknown }>(schema: T): Omit<T, 'definitions'> {
  const { definitions: _d, ...rest } = schema;
  return rest;
}

export const namespacesSchema = {
  name: 'namespaces',
  definitions: withProperty,
  properties: {
    namespaces: { type: 'array', items: item(namespaceSchema) },
    first: { type: 'string' },
    next: { type: 'string' },
    schema: { type: 'string' },
  },
  links: listLinks,
};

export const resourceTypeSchema = {
  name: 'resource_type_association',
  additionalProperties: false,
  required: ['name'],
  properties: associationFields,
};

export const resourceTypesSchema = {
  name: 'resource_type_associations',
  properties: {
    resource_type_associations: { type: 'array', items: resourceTypeSchema },
    first: { type: 'string' },
    next: { type: 'string' },
    schema: { type: 'string' },
  },
  links: listLinks,
};

export const objectSchema = {
  name: 'object',
  additionalProperties: false,
  required: ['name'],
  definitions: withProperty,
  properties: objectFields,
};

export const objectsSchema = {
  name: 'objects',
  definitions: withProperty,
  properties: {
    objects: { type: 'array', items: item(objectSchema) },
    first: { type: 'string' },
    next: { type: 'string' },
    schema: { type: 'string' },
  },
  links: listLinks,
};

export const propertySchema = {
  name: 'property',
  additionalProperties: false,
  required: ['name', 'title', 'type'],
  definitions,
  properties: { name: name('Name of the property, unique in its namespace.'), ...definitionFields },
};

export const propertiesSchema = {
  name: 'properties',
  definitions: withProperty,
  properties: {
    properties: { $ref: '#/definitions/property' },
    first: { type: 'string' },
    next: { type: 'string' },
    schema: { type: 'string' },
  },
  links: listLinks,
};

export const tagSchema = {
  name: 'tag',
  additionalProperties: false,
  required: ['name'],
  properties: tagFields,
};

export const tagsSchema = {
  name: 'tags',
  properties: {
    tags: { type: 'array', items: tagSchema },
    first: { type: 'string' },
    next: { type: 'string' },
    schema: { type: 'string' },
  },
  links: listLinks,
};

/** Path under /v2/schemas/ -> document. */
export const METADEF_SCHEMAS: Record<string, object> = {
  'metadefs/namespace': namespaceSchema,
  'metadefs/namespaces': namespacesSchema,
  'metadefs/resource_type': resourceTypeSchema,
  'metadefs/resource_types': resourceTypesSchema,
  'metadefs/object': objectSchema,
  'metadefs/objects': objectsSchema,
  'metadefs/property': propertySchema,
  'metadefs/properties': propertiesSchema,
  'metadefs/tag': tagSchema,
  'metadefs/tags': tagsSchema,
};
