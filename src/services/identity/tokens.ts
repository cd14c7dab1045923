import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyRepository, TokenKey } from './keys.ts';

/**
 * Self-contained tokens in the Fernet format (version 0x80, timestamp, IV, AES-128-CBC
 * ciphertext, HMAC-SHA256), base64url without padding, as Keystone's Fernet tokens are.
 * The encrypted payload names the user, scope, methods, times and audit ids; nothing is
 * stored per token, and validation needs only the key repository.
 */
export interface TokenPayload {
  /** user id */
  u: string;
  /** authentication methods */
  m: string[];
  /** scope: project id, domain id, or system */
  p?: string;
  d?: string;
  s?: 1;
  /** issued at / expires at, epoch milliseconds */
  i: number;
  e: number;
  /** audit ids: this token's, then the chain's first */
  a: string[];
  /** application credential id */
  c?: string;
}

const VERSION = 0x80;

export function encodeToken(payload: TokenPayload, key: TokenKey): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-128-cbc', key.encryption, iv);
  const ct = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  const head = Buffer.alloc(9);
  head[0] = VERSION;
  head.writeBigUInt64BE(BigInt(Math.floor(payload.i / 1000)), 1);
  const body = Buffer.concat([head, iv, ct]);
  const mac = createHmac('sha256', key.signing).update(body).digest();
  return Buffer.concat([body, mac]).toString('base64url');
}

/** The payload, or null when no key verifies the token or it is not one of ours. */
export function decodeToken(token: string, keys: TokenKey[]): TokenPayload | null {
  if (token.length < 100 || token.length > 2048 || !/^[A-Za-z0-9_-]+={0,2}$/.test(token)) return null;
  const raw = Buffer.from(token, 'base64url');
  if (raw.length < 9 + 16 + 16 + 32 || raw[0] !== VERSION || (raw.length - 9 - 16 - 32) % 16 !== 0) return null;
  const body = raw.subarray(0, raw.length - 32);
  const mac = raw.subarray(raw.length - 32);
  for (const key of keys) {
    const expect = createHmac('sha256', key.signing).update(body).digest();
    if (!timingSafeEqual(expect, mac)) continue;
    try {
      const decipher = createDecipheriv('aes-128-cbc', key.encryption, body.subarray(9, 25));
      const pt = Buffer.concat([decipher.update(body.subarray(25)), decipher.final()]);
      const p = JSON.parse(pt.toString('utf8')) as TokenPayload;
      if (typeof p.u !== 'string' || typeof p.i !== 'number' || typeof p.e !== 'number' || !Array.isArray(p.a)) return null;
      return p;
    } catch {
      return null;
    }
  }
  return null;
}

/** Keystone's audit id: 16 random bytes, urlsafe base64, 22 characters. */
export function newAuditId(): string {
  return randomBytes(16).toString('base64url');
}

export class TokenCodec {
  constructor(private readonly keys: KeyRepository) {}
  issue(p: TokenPayload): string { return encodeToken(p, this.keys.primary()); }
  open(token: string): TokenPayload | null { return decodeToken(token, this.keys.all()); }
  /** Changes when the key repository changes (e.g. `gureum keys rotate`). */
  keysVersion(): number { this.keys.refresh(); return this.keys.version; }
}
