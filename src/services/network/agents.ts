import { createHash } from 'node:crypto';
import type { AuthContext } from '../../api/context.ts';
import { NeutronError } from './errors.ts';
import { isAdmin } from './policy.ts';
import type { NetworkDeps, View } from './types.ts';

/**
 * Neutron's agents API (`GET /v2.0/agents`, `GET /v2.0/agents/{id}`), read-only. Every
 * Gureum agent (one per compute host, `compute_hosts`) runs the whole data plane of its
 * host, so each host shows as Neutron's four agents: Linux bridge (L2: bridges, VXLAN,
 * taps, security groups), DHCP, L3 and metadata. `alive` follows the host's heartbeat
 * (Neutron's agent_down_time, 75 s). Admin-only, as Neutron's policy: others list none and
 * get 404 for one.
 */

const AGENT_DOWN_TIME_SEC = 75;

const KINDS = [
  { type: 'Linux bridge agent', binary: 'neutron-linuxbridge-agent', topic: 'N/A', az: false },
  { type: 'DHCP agent', binary: 'neutron-dhcp-agent', topic: 'dhcp_agent', az: true },
  { type: 'L3 agent', binary: 'neutron-l3-agent', topic: 'l3_agent', az: true },
  { type: 'Metadata agent', binary: 'neutron-metadata-agent', topic: 'N/A', az: false },
] as const;

export interface AgentView extends View {
  id: string; agent_type: string; binary: string; topic: string; host: string; admin_state_up: boolean; alive: boolean;
  availability_zone: string | null; created_at: string; started_at: string; heartbeat_timestamp: string; description: string | null;
  configurations: Record<string, string | number | boolean>; resources_synced: null;
}

/** A stable id per (host, agent type), shaped as a UUID. */
function agentId(host: string, type: string): string {
  const h = createHash('sha1').update(`gureum-agent\0${host}\0${type}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

/** Neutron's timestamp format: `2024-01-02 03:04:05`. */
const stamp = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z?$|Z$/, '');

export async function listAgents(deps: NetworkDeps, auth: AuthContext): Promise<AgentView[]> {
  if (!isAdmin(auth)) return [];
  const hosts = await deps.db.selectFrom('compute_hosts').select(['host', 'host_ip', 'availability_zone', 'enabled', 'last_seen', 'created_at', 'forced_down']).orderBy('host').execute();
  const now = Date.now();
  return hosts.flatMap((h) => KINDS.map((k): AgentView => ({
    id: agentId(h.host, k.type), agent_type: k.type, binary: k.binary, topic: k.topic, host: h.host, admin_state_up: h.enabled === 1,
    alive: h.forced_down === 0 && now - Date.parse(h.last_seen) <= AGENT_DOWN_TIME_SEC * 1000,
    availability_zone: k.az ? h.availability_zone : null, created_at: stamp(h.created_at), started_at: stamp(h.created_at),
    heartbeat_timestamp: stamp(h.last_seen), description: null,
    configurations: k.type === 'Linux bridge agent' ? { tunneling_ip: h.host_ip, tunnel_types: 'vxlan', l2_population: true } as Record<string, string | boolean> : {},
    resources_synced: null,
  })));
}

export async function showAgent(deps: NetworkDeps, auth: AuthContext, id: string): Promise<AgentView> {
  const a = (await listAgents(deps, auth)).find((x) => x.id === id);
  if (!a) throw new NeutronError(404, `Agent ${id} could not be found.`, 'AgentNotFound');
  return a;
}
