import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { BadRequest } from '../../../common/errors.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';
import { effectiveQuotas } from './quotas.ts';

/**
 * /os-quota-class-sets/{class}: the 'default' class is the default limits every project
 * starts from (the quota rows of the '__default__' project, which /os-quota-sets and the
 * quota checks already read). Other class names are stored too, as Nova does, but nothing
 * applies them. No table of its own: a class's limits are quota rows keyed by the class.
 */

const MAX_INT = 2147483647;
const DEFAULT_CLASS = 'default';

/** The quota rows' key for a class: '__default__' for 'default', a fixed-length digest for any other name. */
function classKey(name: string): string {
  return name === DEFAULT_CLASS ? '__default__' : `__class__${createHash('sha1').update(name).digest('hex')}`;
}

const CORE = ['instances', 'cores', 'ram', 'metadata_items', 'key_pairs'];
const SERVER_GROUPS = ['server_groups', 'server_group_members'];
const FILES = ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes'];
const NETWORK = ['fixed_ips', 'floating_ips', 'security_groups', 'security_group_rules'];

/**
 * The resources a class shows at a microversion: before 2.50 without the server-group
 * ones but with nova-network's; 2.50 drops the network ones, 2.57 the injected files.
 */
function shownKeys(req: FastifyRequest): string[] {
  if (!atLeast(req, '2.50')) return [...CORE, ...FILES, ...NETWORK];
  return [...CORE, ...SERVER_GROUPS, ...(atLeast(req, '2.57') ? [] : FILES)];
}

/** The resources a class update accepts at a microversion. */
function settableKeys(req: FastifyRequest): string[] {
  if (!atLeast(req, '2.50')) return [...CORE, ...SERVER_GROUPS, ...FILES, ...NETWORK];
  return shownKeys(req);
}

const QuotaValue = Type.Union([Type.Integer({ minimum: -1, maximum: MAX_INT }), Type.String({ pattern: '^-?[0-9]+$' })]);
const ClassUpdate = Type.Object({
  quota_class_set: Type.Record(Type.String(), QuotaValue),
}, { additionalProperties: false });

export function quotaClassRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  /** Config defaults <- the 'default' class <- this class. */
  async function classLimits(name: string): Promise<Record<string, number>> {
    const defaults = await effectiveQuotas(deps, '__default__');
    return name === DEFAULT_CLASS ? defaults : { ...defaults, ...(await store.quotaRows(deps.db, classKey(name))) };
  }
  const pick = (keys: string[], all: Record<string, number>) => Object.fromEntries(keys.map((k) => [k, all[k] ?? -1]));

  app.get<{ Params: { id: string } }>('/v2.1/os-quota-class-sets/:id', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-quota-class-sets:show', { quota_class: req.params.id });
    return { quota_class_set: { id: req.params.id, ...pick(shownKeys(req), await classLimits(req.params.id)) } };
  });

  app.put<{ Params: { id: string }; Body: Static<typeof ClassUpdate> }>('/v2.1/os-quota-class-sets/:id', { schema: { body: ClassUpdate } }, async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:os-quota-class-sets:update', { quota_class: req.params.id });
    const name = req.params.id;
    if (name.length < 1 || name.length > 255) throw new BadRequest('quota_class_name has to be between 1 and 255 characters long.');
    const allowed = new Set(settableKeys(req));
    const updates: Record<string, number> = {};
    for (const [k, v] of Object.entries(req.body.quota_class_set)) {
      if (!allowed.has(k)) {
        throw new BadRequest(`Invalid input for field/attribute quota_class_set. Value: ${k}. Additional properties are not allowed ('${k}' was unexpected)`);
      }
      const n = Number(v);
      if (!Number.isInteger(n) || n < -1 || n > MAX_INT) throw new BadRequest(`Invalid input for field/attribute ${k}. Value: ${String(v)}.`);
      updates[k] = n;
    }
    await deps.db.transaction().execute((tx) => store.setQuotas(tx, classKey(name), updates));
    return { quota_class_set: pick(shownKeys(req), await classLimits(name)) };
  });
}
