import type { AuthContext } from '../../api/context.ts';
import type { Target } from '../../api/policy.ts';
import { checkTags, inTransaction, networkTarget } from './common.ts';
import { err } from './errors.ts';
import { visibleNetwork } from './networks.ts';
import { authorize } from './policy.ts';
import { visibleFloatingIp } from './floating-ips.ts';
import { visiblePort } from './ports.ts';
import { visibleRouter } from './routers.ts';
import { visibleGroup } from './security-groups.ts';
import * as store from './store.ts';
import { visibleSubnet } from './subnets.ts';
import type { NetworkDeps } from './types.ts';

/**
 * The standard-attr-tag API: /v2.0/{collection}/{id}/tags. Tags are read with the
 * resource (whoever sees it sees its tags) and changed by whoever may change it; every
 * change bumps the resource's revision_number, as Neutron's standard attributes do.
 */

interface Taggable {
  member: string;
  table: store.StandardTable;
  load(db: store.Q, auth: AuthContext, id: string): Promise<Target>;
}

export const TAGGABLE: Record<string, Taggable> = {
  networks: {
    member: 'network', table: 'networks',
    load: async (db, auth, id) => ({ project_id: (await visibleNetwork(db, auth, id)).project_id }),
  },
  subnets: {
    member: 'subnet', table: 'subnets',
    load: async (db, auth, id) => { const { subnet, network } = await visibleSubnet(db, auth, id); return networkTarget(network, { project_id: subnet.project_id }); },
  },
  ports: {
    member: 'port', table: 'ports',
    load: async (db, auth, id) => { const { port, network } = await visiblePort(db, auth, id); return networkTarget(network, { project_id: port.project_id }); },
  },
  routers: {
    member: 'router', table: 'routers',
    load: async (db, auth, id) => ({ project_id: (await visibleRouter(db, auth, id)).project_id }),
  },
  floatingips: {
    member: 'floatingip', table: 'floatingips',
    load: async (db, auth, id) => ({ project_id: (await visibleFloatingIp(db, auth, id)).project_id }),
  },
  'security-groups': {
    member: 'security_group', table: 'security_groups',
    load: async (db, auth, id) => ({ project_id: (await visibleGroup(db, auth, id)).project_id }),
  },
};

function resource(collection: string): Taggable {
  const t = TAGGABLE[collection];
  if (!t) throw err.badRequest(`Resource type ${collection} does not support tags`);
  return t;
}

export async function getTags(deps: NetworkDeps, auth: AuthContext, collection: string, id: string): Promise<string[]> {
  await resource(collection).load(deps.db, auth, id);
  return (await store.tagsOf(deps.db, collection, [id])).get(id) ?? [];
}

export async function hasTag(deps: NetworkDeps, auth: AuthContext, collection: string, id: string, tag: string): Promise<void> {
  const tags = await getTags(deps, auth, collection, id);
  if (!tags.includes(tag)) throw err.tagNotFound(resource(collection).member, id, tag);
}

async function change(deps: NetworkDeps, auth: AuthContext, collection: string, id: string, action: 'update' | 'delete', fn: (db: store.Q) => Promise<boolean>): Promise<void> {
  const r = resource(collection);
  const target = await r.load(deps.db, auth, id);
  authorize(auth, `${action}_${r.member}:tags`, target);
  await inTransaction(deps, async (trx) => {
    await store.lockRevision(trx, r.table, id);
    if (await fn(trx)) await store.bump(trx, r.table, id);
  });
}

export async function replaceTags(deps: NetworkDeps, auth: AuthContext, collection: string, id: string, tags: unknown): Promise<string[]> {
  const wanted = checkTags(tags);
  await change(deps, auth, collection, id, 'update', async (db) => {
    const before = (await store.tagsOf(db, collection, [id])).get(id) ?? [];
    await store.setTags(db, collection, id, wanted);
    return [...before].sort().join('\n') !== [...wanted].sort().join('\n');
  });
  return [...wanted].sort();
}

export async function addTag(deps: NetworkDeps, auth: AuthContext, collection: string, id: string, tag: string): Promise<void> {
  checkTags([tag]);
  await change(deps, auth, collection, id, 'update', (db) => store.addTag(db, collection, id, tag));
}

export async function removeAllTags(deps: NetworkDeps, auth: AuthContext, collection: string, id: string): Promise<void> {
  await change(deps, auth, collection, id, 'delete', async (db) => {
    const before = (await store.tagsOf(db, collection, [id])).get(id) ?? [];
    await store.setTags(db, collection, id, []);
    return before.length > 0;
  });
}

export async function removeTag(deps: NetworkDeps, auth: AuthContext, collection: string, id: string, tag: string): Promise<void> {
  let found = true;
  await change(deps, auth, collection, id, 'delete', async (db) => { found = await store.removeTag(db, collection, id, tag); return found; });
  if (!found) throw err.tagNotFound(TAGGABLE[collection]!.member, id, tag);
}
