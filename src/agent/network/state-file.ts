/**
 * The little the agent must remember across restarts (everything else is derived from
 * the desired state or read from the kernel): conntrack zones per network and packet-mark
 * indexes per port (kept stable so a re-apply does not shuffle them), which taps the
 * agent itself created (only those it may delete while they hang on no bridge of its own),
 * and which namespaces and host devices it made: only those it removes when the desired
 * state no longer lists them, so another agent's (another cloud on the same machine) are
 * left alone even though their names follow the same scheme.
 */
import { readFile } from 'node:fs/promises';
import { writeIfChanged } from './util.ts';

export interface AgentStateFile {
  version: 1;
  /** network id → conntrack zone (1..65535). */
  zones: Record<string, number>;
  /** port id → packet-mark index (1..65535). */
  marks: Record<string, number>;
  /** Tap devices the agent created. */
  createdTaps: string[];
  /** Namespaces (qdhcp-/qrouter-/qmeta-) and host devices (brq, vxlan-, veth ends) it made. */
  owned: string[];
}

export function emptyState(): AgentStateFile {
  return { version: 1, zones: {}, marks: {}, createdTaps: [], owned: [] };
}

export async function loadStateFile(path: string): Promise<AgentStateFile> {
  try {
    const raw = JSON.parse(await readFile(path, 'utf8')) as Partial<AgentStateFile>;
    const strings = (o: unknown): string[] => (Array.isArray(o) ? o.filter((t): t is string => typeof t === 'string') : []);
    const ints = (o: unknown): Record<string, number> => {
      const r: Record<string, number> = {};
      if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) if (Number.isInteger(v) && (v as number) > 0 && (v as number) <= 0xffff) r[k] = v as number;
      return r;
    };
    return {
      version: 1,
      zones: ints(raw.zones),
      marks: ints(raw.marks),
      createdTaps: strings(raw.createdTaps),
      owned: strings(raw.owned),
    };
  } catch {
    return emptyState();
  }
}

export async function saveStateFile(path: string, s: AgentStateFile): Promise<void> {
  await writeIfChanged(path, JSON.stringify({ ...s, createdTaps: [...new Set(s.createdTaps)].sort(), owned: [...new Set(s.owned)].sort() }, null, 1) + '\n', 0o600);
}

/**
 * Numbers 1..max for `keys`: existing assignments are kept, keys no longer listed are
 * released, new keys get the lowest free number. Throws when there are more keys than numbers.
 */
export function allocate(current: Record<string, number>, keys: Iterable<string>, max = 0xffff): Record<string, number> {
  const want = new Set(keys);
  const out: Record<string, number> = {};
  const used = new Set<number>();
  for (const [k, v] of Object.entries(current)) {
    if (want.has(k) && !used.has(v)) { out[k] = v; used.add(v); }
  }
  let next = 1;
  for (const k of [...want].sort()) {
    if (out[k] !== undefined) continue;
    while (used.has(next)) next++;
    if (next > max) throw new Error(`more than ${max} entries to number`);
    out[k] = next;
    used.add(next);
  }
  return out;
}
