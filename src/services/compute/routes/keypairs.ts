import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuthContext } from '../../../api/context.ts';
import { enforce } from '../../../api/policy.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../common/errors.ts';
import { isoNow, isUniqueViolation } from '../../../db/index.ts';
import type { ComputeDeps } from '../deps.ts';
import { atLeast, computeBase, intParam } from '../http.ts';
import '../policy.ts';
import * as store from '../store.ts';
import type { Keypair } from '../types.ts';
import { effectiveQuotas } from './quotas.ts';

/**
 * /os-keypairs: per-user SSH keys (and x509 certificates, 2.2). Imported keys are parsed
 * and checked; without a public key Nova generates an RSA-2048 pair and returns the
 * private key once.
 */

const run = promisify(execFile);
const NAME_PATTERN = '^(?!\\s)[^\\x00-\\x1f\\x7f]*(?<!\\s)$';

const KeypairCreate = Type.Object({
  keypair: Type.Object({
    name: Type.String({ minLength: 1, maxLength: 255, pattern: NAME_PATTERN }),
    public_key: Type.Optional(Type.String()),
    type: Type.Optional(Type.Union([Type.Literal('ssh'), Type.Literal('x509')])),
    user_id: Type.Optional(Type.String()),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

type Query = Record<string, string | string[] | undefined>;
const q1 = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

class InvalidKeypair extends BadRequest {
  constructor(reason: string) { super(`Keypair data is invalid: ${reason}`); }
}

/** An SSH wire-format reader (RFC 4251 string/mpint fields). */
class Wire {
  private off = 0;
  constructor(private readonly buf: Buffer) {}
  bytes(): Buffer {
    if (this.off + 4 > this.buf.length) throw new InvalidKeypair('failed to generate fingerprint (truncated key data)');
    const n = this.buf.readUInt32BE(this.off);
    this.off += 4;
    if (this.off + n > this.buf.length) throw new InvalidKeypair('failed to generate fingerprint (truncated key data)');
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
  string(): string { return this.bytes().toString('latin1'); }
  done(): boolean { return this.off === this.buf.length; }
}

const ECDSA_POINT_BYTES: Record<string, number> = { nistp256: 65, nistp384: 97, nistp521: 133 };

/** The bit length of an SSH mpint (big-endian, possibly with a leading zero byte). */
function mpintBits(b: Buffer): number {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  if (i === b.length) return 0;
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!));
}

/**
 * Check an OpenSSH public key line ("type base64 [comment]") the way Nova's
 * load_ssh_public_key does: the blob decodes, names the same type, and carries a
 * well-formed key of a supported kind. Returns the decoded blob.
 */
export function parseSshPublicKey(line: string): { type: string; blob: Buffer } {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) throw new InvalidKeypair('failed to generate fingerprint (not an OpenSSH public key)');
  const [type, b64] = parts as [string, string];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new InvalidKeypair('failed to generate fingerprint (key data is not base64)');
  const blob = Buffer.from(b64, 'base64');
  const w = new Wire(blob);
  const inner = w.string();
  if (inner !== type) throw new InvalidKeypair(`failed to generate fingerprint (key type ${type} does not match the key data's ${inner})`);
  switch (type) {
    case 'ssh-rsa': {
      const e = w.bytes();
      const n = w.bytes();
      if (mpintBits(e) < 2) throw new InvalidKeypair('failed to generate fingerprint (bad RSA exponent)');
      const bits = mpintBits(n);
      if (bits < 1024) throw new InvalidKeypair(`failed to generate fingerprint (RSA keys need at least 1024 bits, this one has ${bits})`);
      break;
    }
    case 'ssh-ed25519':
      if (w.bytes().length !== 32) throw new InvalidKeypair('failed to generate fingerprint (bad ed25519 key length)');
      break;
    case 'ecdsa-sha2-nistp256': case 'ecdsa-sha2-nistp384': case 'ecdsa-sha2-nistp521': {
      const curve = w.string();
      if (`ecdsa-sha2-${curve}` !== type) throw new InvalidKeypair(`failed to generate fingerprint (curve ${curve} does not match ${type})`);
      const q = w.bytes();
      if (q.length !== ECDSA_POINT_BYTES[curve] || q[0] !== 4) throw new InvalidKeypair('failed to generate fingerprint (bad ECDSA point)');
      break;
    }
    default:
      throw new InvalidKeypair(`failed to generate fingerprint (unsupported key type ${type})`);
  }
  if (!w.done()) throw new InvalidKeypair('failed to generate fingerprint (trailing key data)');
  return { type, blob };
}

/** Nova's SSH fingerprint: MD5 of the key blob, colon-separated lowercase hex. */
export function sshFingerprint(blob: Buffer): string {
  return createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');
}

/** Nova's x509 fingerprint: SHA-1 of the DER certificate, colon-separated lowercase hex. */
export function x509Fingerprint(pem: string): string {
  try {
    return new X509Certificate(pem).fingerprint.toLowerCase();
  } catch (err) {
    throw new InvalidKeypair(`failed to generate X509 fingerprint. Error message: ${(err as Error).message}`);
  }
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}
function sshMpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return sshString(v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

/** A fresh RSA-2048 pair: the PKCS#1 PEM private key and the OpenSSH public key line. */
export function generateRsaKeypair(): { privateKey: string; publicKey: string; fingerprint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const jwk = publicKey.export({ format: 'jwk' });
  const blob = Buffer.concat([
    sshString(Buffer.from('ssh-rsa')), sshMpint(Buffer.from(jwk.e!, 'base64url')), sshMpint(Buffer.from(jwk.n!, 'base64url')),
  ]);
  return {
    privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicKey: `ssh-rsa ${blob.toString('base64')} Generated-by-Nova`,
    fingerprint: sshFingerprint(blob),
  };
}

/** Nova's generate_winrm_x509_cert: a self-signed client certificate for the user, via openssl. */
async function generateX509(userId: string): Promise<{ privateKey: string; certificate: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gureum-x509-'));
  try {
    const cn = userId.replace(/[^A-Za-z0-9_.-]/g, '_');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '3650', '-subj', `/CN=${cn}`, '-addext', 'extendedKeyUsage=clientAuth',
      '-addext', `subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:${cn}@localhost`], { timeout: 30_000 });
    return { privateKey: await readFile(join(dir, 'key.pem'), 'utf8'), certificate: await readFile(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Nova's keypair id is an integer; ours is a stable hash of (user, name, created). */
function keypairId(k: Keypair): number {
  return createHash('sha256').update(`${k.userId}\0${k.name}\0${k.createdAt}`).digest().readUInt32BE(0) >>> 1;
}

/** Database times as Nova's oslo serializer prints them: microseconds, no zone. */
function dbTime(iso: string): string {
  return iso.replace(/Z$/, '').padEnd(26, '0').slice(0, 26);
}

const SAFE_NAME = /^[A-Za-z0-9_\- ]+$/;

/** The user whose keypairs a request addresses: the caller, or (2.10, admin) ?user_id=. */
function targetUser(req: FastifyRequest, auth: AuthContext, given: string | undefined): string {
  const uid = atLeast(req, '2.10') ? given : undefined;
  if (uid !== undefined && uid !== auth.userId) {
    enforce(auth, 'os_compute_api:os-keypairs:other-user', { user_id: uid, project_id: auth.projectId });
    return uid;
  }
  return auth.userId;
}

export function keypairRoutes(app: FastifyInstance, deps: ComputeDeps): void {
  const db = deps.db;

  const brief = (req: FastifyRequest, k: Keypair): Record<string, unknown> => ({
    name: k.name, public_key: k.publicKey, fingerprint: k.fingerprint, ...(atLeast(req, '2.2') ? { type: k.type } : {}),
  });

  app.get('/v2.1/os-keypairs', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-keypairs');
    const q = req.query as Query;
    const userId = targetUser(req, auth, q1(q.user_id));
    let keys = await store.listKeypairs(db, userId);
    let links: { rel: string; href: string }[] | undefined;
    if (atLeast(req, '2.35')) {
      const limit = intParam(q1(q.limit), 'limit');
      const marker = q1(q.marker);
      if (marker !== undefined) {
        const i = keys.findIndex((k) => k.name === marker);
        if (i < 0) throw new BadRequest(`Marker ${marker} could not be found.`);
        keys = keys.slice(i + 1);
      }
      if (limit !== undefined) {
        keys = keys.slice(0, limit);
        if (keys.length > 0 && keys.length === limit) {
          const params = new URLSearchParams();
          if (userId !== auth.userId) params.set('user_id', userId);
          params.set('limit', String(limit));
          params.set('marker', keys[keys.length - 1]!.name);
          links = [{ rel: 'next', href: `${computeBase(req)}/v2.1/os-keypairs?${params.toString()}` }];
        }
      }
    }
    return { keypairs: keys.map((k) => ({ keypair: brief(req, k) })), ...(links ? { keypairs_links: links } : {}) };
  });

  app.get<{ Params: { name: string } }>('/v2.1/os-keypairs/:name', async (req) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-keypairs');
    const userId = targetUser(req, auth, q1((req.query as Query).user_id));
    const k = await store.getKeypair(db, userId, req.params.name);
    if (!k) throw new NotFound(`Keypair ${req.params.name} not found for user ${userId}`);
    return {
      keypair: {
        ...brief(req, k), user_id: k.userId, created_at: dbTime(k.createdAt), deleted: false, deleted_at: null, id: keypairId(k), updated_at: null,
      },
    };
  });

  app.delete<{ Params: { name: string } }>('/v2.1/os-keypairs/:name', async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-keypairs');
    const userId = targetUser(req, auth, q1((req.query as Query).user_id));
    if (!(await store.deleteKeypair(db, userId, req.params.name))) {
      throw new NotFound(`Keypair ${req.params.name} not found for user ${userId}`);
    }
    return reply.code(atLeast(req, '2.2') ? 204 : 202).send();
  });

  app.post<{ Body: Static<typeof KeypairCreate> }>('/v2.1/os-keypairs', { schema: { body: KeypairCreate } }, async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'os_compute_api:os-keypairs');
    const b = req.body.keypair;
    for (const [field, since] of [['type', '2.2'], ['user_id', '2.10']] as const) {
      if (b[field] !== undefined && !atLeast(req, since)) {
        throw new BadRequest(`Invalid input for field/attribute keypair. Value: ${field}. Additional properties are not allowed ('${field}' was unexpected)`);
      }
    }
    const userId = targetUser(req, auth, b.user_id);
    const type = b.type ?? 'ssh';
    if (!SAFE_NAME.test(b.name)) throw new InvalidKeypair('Keypair name contains unsafe characters');
    const limit = (await effectiveQuotas(deps, auth.projectId ?? '')).key_pairs ?? -1;
    if (limit >= 0 && (await store.countKeypairs(db, userId)) + 1 > limit) throw new Forbidden('Quota exceeded, too many key pairs.');
    if (await store.getKeypair(db, userId, b.name)) throw new Conflict(`Key pair '${b.name}' already exists.`);

    let publicKey: string;
    let fingerprint: string;
    let privateKey: string | undefined;
    if (b.public_key !== undefined) {
      if (type === 'ssh') {
        publicKey = b.public_key.trim();
        fingerprint = sshFingerprint(parseSshPublicKey(publicKey).blob);
      } else {
        publicKey = b.public_key;
        fingerprint = x509Fingerprint(publicKey);
      }
    } else if (type === 'ssh') {
      const g = generateRsaKeypair();
      ({ publicKey, fingerprint, privateKey } = g);
    } else {
      const g = await generateX509(userId);
      publicKey = g.certificate;
      privateKey = g.privateKey;
      fingerprint = x509Fingerprint(publicKey);
    }
    const createdAt = isoNow();
    try {
      await store.insertKeypair(db, { user_id: userId, name: b.name, type, public_key: publicKey, fingerprint, created_at: createdAt });
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Key pair '${b.name}' already exists.`);
      throw err;
    }
    const k: Keypair = { userId, name: b.name, type, publicKey, fingerprint, createdAt };
    const body = { keypair: { ...brief(req, k), user_id: userId, ...(privateKey !== undefined ? { private_key: privateKey } : {}) } };
    return reply.code(atLeast(req, '2.2') ? 201 : 200).send(body);
  });
}
