import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * Gureum's configuration. Precedence: command-line flags > environment > config file >
 * defaults. Every key is documented in docs/configuration.md.
 */
export interface Config {
  /** Where the database (SQLite), keys and logs live. */
  dataDir: string;
  /** `sqlite:<path>` or `postgresql://user:pass@host/db`. Default: SQLite in dataDir. */
  database: string;
  /** NATS server URL; when empty `gureum up` supervises a local nats-server. */
  natsUrl: string;
  /** Address and port the API listener binds. */
  listenHost: string;
  listenPort: number;
  /** Base URL clients use to reach the API (published in the catalog). */
  publicUrl: string;
  region: string;
  logLevel: string;
  /** Token lifetime in seconds (Keystone's default: 3600). */
  tokenExpiration: number;
  /** Fernet-style key repository: keys kept (primary + secondaries + staged). */
  maxActiveKeys: number;
  /** scrypt cost parameter log2(N) for new password hashes. */
  passwordHashRounds: number;
  /** Largest JSON request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Where `gureum up` builds (and caches) the built-in guest images. */
  guestDir: string;
  /** The YAML file the settings came from (`--config`, GUREUM_CONFIG or `<dataDir>/gureum.yaml`). */
  configFile?: string;
}

export interface ConfigSources {
  flags?: Partial<Record<keyof Config, string | number | undefined>> & { config?: string };
  env?: NodeJS.ProcessEnv;
}

type Setting = Exclude<keyof Config, 'configFile'>;

const ENV_KEYS: Record<Setting, string> = {
  dataDir: 'GUREUM_DATA_DIR',
  database: 'GUREUM_DATABASE',
  natsUrl: 'GUREUM_NATS_URL',
  listenHost: 'GUREUM_LISTEN_HOST',
  listenPort: 'GUREUM_LISTEN_PORT',
  publicUrl: 'GUREUM_PUBLIC_URL',
  region: 'GUREUM_REGION',
  logLevel: 'GUREUM_LOG_LEVEL',
  tokenExpiration: 'GUREUM_TOKEN_EXPIRATION',
  maxActiveKeys: 'GUREUM_MAX_ACTIVE_KEYS',
  passwordHashRounds: 'GUREUM_PASSWORD_HASH_ROUNDS',
  maxBodyBytes: 'GUREUM_MAX_BODY_BYTES',
  guestDir: 'GUREUM_GUEST_DIR',
};

const NUMERIC = new Set<Setting>(['listenPort', 'tokenExpiration', 'maxActiveKeys', 'passwordHashRounds', 'maxBodyBytes']);

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(env.HOME || homedir(), '.local', 'share'), 'gureum');
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const flags = sources.flags ?? {};
  const layer: Partial<Record<Setting, string | number>> = {};

  const dataDirRaw = flags.dataDir ?? env[ENV_KEYS.dataDir] ?? defaultDataDir(env);
  const dataDir = resolve(String(dataDirRaw));
  const configFile = flags.config ?? env.GUREUM_CONFIG ?? join(dataDir, 'gureum.yaml');
  if (existsSync(configFile)) {
    const doc: unknown = parseYaml(readFileSync(configFile, 'utf8'));
    if (doc !== null && typeof doc === 'object') {
      for (const key of Object.keys(ENV_KEYS) as Setting[]) {
        const v = (doc as Record<string, unknown>)[key];
        if (typeof v === 'string' || typeof v === 'number') layer[key] = v;
      }
    } else if (doc !== null && doc !== undefined) {
      throw new Error(`${configFile}: expected a mapping of settings`);
    }
  }
  for (const key of Object.keys(ENV_KEYS) as Setting[]) {
    const e = env[ENV_KEYS[key]];
    if (e !== undefined && e !== '') layer[key] = e;
    const f = flags[key];
    if (f !== undefined && f !== '') layer[key] = f;
  }

  const num = (key: Setting, dflt: number): number => {
    const v = layer[key];
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`setting ${key} (${ENV_KEYS[key]}): not a number: ${v}`);
    return n;
  };
  const str = (key: Setting, dflt: string): string => (layer[key] === undefined ? dflt : String(layer[key]));
  for (const key of NUMERIC) num(key, 0);

  const listenHost = str('listenHost', '127.0.0.1');
  const listenPort = num('listenPort', 8700);
  const publicHost = listenHost === '0.0.0.0' || listenHost === '::' ? '127.0.0.1' : listenHost;
  return {
    dataDir,
    database: str('database', `sqlite:${join(dataDir, 'gureum.db')}`),
    natsUrl: str('natsUrl', ''),
    listenHost,
    listenPort,
    publicUrl: str('publicUrl', `http://${publicHost}:${listenPort}`).replace(/\/+$/, ''),
    region: str('region', 'RegionOne'),
    logLevel: str('logLevel', 'info'),
    tokenExpiration: num('tokenExpiration', 3600),
    maxActiveKeys: Math.max(2, num('maxActiveKeys', 3)),
    passwordHashRounds: num('passwordHashRounds', 16),
    maxBodyBytes: num('maxBodyBytes', 1024 * 1024),
    guestDir: resolve(str('guestDir', join(dataDir, 'guest'))),
    configFile,
  };
}

export const CONFIG_ENV_KEYS = ENV_KEYS;

/**
 * A nested section of the config file (e.g. `scheduler:`), for settings a service parses
 * itself; undefined when the file or the section is absent.
 */
export function configSection(cfg: Pick<Config, 'dataDir' | 'configFile'>, name: string, file?: string): unknown {
  const path = file ?? cfg.configFile ?? process.env.GUREUM_CONFIG ?? join(cfg.dataDir, 'gureum.yaml');
  if (!existsSync(path)) return undefined;
  const doc: unknown = parseYaml(readFileSync(path, 'utf8'));
  return doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>)[name] : undefined;
}
