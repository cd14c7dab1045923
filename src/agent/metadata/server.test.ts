import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { clearPassword, metadataFiles, readPassword, writeMetadataDocument, type MetadataDocument } from './document.ts';
import { MetadataServers } from './server.ts';

const log = pino({ level: process.env.GUREUM_LOG_LEVEL ?? 'silent' });
let root: string;
let servers: MetadataServers;

const doc = (hostname: string): MetadataDocument => ({
  metaData: { uuid: '8d0e6a47-2f1c-4c3e-9b0e-1f6d7f7c2a11', name: hostname, hostname, public_keys: { me: 'ssh-ed25519 AAAA me' } },
  userData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
});

before(() => {
  root = mkdtempSync(join(tmpdir(), 'metadata-'));
  servers = new MetadataServers({ log, requestTimeoutMs: 3000 });
});
after(async () => {
  await servers.close();
  rmSync(root, { recursive: true, force: true });
});

function instanceDir(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

interface Res { status: number; headers: IncomingHttpHeaders; body: string }

function http(socketPath: string, method: string, path: string, body?: string | Buffer): Promise<Res> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { host: '169.254.169.254' };
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    const req = request({ socketPath, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('serves the document over the unix socket; GET/HEAD only, unknown paths 404', async () => {
  const dir = instanceDir('a');
  await writeMetadataDocument(dir, doc('vm-a'));
  assert.equal(statSync(metadataFiles(dir).document).mode & 0o777, 0o600);
  const sock = await servers.start('a', dir);
  assert.equal(sock, join(dir, 'metadata.sock'));
  assert.equal(statSync(sock).mode & 0o777, 0o600);
  assert.equal(await servers.start('a', dir), sock, 'start is idempotent');

  const md = await http(sock, 'GET', '/openstack/latest/meta_data.json');
  assert.equal(md.status, 200);
  assert.equal(md.headers['content-type'], 'application/json');
  assert.equal((JSON.parse(md.body) as { hostname: string }).hostname, 'vm-a');
  assert.equal((await http(sock, 'GET', '/openstack/latest/user_data')).body, '#!/bin/sh\necho hi\n');
  assert.equal((await http(sock, 'GET', '/latest/meta-data/public-keys/0/openssh-key')).body, 'ssh-ed25519 AAAA me');
  const head = await http(sock, 'HEAD', '/latest/meta-data/hostname');
  assert.deepEqual([head.status, head.headers['content-length'], head.body], [200, '4', '']);
  assert.equal((await http(sock, 'GET', '/nope')).status, 404);
  assert.equal((await http(sock, 'GET', '/openstack/2099-01-01/meta_data.json')).status, 404);
  const put = await http(sock, 'PUT', '/openstack/latest/meta_data.json', '{}');
  assert.deepEqual([put.status, put.headers.allow], [405, 'GET, HEAD']);
  assert.equal((await http(sock, 'POST', '/latest/meta-data/hostname', 'x')).status, 405);
  assert.equal((await http(sock, 'DELETE', '/openstack/latest/password')).status, 405);

  // many at once (each guest connection is one socat)
  const all = await Promise.all(Array.from({ length: 20 }, () => http(sock, 'GET', '/latest/meta-data/hostname')));
  assert.ok(all.every((r) => r.status === 200 && r.body === 'vm-a'));

  // a rewritten document is served at once
  await writeMetadataDocument(dir, doc('vm-a2'));
  assert.equal((await http(sock, 'GET', '/latest/meta-data/hostname')).body, 'vm-a2');
});

test('password: empty until the guest posts it, then set once (409), at most 1020 bytes; the agent reads and clears it', async () => {
  const dir = instanceDir('p');
  await writeMetadataDocument(dir, doc('vm-p'));
  const sock = await servers.start('p', dir);
  const get = await http(sock, 'GET', '/openstack/latest/password');
  assert.deepEqual([get.status, get.body], [200, '']);
  assert.equal((await http(sock, 'POST', '/openstack/latest/password', 'x'.repeat(1021))).status, 400);
  assert.equal(await readPassword(dir), undefined);
  assert.equal((await http(sock, 'GET', '/openstack/2012-08-10/password')).status, 404, 'not before 2013-04-04');

  // racing posts: exactly one wins
  const posts = await Promise.all(['s3cret', 'other1', 'other2', 'other3'].map((p) => http(sock, 'POST', '/openstack/2013-04-04/password', p)));
  assert.deepEqual(posts.map((r) => r.status).sort(), [200, 409, 409, 409]);
  const won = await readPassword(dir);
  assert.ok(won && ['s3cret', 'other1', 'other2', 'other3'].includes(won));
  assert.equal((await http(sock, 'GET', '/openstack/latest/password')).body, won);
  assert.equal(statSync(metadataFiles(dir).password).mode & 0o777, 0o600);
  assert.equal((await http(sock, 'POST', '/openstack/latest/password', 'again')).status, 409);

  await clearPassword(dir);
  assert.equal((await http(sock, 'GET', '/openstack/latest/password')).body, '');
  assert.equal((await http(sock, 'POST', '/openstack/latest/password', 'x'.repeat(1020))).status, 200);
  assert.equal((await readPassword(dir))?.length, 1020);
});

test('request bodies are bounded: a huge body is refused without being read', async () => {
  const dir = instanceDir('b');
  await writeMetadataDocument(dir, doc('vm-b'));
  const sock = await servers.start('b', dir);
  const res = await new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: sock, method: 'POST', path: '/openstack/latest/password', headers: { 'transfer-encoding': 'chunked' } },
      (r) => { r.resume(); resolve(r.statusCode ?? 0); });
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < 512 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
  assert.equal(res, 400);
  assert.equal(await readPassword(dir), undefined);
  // a declared Content-Length above the limit is refused at once too
  assert.equal((await http(sock, 'GET', '/latest/meta-data/hostname', 'y'.repeat(5000))).status, 413);
  assert.equal((await http(sock, 'GET', '/latest/meta-data/hostname')).status, 200, 'server still answers');
});

test('no document: 404; a broken one: 500', async () => {
  const dir = instanceDir('n');
  const sock = await servers.start('n', dir);
  assert.equal((await http(sock, 'GET', '/openstack/latest/meta_data.json')).status, 404);
  writeFileSync(metadataFiles(dir).document, '{"metaData": 5}');
  assert.equal((await http(sock, 'GET', '/openstack/latest/meta_data.json')).status, 500);
  await assert.rejects(writeMetadataDocument(dir, { metaData: {}, userData: 'not base64!' }), /userData/);
});

test('stale socket files are replaced on start; stop removes the socket; close stops all', async () => {
  const dir = instanceDir('s');
  await writeMetadataDocument(dir, doc('vm-s'));
  const sock = metadataFiles(dir).socket;
  // a socket left by a listener that was killed (an agent that died)
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(existsSync(sock), 'the killed listener left its socket behind');
  await servers.start('s', dir);
  assert.equal((await http(sock, 'GET', '/latest/meta-data/hostname')).body, 'vm-s');

  await servers.stop('s');
  assert.ok(!existsSync(sock));
  await assert.rejects(http(sock, 'GET', '/'), /ENOENT|ECONNREFUSED/);
  await servers.stop('s'); // idempotent

  writeFileSync(sock, 'not a socket');
  await servers.start('s', dir);
  assert.equal((await http(sock, 'GET', '/latest/meta-data/hostname')).status, 200);

  // a second dir for the same uuid moves the server
  const moved = instanceDir('s2');
  await writeMetadataDocument(moved, doc('vm-s2'));
  const sock2 = await servers.start('s', moved);
  assert.ok(!existsSync(sock));
  assert.equal((await http(sock2, 'GET', '/latest/meta-data/hostname')).body, 'vm-s2');

  await assert.rejects(servers.start('x', join(root, 'missing')), /metadata server for x: cannot listen on .*missing\/metadata\.sock/);
  assert.ok(!servers.instances().includes('x'));

  const other = new MetadataServers({ log });
  const d1 = instanceDir('c1');
  const d2 = instanceDir('c2');
  await Promise.all([other.start('c1', d1), other.start('c2', d2), other.start('c1', d1)]);
  assert.deepEqual(other.instances().sort(), ['c1', 'c2']);
  await other.close();
  assert.deepEqual(other.instances(), []);
  assert.ok(!existsSync(metadataFiles(d1).socket) && !existsSync(metadataFiles(d2).socket));
});

test('through socat, as QEMU\'s guestfwd runs it (one socat per connection)', { skip: spawnSync('socat', ['-V']).error ? 'socat not installed' : false }, async () => {
  const dir = instanceDir('q');
  await writeMetadataDocument(dir, doc('vm-q'));
  const sock = await servers.start('q', dir);
  for (let i = 0; i < 3; i++) {
    const child = spawn('socat', ['-T', '60', '-', `UNIX-CONNECT:${sock}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stdin!.end('GET /openstack/latest/user_data HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(out.endsWith('\r\n\r\n#!/bin/sh\necho hi\n'), out);
  }
});
