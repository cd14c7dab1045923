import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuthContext } from '../../../api/context.ts';
import { enforce, isAllowed } from '../../../api/policy.ts';
import { BadRequest, Conflict, NotFound } from '../../../common/errors.ts';
import { isoNow, isUniqueViolation, type Db } from '../../../db/index.ts';
import type { FlavorTable } from '../../../db/schema/compute.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast, computeBase, intParam, selfLinks } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';
import type { Flavor } from '../types.ts';

/**
 * /flavors: list (brief and detail, with Nova's filters, sorting and paging), show, create,
 * update (2.55 description), delete; extra specs (os-extra_specs) and project access
 * (os-flavor-access, addTenantAccess/removeTenantAccess).
 */

const MAX_INT = 2147483647;
/** Nova's parameter_types.name: printable, no leading or trailing whitespace. */
const NAME_PATTERN = '^(?!\\s)[^\\x00-\\x1f\\x7f]*(?<!\\s)$';
const IntLike = (min: number) => Type.Union([Type.Integer({ minimum: min, maximum: MAX_INT }), Type.String({ pattern: '^[0-9]+$', minLength: 1 })]);
const BOOL_STRINGS = ['True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no'];
export const BoolLike = Type.Union([Type.Boolean(), Type.Union(BOOL_STRINGS.map((s) => Type.Literal(s)))]);
const Description = Type.Union([Type.String({ maxLength: 65535 }), Type.Null()]);

const FlavorCreate = Type.Object({
  flavor: Type.Object({
    name: Type.String({ minLength: 1, maxLength: 255, pattern: NAME_PATTERN }),
    id: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^(?! )[a-zA-Z0-9. _-]+(?<! )$' }), Type.Number(), Type.Null()])),
    ram: IntLike(1),
    vcpus: IntLike(1),
    disk: IntLike(0),
    'OS-FLV-EXT-DATA:ephemeral': Type.Optional(IntLike(0)),
    swap: Type.Optional(Type.Union([IntLike(0), Type.Literal('')])),
    rxtx_factor: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 3.40282e38 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' })])),
    'os-flavor-access:is_public': Type.Optional(BoolLike),
    description: Type.Optional(Description),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

const FlavorUpdate = Type.Object({
  flavor: Type.Object({ description: Description }, { additionalProperties: false }),
}, { additionalProperties: false });

const SPEC_KEY = '^[a-zA-Z0-9-_:. ]{1,255}$';
const SpecValue = Type.Union([Type.String({ maxLength: 255 }), Type.Number(), Type.Boolean()]);
const ExtraSpecsBody = Type.Object({
  extra_specs: Type.Record(Type.String({ pattern: SPEC_KEY }), SpecValue, { additionalProperties: false }),
}, { additionalProperties: false });
const ExtraSpecItem = Type.Record(Type.String({ pattern: SPEC_KEY }), SpecValue, { minProperties: 1, additionalProperties: false });

const Tenant = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-]+$' }) }, { additionalProperties: false });
const FlavorAction = Type.Union([
  Type.Object({ addTenantAccess: Tenant }, { additionalProperties: false }),
  Type.Object({ removeTenantAccess: Tenant }, { additionalProperties: false }),
]);

type IdParams = { id: string };
type KeyParams = { id: string; key: string };
type Query = Record<string, string | string[] | undefined>;

/** The first value of a query parameter that may repeat. */
function q1(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function toInt(v: number | string | undefined, name: string, min: number, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < min || n > MAX_INT) {
    throw new BadRequest(`Invalid input received: ${name} must be >= ${min} and <= ${MAX_INT}.`);
  }
  return n;
}

function truthy(v: boolean | string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  return ['true', '1', 'on', 'yes'].includes(v.toLowerCase());
}

/** The flavors this caller may see: everything for admins, else public plus granted ones. */
function seesAll(auth: AuthContext): boolean {
  return auth.roles.includes('admin');
}

async function visibleFlavor(db: Db, auth: AuthContext, id: string): Promise<Flavor> {
  const f = await store.getFlavor(db, id);
  if (f && (f.is_public || seesAll(auth) || (await store.flavorProjects(db, id)).includes(auth.projectId ?? ''))) return f;
  throw new NotFound(`Flavor ${id} could not be found.`);
}

/** The flavor body Nova renders (views/flavors.py), per microversion. */
export function renderFlavor(req: FastifyRequest, f: Flavor, withSpecs: boolean): Record<string, unknown> {
  const legacy = !atLeast(req, '2.75');
  const out: Record<string, unknown> = {
    id: f.id, name: f.name, ram: f.ram, disk: f.disk,
    swap: legacy && f.swap === 0 ? '' : f.swap,
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeral,
    'OS-FLV-DISABLED:disabled': f.disabled,
    vcpus: f.vcpus,
    'os-flavor-access:is_public': f.is_public,
    rxtx_factor: legacy && !f.rxtx_factor ? '' : f.rxtx_factor,
    links: selfLinks(req, '', 'flavors', f.id),
  };
  if (atLeast(req, '2.55')) out.description = f.description;
  if (withSpecs && atLeast(req, '2.61')) out.extra_specs = f.extra_specs;
  return out;
}

function briefFlavor(req: FastifyRequest, f: Flavor): Record<string, unknown> {
  const out: Record<string, unknown> = { id: f.id, name: f.name, links: selfLinks(req, '', 'flavors', f.id) };
  if (atLeast(req, '2.55')) out.description = f.description;
  return out;
}

/** Nova's flavor sort keys mapped onto our columns. */
const SORT_KEYS: Record<string, (f: Flavor & { createdAt?: string }) => string | number | boolean | null> = {
  flavorid: (f) => f.id, id: (f) => f.id, name: (f) => f.name, memory_mb: (f) => f.ram, vcpus: (f) => f.vcpus,
  root_gb: (f) => f.disk, ephemeral_gb: (f) => f.ephemeral, swap: (f) => f.swap, rxtx_factor: (f) => f.rxtx_factor,
  is_public: (f) => f.is_public, disabled: (f) => f.disabled, description: (f) => f.description,
  created_at: (f) => f.id, updated_at: (f) => f.id, vcpu_weight: (f) => f.id,
};

function cmp(a: string | number | boolean | null, b: string | number | boolean | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

/** Nova's `is_public` query parameter for admins: absent → public (plus granted), 'none' → all. */
function parseIsPublic(v: string | undefined): boolean | null {
  if (v === undefined) return true;
  if (v.toLowerCase() === 'none') return null;
  const s = v.toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(s)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(s)) return false;
  throw new BadRequest(`Invalid is_public filter [${v}]`);
}

async function listVisible(deps: ComputeDeps, req: FastifyRequest): Promise<{ items: Flavor[]; limit: number }> {
  const auth = req.ctx.auth!;
  const q = req.query as Query;
  let flavors: Flavor[];
  if (seesAll(auth)) {
    const isPublic = parseIsPublic(q1(q.is_public));
    if (isPublic === null) flavors = await store.listFlavors(deps.db, { all: true });
    else if (isPublic) flavors = await store.listFlavors(deps.db, { all: false, projectId: auth.projectId });
    else flavors = await store.listFlavors(deps.db, { all: true, isPublic: false });
  } else {
    flavors = (await store.listFlavors(deps.db, { all: false, projectId: auth.projectId })).filter((f) => !f.disabled);
  }
  for (const [param, field] of [['minRam', 'ram'], ['minDisk', 'disk']] as const) {
    const raw = q1(q[param]);
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw === '' || !Number.isInteger(n)) throw new BadRequest(`Invalid ${param} filter [${raw}]`);
    flavors = flavors.filter((f) => f[field] >= n);
  }
  const sortKey = q1(q.sort_key) ?? 'flavorid';
  const sortDir = q1(q.sort_dir) ?? 'asc';
  const key = SORT_KEYS[sortKey];
  if (!key) throw new BadRequest(`Invalid input for query parameters sort_key. Value: ${sortKey}.`);
  if (sortDir !== 'asc' && sortDir !== 'desc') throw new BadRequest(`Invalid input for query parameters sort_dir. Value: ${sortDir}.`);
  const sign = sortDir === 'asc' ? 1 : -1;
  flavors.sort((a, b) => sign * (cmp(key(a), key(b)) || cmp(a.id, b.id)));
  const limit = Math.min(intParam(q1(q.limit), 'limit') ?? 1000, 1000);
  const marker = q1(q.marker);
  let start = 0;
  if (marker !== undefined) {
    const i = flavors.findIndex((f) => f.id === marker);
    if (i < 0) throw new BadRequest(`marker [${marker}] not found`);
    start = i + 1;
  }
  return { items: flavors.slice(start, start + limit), limit };
}

/** Nova's `flavors_links`: a next link when the page is full. */
function collectionLinks(req: FastifyRequest, collection: string, items: { id: string }[], limit: number): { rel: string; href: string }[] | undefined {
  if (items.length === 0 || items.length !== limit) return undefined;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query as Query)) {
    if (k === 'marker' || v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
  }
  params.set('marker', items[items.length - 1]!.id);
  return [{ rel: 'next', href: `${computeBase(req)}/v2.1/${collection}?${params.toString()}` }];
}

function canSeeSpecs(auth: AuthContext): boolean {
  return isAllowed(auth, 'os_compute_api:os-flavor-extra-specs:index', { project_id: auth.projectId });
}

/** The default flavors Nova's devstack creates, with their classic ids. */
const DEFAULT_FLAVORS: [string, string, number, number, number][] = [
  ['42', 'm1.nano', 1, 128, 1], ['84', 'm1.micro', 1, 192, 1], ['1', 'm1.tiny', 1, 512, 1], ['2', 'm1.small', 1, 2048, 20],
  ['3', 'm1.medium', 2, 4096, 40], ['4', 'm1.large', 4, 8192, 80], ['5', 'm1.xlarge', 8, 16384, 160],
];

/** Create the default flavors on first start (when there are no flavors at all). Returns how many it created. */
export async function bootstrapFlavors(db: Db): Promise<number> {
  if ((await store.countFlavors(db)) > 0) return 0;
  try {
    return await db.transaction().execute(async (tx) => {
      if ((await store.countFlavors(tx)) > 0) return 0;
      const now = isoNow();
      for (const [id, name, vcpus, ram, disk] of DEFAULT_FLAVORS) {
        await store.insertFlavor(tx, {
          id, name, vcpus, ram, disk, ephemeral: 0, swap: 0, rxtx_factor: 1, is_public: 1, disabled: 0, description: null, created_at: now,
        });
      }
      return DEFAULT_FLAVORS.length;
    });
  } catch (err) {
    // Another controller bootstrapped at the same moment.
    if (isUniqueViolation(err)) return 0;
    throw err;
  }
}

export function flavorRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  const db = deps.db;

  app.get('/v2.1/flavors', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:flavors:list');
    const { items, limit } = await listVisible(deps, req);
    const links = collectionLinks(req, 'flavors', items, limit);
    return { flavors: items.map((f) => briefFlavor(req, f)), ...(links ? { flavors_links: links } : {}) };
  });

  app.get('/v2.1/flavors/detail', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:flavors:list');
    const { items, limit } = await listVisible(deps, req);
    const specs = canSeeSpecs(auth);
    const links = collectionLinks(req, 'flavors/detail', items, limit);
    return { flavors: items.map((f) => renderFlavor(req, f, specs)), ...(links ? { flavors_links: links } : {}) };
  });

  app.get<{ Params: IdParams }>('/v2.1/flavors/:id', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:flavors:list');
    const f = await visibleFlavor(db, auth, req.params.id);
    return { flavor: renderFlavor(req, f, canSeeSpecs(auth)) };
  });

  app.post<{ Body: Static<typeof FlavorCreate> }>('/v2.1/flavors', { schema: { body: FlavorCreate } }, async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-flavor-manage');
    const b = req.body.flavor;
    if (b.description !== undefined && !atLeast(req, '2.55')) {
      throw new BadRequest("Invalid input for field/attribute flavor. Value: description. Additional properties are not allowed ('description' was unexpected)");
    }
    const id = b.id === undefined || b.id === null ? randomUUID() : String(b.id);
    const row: FlavorTable = {
      id, name: b.name,
      ram: toInt(b.ram, 'ram', 1, 1), vcpus: toInt(b.vcpus, 'vcpus', 1, 1), disk: toInt(b.disk, 'disk', 0, 0),
      ephemeral: toInt(b['OS-FLV-EXT-DATA:ephemeral'], 'ephemeral', 0, 0), swap: toInt(b.swap, 'swap', 0, 0),
      rxtx_factor: b.rxtx_factor === undefined ? 1 : Number(b.rxtx_factor),
      is_public: truthy(b['os-flavor-access:is_public'], true) ? 1 : 0, disabled: 0,
      description: b.description ?? null, created_at: isoNow(),
    };
    if (!(row.rxtx_factor > 0)) throw new BadRequest('Invalid input received: rxtx_factor must be greater than 0.');
    if (await store.getFlavor(db, id)) throw new Conflict(`Flavor with ID ${id} already exists.`);
    if (await store.flavorNameTaken(db, b.name)) throw new Conflict(`Flavor with name ${b.name} already exists.`);
    try {
      await store.insertFlavor(db, row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Flavor with name ${b.name} already exists.`);
      throw err;
    }
    return { flavor: renderFlavor(req, (await store.getFlavor(db, id))!, canSeeSpecs(auth)) };
  });

  app.put<{ Params: IdParams; Body: Static<typeof FlavorUpdate> }>('/v2.1/flavors/:id', { schema: { body: FlavorUpdate } }, async (req) => {
    if (!atLeast(req, '2.55')) throw new NotFound('The resource could not be found.');
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-flavor-manage');
    const f = await store.getFlavor(db, req.params.id);
    if (!f) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
    await store.setFlavorDescription(db, f.id, req.body.flavor.description);
    return { flavor: renderFlavor(req, { ...f, description: req.body.flavor.description }, canSeeSpecs(auth)) };
  });

  app.delete<{ Params: IdParams }>('/v2.1/flavors/:id', async (req, reply) => {
    enforce(req.ctx.auth, 'os_compute_api:os-flavor-manage');
    if (!(await store.deleteFlavor(db, req.params.id))) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
    return reply.code(202).send();
  });

  // ---- extra specs ----

  app.get<{ Params: IdParams }>('/v2.1/flavors/:id/os-extra_specs', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-flavor-extra-specs:index', { project_id: req.ctx.auth?.projectId });
    const f = await visibleFlavor(db, auth, req.params.id);
    return { extra_specs: f.extra_specs };
  });

  app.post<{ Params: IdParams; Body: Static<typeof ExtraSpecsBody> }>('/v2.1/flavors/:id/os-extra_specs', { schema: { body: ExtraSpecsBody } }, async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-flavor-extra-specs:create');
    const f = await store.getFlavor(db, req.params.id);
    if (!f) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
    const specs = specStrings(req.body.extra_specs);
    await store.upsertExtraSpecs(db, f.id, specs);
    return { extra_specs: specs };
  });

  app.get<{ Params: KeyParams }>('/v2.1/flavors/:id/os-extra_specs/:key', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-flavor-extra-specs:show', { project_id: req.ctx.auth?.projectId });
    const f = await visibleFlavor(db, auth, req.params.id);
    const v = f.extra_specs[req.params.key];
    if (v === undefined) throw new NotFound(`Flavor ${f.id} has no extra specs with key ${req.params.key}.`);
    return { [req.params.key]: v };
  });

  app.put<{ Params: KeyParams; Body: Static<typeof ExtraSpecItem> }>('/v2.1/flavors/:id/os-extra_specs/:key', { schema: { body: ExtraSpecItem } }, async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-flavor-extra-specs:update');
    if (Object.keys(req.body).length > 1) throw new BadRequest('Request body contains too many items');
    if (!(req.params.key in req.body)) throw new BadRequest('Request body and URI mismatch');
    const f = await store.getFlavor(db, req.params.id);
    if (!f) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
    const specs = specStrings(req.body);
    await store.upsertExtraSpecs(db, f.id, specs);
    return specs;
  });

  app.delete<{ Params: KeyParams }>('/v2.1/flavors/:id/os-extra_specs/:key', async (req, reply) => {
    enforce(req.ctx.auth, 'os_compute_api:os-flavor-extra-specs:delete');
    const f = await store.getFlavor(db, req.params.id);
    if (!f) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
    if (!(await store.deleteExtraSpec(db, f.id, req.params.key))) {
      throw new NotFound(`Flavor ${f.id} has no extra specs with key ${req.params.key}.`);
    }
    return reply.code(200).send();
  });

  // ---- access ----

  const accessList = async (id: string) => ({
    flavor_access: (await store.flavorProjects(db, id)).sort().map((p) => ({ flavor_id: id, tenant_id: p })),
  });

  app.get<{ Params: IdParams }>('/v2.1/flavors/:id/os-flavor-access', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-flavor-access');
    const f = await store.getFlavor(db, req.params.id);
    if (!f) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
    if (f.is_public) throw new NotFound('Access list not available for public flavors.');
    return accessList(f.id);
  });

  app.post<{ Params: IdParams; Body: Static<typeof FlavorAction> }>('/v2.1/flavors/:id/action', { schema: { body: FlavorAction } }, async (req) => {
    const body = req.body;
    if ('addTenantAccess' in body) {
      enforce(req.ctx.auth, 'os_compute_api:os-flavor-access:add_tenant_access');
      const f = await store.getFlavor(db, req.params.id);
      if (!f) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
      if (f.is_public) throw new Conflict('Can not add access to a public flavor.');
      const project = body.addTenantAccess.tenant;
      if (!(await store.addFlavorProject(db, f.id, project))) {
        throw new Conflict(`Flavor access already exists for flavor ${f.id} and project ${project} combination.`);
      }
      return accessList(f.id);
    }
    enforce(req.ctx.auth, 'os_compute_api:os-flavor-access:remove_tenant_access');
    const f = await store.getFlavor(db, req.params.id);
    if (!f) throw new NotFound(`Flavor ${req.params.id} could not be found.`);
    const project = body.removeTenantAccess.tenant;
    if (!(await store.removeFlavorProject(db, f.id, project))) {
      throw new NotFound(`Flavor access not found for ${f.id} / ${project} combination.`);
    }
    return accessList(f.id);
  });
}

/** Extra spec values are stored as strings, as Nova does (numbers and booleans are converted). */
function specStrings(body: Record<string, string | number | boolean>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) {
    const s = typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);
    if (s.length > 255) throw new BadRequest(`Invalid input for field/attribute extra_specs. Value: ${k}. It must be at most 255 characters long.`);
    out[k] = s;
  }
  return out;
}
