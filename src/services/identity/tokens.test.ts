import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRepository } from './keys.ts';
import { decodeToken, encodeToken, newAuditId, TokenCodec, type TokenPayload } from './tokens.ts';

const payload: TokenPayload = { u: 'a'.repeat(32), m: ['password'], p: 'b'.repeat(32), i: Date.now(), e: Date.now() + 3600_000, a: [newAuditId()] };

test('a token round-trips and is url-safe Fernet', () => {
  const repo = new KeyRepository(mkdtempSync(join(tmpdir(), 'keys-')));
  repo.setup();
  const tok = encodeToken(payload, repo.primary());
  assert.match(tok, /^[A-Za-z0-9_-]+$/);
  assert.equal(Buffer.from(tok, 'base64url')[0], 0x80);
  assert.deepEqual(decodeToken(tok, repo.all()), payload);
  assert.equal(newAuditId().length, 22);
});

test('a tampered or foreign token is rejected', () => {
  const a = new KeyRepository(mkdtempSync(join(tmpdir(), 'keys-'))); a.setup();
  const b = new KeyRepository(mkdtempSync(join(tmpdir(), 'keys-'))); b.setup();
  const tok = encodeToken(payload, a.primary());
  assert.equal(decodeToken(tok, b.all()), null);
  const raw = Buffer.from(tok, 'base64url');
  raw[40] ^= 1;
  assert.equal(decodeToken(raw.toString('base64url'), a.all()), null);
  assert.equal(decodeToken('not-a-token', a.all()), null);
});

test('rotation: old tokens validate until their key is pruned', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keys-'));
  const repo = new KeyRepository(dir, 3);
  repo.setup();
  const codec = new TokenCodec(repo);
  const t1 = codec.issue(payload);
  const r1 = repo.rotate();
  assert.equal(r1.primary, 2);
  assert.deepEqual(codec.open(t1), payload, 'previous primary is still a secondary');
  const t2 = codec.issue(payload);
  repo.rotate();
  assert.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.')).sort(), ['0', '2', '3']);
  assert.equal(codec.open(t1), null, 'key 1 was pruned');
  assert.deepEqual(codec.open(t2), payload);
});
