/**
 * The metadata document of one instance: what its metadata server serves, written by the
 * agent into the instance directory as `metadata.json` (the same fields as the config
 * drive, i.e. BuildRequest's metaData/userData/networkData/vendorData, plus optional facts
 * only the EC2-style API shows). The password a guest posts is kept beside it.
 */
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Facts only the EC2-compatible API shows; each one is optional (unknown → empty value). */
export interface Ec2Facts {
  /** e.g. `i-0000002a` (Nova: `i-` + the instance's integer id as 8 hex digits); default derived from the uuid. */
  instanceId?: string;
  /** e.g. `ami-0000000b` (Nova maps the Glance image to an EC2 id). */
  amiId?: string;
  kernelId?: string;
  ramdiskId?: string;
  /** The flavor's name, e.g. `m1.tiny`. */
  instanceType?: string;
  /** e.g. `r-1cnh08js`. */
  reservationId?: string;
  localIpv4?: string;
  publicIpv4?: string;
  /** Names of the instance's security groups. */
  securityGroups?: string[];
  /** Virtual name → device, e.g. `{ ami: 'vda', root: '/dev/vda', ephemeral0: 'vdb', swap: 'vdc' }`. */
  blockDeviceMapping?: Record<string, string>;
}

export interface MetadataDocument {
  /** openstack/<version>/meta_data.json: uuid, name, hostname, public_keys, keys, launch_index, availability_zone, project_id, meta, devices, ... */
  metaData: Record<string, unknown>;
  /** user_data, base64-encoded (as Nova stores it and BuildRequest carries it). */
  userData?: string;
  networkData?: Record<string, unknown>;
  vendorData?: Record<string, unknown>;
  vendorData2?: Record<string, unknown>;
  ec2?: Ec2Facts;
}

/** Files of the metadata service in an instance directory. */
export function metadataFiles(dir: string) {
  return {
    /** The MetadataDocument (JSON), written by the agent. */
    document: join(dir, 'metadata.json'),
    /** The unix socket the instance's metadata server listens on (the guestfwd's target). */
    socket: join(dir, 'metadata.sock'),
    /** The password the guest posted (Nova's os-server-password), at most 1020 bytes. */
    password: join(dir, 'password'),
  };
}

/** Nova's limit for a posted password: 4 chunks of 255 characters. */
export const PASSWORD_MAX_BYTES = 4 * 255;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalObject(o: Record<string, unknown>, key: string): void {
  if (o[key] !== undefined && !isObject(o[key])) throw new Error(`metadata document: ${key} must be an object`);
}

function parseEc2(v: unknown): Ec2Facts {
  if (!isObject(v)) throw new Error('metadata document: ec2 must be an object');
  const out: Ec2Facts = {};
  for (const k of ['instanceId', 'amiId', 'kernelId', 'ramdiskId', 'instanceType', 'reservationId', 'localIpv4', 'publicIpv4'] as const) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x !== 'string') throw new Error(`metadata document: ec2.${k} must be a string`);
    out[k] = x;
  }
  if (v.securityGroups !== undefined) {
    if (!Array.isArray(v.securityGroups) || !v.securityGroups.every((s) => typeof s === 'string')) {
      throw new Error('metadata document: ec2.securityGroups must be a list of strings');
    }
    out.securityGroups = v.securityGroups as string[];
  }
  if (v.blockDeviceMapping !== undefined) {
    const m = v.blockDeviceMapping;
    if (!isObject(m) || !Object.values(m).every((s) => typeof s === 'string')) {
      throw new Error('metadata document: ec2.blockDeviceMapping must map names to strings');
    }
    out.blockDeviceMapping = m as Record<string, string>;
  }
  return out;
}

/** Checks the shape of a parsed metadata.json; throws an Error naming the first bad field. */
export function parseMetadataDocument(v: unknown): MetadataDocument {
  if (!isObject(v)) throw new Error('metadata document: not a JSON object');
  if (!isObject(v.metaData)) throw new Error('metadata document: metaData must be an object');
  if (v.userData !== undefined && (typeof v.userData !== 'string' || !BASE64.test(v.userData))) {
    throw new Error('metadata document: userData must be a base64 string');
  }
  for (const k of ['networkData', 'vendorData', 'vendorData2']) optionalObject(v, k);
  const doc: MetadataDocument = { metaData: v.metaData };
  if (v.userData !== undefined) doc.userData = v.userData as string;
  if (v.networkData !== undefined) doc.networkData = v.networkData as Record<string, unknown>;
  if (v.vendorData !== undefined) doc.vendorData = v.vendorData as Record<string, unknown>;
  if (v.vendorData2 !== undefined) doc.vendorData2 = v.vendorData2 as Record<string, unknown>;
  if (v.ec2 !== undefined) doc.ec2 = parseEc2(v.ec2);
  return doc;
}

/**
 * Writes `<dir>/metadata.json` atomically (temporary file, rename), readable by the owner
 * only (user_data may hold secrets). A running server picks the new content up on its
 * next request.
 */
export async function writeMetadataDocument(dir: string, doc: MetadataDocument): Promise<void> {
  parseMetadataDocument(JSON.parse(JSON.stringify(doc)));
  const { document } = metadataFiles(dir);
  const tmp = `${document}.tmp`;
  await writeFile(tmp, JSON.stringify(doc), { mode: 0o600 });
  await rename(tmp, document);
}

/** The password the guest posted, or undefined when none is set. */
export async function readPassword(dir: string): Promise<string | undefined> {
  try {
    return await readFile(metadataFiles(dir).password, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Forgets the password (Nova's DELETE /servers/{id}/os-server-password); the guest may post a new one. */
export async function clearPassword(dir: string): Promise<void> {
  await rm(metadataFiles(dir).password, { force: true });
}

/**
 * Sets the password once, atomically: written to a temporary file and hard-linked into
 * place, which fails when a password exists (two racing posts: one wins, one gets 'exists').
 */
export async function storePassword(dir: string, value: Buffer): Promise<'stored' | 'exists'> {
  if (value.length > PASSWORD_MAX_BYTES) throw new Error(`password longer than ${PASSWORD_MAX_BYTES} bytes`);
  const { password } = metadataFiles(dir);
  const tmp = `${password}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, value, { mode: 0o600 });
  try {
    await link(tmp, password);
    return 'stored';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
}
