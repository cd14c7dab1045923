import type { AuthContext } from '../../api/context.ts';
import { checkDnsDomain, checkQuota, checkRevision, inTransaction, newUuid, notify, ownerOf, scopeOf } from './common.ts';
import { err, NeutronError } from './errors.ts';
import { allowed, authorize } from './policy.ts';
import { ensureDefaultGroup } from './security-groups.ts';
import * as store from './store.ts';
import { AUTO_DELETE_PORT_OWNERS, DEVICE_OWNER_FLOATINGIP, DEVICE_OWNER_ROUTER_GW, type NetworkDeps, type NetworkRecord, type NetworkView } from './types.ts';

/**
 * Networks with their one segment (ML2 with the vxlan and flat type drivers): tenant
 * networks get VXLAN and the lowest free VNI of the configured range; admins may ask
 * for a given VNI or a flat network on a configured physical network. Provider
 * attributes, router:external, shared and is_default are admin matters.
 */

export interface NetworkInput {
  name?: string; description?: string; admin_state_up?: boolean; shared?: boolean; router_external?: boolean; is_default?: boolean;
  mtu?: number; port_security_enabled?: boolean; availability_zone_hints?: string[]; dns_domain?: string; project?: string;
  network_type?: string; physical_network?: string | null; segmentation_id?: number | null; tags?: string[];
}

export function networkView(n: NetworkRecord, auth: AuthContext, cfg: NetworkDeps['cfg']): NetworkView {
  const v: NetworkView = {
    id: n.id, name: n.name, project_id: n.project_id, tenant_id: n.project_id, status: n.status, admin_state_up: n.admin_state_up,
    shared: n.shared, 'router:external': n.router_external, is_default: n.is_default, mtu: n.mtu, port_security_enabled: n.port_security_enabled,
    availability_zone_hints: n.availability_zone_hints, availability_zones: [...cfg.availabilityZones], dns_domain: n.dns_domain,
    subnets: n.subnets, description: n.description, tags: n.tags, created_at: n.created_at, updated_at: n.updated_at, revision_number: n.revision_number,
  };
  if (allowed(auth, 'get_network:provider:network_type', { project_id: n.project_id })) {
    v['provider:network_type'] = n.network_type;
    v['provider:physical_network'] = n.physical_network;
    v['provider:segmentation_id'] = n.segmentation_id;
  }
  return v;
}

/** A network the caller may see, or 404 NetworkNotFound (never saying it exists). */
export async function visibleNetwork(db: store.Q, auth: AuthContext, id: string): Promise<NetworkRecord> {
  const n = await store.getNetwork(db, id);
  if (!n || !allowed(auth, 'get_network', { project_id: n.project_id, network_shared: n.shared, network_external: n.router_external })) {
    throw err.networkNotFound(id);
  }
  return n;
}

function maxMtu(cfg: NetworkDeps['cfg'], type: string): number {
  return type === 'flat' ? cfg.flatMtu : cfg.vxlanMtu;
}

function checkMtu(cfg: NetworkDeps['cfg'], type: string, mtu: number): void {
  if (mtu < 68) throw err.badAttr('mtu', `'${mtu}' is too small - must be at least '68'`);
  const max = maxMtu(cfg, type);
  if (mtu > max) throw err.invalidInput(`Requested MTU is too big, maximum is ${max}`);
}

function checkZones(cfg: NetworkDeps['cfg'], hints: string[]): void {
  for (const z of hints) {
    if (!cfg.availabilityZones.includes(z)) throw new NeutronError(404, `AvailabilityZone ${z} could not be found.`, 'AvailabilityZoneNotFound');
  }
}

interface Segment { network_type: string; physical_network: string; segmentation_id: number | null }

/** The segment a create asks for, checked as ML2's type drivers check it (no VNI yet for a tenant network). */
function requestedSegment(cfg: NetworkDeps['cfg'], input: NetworkInput): Segment {
  const type = input.network_type ?? 'vxlan';
  const physnet = input.physical_network ?? null;
  const segId = input.segmentation_id ?? null;
  if (type === 'vxlan') {
    if (physnet !== null) throw err.invalidInput('provider:physical_network specified for VXLAN network');
    if (segId !== null && (segId < 1 || segId > 16777215)) throw err.invalidInput(`segmentation_id out of range (1 through 16777215)`);
    return { network_type: 'vxlan', physical_network: '', segmentation_id: segId };
  }
  if (type === 'flat') {
    if (segId !== null) throw err.invalidInput('segmentation_id not allowed for flat network type');
    if (physnet === null || physnet === '') throw err.invalidInput('physical_network required for flat provider network');
    if (!cfg.physicalNetworks.includes(physnet)) throw err.invalidInput(`physical_network '${physnet}' unknown for flat provider network`);
    return { network_type: 'flat', physical_network: physnet, segmentation_id: 0 };
  }
  throw err.invalidInput(`network_type value '${type}' not supported`);
}

/** Claim the segment: the asked-for VNI or physnet, or the lowest free VNI of the range. */
async function claimSegment(deps: NetworkDeps, db: store.Q, networkId: string, seg: Segment, at: string): Promise<void> {
  const row = { id: newUuid(), network_id: networkId, network_type: seg.network_type, physical_network: seg.physical_network, created_at: at };
  if (seg.network_type === 'flat') {
    if (!(await store.insertSegment(db, { ...row, segmentation_id: 0 }))) throw err.flatNetworkInUse(seg.physical_network);
    return;
  }
  if (seg.segmentation_id !== null) {
    if (!(await store.insertSegment(db, { ...row, segmentation_id: seg.segmentation_id }))) throw err.tunnelIdInUse(seg.segmentation_id);
    return;
  }
  const { vniMin, vniMax } = deps.cfg;
  const used = await store.usedSegmentationIds(db, 'vxlan', vniMin, vniMax);
  let candidate = vniMin;
  let i = 0;
  for (;;) {
    while (i < used.length && used[i]! < candidate) i++;
    while (i < used.length && used[i] === candidate) { candidate++; i++; }
    if (candidate > vniMax) throw err.noNetworkAvailable();
    // The unique index settles races with concurrent creates: on a clash, try the next VNI.
    if (await store.insertSegment(db, { ...row, segmentation_id: candidate })) return;
    candidate++;
  }
}

export function adminKeysOf(input: NetworkInput): string[] {
  const keys: string[] = [];
  if (input.shared !== undefined) keys.push('shared');
  if (input.router_external !== undefined) keys.push('router:external');
  if (input.is_default !== undefined) keys.push('is_default');
  if (input.network_type !== undefined) keys.push('provider:network_type');
  if (input.physical_network !== undefined) keys.push('provider:physical_network');
  if (input.segmentation_id !== undefined) keys.push('provider:segmentation_id');
  return keys;
}

async function checkDefaultExternal(db: store.Q, id: string): Promise<void> {
  const other = await db.selectFrom('networks').select('id').where('is_default', '=', 1).where('id', '!=', id).executeTakeFirst();
  if (other) {
    throw new NeutronError(409, `Unable to set network ${id} as default external network, because network ${other.id} is already the default.`, 'DefaultExternalNetworkExists');
  }
}

export async function createNetworks(deps: NetworkDeps, auth: AuthContext, inputs: NetworkInput[]): Promise<NetworkView[]> {
  const plans = inputs.map((input) => {
    const project = ownerOf(auth, input.project);
    authorize(auth, 'create_network', { project_id: project });
    for (const k of adminKeysOf(input)) authorize(auth, `create_network:${k}`, { project_id: project });
    const seg = requestedSegment(deps.cfg, input);
    const mtu = input.mtu ?? maxMtu(deps.cfg, seg.network_type);
    checkMtu(deps.cfg, seg.network_type, mtu);
    checkZones(deps.cfg, input.availability_zone_hints ?? []);
    if (input.is_default && !input.router_external) throw err.invalidInput('is_default can only be set on an external network');
    return { input, project, seg, mtu, dnsDomain: checkDnsDomain(input.dns_domain ?? '') };
  });
  const ids = await inTransaction(deps, async (trx) => {
    const out: string[] = [];
    for (const p of plans) {
      await checkQuota(deps, trx, p.project, 'network');
      await ensureDefaultGroup(trx, p.project);
      const id = newUuid();
      const at = store.now();
      if (p.input.is_default) await checkDefaultExternal(trx, id);
      await store.insertNetwork(trx, {
        id, project_id: p.project, name: p.input.name ?? '', status: 'ACTIVE', admin_state_up: p.input.admin_state_up === false ? 0 : 1,
        shared: p.input.shared ? 1 : 0, router_external: p.input.router_external ? 1 : 0, is_default: p.input.is_default ? 1 : 0, mtu: p.mtu,
        port_security_enabled: p.input.port_security_enabled === false ? 0 : 1, availability_zone_hints: JSON.stringify(p.input.availability_zone_hints ?? []),
        dns_domain: p.dnsDomain, description: p.input.description ?? '', created_at: at, updated_at: at, revision_number: 1,
      });
      await claimSegment(deps, trx, id, p.seg, at);
      if (p.input.tags?.length) await store.setTags(trx, 'networks', id, p.input.tags);
      out.push(id);
    }
    return out;
  });
  notify(deps, 'network');
  const nets = await store.loadNetworks(deps.db, { ids });
  return ids.map((id) => networkView(nets.find((n) => n.id === id)!, auth, deps.cfg));
}

export async function listNetworks(deps: NetworkDeps, auth: AuthContext): Promise<NetworkView[]> {
  const scope = scopeOf(auth);
  const nets = await store.loadNetworks(deps.db, scope === undefined ? {} : { visibleTo: scope });
  return nets.filter((n) => allowed(auth, 'get_network', { project_id: n.project_id, network_shared: n.shared, network_external: n.router_external }))
    .map((n) => networkView(n, auth, deps.cfg));
}

export async function showNetwork(deps: NetworkDeps, auth: AuthContext, id: string): Promise<NetworkView> {
  return networkView(await visibleNetwork(deps.db, auth, id), auth, deps.cfg);
}

export async function updateNetwork(deps: NetworkDeps, auth: AuthContext, id: string, input: NetworkInput, expected: number | undefined): Promise<NetworkView> {
  const current = await visibleNetwork(deps.db, auth, id);
  const target = { project_id: current.project_id };
  authorize(auth, 'update_network', target);
  for (const k of adminKeysOf(input)) authorize(auth, `update_network:${k}`, target);
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'networks', id);
    if (rev === undefined) throw err.networkNotFound(id);
    checkRevision(rev, expected);
    const n = (await store.getNetwork(trx, id))!;
    if ((input.network_type !== undefined && input.network_type !== n.network_type)
      || (input.physical_network !== undefined && input.physical_network !== n.physical_network)
      || (input.segmentation_id !== undefined && input.segmentation_id !== n.segmentation_id)) {
      throw err.invalidInput('Plugin does not support updating provider attributes');
    }
    const set: Parameters<typeof store.updateNetworkRow>[2] = {};
    if (input.name !== undefined && input.name !== n.name) set.name = input.name;
    if (input.description !== undefined && input.description !== n.description) set.description = input.description;
    if (input.admin_state_up !== undefined && input.admin_state_up !== n.admin_state_up) set.admin_state_up = input.admin_state_up ? 1 : 0;
    if (input.port_security_enabled !== undefined && input.port_security_enabled !== n.port_security_enabled) set.port_security_enabled = input.port_security_enabled ? 1 : 0;
    if (input.dns_domain !== undefined) {
      const d = checkDnsDomain(input.dns_domain);
      if (d !== n.dns_domain) set.dns_domain = d;
    }
    if (input.mtu !== undefined && input.mtu !== n.mtu) {
      checkMtu(deps.cfg, n.network_type, input.mtu);
      set.mtu = input.mtu;
    }
    if (input.shared !== undefined && input.shared !== n.shared) {
      if (!input.shared) {
        const others = await trx.selectFrom('ports').select('project_id').where('network_id', '=', id).where('project_id', '!=', n.project_id)
          .where('device_owner', 'not like', 'network:%').executeTakeFirst();
        if (others) throw new NeutronError(409, `Unable to reconfigure sharing settings for network ${id}. Multiple tenants are using it.`, 'InvalidSharedSetting');
      }
      set.shared = input.shared ? 1 : 0;
    }
    const external = input.router_external ?? n.router_external;
    if (input.router_external !== undefined && input.router_external !== n.router_external) {
      if (!input.router_external) {
        const gw = await trx.selectFrom('ports').select('id').where('network_id', '=', id)
          .where('device_owner', 'in', [DEVICE_OWNER_ROUTER_GW, DEVICE_OWNER_FLOATINGIP]).executeTakeFirst();
        if (gw) throw new NeutronError(409, `External network ${id} cannot be updated to be made non-external, since it has existing gateway ports.`, 'ExternalNetworkInUse');
      }
      set.router_external = input.router_external ? 1 : 0;
      if (!input.router_external) set.is_default = 0;
    }
    if (input.is_default !== undefined && input.is_default !== n.is_default) {
      if (input.is_default && !external) throw err.invalidInput('is_default can only be set on an external network');
      if (input.is_default) await checkDefaultExternal(trx, id);
      set.is_default = input.is_default ? 1 : 0;
    }
    if (Object.keys(set).length) {
      await store.updateNetworkRow(trx, id, set);
      await store.bump(trx, 'networks', id);
    }
  });
  notify(deps, 'network');
  return networkView((await store.getNetwork(deps.db, id))!, auth, deps.cfg);
}

/**
 * Delete a network as ML2 does: ports the network owns itself (DHCP) go with it; any
 * other port (a VM's, a router interface or gateway, a floating IP) keeps it: 409
 * NetworkInUse listing them. Subnets go too. Nothing is deleted when it is refused.
 */
export async function deleteNetwork(deps: NetworkDeps, auth: AuthContext, id: string, expected: number | undefined): Promise<void> {
  const n = await visibleNetwork(deps.db, auth, id);
  authorize(auth, 'delete_network', { project_id: n.project_id });
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'networks', id);
    if (rev === undefined) throw err.networkNotFound(id);
    checkRevision(rev, expected);
    // Neutron's delete_disassociated_floatingips: an external network's floating IPs that
    // NAT nothing go with it (their addresses' ports too); associated ones keep it in use.
    if (n.router_external) {
      const loose = await trx.selectFrom('floatingips').select(['id', 'floating_port_id']).where('floating_network_id', '=', id)
        .where('fixed_port_id', 'is', null).execute();
      for (const f of loose) {
        await trx.deleteFrom('network_tags').where('resource_type', '=', 'floatingips').where('resource_id', '=', f.id).execute();
        await trx.deleteFrom('floatingips').where('id', '=', f.id).execute();
        await store.deletePortRow(trx, f.floating_port_id);
      }
    }
    const ports = await store.portOwnersOnNetwork(trx, id);
    const blocking = ports.filter((p) => !AUTO_DELETE_PORT_OWNERS.includes(p.device_owner));
    if (blocking.length) throw err.networkInUse(id, blocking.map((p) => p.id));
    for (const p of ports) await store.deletePortRow(trx, p.id);
    for (const s of await trx.selectFrom('subnets').select('id').where('network_id', '=', id).execute()) await store.deleteSubnetRow(trx, s.id);
    await store.deleteNetworkRow(trx, id);
  });
  notify(deps, 'network');
}

