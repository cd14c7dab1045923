import { agentSubjects, type PowerCode } from '../../bus/compute.ts';
import type { Bus } from '../../bus/index.ts';

/**
 * Questions the API asks a compute host's agent directly over the bus with a short timeout
 * (diagnostics, the password a guest posted). Commands that change an instance's state go
 * through the conductor.
 */

/** What an agent knows of one instance right now. */
export interface LiveInstanceState {
  /** False when the host has no such guest. */
  exists: boolean;
  /** Nova's power_state code as the hypervisor sees it. */
  power: PowerCode;
  /** CPU time the guest's QEMU process has used, in nanoseconds. */
  cpuTimeNs?: number;
  /** Resident memory of the guest's QEMU process, in KiB. */
  memoryKb?: number;
}

export interface AgentQueries {
  /** The live state of `uuid` on `host`; rejects when the agent does not answer in time. */
  instanceState(host: string, uuid: string, requestId?: string): Promise<LiveInstanceState>;
  /** The (encrypted) password the guest posted to its metadata service; '' when none. */
  password(host: string, uuid: string, requestId?: string): Promise<string>;
  /** Forget the guest's posted password. */
  clearPassword(host: string, uuid: string, requestId?: string): Promise<void>;
}

const STATE_TIMEOUT_MS = 5000;

/** Agent queries over the bus (the controller wires the conductor's bus connection in). */
export function busAgentQueries(bus: Bus, timeoutMs = STATE_TIMEOUT_MS): AgentQueries {
  return {
    async instanceState(host, uuid, requestId) {
      const r = await bus.request(agentSubjects(host).state, { uuid }, { timeoutMs, requestId });
      return { exists: r.exists, power: r.power, cpuTimeNs: r.cpuTimeNs, memoryKb: r.memoryKb };
    },
    async password(host, uuid, requestId) {
      return (await bus.request(agentSubjects(host).password, { uuid }, { timeoutMs, requestId })).password;
    },
    async clearPassword(host, uuid, requestId) {
      await bus.request(agentSubjects(host).password, { uuid, clear: true }, { timeoutMs, requestId });
    },
  };
}
