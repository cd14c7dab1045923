import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { agentSubjects, type PortNic } from '../../../bus/compute.ts';
import { BadRequest, GureumError, NotFound } from '../../../common/errors.ts';
import type { InterfacePort, NetworkApi, VifInfo } from '../networks.ts';
import type { ComputeService } from '../service.ts';
import { invalidState } from '../service.ts';
import * as store from '../store.ts';
import type { Instance, VmState } from '../types.ts';
import { askAgent, errorMessage, patchSystemMetadata, runEvent, workContext } from './common.ts';
import './policy.ts';

/**
 * Network interfaces of a server (Nova's os-interface and the multinic actions): a Neutron
 * port is bound to the server's host and hot-plugged into the running guest (or only
 * added to the saved spec of a stopped one), and unplugged and unbound again. The port
 * the user brought stays theirs (unbound on detach), one made for a network is deleted.
 */

/** Where Nova allows attach and detach (check_instance_state of attach_interface/detach_interface). */
const IFACE_VM_STATES: VmState[] = ['active', 'paused', 'stopped'];
/** How long the agent gets for a hotplug (the tap is plugged first) and for an unplug (the guest must let go). */
const ATTACH_TIMEOUT_MS = 90_000;
const DETACH_GUEST_TIMEOUT_MS = 60_000;
/** System metadata key: the tag given to each attached port (2.49), shown from 2.70. */
const TAGS_KEY = 'interface_tags';

/** 500, as Nova's InterfaceAttachFailed / InterfaceDetachFailed. */
class InterfaceFailed extends GureumError {
  constructor(message: string) { super(500, message); }
}

export interface AttachmentView {
  net_id: string; port_id: string; mac_addr: string; port_state: string;
  fixed_ips: { ip_address: string; subnet_id: string }[];
  tag?: string | null;
}

function networkApi(svc: ComputeService): NetworkApi {
  const api = svc.deps.networks;
  if (!api) throw new BadRequest('Network interfaces need the network service, which this cloud does not run.');
  return api;
}

async function tagsOf(svc: ComputeService, uuid: string): Promise<Record<string, string>> {
  const sys = await store.systemMetadata(svc.db, uuid);
  try { return JSON.parse(sys[TAGS_KEY] ?? '{}') as Record<string, string>; } catch { return {}; }
}

async function setTag(svc: ComputeService, uuid: string, portId: string, tag: string | undefined): Promise<void> {
  const tags = await tagsOf(svc, uuid);
  if (tag === undefined && !(portId in tags)) return;
  if (tag === undefined) delete tags[portId]; else tags[portId] = tag;
  const sys = await patchSystemMetadata(svc, uuid, { [TAGS_KEY]: Object.keys(tags).length ? JSON.stringify(tags) : undefined });
  await store.updateInstance(svc.db, uuid, { system_metadata: JSON.stringify(sys) });
}

function view(p: InterfacePort, tags: Record<string, string> | undefined): AttachmentView {
  return {
    net_id: p.networkId, port_id: p.portId, mac_addr: p.mac, port_state: p.status, fixed_ips: p.fixedIps,
    ...(tags ? { tag: tags[p.portId] ?? null } : {}),
  };
}

/** The instance's ports on a tenant network (none for a server on the user-mode NIC or without NICs). */
async function portsOf(svc: ComputeService, inst: Instance): Promise<InterfacePort[]> {
  const api = svc.deps.networks;
  return api ? api.interfaces(inst.uuid) : [];
}

export async function listInterfaces(svc: ComputeService, auth: AuthContext, uuid: string, showTag: boolean): Promise<AttachmentView[]> {
  const inst = await svc.get(auth, uuid, 'os_compute_api:os-attach-interfaces:list');
  const tags = showTag ? await tagsOf(svc, uuid) : undefined;
  return (await portsOf(svc, inst)).map((p) => view(p, tags));
}

export async function showInterface(svc: ComputeService, auth: AuthContext, uuid: string, portId: string, showTag: boolean): Promise<AttachmentView> {
  const inst = await svc.get(auth, uuid, 'os_compute_api:os-attach-interfaces:show');
  const p = (await portsOf(svc, inst)).find((x) => x.portId === portId);
  if (!p) throw new NotFound(`Instance ${uuid} does not have a port with id ${portId}`);
  return view(p, showTag ? await tagsOf(svc, uuid) : undefined);
}

/** The common checks: policy, lock, a placed server in a state Nova allows, tenant networking. */
async function checked(svc: ComputeService, auth: AuthContext, uuid: string, rule: string, action: string): Promise<Instance> {
  const inst = await svc.get(auth, uuid, rule);
  svc.checkLock(auth, inst);
  if (inst.taskState !== null) throw invalidState(action, uuid, 'task_state', inst.taskState);
  if (!IFACE_VM_STATES.includes(inst.vmState) || !inst.host) throw invalidState(action, uuid, 'vm_state', inst.vmState);
  return inst;
}

function portNic(v: VifInfo): PortNic {
  return { portId: v.portId, networkId: v.networkId, mac: v.mac, mtu: v.mtu, ips: v.fixedIps.map((f) => f.ip) };
}

/**
 * Attach (POST os-interface): synchronous, as Nova's (the API answers once the NIC is in
 * the guest): the port is bound to the host and cached, the agent plugs its tap and
 * hot-plugs the NIC; a failure releases the port again and is a 500.
 */
export async function attachInterface(
  svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string,
  req: { portId?: string; networkId?: string; fixedIp?: string; tag?: string },
): Promise<AttachmentView> {
  const api = networkApi(svc);
  const inst = await checked(svc, auth, uuid, 'os_compute_api:os-attach-interfaces:create', 'attach_interface');
  if (inst.networks === 'auto') {
    throw new BadRequest(`Instance ${uuid} is on the user-mode network (no tenant network); interfaces cannot be attached to it.`);
  }
  const nic = await api.resolveAttach(auth, { uuid, projectId: inst.projectId }, req);
  if (inst.networks === 'none') {
    // From now on its NICs are its Neutron ports (what a rebuild or restart plugs).
    await svc.db.updateTable('instances').set({ networks: '[]' }).where('uuid', '=', uuid).execute();
  }
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  const actionId = await store.startAction(svc.db, { requestId: ctx.requestId, uuid, action: 'attach_interface', projectId: inst.projectId, userId: auth.userId });
  const event = 'compute_attach_interface';
  await store.startEvent(svc.db, actionId, event, host);
  let vif: VifInfo;
  try {
    vif = await api.attach({
      instanceUuid: uuid, projectId: inst.projectId, hostname: inst.hostname, host, availabilityZone: inst.availabilityZone ?? 'nova', nic, log: ctx.log,
    });
  } catch (err) {
    await store.finishEvent(svc.db, actionId, event, false, errorMessage(err, host));
    throw err;
  }
  try {
    await askAgent(svc, agentSubjects(host).attachInterface, { uuid, port: portNic(vif) }, wc, ATTACH_TIMEOUT_MS);
  } catch (err) {
    const msg = errorMessage(err, host);
    ctx.log.warn({ instance: uuid, port: vif.portId, err: msg }, 'interface attach failed');
    await api.release(uuid, vif.portId, ctx.log).catch((e: unknown) => ctx.log.error({ err: e, port: vif.portId }, 'releasing the port failed'));
    await refreshCache(svc, uuid);
    await store.finishEvent(svc.db, actionId, event, false, msg);
    throw new InterfaceFailed(`Failed to attach network adapter device to ${uuid}`);
  }
  if (req.tag !== undefined) await setTag(svc, uuid, vif.portId, req.tag);
  await refreshCache(svc, uuid);
  await store.finishEvent(svc.db, actionId, event, true);
  ctx.log.info({ instance: uuid, port: vif.portId, network: vif.networkId }, 'interface attached');
  const shown = (await api.interfaces(uuid)).find((p) => p.portId === vif.portId);
  return view(shown ?? { portId: vif.portId, networkId: vif.networkId, mac: vif.mac, status: 'DOWN', fixedIps: vif.fixedIps.map((f) => ({ ip_address: f.ip, subnet_id: f.subnetId })) },
    req.tag !== undefined ? { [vif.portId]: req.tag } : {});
}

/** Detach (DELETE os-interface/{port}): 202 at once; the NIC leaves the guest, then the port is released. */
export async function detachInterface(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, portId: string): Promise<void> {
  const api = networkApi(svc);
  const inst = await checked(svc, auth, uuid, 'os_compute_api:os-attach-interfaces:delete', 'detach_interface');
  if (!(await api.interfaces(uuid)).some((p) => p.portId === portId)) throw new NotFound(`Port id ${portId} could not be found.`);
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  const actionId = await store.startAction(svc.db, { requestId: ctx.requestId, uuid, action: 'detach_interface', projectId: inst.projectId, userId: auth.userId });
  runEvent(svc, wc, uuid, actionId, 'compute_detach_interface', host, async () => {
    await askAgent(svc, agentSubjects(host).detachInterface, { uuid, portId, timeoutMs: DETACH_GUEST_TIMEOUT_MS }, wc, DETACH_GUEST_TIMEOUT_MS + 30_000);
    await api.release(uuid, portId, ctx.log);
    await setTag(svc, uuid, portId, undefined);
    await refreshCache(svc, uuid);
    ctx.log.info({ instance: uuid, port: portId }, 'interface detached');
  }, async () => { await refreshCache(svc, uuid); });
}

/** addFixedIp (until 2.43): one more address on the server's port on that network; 202, the port changes afterwards. */
export async function addFixedIp(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, networkId: string): Promise<void> {
  const api = networkApi(svc);
  const inst = await svc.get(auth, uuid, 'os_compute_api:os-multinic:add');
  svc.checkLock(auth, inst);
  if (!(await api.interfaces(uuid)).some((p) => p.networkId === networkId)) {
    throw new BadRequest(`Network ${networkId} could not be found for instance ${uuid}.`);
  }
  const actionId = await store.startAction(svc.db, { requestId: ctx.requestId, uuid, action: 'add_fixed_ip', projectId: inst.projectId, userId: auth.userId });
  runEvent(svc, workContext(ctx, auth), uuid, actionId, 'compute_add_fixed_ip_to_instance', inst.host, async () => {
    await api.addFixedIp(uuid, networkId);
    await refreshCache(svc, uuid);
  }, async () => undefined);
}

/** removeFixedIp (until 2.43): the address leaves the server's port that holds it. */
export async function removeFixedIp(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, address: string): Promise<void> {
  const api = networkApi(svc);
  const inst = await svc.get(auth, uuid, 'os_compute_api:os-multinic:remove');
  svc.checkLock(auth, inst);
  if (!(await api.interfaces(uuid)).some((p) => p.fixedIps.some((f) => f.ip_address === address))) {
    throw new BadRequest(`Instance ${uuid} does not have fixed IP '${address}'.`);
  }
  const actionId = await store.startAction(svc.db, { requestId: ctx.requestId, uuid, action: 'remove_fixed_ip', projectId: inst.projectId, userId: auth.userId });
  runEvent(svc, workContext(ctx, auth), uuid, actionId, 'compute_remove_fixed_ip_from_instance', inst.host, async () => {
    await api.removeFixedIp(uuid, address);
    await refreshCache(svc, uuid);
  }, async () => undefined);
}

/** Re-read the instance's ports into its network info cache now (server show reflects the change at once). */
async function refreshCache(svc: ComputeService, uuid: string): Promise<void> {
  const api = svc.deps.networks;
  if (!api) return;
  await store.updateInstance(svc.db, uuid, { network_info: JSON.stringify(await api.vifs(uuid)) });
}
