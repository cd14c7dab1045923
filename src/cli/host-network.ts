import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '../common/logger.ts';

const run = promisify(execFile);

/** The all-in-one's external ("public") network: a host bridge the machine itself has an address on. */
export interface ExternalNetworkSettings {
  /** Physical network name Neutron's flat external network uses. */
  physicalNetwork: string;
  bridge: string;
  /** The subnet of the external network, e.g. 172.24.4.0/24 (devstack's default). */
  cidr: string;
  /** The host's address on the bridge: the external subnet's gateway, so the host reaches floating IPs directly. */
  gateway: string;
  /** Floating IPs and router gateways come from this range. */
  poolStart: string;
  poolEnd: string;
}

export const DEFAULT_EXTERNAL: ExternalNetworkSettings = {
  physicalNetwork: 'public', bridge: 'br-ex', cidr: '172.24.4.0/24', gateway: '172.24.4.1', poolStart: '172.24.4.10', poolEnd: '172.24.4.254',
};

/** `external_network:` of gureum.yaml: `cidr`, `gateway`, `pool` (start-end), `bridge`. */
export function externalSettings(raw: unknown): ExternalNetworkSettings {
  const s = { ...DEFAULT_EXTERNAL };
  if (raw !== undefined && (raw === null || typeof raw !== 'object')) throw new Error('gureum.yaml: external_network must be a mapping');
  const section = (raw ?? {}) as Record<string, unknown>;
  const str = (k: string) => (typeof section[k] === 'string' ? section[k] as string : undefined);
  const cidr = str('cidr');
  if (cidr) {
    const m = /^(\d+\.\d+\.\d+)\.\d+\/(\d+)$/.exec(cidr);
    if (!m) throw new Error(`external_network.cidr must be an IPv4 CIDR, not ${cidr}`);
    s.cidr = cidr;
    s.gateway = `${m[1]}.1`;
    s.poolStart = `${m[1]}.10`;
    s.poolEnd = `${m[1]}.254`;
  }
  s.gateway = str('gateway') ?? s.gateway;
  const pool = str('pool');
  if (pool) {
    const [a, b] = pool.split('-');
    if (!a || !b) throw new Error(`external_network.pool must be <start>-<end>, not ${pool}`);
    s.poolStart = a.trim();
    s.poolEnd = b.trim();
  }
  s.bridge = str('bridge') ?? s.bridge;
  if (!/^[\w.-]{1,15}$/.test(s.bridge)) throw new Error(`external_network.bridge: invalid device name ${s.bridge}`);
  return s;
}

/** Tenant networking needs root (bridges, namespaces, nftables); without it servers get the user-mode NIC only. */
export function canRunNetworking(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Make the external bridge exist, up, with the host's address on it. Idempotent; leaves a
 * bridge that is already right alone. Returns false (and logs why) when it cannot.
 */
export async function ensureExternalBridge(s: ExternalNetworkSettings, log: Logger): Promise<boolean> {
  const prefix = s.cidr.split('/')[1];
  try {
    const { stdout } = await run('ip', ['-json', 'addr', 'show', 'dev', s.bridge]).catch(() => ({ stdout: '' }));
    if (!stdout.trim()) {
      await run('ip', ['link', 'add', s.bridge, 'type', 'bridge']);
      log.info({ bridge: s.bridge }, 'created the external bridge');
    }
    const info = stdout.trim() ? (JSON.parse(stdout) as { addr_info?: { local: string; prefixlen: number }[] }[])[0] : undefined;
    if (!info?.addr_info?.some((a) => a.local === s.gateway)) {
      await run('ip', ['addr', 'add', `${s.gateway}/${prefix}`, 'dev', s.bridge]);
    }
    await run('ip', ['link', 'set', s.bridge, 'up']);
    return true;
  } catch (err) {
    log.warn({ bridge: s.bridge, err: (err as Error).message }, 'cannot set up the external bridge; floating IPs will not be reachable from this machine');
    return false;
  }
}
