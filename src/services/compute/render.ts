import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { AuthContext } from '../../api/context.ts';
import { isAllowed } from '../../api/policy.ts';
import { atLeast, computeBase, selfLinks } from './http.ts';
import { addressesOf } from './networks.ts';
import { statusOf, type Instance } from './types.ts';

/** Nova's `hostId`: an opaque per-project hash of the host, so tenants can tell co-location apart without learning host names. */
export function hostId(projectId: string, host: string | null): string {
  return host ? createHash('sha224').update(projectId + host).digest('hex') : '';
}

/** Timestamps as Nova prints them: seconds precision, Z suffix. */
export function novaTime(iso: string | null): string | null {
  return iso ? `${iso.slice(0, 19)}Z` : null;
}

/** Launched/terminated times keep microseconds and no zone, as Nova's OS-SRV-USG shows them. */
function usageTime(iso: string | null): string | null {
  return iso ? iso.slice(0, 26).replace('Z', '') : null;
}

export function serverBrief(req: FastifyRequest, inst: Instance) {
  return { id: inst.uuid, name: inst.name, links: selfLinks(req, inst.projectId, 'servers', inst.uuid) };
}

/** The addresses a server has: its ports' (from the network info cache), or the user-mode NAT address. */
export function addresses(inst: Instance): Record<string, { addr: string; version: number; 'OS-EXT-IPS:type': string; 'OS-EXT-IPS-MAC:mac_addr'?: string }[]> {
  if (Array.isArray(inst.networks)) return addressesOf(inst.vifs);
  if (inst.networks === 'none' || !inst.host || inst.vmState === 'building') return {};
  return { user: [{ addr: '169.254.169.15', version: 4, 'OS-EXT-IPS:type': 'fixed' }] };
}

/** The security groups of a server's ports (by name, each once); the user-mode NIC counts as `default`. */
export function securityGroupsOf(inst: Instance): { name: string }[] | undefined {
  if (inst.networks === 'none') return undefined;
  if (!Array.isArray(inst.networks)) return [{ name: 'default' }];
  const names = [...new Set(inst.vifs.flatMap((v) => v.securityGroups))];
  return names.length ? names.map((name) => ({ name })) : undefined;
}

export interface HostStatusLookup { (host: string | null): string }

/** The full server document at the request's microversion, with admin-only fields for admins. */
export function serverDetail(req: FastifyRequest, auth: AuthContext, inst: Instance, hostStatus?: HostStatusLookup, opts: { minimal?: boolean } = {}) {
  const base = computeBase(req);
  const admin = isAllowed(auth, 'os_compute_api:os-extended-server-attributes');
  const f = inst.flavor;
  const flavor = atLeast(req, '2.47')
    ? { vcpus: f.vcpus, ram: f.ram, disk: f.disk, ephemeral: f.ephemeral, swap: f.swap, original_name: f.name, extra_specs: f.extra_specs }
    : { id: f.id, links: [{ rel: 'bookmark', href: `${base}/flavors/${f.id}` }] };
  const status = statusOf(inst.vmState, inst.taskState);
  const out: Record<string, unknown> = {
    id: inst.uuid, name: inst.name, status, tenant_id: inst.projectId, user_id: inst.userId, metadata: inst.metadata,
    hostId: hostId(inst.projectId, inst.host),
    // A server booted from a volume has no image: Nova shows "".
    image: inst.imageRef ? { id: inst.imageRef, links: [{ rel: 'bookmark', href: `${base}/images/${inst.imageRef}` }] } : '',
    flavor, created: novaTime(inst.createdAt), updated: novaTime(inst.updatedAt), addresses: addresses(inst),
    accessIPv4: inst.accessIPv4, accessIPv6: inst.accessIPv6, links: selfLinks(req, inst.projectId, 'servers', inst.uuid),
    'OS-DCF:diskConfig': 'MANUAL', progress: inst.progress, 'OS-EXT-AZ:availability_zone': inst.availabilityZone ?? '',
    config_drive: inst.configDrive, key_name: inst.keyName,
    'OS-SRV-USG:launched_at': usageTime(inst.launchedAt), 'OS-SRV-USG:terminated_at': usageTime(inst.terminatedAt),
    'OS-EXT-STS:task_state': inst.taskState, 'OS-EXT-STS:vm_state': inst.vmState, 'OS-EXT-STS:power_state': inst.powerState,
    'os-extended-volumes:volumes_attached': inst.volumes.map((v) => ({ id: v.volumeId })),
    security_groups: securityGroupsOf(inst),
  };
  if (status === 'ACTIVE' || status === 'BUILD') out.progress = inst.progress; else delete out.progress;
  if (admin) {
    const sysName = `instance-${inst.id.toString(16).padStart(8, '0')}`;
    Object.assign(out, {
      'OS-EXT-SRV-ATTR:host': inst.host, 'OS-EXT-SRV-ATTR:instance_name': sysName, 'OS-EXT-SRV-ATTR:hypervisor_hostname': inst.host,
    });
    if (atLeast(req, '2.3')) {
      Object.assign(out, {
        'OS-EXT-SRV-ATTR:reservation_id': inst.reservationId, 'OS-EXT-SRV-ATTR:launch_index': inst.launchIndex,
        'OS-EXT-SRV-ATTR:hostname': inst.hostname, 'OS-EXT-SRV-ATTR:kernel_id': '', 'OS-EXT-SRV-ATTR:ramdisk_id': '',
        'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda', 'OS-EXT-SRV-ATTR:user_data': inst.userData,
      });
    }
  } else if (atLeast(req, '2.90')) out['OS-EXT-SRV-ATTR:hostname'] = inst.hostname;
  if (atLeast(req, '2.3')) {
    out['os-extended-volumes:volumes_attached'] = inst.volumes.map((v) => ({ id: v.volumeId, delete_on_termination: v.deleteOnTermination }));
  }
  if (atLeast(req, '2.9')) out.locked = inst.locked;
  if (atLeast(req, '2.73')) out.locked_reason = inst.lockedReason;
  if (atLeast(req, '2.19')) out.description = inst.description;
  if (atLeast(req, '2.26')) out.tags = inst.tags;
  if (atLeast(req, '2.63')) out.trusted_image_certificates = null;
  if (atLeast(req, '2.71')) out.server_groups = inst.serverGroupId ? [inst.serverGroupId] : [];
  if (atLeast(req, '2.16') && hostStatus && isAllowed(auth, 'os_compute_api:servers:show:host_status')) out.host_status = hostStatus(inst.host);
  if (opts.minimal) {
    // Before 2.75 the update response is Nova's basic view, without the extension attributes.
    for (const k of Object.keys(out)) {
      if (/^(OS-EXT-|OS-SRV-USG:|os-extended-volumes:)/.test(k) || ['config_drive', 'key_name', 'security_groups', 'server_groups', 'host_status'].includes(k)) delete out[k];
    }
    // ... and addresses without the OS-EXT-IPS extension keys (extend_address=False).
    out.addresses = Object.fromEntries(Object.entries(addresses(inst)).map(([net, list]) => [net, list.map((a) => ({ addr: a.addr, version: a.version }))]));
  }
  if (inst.fault && (inst.vmState === 'error' || inst.vmState === 'deleted')) {
    const fault: Record<string, unknown> = { code: inst.fault.code, created: novaTime(inst.fault.created), message: inst.fault.message };
    if (admin || inst.fault.code !== 500) fault.details = inst.fault.details ?? inst.fault.message;
    out.fault = fault;
  }
  return out;
}
