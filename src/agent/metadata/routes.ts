/**
 * What the metadata service answers for a path: a pure function of the instance's
 * document, shaped as Nova's metadata API (nova/api/metadata/base.py) answers it.
 *
 * - OpenStack: `/openstack` lists the versions; `/openstack/<version>` lists the files of
 *   that version; `meta_data.json`, `user_data` (404 without user data), `password` (from
 *   2013-04-04), `vendor_data.json` (2013-10-17), `network_data.json` (2015-10-15),
 *   `vendor_data2.json` (2016-10-06). `latest` is the newest version.
 * - EC2: `/` lists the versions; `/<version>` lists `meta-data/` and `user-data`;
 *   `/<version>/meta-data/...` is a tree whose directories print as one entry a line
 *   (subdirectories with a trailing `/`, the public keys as `0=<name>`), lists one item a
 *   line. `/ec2/<version>/...` is the same. `latest` is 2009-04-04.
 *
 * Paths are normalized like Nova's (posixpath.normpath: `//`, `.`, `..` and a trailing
 * slash do not matter).
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { OPENSTACK_VERSIONS } from '../storage/config-drive.ts';
import type { MetadataDocument } from './document.ts';

export { OPENSTACK_VERSIONS };
export const EC2_VERSIONS = ['1.0', '2007-01-19', '2007-03-01', '2007-08-29', '2007-10-10', '2007-12-15', '2008-02-01', '2008-09-01', '2009-04-04'];

const GRIZZLY = '2013-04-04';
const HAVANA = '2013-10-17';
const LIBERTY = '2015-10-15';
const NEWTON_ONE = '2016-06-30';
const NEWTON_TWO = '2016-10-06';

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

export type Lookup =
  | { kind: 'data'; contentType: string; body: Buffer }
  /** openstack/<version>/password: the server reads or stores it (GET, or POST once). */
  | { kind: 'password' }
  | { kind: 'not-found' };

const NOT_FOUND: Lookup = { kind: 'not-found' };

function text(s: string): Lookup {
  return { kind: 'data', contentType: TEXT, body: Buffer.from(s) };
}
function json(v: unknown): Lookup {
  return { kind: 'data', contentType: JSON_TYPE, body: Buffer.from(JSON.stringify(v)) };
}

/** Path tokens after normalization, or undefined when the path cannot be decoded. */
export function pathTokens(rawPath: string): string[] | undefined {
  const q = rawPath.indexOf('?');
  let p = q >= 0 ? rawPath.slice(0, q) : rawPath;
  try { p = decodeURIComponent(p); } catch { return undefined; }
  if (p.includes('\0')) return undefined;
  return posix.normalize(`/${p}`).split('/').filter((t) => t !== '');
}

export function lookup(doc: MetadataDocument, rawPath: string): Lookup {
  const tokens = pathTokens(rawPath);
  if (!tokens) return NOT_FOUND;
  if (tokens[0] === 'openstack') return openstack(doc, tokens.slice(1));
  return ec2(doc, tokens[0] === 'ec2' ? tokens.slice(1) : tokens);
}

function userData(doc: MetadataDocument): Buffer | undefined {
  return doc.userData === undefined ? undefined : Buffer.from(doc.userData, 'base64');
}

function atLeast(version: string, since: string): boolean {
  return version >= since; // ISO dates compare as strings
}

function openstack(doc: MetadataDocument, t: string[]): Lookup {
  if (t.length === 0) return text([...OPENSTACK_VERSIONS, 'latest'].join('\n'));
  const version = t[0] === 'latest' ? OPENSTACK_VERSIONS[OPENSTACK_VERSIONS.length - 1]! : t[0]!;
  if (!OPENSTACK_VERSIONS.includes(version) || t.length > 2) return NOT_FOUND;
  const ud = userData(doc);
  if (t.length === 1) {
    const files = ['meta_data.json'];
    if (ud) files.push('user_data');
    if (atLeast(version, GRIZZLY)) files.push('password');
    if (atLeast(version, HAVANA)) files.push('vendor_data.json');
    if (atLeast(version, LIBERTY)) files.push('network_data.json');
    if (atLeast(version, NEWTON_TWO)) files.push('vendor_data2.json');
    return text(files.join('\n'));
  }
  switch (t[1]) {
    case 'meta_data.json': {
      const md: Record<string, unknown> = { ...doc.metaData };
      // As Nova: a fresh random seed on every read from 2013-04-04, project_id from
      // 2015-10-15, devices from 2016-06-30.
      if (atLeast(version, GRIZZLY)) { if (md.random_seed === undefined) md.random_seed = randomBytes(512).toString('base64'); } else delete md.random_seed;
      if (!atLeast(version, LIBERTY)) delete md.project_id;
      if (!atLeast(version, NEWTON_ONE)) delete md.devices;
      return json(md);
    }
    case 'user_data':
      return ud ? { kind: 'data', contentType: TEXT, body: ud } : NOT_FOUND; // text/plain, as Nova
    case 'password':
      return atLeast(version, GRIZZLY) ? { kind: 'password' } : NOT_FOUND;
    case 'vendor_data.json':
      return atLeast(version, HAVANA) ? json(doc.vendorData ?? {}) : NOT_FOUND;
    case 'network_data.json':
      return atLeast(version, LIBERTY) ? json(doc.networkData ?? {}) : NOT_FOUND;
    case 'vendor_data2.json':
      return atLeast(version, NEWTON_TWO) ? json(doc.vendorData2 ?? {}) : NOT_FOUND;
    default:
      return NOT_FOUND;
  }
}

/** An EC2 metadata tree: a directory prints its entries (`name` replaces `key/` for a subdirectory that has one). */
interface Ec2Dir { dir: true; name?: string; entries: Record<string, Ec2Node> }
type Ec2Node = string | Buffer | string[] | Ec2Dir;

function dir(entries: Record<string, Ec2Node>, name?: string): Ec2Dir {
  return name === undefined ? { dir: true, entries } : { dir: true, name, entries };
}

function isDir(n: Ec2Node): n is Ec2Dir {
  return typeof n === 'object' && !Buffer.isBuffer(n) && !Array.isArray(n);
}

function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
}

/** The instance's public keys in order: metaData.public_keys (name → key), else metaData.keys. */
function publicKeys(md: Record<string, unknown>): Array<[string, string]> {
  const pk = md.public_keys;
  if (typeof pk === 'object' && pk !== null && !Array.isArray(pk)) {
    return Object.entries(pk as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string');
  }
  if (Array.isArray(md.keys)) {
    return md.keys.flatMap((k: unknown) => {
      const o = k as { name?: unknown; data?: unknown };
      return typeof o?.name === 'string' && typeof o.data === 'string' ? [[o.name, o.data] as [string, string]] : [];
    });
  }
  return [];
}

function ec2Tree(doc: MetadataDocument, version: string): Ec2Dir {
  const md = doc.metaData;
  const facts = doc.ec2 ?? {};
  const hostname = str(md.hostname);
  const uuid = str(md.uuid);
  const m: Record<string, Ec2Node> = {
    'ami-id': facts.amiId ?? '',
    'ami-launch-index': str(md.launch_index, '0'),
    'ami-manifest-path': 'FIXME', // what Nova answers
    'instance-id': facts.instanceId ?? (uuid ? `i-${uuid.replace(/-/g, '').slice(0, 8)}` : ''),
    hostname,
    'local-ipv4': facts.localIpv4 ?? '',
    'reservation-id': facts.reservationId ?? '',
    'security-groups': facts.securityGroups ?? [],
  };
  const keys = publicKeys(md);
  if (keys.length > 0) {
    m['public-keys'] = dir(Object.fromEntries(keys.map(([name, key], i) => [String(i), dir({ 'openssh-key': key }, `${i}=${name}`)])));
  }
  if (atLeast(version, '2007-01-19')) {
    m['local-hostname'] = hostname;
    m['public-hostname'] = hostname;
    m['public-ipv4'] = facts.publicIpv4 ?? '';
  }
  if (atLeast(version, '2007-08-29')) m['instance-type'] = facts.instanceType ?? '';
  if (atLeast(version, '2007-12-15')) {
    m['block-device-mapping'] = dir(facts.blockDeviceMapping ?? { ami: 'vda', root: '/dev/vda' });
    if (facts.kernelId) m['kernel-id'] = facts.kernelId;
    if (facts.ramdiskId) m['ramdisk-id'] = facts.ramdiskId;
  }
  if (atLeast(version, '2008-02-01')) m.placement = dir({ 'availability-zone': str(md.availability_zone, 'nova') });
  if (atLeast(version, '2008-09-01')) m['instance-action'] = 'none';
  const top: Record<string, Ec2Node> = { 'meta-data': dir(m) };
  const ud = userData(doc);
  if (ud) top['user-data'] = ud;
  return dir(top);
}

function render(n: Ec2Node): Buffer {
  if (Buffer.isBuffer(n)) return n;
  if (typeof n === 'string') return Buffer.from(n);
  if (Array.isArray(n)) return Buffer.from(n.join('\n'));
  const lines = Object.keys(n.entries).sort().map((k) => {
    const e = n.entries[k]!;
    return isDir(e) ? e.name ?? `${k}/` : k;
  });
  return Buffer.from(lines.join('\n'));
}

function ec2(doc: MetadataDocument, t: string[]): Lookup {
  if (t.length === 0) return text([...EC2_VERSIONS, 'latest'].join('\n'));
  const version = t[0] === 'latest' ? EC2_VERSIONS[EC2_VERSIONS.length - 1]! : t[0]!;
  if (!EC2_VERSIONS.includes(version)) return NOT_FOUND;
  let node: Ec2Node = ec2Tree(doc, version);
  for (const token of t.slice(1)) {
    if (!isDir(node) || !Object.hasOwn(node.entries, token)) return NOT_FOUND;
    node = node.entries[token]!;
  }
  return { kind: 'data', contentType: TEXT, body: render(node) };
}
