import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';

export interface ClientFiles { openrc: string; cloudsYaml: string }

/**
 * Writes `openrc` (for `source`) and a clouds.yaml entry named `gureum` (for
 * `OS_CLOUD=gureum`) into configDir. With the default configDir the entry is also merged
 * into ~/.config/openstack/clouds.yaml, where the openstack CLI looks, keeping other clouds.
 */
export function writeClientFiles(configDir: string, authUrl: string, password: string, region: string, mergeUserClouds: boolean): ClientFiles {
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const openrc = join(configDir, 'openrc');
  writeFileSync(openrc, [
    '# Gureum admin credentials: source this file, then use the openstack CLI.',
    `export OS_AUTH_URL=${q(authUrl)}`,
    'export OS_IDENTITY_API_VERSION=3',
    'export OS_AUTH_TYPE=password',
    'export OS_USERNAME=admin',
    `export OS_PASSWORD=${q(password)}`,
    'export OS_PROJECT_NAME=admin',
    'export OS_USER_DOMAIN_NAME=Default',
    'export OS_PROJECT_DOMAIN_NAME=Default',
    `export OS_REGION_NAME=${q(region)}`,
    'export OS_INTERFACE=public',
    '',
  ].join('\n'), { mode: 0o600 });
  const cloud = {
    auth: { auth_url: authUrl, username: 'admin', password, project_name: 'admin', user_domain_name: 'Default', project_domain_name: 'Default' },
    region_name: region, interface: 'public', identity_api_version: 3,
  };
  const cloudsYaml = join(configDir, 'clouds.yaml');
  writeFileSync(cloudsYaml, stringify({ clouds: { gureum: cloud } }), { mode: 0o600 });
  if (mergeUserClouds) {
    const user = join(homedir(), '.config', 'openstack', 'clouds.yaml');
    let doc: { clouds?: Record<string, unknown> } = {};
    if (existsSync(user)) {
      const parsed: unknown = parse(readFileSync(user, 'utf8'));
      if (parsed && typeof parsed === 'object') doc = parsed as typeof doc;
    }
    doc.clouds = { ...(doc.clouds ?? {}), gureum: cloud };
    mkdirSync(dirname(user), { recursive: true, mode: 0o700 });
    writeFileSync(user, stringify(doc), { mode: 0o600 });
  }
  return { openrc, cloudsYaml };
}

export function defaultConfigDir(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.config'), 'gureum');
}
