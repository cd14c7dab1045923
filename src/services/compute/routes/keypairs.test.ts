import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpenDatabase } from '../../../db/index.ts';
import type { ComputeDeps } from '../deps.ts';
import * as store from '../store.ts';
import { keypairRoutes, parseSshPublicKey, sshFingerprint } from './keypairs.ts';
import { caller, harness, type App } from './test-harness.ts';


const work = mkdtempSync(join(tmpdir(), 'gureum-kp-test-'));
/** A key from the real ssh-keygen, as users import them. */
function sshKeygen(type: string, bits?: string): { pub: string; fp: string } {
  const f = join(work, `${type}-${bits ?? ''}-${Math.random().toString(36).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', bits] : []), '-N', '', '-C', 'me@host', '-f', f]);
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', `${f}.pub`]).toString().split(' ')[1]!.replace(/^MD5:/, '');
  return { pub: readFileSync(`${f}.pub`, 'utf8'), fp };
}

describe('keypairs', () => {
  let app: App;
  let dbh: OpenDatabase;
  let deps: ComputeDeps;
  let call: ReturnType<typeof caller>;
  before(async () => {
    ({ app, dbh, deps } = await harness(keypairRoutes));
    call = caller(app);
  });
  after(async () => { await app.close(); await dbh.close(); });

  test('import ed25519, rsa, ecdsa keys from ssh-keygen; fingerprint as ssh-keygen -E md5 prints it', async () => {
    for (const [type, bits] of [['ed25519'], ['rsa', '2048'], ['ecdsa', '256'], ['ecdsa', '384'], ['ecdsa', '521']] as [string, string?][]) {
      const k = sshKeygen(type, bits);
      const name = `imp-${type}-${bits ?? ''}`;
      const r = await call('alice', 'POST', '/os-keypairs', { keypair: { name, public_key: k.pub } }, '2.2');
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(Object.keys(r.body.keypair).sort(), ['fingerprint', 'name', 'public_key', 'type', 'user_id']);
      assert.equal(r.body.keypair.fingerprint, k.fp);
      assert.equal(r.body.keypair.type, 'ssh');
      assert.equal(r.body.keypair.user_id, 'u-alice');
      assert.equal(r.body.keypair.public_key, k.pub.trim());
    }
  });

  test('generate: RSA 2048, private key returned once and accepted by ssh-keygen -y', async () => {
    const r = await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'gen' } });
    assert.equal(r.status, 200); // 2.1
    assert.ok(!('type' in r.body.keypair));
    assert.match(r.body.keypair.private_key, /^-----BEGIN RSA PRIVATE KEY-----/);
    const f = join(work, 'gen.pem');
    writeFileSync(f, r.body.keypair.private_key);
    chmodSync(f, 0o600);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', f]).toString().trim();
    assert.equal(derived.split(' ').slice(0, 2).join(' '), r.body.keypair.public_key.split(' ').slice(0, 2).join(' '));
    assert.equal(parseSshPublicKey(r.body.keypair.public_key).type, 'ssh-rsa');
    const show = await call('alice', 'GET', '/os-keypairs/gen', undefined, '2.2');
    assert.equal(show.body.keypair.private_key, undefined);
    assert.equal(show.body.keypair.fingerprint, r.body.keypair.fingerprint);
    assert.equal(show.body.keypair.fingerprint, sshFingerprint(parseSshPublicKey(r.body.keypair.public_key).blob));
  });

  test('garbage and weak keys are 400 "Keypair data is invalid: ..."', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 768 }).publicKey.export({ format: 'jwk' });
    const sshStr = (b: Buffer) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]); };
    const weakLine = `ssh-rsa ${Buffer.concat([sshStr(Buffer.from('ssh-rsa')), sshStr(Buffer.from(weak.e!, 'base64url')), sshStr(Buffer.concat([Buffer.from([0]), Buffer.from(weak.n!, 'base64url')]))]).toString('base64')}`;
    const ed = sshKeygen('ed25519').pub.split(' ');
    for (const bad of ['garbage', 'ssh-rsa AAAA', 'ssh-rsa !!!notbase64', `ssh-rsa ${ed[1]}`, weakLine, `ssh-ed25519 ${ed[1]}AAAA`, `ssh-dss ${ed[1]}`]) {
      const r = await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'bad', public_key: bad } });
      assert.equal(r.status, 400, bad);
      assert.match(r.body.badRequest.message, /^Keypair data is invalid: /);
    }
    assert.match((await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'bad', public_key: weakLine } })).body.badRequest.message, /1024 bits/);
  });

  test('name validation, 409 duplicates, microversion-gated fields', async () => {
    let r = await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'bad$name' } });
    assert.equal(r.body.badRequest.message, 'Keypair data is invalid: Keypair name contains unsafe characters');
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: '' } })).status, 400);
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'x'.repeat(256) } })).status, 400);
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: ' lead' } })).status, 400);
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'ok', type: 'ssh' } })).status, 400); // type before 2.2
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'ok', type: 'rsa' } }, '2.2')).status, 400);
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'ok', bogus: 1 } }, '2.2')).status, 400);
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'dup key_1' } }, '2.2')).status, 201);
    r = await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'dup key_1' } }, '2.2');
    assert.equal(r.status, 409);
    assert.equal(r.body.conflictingRequest.message, "Key pair 'dup key_1' already exists.");
    // Keypairs are per user: bob may use the same name.
    assert.equal((await call('bob', 'POST', '/os-keypairs', { keypair: { name: 'dup key_1' } }, '2.2')).status, 201);
  });

  test('x509: import a certificate (SHA-1 fingerprint) and generate one', async () => {
    const dir = mkdtempSync(join(work, 'x509-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k'), '-out', join(dir, 'c'), '-days', '1', '-subj', '/CN=t'], { stdio: 'ignore' });
    const pem = readFileSync(join(dir, 'c'), 'utf8');
    const fp = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha1', '-in', join(dir, 'c')]).toString().trim().split('=')[1]!.toLowerCase();
    let r = await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'cert', type: 'x509', public_key: pem } }, '2.2');
    assert.equal(r.status, 201);
    assert.equal(r.body.keypair.fingerprint, fp);
    assert.equal(r.body.keypair.type, 'x509');
    r = await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'cert2', type: 'x509', public_key: 'nope' } }, '2.2');
    assert.match(r.body.badRequest.message, /^Keypair data is invalid: failed to generate X509 fingerprint/);
    r = await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'cert3', type: 'x509' } }, '2.2');
    assert.equal(r.status, 201);
    assert.match(r.body.keypair.public_key, /BEGIN CERTIFICATE/);
    assert.match(r.body.keypair.private_key, /PRIVATE KEY/);
  });

  test('list, show, delete; shapes per microversion; keypairs are per user', async () => {
    await call('bob', 'POST', '/os-keypairs', { keypair: { name: 'bobs' } });
    let r = await call('bob', 'GET', '/os-keypairs');
    assert.deepEqual(r.body.keypairs.map((k: { keypair: { name: string } }) => k.keypair.name), ['bobs', 'dup key_1']);
    assert.deepEqual(Object.keys(r.body.keypairs[0].keypair).sort(), ['fingerprint', 'name', 'public_key']);
    r = await call('bob', 'GET', '/os-keypairs', undefined, '2.2');
    assert.equal(r.body.keypairs[0].keypair.type, 'ssh');
    r = await call('bob', 'GET', '/os-keypairs/bobs', undefined, '2.2');
    const k = r.body.keypair;
    assert.deepEqual(Object.keys(k).sort(), ['created_at', 'deleted', 'deleted_at', 'fingerprint', 'id', 'name', 'public_key', 'type', 'updated_at', 'user_id']);
    assert.equal(typeof k.id, 'number');
    assert.equal(k.deleted, false);
    assert.match(k.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    assert.equal((await call('alice', 'GET', '/os-keypairs/bobs')).status, 404);
    r = await call('bob', 'GET', '/os-keypairs/none');
    assert.deepEqual(r.body, { itemNotFound: { code: 404, message: 'Keypair none not found for user u-bob' } });
    assert.equal((await call('alice', 'DELETE', '/os-keypairs/bobs')).status, 404);
    assert.equal((await call('bob', 'DELETE', '/os-keypairs/bobs')).status, 202);
    assert.equal((await call('bob', 'DELETE', '/os-keypairs/dup key_1', undefined, '2.2')).status, 204);
    assert.equal((await call('bob', 'GET', '/os-keypairs')).body.keypairs.length, 0);
  });

  test('2.10 user_id for admins; 2.35 paging with keypairs_links', async () => {
    let r = await call('admin', 'POST', '/os-keypairs', { keypair: { name: 'for-bob', user_id: 'u-bob' } }, '2.10');
    assert.equal(r.status, 201);
    assert.equal(r.body.keypair.user_id, 'u-bob');
    assert.equal((await call('alice', 'POST', '/os-keypairs', { keypair: { name: 'x', user_id: 'u-bob' } }, '2.10')).status, 403);
    assert.equal((await call('alice', 'GET', '/os-keypairs?user_id=u-bob', undefined, '2.10')).status, 403);
    r = await call('admin', 'GET', '/os-keypairs?user_id=u-bob', undefined, '2.10');
    assert.deepEqual(r.body.keypairs.map((x: { keypair: { name: string } }) => x.keypair.name), ['for-bob']);
    assert.equal((await call('admin', 'GET', '/os-keypairs/for-bob?user_id=u-bob', undefined, '2.10')).status, 200);
    assert.equal((await call('admin', 'DELETE', '/os-keypairs/for-bob?user_id=u-bob', undefined, '2.10')).status, 204);

    for (const n of ['p1', 'p2', 'p3']) await call('bob', 'POST', '/os-keypairs', { keypair: { name: n } });
    r = await call('bob', 'GET', '/os-keypairs?limit=2', undefined, '2.35');
    assert.deepEqual(r.body.keypairs.map((x: { keypair: { name: string } }) => x.keypair.name), ['p1', 'p2']);
    const next = new URL(r.body.keypairs_links[0].href);
    assert.equal(next.searchParams.get('marker'), 'p2');
    r = await call('bob', 'GET', `/os-keypairs?${next.searchParams.toString()}`, undefined, '2.35');
    assert.deepEqual(r.body.keypairs.map((x: { keypair: { name: string } }) => x.keypair.name), ['p3']);
    assert.equal(r.body.keypairs_links, undefined);
    assert.equal((await call('bob', 'GET', '/os-keypairs?marker=zz', undefined, '2.35')).status, 400);
  });

  test('quota key_pairs is enforced per user (403)', async () => {
    await store.setQuotas(deps.db, 'p-two', { key_pairs: 3 });
    const r = await call('bob', 'POST', '/os-keypairs', { keypair: { name: 'p4' } });
    assert.equal(r.status, 403);
    assert.equal(r.body.forbidden.message, 'Quota exceeded, too many key pairs.');
    await store.setQuotas(deps.db, 'p-two', { key_pairs: -1 });
    assert.equal((await call('bob', 'POST', '/os-keypairs', { keypair: { name: 'p4' } })).status, 200);
  });
});
