import type { AuthContext } from '../../api/context.ts';
import { deviceNames } from '../../bus/network.ts';
import { checkDnsName, checkQuota, checkRevision, inTransaction, networkTarget, newUuid, notify, ownerOf, randomMac, scopeOf } from './common.ts';
import { err, NeutronError } from './errors.ts';
import { disassociatePortFloatingIps, keepFloatingIpAddresses } from './floating-ips.ts';
import { allocate, claimExact, claimLowest, resolveFixedIps, type FixedIpRequest } from './ipam.ts';
import { canonicalMac, eui64, formatIp, parseCidr } from './netaddr.ts';
import { visibleNetwork } from './networks.ts';
import { allowed, authorize } from './policy.ts';
import { ensureDefaultGroup } from './security-groups.ts';
import * as store from './store.ts';
import {
  DEVICE_OWNER_FLOATINGIP, DEVICE_OWNER_ROUTER_GW, DEVICE_OWNER_ROUTER_INTF, isTrustedOwner,
  type AddressPair, type ExtraDhcpOpt, type Json, type NetworkDeps, type NetworkRecord, type PortBinding, type PortRecord, type PortView,
} from './types.ts';

/**
 * Ports: addresses from IPAM, a MAC address unique on the network, security groups
 * (the project's default group unless told otherwise, none for the network's own
 * ports), port security inherited from the network, allowed address pairs, extra DHCP
 * options, DNS names, and the binding (binding:* — where the port is plugged: an admin,
 * i.e. compute, sets the host; the port is then bound with vif_type 'bridge').
 * Every create and update is one transaction: a refusal leaves nothing behind.
 */

export const VNIC_TYPES = ['normal', 'direct', 'macvtap', 'baremetal', 'direct-physical', 'virtio-forwarder', 'smart-nic', 'vdpa', 'remote-managed'];

export interface PortInput {
  network_id?: string; name?: string; description?: string; admin_state_up?: boolean; mac_address?: string;
  fixed_ips?: { subnet_id?: string; ip_address?: string }[]; device_id?: string; device_owner?: string;
  security_groups?: string[] | null; port_security_enabled?: boolean; allowed_address_pairs?: { ip_address?: string; mac_address?: string }[];
  extra_dhcp_opts?: { opt_name?: string; opt_value?: string | null; ip_version?: number | string }[]; dns_name?: string;
  host_id?: string; vnic_type?: string; profile?: { [k: string]: Json } | null; project?: string; tags?: string[];
}

export function portView(p: PortRecord, auth: AuthContext, net: NetworkRecord | undefined, cfg: NetworkDeps['cfg']): PortView {
  const domain = cfg.dnsDomain.endsWith('.') ? cfg.dnsDomain : `${cfg.dnsDomain}.`;
  const v: PortView = {
    id: p.id, name: p.name, network_id: p.network_id, project_id: p.project_id, tenant_id: p.project_id, mac_address: p.mac_address,
    admin_state_up: p.admin_state_up, status: p.status, device_id: p.device_id, device_owner: p.device_owner, fixed_ips: p.fixed_ips,
    security_groups: p.security_groups, port_security_enabled: p.port_security_enabled, allowed_address_pairs: p.allowed_address_pairs,
    extra_dhcp_opts: p.extra_dhcp_opts, dns_name: p.dns_name,
    dns_assignment: p.fixed_ips.map((f) => {
      const hostname = p.dns_name || `host-${f.ip_address.replace(/[.:]/g, '-')}`;
      return { hostname, ip_address: f.ip_address, fqdn: `${hostname}.${domain}` };
    }),
    description: p.description, tags: p.tags, created_at: p.created_at, updated_at: p.updated_at, revision_number: p.revision_number,
  };
  const target = net ? networkTarget(net, { project_id: p.project_id }) : { project_id: p.project_id };
  if (allowed(auth, 'get_port:binding:host_id', target)) {
    v['binding:host_id'] = p.binding.host;
    v['binding:vif_type'] = p.binding.vif_type;
    v['binding:vif_details'] = p.binding.vif_details;
    v['binding:profile'] = p.binding.profile;
  }
  if (allowed(auth, 'get_port:binding:vnic_type', target)) v['binding:vnic_type'] = p.binding.vnic_type;
  return v;
}

/** The binding for a host ('' unbinds): a linux bridge port for vnic 'normal', binding_failed for anything else. */
export function bindingFor(networkId: string, host: string, vnic: string, profile: { [k: string]: Json }): PortBinding {
  if (host === '') return { host, vif_type: 'unbound', vnic_type: vnic, profile, vif_details: {} };
  if (vnic !== 'normal') return { host, vif_type: 'binding_failed', vnic_type: vnic, profile, vif_details: {} };
  return { host, vif_type: 'bridge', vnic_type: vnic, profile, vif_details: { port_filter: true, connectivity: 'l2', bridge_name: deviceNames.bridge(networkId) } };
}

function checkPairs(pairs: { ip_address?: string; mac_address?: string }[], portMac: string, max: number): AddressPair[] {
  const out: AddressPair[] = [];
  for (const p of pairs) {
    if (p.ip_address === undefined) throw err.invalidInput('AllowedAddressPair must contain ip_address');
    const c = parseCidr(p.ip_address);
    if (!c) throw err.badAttr('allowed_address_pairs', `'${p.ip_address}' is not a valid IP address`);
    const ip = p.ip_address.includes('/') ? `${formatIp(c.version, c.address)}/${c.prefix}` : formatIp(c.version, c.address);
    let mac = portMac;
    if (p.mac_address !== undefined) {
      const m = canonicalMac(p.mac_address);
      if (!m) throw err.badAttr('allowed_address_pairs', `'${p.mac_address}' is not a valid MAC address`);
      mac = m;
    }
    if (out.some((x) => x.ip_address === ip && x.mac_address === mac)) {
      throw new NeutronError(400, `Invalid input for operation: Request contains duplicate address pair: mac_address ${mac} ip_address ${ip}.`, 'DuplicateAddressPairInRequest');
    }
    out.push({ ip_address: ip, mac_address: mac });
  }
  if (out.length > max) throw err.addressPairsExhausted(max);
  return out;
}

function checkDhcpOpts(opts: { opt_name?: string; opt_value?: string | null; ip_version?: number | string }[]): ExtraDhcpOpt[] {
  const out: ExtraDhcpOpt[] = [];
  for (const o of opts) {
    if (typeof o.opt_name !== 'string' || o.opt_name.trim() === '') throw err.badAttr('extra_dhcp_opts', `'${JSON.stringify(o)}' has no opt_name`);
    const v = o.ip_version === undefined ? 4 : Number(o.ip_version);
    if (v !== 4 && v !== 6) throw err.badAttr('extra_dhcp_opts', `'${String(o.ip_version)}' is not in [4, 6]`);
    // An opt_value of null removes the option (on update); on create it is simply not set.
    if (o.opt_value === null || o.opt_value === undefined) continue;
    out.push({ opt_name: o.opt_name.trim(), opt_value: String(o.opt_value), ip_version: v });
  }
  return out;
}

/** A port the caller may see (its own, or any on a network it owns), or 404 PortNotFound. */
export async function visiblePort(db: store.Q, auth: AuthContext, id: string): Promise<{ port: PortRecord; network: NetworkRecord }> {
  const port = await store.getPort(db, id);
  const network = port ? await store.getNetwork(db, port.network_id) : undefined;
  if (!port || !network || !allowed(auth, 'get_port', networkTarget(network, { project_id: port.project_id }))) throw err.portNotFound(id);
  return { port, network };
}

/** The caller's groups for a port of `project`: each must exist and belong to that project. */
async function checkGroups(db: store.Q, project: string, ids: string[]): Promise<string[]> {
  const unique = [...new Set(ids)];
  const found = await store.loadSecurityGroups(db, { ids: unique });
  const missing = unique.filter((id) => !found.some((g) => g.id === id && g.project_id === project));
  if (missing.length) throw err.securityGroupNotFound(missing.join(', '));
  return unique;
}

function createAuthorizations(auth: AuthContext, input: PortInput, target: Parameters<typeof authorize>[2]): void {
  authorize(auth, 'create_port', target);
  if (input.device_owner !== undefined) authorize(auth, 'create_port:device_owner', target);
  if (input.mac_address !== undefined) authorize(auth, 'create_port:mac_address', target);
  if (input.fixed_ips?.some((f) => f.ip_address !== undefined)) authorize(auth, 'create_port:fixed_ips:ip_address', target);
  if (input.fixed_ips?.some((f) => f.subnet_id !== undefined)) authorize(auth, 'create_port:fixed_ips:subnet_id', target);
  if (input.port_security_enabled !== undefined) authorize(auth, 'create_port:port_security_enabled', target);
  if (input.host_id !== undefined) authorize(auth, 'create_port:binding:host_id', target);
  if (input.profile !== undefined) authorize(auth, 'create_port:binding:profile', target);
  if (input.vnic_type !== undefined) authorize(auth, 'create_port:binding:vnic_type', target);
  if (input.allowed_address_pairs?.length) authorize(auth, 'create_port:allowed_address_pairs', target);
}

/** Insert the port row with a fresh MAC (retrying a clash) or the requested one (409 when taken). */
async function insertWithMac(deps: NetworkDeps, db: store.Q, row: Parameters<typeof store.insertPort>[1], requested: string | undefined): Promise<string> {
  if (requested !== undefined) {
    if (!(await store.insertPort(db, { ...row, mac_address: requested }))) throw err.macInUse(row.network_id, requested);
    return requested;
  }
  for (let i = 0; i < 16; i++) {
    const mac = randomMac(deps.cfg.macPrefix);
    if (await store.insertPort(db, { ...row, mac_address: mac })) return mac;
  }
  throw err.macGenerationFailure(row.network_id);
}

/** Create one port inside `trx` (a bulk create runs several in one transaction). */
async function createPortIn(deps: NetworkDeps, trx: store.Q, input: PortInput, net: NetworkRecord, project: string): Promise<string> {
  await checkQuota(deps, trx, project, 'port');
  const owner = input.device_owner ?? '';
  const trusted = isTrustedOwner(owner);
  const portSecurity = input.port_security_enabled ?? net.port_security_enabled;
  let groups: string[] = [];
  if (input.security_groups !== undefined && input.security_groups !== null && input.security_groups.length) {
    if (!portSecurity) throw err.portSecurityRequiredForGroups();
    groups = await checkGroups(trx, project, input.security_groups);
  } else if ((input.security_groups === undefined || input.security_groups === null) && portSecurity && !trusted) {
    groups = [await ensureDefaultGroup(trx, project)];
  }
  const pairs = input.allowed_address_pairs?.length ? input.allowed_address_pairs : [];
  if (pairs.length && !portSecurity) throw err.addressPairsNeedPortSecurity();
  const mac = input.mac_address === undefined ? undefined : canonicalMac(input.mac_address) ?? undefined;
  if (input.mac_address !== undefined && mac === undefined) throw err.badAttr('mac_address', `'${input.mac_address}' is not a valid MAC address`);
  const id = newUuid();
  const at = store.now();
  const finalMac = await insertWithMac(deps, trx, {
    id, project_id: project, network_id: net.id, name: input.name ?? '', mac_address: '', admin_state_up: input.admin_state_up === false ? 0 : 1,
    status: 'DOWN', device_id: input.device_id ?? '', device_owner: owner, port_security_enabled: portSecurity ? 1 : 0,
    dns_name: checkDnsName('dns_name', input.dns_name ?? ''), description: input.description ?? '', created_at: at, updated_at: at, revision_number: 1,
  }, mac);
  const vnic = input.vnic_type ?? 'normal';
  await store.setBinding(trx, id, bindingFor(net.id, input.host_id ?? '', vnic, input.profile ?? {}));
  await store.setPortSecurityGroups(trx, id, groups);
  await store.setAddressPairs(trx, id, checkPairs(pairs, finalMac, deps.cfg.maxAllowedAddressPairs));
  await store.setExtraDhcpOpts(trx, id, checkDhcpOpts(input.extra_dhcp_opts ?? []));
  if (input.tags?.length) await store.setTags(trx, 'ports', id, input.tags);
  const subnets = await store.loadSubnets(trx, { networkIds: [net.id] });
  const requested = input.fixed_ips === undefined ? undefined : resolveFixedIps(net.id, subnets, input.fixed_ips, undefined, input.device_owner ?? '');
  await allocate(trx, { id, network_id: net.id, mac_address: finalMac, device_owner: owner }, subnets, requested);
  return id;
}

export async function createPorts(deps: NetworkDeps, auth: AuthContext, inputs: PortInput[]): Promise<PortView[]> {
  const plans: { input: PortInput; net: NetworkRecord; project: string }[] = [];
  for (const input of inputs) {
    if (input.network_id === undefined) throw err.badRequest(`Failed to parse request. Required attribute 'network_id' not specified`);
    const net = await visibleNetwork(deps.db, auth, input.network_id);
    const project = ownerOf(auth, input.project);
    createAuthorizations(auth, input, networkTarget(net, { project_id: project, device_owner: input.device_owner }));
    if (input.vnic_type !== undefined && !VNIC_TYPES.includes(input.vnic_type)) {
      throw err.badAttr('binding:vnic_type', `'${input.vnic_type}' is not in [${VNIC_TYPES.map((x) => `'${x}'`).join(', ')}]`);
    }
    plans.push({ input, net, project });
  }
  const ids = await inTransaction(deps, async (trx) => {
    const out: string[] = [];
    for (const p of plans) out.push(await createPortIn(deps, trx, p.input, p.net, p.project));
    return out;
  });
  notify(deps, 'port');
  const ports = await store.loadPorts(deps.db, { ids });
  const nets = new Map(plans.map((p) => [p.net.id, p.net]));
  return ids.map((id) => { const p = ports.find((x) => x.id === id)!; return portView(p, auth, nets.get(p.network_id), deps.cfg); });
}

export async function listPorts(deps: NetworkDeps, auth: AuthContext, narrow: { networkIds?: string[]; deviceIds?: string[]; ids?: string[] } = {}): Promise<PortView[]> {
  const scope = scopeOf(auth);
  const ports = await store.loadPorts(deps.db, { ...narrow, ...(scope === undefined ? {} : { visibleTo: scope }) });
  const nets = new Map((await store.loadNetworks(deps.db, { ids: [...new Set(ports.map((p) => p.network_id))] })).map((n) => [n.id, n]));
  return ports.filter((p) => {
    const n = nets.get(p.network_id);
    return n !== undefined && allowed(auth, 'get_port', networkTarget(n, { project_id: p.project_id }));
  }).map((p) => portView(p, auth, nets.get(p.network_id), deps.cfg));
}

export async function showPort(deps: NetworkDeps, auth: AuthContext, id: string): Promise<PortView> {
  const { port, network } = await visiblePort(deps.db, auth, id);
  return portView(port, auth, network, deps.cfg);
}

/** New fixed IPs for an update: addresses the port keeps, and new requests to claim. */
function planFixedIps(port: PortRecord, requested: FixedIpRequest[]): { keep: string[]; claim: FixedIpRequest[] } {
  const keep: string[] = [];
  const claim: FixedIpRequest[] = [];
  for (const r of requested) {
    if (r.ip !== undefined) {
      if (port.fixed_ips.some((f) => f.ip_address === r.ip)) keep.push(r.ip);
      else claim.push(r);
    } else {
      // A subnet-only entry keeps an address the port has there (Neutron matches them up).
      const have = port.fixed_ips.find((f) => f.subnet_id === r.subnet.id && !keep.includes(f.ip_address) && !requested.some((x) => x.ip === f.ip_address));
      if (have) keep.push(have.ip_address); else claim.push(r);
    }
  }
  return { keep, claim };
}

export async function updatePort(deps: NetworkDeps, auth: AuthContext, id: string, input: PortInput, expected: number | undefined): Promise<PortView> {
  const { port: p0, network: net } = await visiblePort(deps.db, auth, id);
  const target = networkTarget(net, { project_id: p0.project_id, device_owner: input.device_owner ?? p0.device_owner });
  authorize(auth, 'update_port', target);
  if (input.device_owner !== undefined) authorize(auth, 'update_port:device_owner', target);
  if (input.mac_address !== undefined) authorize(auth, 'update_port:mac_address', target);
  if (input.fixed_ips?.some((f) => f.ip_address !== undefined)) authorize(auth, 'update_port:fixed_ips:ip_address', target);
  if (input.fixed_ips?.some((f) => f.subnet_id !== undefined)) authorize(auth, 'update_port:fixed_ips:subnet_id', target);
  if (input.port_security_enabled !== undefined) authorize(auth, 'update_port:port_security_enabled', target);
  if (input.host_id !== undefined) authorize(auth, 'update_port:binding:host_id', target);
  if (input.profile !== undefined) authorize(auth, 'update_port:binding:profile', target);
  if (input.vnic_type !== undefined) authorize(auth, 'update_port:binding:vnic_type', target);
  if (input.allowed_address_pairs !== undefined) authorize(auth, 'update_port:allowed_address_pairs', target);
  if (input.vnic_type !== undefined && !VNIC_TYPES.includes(input.vnic_type)) {
    throw err.badAttr('binding:vnic_type', `'${input.vnic_type}' is not in [${VNIC_TYPES.map((x) => `'${x}'`).join(', ')}]`);
  }
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'ports', id);
    if (rev === undefined) throw err.portNotFound(id);
    checkRevision(rev, expected);
    const p = (await store.getPort(trx, id))!;
    let changed = false;
    const set: Parameters<typeof store.updatePortRow>[2] = {};
    if (input.name !== undefined && input.name !== p.name) set.name = input.name;
    if (input.description !== undefined && input.description !== p.description) set.description = input.description;
    if (input.admin_state_up !== undefined && input.admin_state_up !== p.admin_state_up) set.admin_state_up = input.admin_state_up ? 1 : 0;
    if (input.device_id !== undefined && input.device_id !== p.device_id) set.device_id = input.device_id;
    if (input.device_owner !== undefined && input.device_owner !== p.device_owner) set.device_owner = input.device_owner;
    if (input.dns_name !== undefined) {
      const d = checkDnsName('dns_name', input.dns_name);
      if (d !== p.dns_name) set.dns_name = d;
    }
    let mac = p.mac_address;
    if (input.mac_address !== undefined) {
      const m = canonicalMac(input.mac_address);
      if (!m) throw err.badAttr('mac_address', `'${input.mac_address}' is not a valid MAC address`);
      if (m !== p.mac_address) {
        if (p.binding.host !== '' && p.binding.vif_type !== 'unbound' && p.binding.vif_type !== 'binding_failed') {
          throw new NeutronError(409, `Unable to complete operation on port ${id}, port is already bound, port type: ${p.binding.vif_type}, old_mac ${p.mac_address}, new_mac ${m}.`, 'PortBound');
        }
        set.mac_address = m;
        mac = m;
      }
    }
    const portSecurity = input.port_security_enabled ?? p.port_security_enabled;
    if (portSecurity !== p.port_security_enabled) set.port_security_enabled = portSecurity ? 1 : 0;
    let groups = p.security_groups;
    if (input.security_groups !== undefined) {
      const wanted = input.security_groups ?? [];
      if (wanted.length && !portSecurity) throw err.portSecurityRequiredForGroups();
      groups = await checkGroups(trx, p.project_id, wanted);
    }
    if (!portSecurity && groups.length) throw err.portHasSecurityGroup();
    if ([...groups].sort().join(',') !== [...p.security_groups].sort().join(',')) {
      await store.setPortSecurityGroups(trx, id, groups);
      changed = true;
    }
    let pairs = p.allowed_address_pairs;
    if (input.allowed_address_pairs !== undefined) {
      pairs = checkPairs(input.allowed_address_pairs, mac, deps.cfg.maxAllowedAddressPairs);
      await store.setAddressPairs(trx, id, pairs);
      changed = true;
    }
    if (!portSecurity && pairs.length) throw err.addressPairsNeedPortSecurity();
    if (input.extra_dhcp_opts !== undefined) {
      const removed = new Set(input.extra_dhcp_opts.filter((o) => o.opt_value === null).map((o) => `${String(o.opt_name)}/${String(o.ip_version ?? 4)}`));
      const merged = new Map(p.extra_dhcp_opts.filter((o) => !removed.has(`${o.opt_name}/${o.ip_version}`)).map((o) => [`${o.opt_name}/${o.ip_version}`, o]));
      for (const o of checkDhcpOpts(input.extra_dhcp_opts)) merged.set(`${o.opt_name}/${o.ip_version}`, o);
      await store.setExtraDhcpOpts(trx, id, [...merged.values()]);
      changed = true;
    }
    if (input.host_id !== undefined || input.vnic_type !== undefined || input.profile !== undefined) {
      const b = bindingFor(p.network_id, input.host_id ?? p.binding.host, input.vnic_type ?? p.binding.vnic_type,
        input.profile === undefined ? p.binding.profile : input.profile ?? {});
      if (JSON.stringify(b) !== JSON.stringify(p.binding)) { await store.setBinding(trx, id, b); changed = true; }
      // A port that leaves its host is not plugged anywhere until the new host's agent says so.
      if (b.host !== p.binding.host && p.status === 'ACTIVE') set.status = 'DOWN';
    }
    if (input.fixed_ips !== undefined) {
      const subnets = await store.loadSubnets(trx, { networkIds: [p.network_id] });
      const plan = planFixedIps(p, resolveFixedIps(p.network_id, subnets, input.fixed_ips, undefined, input.device_owner ?? p.device_owner));
      const drop = p.fixed_ips.map((f) => f.ip_address).filter((ip) => !plan.keep.includes(ip));
      // Neutron's prevent_internal_ip_change_for_fip: a floating IP's fixed address stays.
      if (drop.length) await keepFloatingIpAddresses(trx, id, drop);
      if (drop.length || plan.claim.length) {
        await store.releaseIps(trx, id, drop);
        const ref = { id, network_id: p.network_id, mac_address: mac, device_owner: set.device_owner ?? p.device_owner };
        for (const c of plan.claim) {
          if (c.ip !== undefined) await claimExact(trx, c.subnet, ref, c.ip);
          else if (c.subnet.ip_version === 6 && (c.subnet.ipv6_address_mode === 'slaac' || c.subnet.ipv6_address_mode === 'dhcpv6-stateless')) {
            await claimExact(trx, c.subnet, ref, formatIp(6, eui64(parseCidr(c.subnet.cidr)!, mac)));
          } else if ((await claimLowest(trx, c.subnet, ref)) === null) throw err.ipGenerationFailure(p.network_id);
        }
        changed = true;
      }
    }
    if (Object.keys(set).length) {
      if (!(await store.updatePortRow(trx, id, set))) throw err.macInUse(p.network_id, set.mac_address ?? '');
      changed = true;
    }
    if (changed) await store.bump(trx, 'ports', id);
  });
  notify(deps, 'port');
  return portView((await store.getPort(deps.db, id))!, auth, net, deps.cfg);
}

export const PORT_STATUSES = ['ACTIVE', 'DOWN', 'BUILD', 'ERROR'] as const;

/**
 * Record what the agents report (the controller's side, no caller policy): ports become
 * ACTIVE once plugged, DOWN when not. Each port whose status changes gets a new revision.
 * Returns the ids that changed.
 */
export async function setPortStatus(deps: Pick<NetworkDeps, 'db' | 'log' | 'changed'>, portIds: string[], status: (typeof PORT_STATUSES)[number]): Promise<string[]> {
  if (!PORT_STATUSES.includes(status)) throw err.badAttr('status', `'${String(status)}' is not in [${PORT_STATUSES.map((x) => `'${x}'`).join(', ')}]`);
  const changed = await inTransaction(deps, async (trx) => {
    const out: string[] = [];
    for (const id of portIds) {
      const row = await trx.selectFrom('ports').select('status').where('id', '=', id).executeTakeFirst();
      if (!row || row.status === status) continue;
      await store.updatePortRow(trx, id, { status });
      await store.bump(trx, 'ports', id);
      out.push(id);
    }
    return out;
  });
  if (changed.length) notify(deps, 'port_status');
  return changed;
}

const L3_OWNERS = [DEVICE_OWNER_ROUTER_INTF, DEVICE_OWNER_ROUTER_GW, DEVICE_OWNER_FLOATINGIP];

export async function deletePort(deps: NetworkDeps, auth: AuthContext, id: string, expected: number | undefined): Promise<void> {
  const { port, network } = await visiblePort(deps.db, auth, id);
  authorize(auth, 'delete_port', networkTarget(network, { project_id: port.project_id }));
  let disassociated = 0;
  await inTransaction(deps, async (trx) => {
    const rev = await store.lockRevision(trx, 'ports', id);
    if (rev === undefined) throw err.portNotFound(id);
    checkRevision(rev, expected);
    // A router's or a floating IP's port goes with its router interface / floating IP, not through the port API.
    if (L3_OWNERS.includes(port.device_owner)) {
      const routerPort = await trx.selectFrom('router_ports').select('router_id').where('port_id', '=', id).executeTakeFirst();
      const fip = await trx.selectFrom('floatingips').select('id').where('floating_port_id', '=', id).executeTakeFirst();
      if (routerPort || fip) {
        throw new NeutronError(409, `Port ${id} cannot be deleted directly via the port API: has device owner ${port.device_owner}.`, 'ServicePortInUse');
      }
    }
    // Neutron's disassociate_floatingips: the port's floating IPs stay allocated, unassociated.
    disassociated = await disassociatePortFloatingIps(trx, id);
    await store.deletePortRow(trx, id);
  });
  notify(deps, 'port');
  if (disassociated) notify(deps, 'floatingip');
}

