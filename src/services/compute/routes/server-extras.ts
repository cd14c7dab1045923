import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../api/context.ts';
import { enforce, isAllowed } from '../../../api/policy.ts';
import type { PowerCode } from '../../../bus/compute.ts';
import { Conflict, Forbidden, GureumError, NotFound } from '../../../common/errors.ts';
import type { AgentQueries, LiveInstanceState } from '../agent-queries.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast } from '../http.ts';
import '../policy.ts';
import { addresses } from '../render.ts';
import * as store from '../store.ts';
import type { Instance } from '../types.ts';

/**
 * Server sub-resources that only read (or clear) what the instance already has:
 * /servers/{id}/ips, /servers/{id}/os-server-password and /servers/{id}/diagnostics.
 */

type Params = { id: string };

/** The system_metadata key holding the encrypted admin password a guest posted. */
export const PASSWORD_KEY = 'password';

/**
 * The server when the caller may see it; another project's server is 404, a visible one
 * the rule does not allow is 403 (as ComputeService.get answers).
 */
export async function findServer(deps: ComputeDeps, auth: AuthContext | undefined, uuid: string, rule: string): Promise<Instance> {
  const inst = await store.getInstance(deps.db, uuid);
  if (!inst || !auth || !isAllowed(auth, rule, { project_id: inst.projectId })) {
    if (inst && auth && isAllowed(auth, 'os_compute_api:servers:show', { project_id: inst.projectId })) {
      throw new Forbidden(`Policy doesn't allow ${rule} to be performed.`);
    }
    throw new NotFound(`Instance ${uuid} could not be found.`);
  }
  return inst;
}

/** Nova's address view for /ips: version and addr only (no OS-EXT-IPS extensions). */
function networksOf(inst: Instance): Record<string, { version: number; addr: string }[]> {
  const out: Record<string, { version: number; addr: string }[]> = {};
  for (const [label, list] of Object.entries(addresses(inst))) out[label] = list.map((a) => ({ version: a.version, addr: a.addr }));
  return out;
}

/** Nova's names for power states (power_state.STATE_MAP), as diagnostics report them. */
const POWER_NAMES: Record<PowerCode, string> = { 0: 'pending', 1: 'running', 3: 'paused', 4: 'shutdown', 6: 'crashed', 7: 'suspended' };

/** The disks an instance's guest sees: root, then ephemeral, swap and the config drive when it has them. */
function diskCount(inst: Instance): number {
  return 1 + (inst.flavor.ephemeral > 0 ? 1 : 0) + (inst.flavor.swap > 0 ? 1 : 0) + (inst.configDrive ? 1 : 0);
}

/**
 * Diagnostics from the instance's facts (flavor, disks, NICs) and the agent's live figures.
 * Per-vCPU times, disk and NIC counters are not measured: they are null (2.48) or left out
 * (before 2.48). The guest's CPU time is the QEMU process's, so it is given per vCPU only
 * when there is a single vCPU.
 */
function diagnostics(req: FastifyRequest, inst: Instance, live: LiveInstanceState, accel: string | undefined) {
  const vcpus = inst.flavor.vcpus;
  const usedMb = live.memoryKb === undefined ? null : Math.round(live.memoryKb / 1024);
  const cpuTime = vcpus === 1 && live.cpuTimeNs !== undefined ? Math.round(live.cpuTimeNs) : null;
  if (!atLeast(req, '2.48')) {
    const out: Record<string, number> = { memory: inst.flavor.ram * 1024, 'memory-actual': inst.flavor.ram * 1024 };
    if (live.memoryKb !== undefined) out['memory-rss'] = live.memoryKb;
    if (cpuTime !== null) out.cpu0_time = cpuTime;
    return out;
  }
  const launched = inst.launchedAt ? Date.parse(inst.launchedAt) : NaN;
  const nics = inst.networks === 'none' ? 0 : 1;
  const nullCounters = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, null]));
  return {
    state: POWER_NAMES[live.power] ?? 'pending',
    // The schema's driver is an enum of Nova's drivers; the agent runs QEMU the way libvirt's QEMU driver does.
    driver: 'libvirt',
    hypervisor: accel === 'kvm' ? 'kvm' : 'qemu',
    hypervisor_os: 'linux',
    uptime: Number.isNaN(launched) ? null : Math.max(0, Math.floor((Date.now() - launched) / 1000)),
    config_drive: inst.configDrive !== '',
    num_cpus: vcpus,
    num_nics: nics,
    num_disks: diskCount(inst),
    memory_details: { maximum: inst.flavor.ram, used: usedMb },
    cpu_details: Array.from({ length: vcpus }, (_, id) => ({ id, time: cpuTime, utilisation: null })),
    nic_details: Array.from({ length: nics }, () => ({
      mac_address: null,
      ...nullCounters(['rx_octets', 'rx_errors', 'rx_drop', 'rx_packets', 'rx_rate', 'tx_octets', 'tx_errors', 'tx_drop', 'tx_packets', 'tx_rate']),
    })),
    disk_details: Array.from({ length: diskCount(inst) }, () => nullCounters(['read_bytes', 'read_requests', 'write_bytes', 'write_requests', 'errors_count'])),
  };
}

export function serverExtraRoutes(app: FastifyInstance, deps: ComputeDeps, agents: AgentQueries): void {
  // ---- ips ----

  app.get<{ Params: Params }>('/v2.1/servers/:id/ips', async (req) => {
    const inst = await findServer(deps, req.ctx.auth, req.params.id, 'os_compute_api:ips:index');
    return { addresses: networksOf(inst) };
  });

  app.get<{ Params: Params & { label: string } }>('/v2.1/servers/:id/ips/:label', async (req) => {
    const inst = await findServer(deps, req.ctx.auth, req.params.id, 'os_compute_api:ips:show');
    const nets = networksOf(inst);
    const list = Object.prototype.hasOwnProperty.call(nets, req.params.label) ? nets[req.params.label] : undefined;
    if (!list) throw new NotFound('Instance is not a member of specified network');
    return { [req.params.label]: list };
  });

  // ---- os-server-password ----

  app.get<{ Params: Params }>('/v2.1/servers/:id/os-server-password', async (req) => {
    const inst = await findServer(deps, req.ctx.auth, req.params.id, 'os_compute_api:os-server-password:show');
    // The guest posts it to its metadata service, which keeps it on the host; an offloaded
    // server has only what the database kept.
    const posted = inst.host ? await agents.password(inst.host, inst.uuid, req.ctx.requestId).catch(() => '') : '';
    const sys = await store.systemMetadata(deps.db, inst.uuid);
    return { password: posted || (sys[PASSWORD_KEY] ?? '') };
  });

  app.delete<{ Params: Params }>('/v2.1/servers/:id/os-server-password', async (req, reply) => {
    const inst = await findServer(deps, req.ctx.auth, req.params.id, 'os_compute_api:os-server-password:clear');
    if (inst.host) {
      await agents.clearPassword(inst.host, inst.uuid, req.ctx.requestId).catch((err: unknown) => {
        throw new Conflict(`The password of server ${inst.uuid} cannot be cleared now: its compute host does not answer (${(err as Error).message}).`);
      });
    }
    await deps.db.transaction().execute(async (tx) => {
      const sys = await store.systemMetadata(tx, inst.uuid);
      if (!(PASSWORD_KEY in sys)) return;
      delete sys[PASSWORD_KEY];
      await store.updateInstance(tx, inst.uuid, { system_metadata: JSON.stringify(sys) });
    });
    return reply.code(204).send();
  });

  // ---- diagnostics ----

  app.get<{ Params: Params }>('/v2.1/servers/:id/diagnostics', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-server-diagnostics');
    const inst = await findServer(deps, auth, req.params.id, 'os_compute_api:os-server-diagnostics');
    if (!inst.host) throw new Conflict(`Instance ${inst.uuid} is not ready`);
    let live: LiveInstanceState;
    try {
      live = await agents.instanceState(inst.host, inst.uuid, req.ctx.requestId);
    } catch (err) {
      throw new GureumError(409, `Diagnostics of instance ${inst.uuid} are not available: ${(err as Error).message}`);
    }
    const power: PowerCode = live.exists ? live.power : 0;
    if (power !== 1) {
      throw new Conflict(`Cannot 'get_diagnostics' instance ${inst.uuid} while it is in power state ${POWER_NAMES[power] ?? 'pending'}`);
    }
    const host = await store.getHost(deps.db, inst.host);
    return diagnostics(req, inst, live, host?.accel);
  });
}
