/**
 * Raw HTTP against the image API for what the CLI does not show: JSON-patch semantics and
 * errors, Range downloads, status codes, streaming uploads (memory stays flat), and crash
 * reconciliation of an upload cut short by kill -9.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { api, openstack, startCloud, type Cloud } from './helpers/cloud.ts';

type Row = Record<string, unknown>;
const PATCH = 'application/openstack-images-v2.1-json-patch';

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

/** PUT a stream as the image data; resolves with the status code. */
function upload(cloud: Cloud, token: string, id: string, body: Readable, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${cloud.url}/image/v2/images/${id}/file`, {
      method: 'PUT', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/octet-stream', ...headers },
    }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    body.pipe(req);
  });
}

/** A generated stream of `total` bytes in 1 MiB chunks, with an md5 of what it produced. */
function generated(total: number): { stream: Readable; md5: () => string } {
  const h = createHash('md5');
  const chunk = randomBytes(1024 * 1024);
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) { this.push(null); return; }
      const c = chunk.subarray(0, Math.min(chunk.length, total - sent));
      sent += c.length;
      h.update(c);
      this.push(c);
    },
  });
  return { stream, md5: () => h.digest('hex') };
}

describe('image API over raw HTTP', () => {
  let cloud: Cloud;
  let token: string;
  let otherToken: string;
  const img = (method: string, path: string, opts: Parameters<typeof api>[3] = {}) => api(cloud, method, `/image${path}`, { token, ...opts });
  const create = async (body: Row = {}): Promise<string> => {
    const r = await img('POST', '/v2/images', { body: { name: 'x', disk_format: 'raw', container_format: 'bare', ...body } });
    assert.equal(r.status, 201, r.text);
    return String(r.json.id);
  };

  before(async () => {
    cloud = await startCloud();
    token = String(((await openstack(cloud.env, 'token', 'issue', '-f', 'json')) as Row).id);
    await openstack(cloud.env, 'project', 'create', 'p2');
    await openstack(cloud.env, 'user', 'create', '--password', 'pw2', 'u2');
    await openstack(cloud.env, 'role', 'add', '--user', 'u2', '--project', 'p2', 'member');
    const env2 = { ...cloud.env, OS_USERNAME: 'u2', OS_PASSWORD: 'pw2', OS_PROJECT_NAME: 'p2' };
    otherToken = String(((await openstack(env2, 'token', 'issue', '-f', 'json')) as Row).id);
  });
  after(async () => { await cloud?.stop(); });

  test('version discovery at the endpoint root', async () => {
    for (const path of ['/image/', '/image', '/image/versions']) {
      const r = await api(cloud, 'GET', path);
      assert.equal(r.status, path === '/image/versions' ? 200 : 300);
      const versions = r.json.versions as Row[];
      assert.equal(versions.filter((v) => v.status === 'CURRENT').length, 1);
      assert.ok(versions.every((v) => String((v.links as Row[])[0]!.href).endsWith('/image/v2/')));
    }
    assert.equal((await api(cloud, 'GET', '/image/v2/images')).status, 401, 'every API call is authenticated');
  });

  test('schemas', async () => {
    for (const name of ['image', 'images', 'member', 'members']) {
      const r = await img('GET', `/v2/schemas/${name}`);
      assert.equal(r.status, 200);
      assert.equal(r.json.name, name);
    }
  });

  test('JSON patch: add, replace, remove on standard and custom properties, both dialects', async () => {
    const id = await create({ hw_disk_bus: 'virtio' });
    let r = await img('PATCH', `/v2/images/${id}`, { headers: { 'Content-Type': PATCH }, raw: JSON.stringify([
      { op: 'replace', path: '/name', value: 'renamed' },
      { op: 'add', path: '/os_distro', value: 'debian' },
      { op: 'replace', path: '/hw_disk_bus', value: 'scsi' },
      { op: 'add', path: '/min_ram', value: 128 },
      { op: 'replace', path: '/tags', value: ['a', 'b', 'a'] },
      { op: 'replace', path: '/protected', value: true },
    ]) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.name, 'renamed');
    assert.equal(r.json.os_distro, 'debian');
    assert.equal(r.json.hw_disk_bus, 'scsi');
    assert.equal(r.json.min_ram, 128);
    assert.deepEqual(r.json.tags, ['a', 'b']);
    assert.equal(r.json.protected, true);
    r = await img('PATCH', `/v2/images/${id}`, { headers: { 'Content-Type': 'application/openstack-images-v2.0-json-patch' },
      raw: JSON.stringify([{ remove: '/os_distro' }, { replace: '/protected', value: false }]) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.os_distro, undefined);

    const patch = async (ops: unknown, ct = PATCH) => img('PATCH', `/v2/images/${id}`, { headers: { 'Content-Type': ct }, raw: JSON.stringify(ops) });
    assert.equal((await patch([{ op: 'replace', path: '/status', value: 'active' }])).status, 403, 'read-only');
    assert.equal((await patch([{ op: 'add', path: '/size', value: 1 }])).status, 403, 'read-only');
    assert.equal((await patch([{ op: 'add', path: '/deleted', value: 'x' }])).status, 403, 'reserved');
    assert.equal((await patch([{ op: 'add', path: '/os_glance_foo', value: 'x' }])).status, 403, 'os_glance_ namespace');
    assert.equal((await patch([{ op: 'remove', path: '/nope' }])).status, 409, 'remove a missing property');
    assert.equal((await patch([{ op: 'replace', path: '/nope', value: 'x' }])).status, 409, 'replace a missing property');
    assert.equal((await patch([{ op: 'add', path: '/k', value: 5 }])).status, 400, 'custom values are strings');
    assert.equal((await patch([{ op: 'move', path: '/k', from: '/j' }])).status, 400);
    assert.equal((await patch([{ op: 'add', path: '/a/b', value: 'x' }])).status, 400);
    assert.equal((await patch([{ op: 'replace', path: '/visibility', value: 'everyone' }])).status, 400);
    assert.equal((await patch({ op: 'add', path: '/k', value: 'v' })).status, 400, 'not an array');
    assert.equal((await patch([{ op: 'add', path: '/k', value: 'v' }], 'application/json')).status, 415);
    const after = await img('GET', `/v2/images/${id}`);
    assert.equal(after.json.k, undefined, 'failed patches change nothing');
    // Errors in Glance's (webob's) shape: JSON when asked for JSON, the HTML page otherwise.
    const e = await img('PATCH', `/v2/images/${id}`, { headers: { 'Content-Type': PATCH, Accept: 'application/json' }, raw: JSON.stringify([{ op: 'replace', path: '/status', value: 'active' }]) });
    assert.deepEqual(Object.keys(e.json).sort(), ['code', 'message', 'title']);
    assert.equal(e.json.code, '403 Forbidden');
    const html = await fetch(`${cloud.url}/image/v2/images/${randomUUIDLike()}`, { headers: { 'X-Auth-Token': token } });
    assert.equal(html.status, 404);
    assert.match(html.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await html.text(), /<h1>404 Not Found<\/h1>/);
  });

  test('upload, download, Range, Content-MD5, status codes', async () => {
    const id = await create({ protected: true });
    assert.equal((await img('GET', `/v2/images/${id}/file`)).status, 204, 'no data yet');
    const data = randomBytes(100_000);
    let r = await img('PUT', `/v2/images/${id}/file`, { headers: { 'Content-Type': 'application/json' }, raw: '{}' });
    assert.equal(r.status, 415);
    const up = await upload(cloud, token, id, Readable.from([data]));
    assert.equal(up.status, 204, up.text);
    const shown = await img('GET', `/v2/images/${id}`);
    assert.equal(shown.json.status, 'active');
    assert.equal(shown.json.size, data.length);
    assert.equal(shown.json.virtual_size, data.length, 'raw: virtual size = size');
    assert.equal(shown.json.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(shown.json.os_hash_algo, 'sha512');
    assert.equal(shown.json.os_hash_value, createHash('sha512').update(data).digest('hex'));
    assert.equal((await upload(cloud, token, id, Readable.from([data]))).status, 409, 'upload into a non-queued image');

    const full = await fetch(`${cloud.url}/image/v2/images/${id}/file`, { headers: { 'X-Auth-Token': token } });
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-md5'), shown.json.checksum);
    assert.ok(Buffer.from(await full.arrayBuffer()).equals(data));
    const range = async (h: string) => fetch(`${cloud.url}/image/v2/images/${id}/file`, { headers: { 'X-Auth-Token': token, Range: h } });
    let p = await range('bytes=10-19');
    assert.equal(p.status, 206);
    assert.equal(p.headers.get('content-range'), `bytes 10-19/${data.length}`);
    assert.ok(Buffer.from(await p.arrayBuffer()).equals(data.subarray(10, 20)));
    p = await range('bytes=-5');
    assert.equal(p.status, 206);
    assert.ok(Buffer.from(await p.arrayBuffer()).equals(data.subarray(data.length - 5)));
    p = await range('bytes=99990-');
    assert.ok(Buffer.from(await p.arrayBuffer()).equals(data.subarray(99990)));
    assert.equal((await range(`bytes=${data.length}-`)).status, 416);

    assert.equal((await img('DELETE', `/v2/images/${id}`)).status, 403, 'protected');
    assert.equal((await api(cloud, 'GET', `/image/v2/images/${id}`, { token: otherToken })).status, 404, 'another project: invisible, not forbidden');
    assert.equal((await api(cloud, 'DELETE', `/image/v2/images/${id}`, { token: otherToken })).status, 404);
    assert.equal((await img('POST', '/v2/images', { body: { disk_format: 'floppy' } })).status, 400);
    assert.equal((await img('POST', '/v2/images', { body: { status: 'active' } })).status, 403);
    assert.equal((await img('POST', '/v2/images', { body: { min_disk: -1 } })).status, 400);
    assert.equal((await img('GET', '/v2/images?limit=x')).status, 400);
    assert.equal((await img('GET', '/v2/images?sort_key=bogus')).status, 400);
    assert.equal((await img('GET', '/v2/images?visibility=bogus')).status, 400);
    const many = await create();
    let status = 0;
    for (let i = 0; i < 130 && status !== 413; i++) status = (await img('PUT', `/v2/images/${many}/tags/t${i}`)).status;
    assert.equal(status, 413, 'tag quota');

    // Deactivated: data refused to its owner (non-admin) with 403.
    const mine = await api(cloud, 'POST', '/image/v2/images', { token: otherToken, body: { name: 'd', disk_format: 'raw', container_format: 'bare', visibility: 'private' } });
    const mid = String(mine.json.id);
    assert.equal((await upload(cloud, otherToken, mid, Readable.from([data]))).status, 204);
    assert.equal((await api(cloud, 'POST', `/image/v2/images/${mid}/actions/deactivate`, { token: otherToken })).status, 204);
    assert.equal((await api(cloud, 'GET', `/image/v2/images/${mid}/file`, { token: otherToken })).status, 403);
    assert.equal((await img('GET', `/v2/images/${mid}/file`)).status, 200, 'admins still may');
  });

  test('paging: limit, marker, next link, sort', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await create({ name: `page-${i}`, tags: ['paging'] }));
    const seen: string[] = [];
    let next: string | undefined = '/v2/images?tag=paging&limit=2&sort=name:asc';
    while (next) {
      const r = await img('GET', next);
      assert.equal(r.status, 200, r.text);
      seen.push(...(r.json.images as Row[]).map((x) => String(x.name)));
      next = r.json.next as string | undefined;
    }
    assert.deepEqual(seen, ['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    const desc = await img('GET', '/v2/images?tag=paging&sort_key=name&sort_dir=desc');
    assert.deepEqual((desc.json.images as Row[]).map((x) => x.name), ['page-4', 'page-3', 'page-2', 'page-1', 'page-0']);
    const inList = await img('GET', `/v2/images?id=in:${ids[0]},${ids[1]}`);
    assert.equal((inList.json.images as Row[]).length, 2);
  });

  test('a qcow2 upload of non-qcow2 data is a 400 and the image is queued again', async () => {
    const id = await create({ disk_format: 'qcow2' });
    const r = await upload(cloud, token, id, Readable.from([randomBytes(70_000)]));
    assert.equal(r.status, 400);
    assert.match(r.text, /does not match/);
    assert.equal((await img('GET', `/v2/images/${id}`)).json.status, 'queued');
  });

  test('an upload the client abandons midway leaves the image killed', async () => {
    const id = await create();
    const req = request(`${cloud.url}/image/v2/images/${id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/octet-stream', 'Content-Length': '10000000' } });
    req.on('error', () => undefined);
    req.write(randomBytes(100_000));
    for (let i = 0; i < 100 && (await img('GET', `/v2/images/${id}`)).json.status !== 'saving'; i++) await new Promise((r) => setTimeout(r, 20));
    req.destroy();
    let status = '';
    for (let i = 0; i < 100 && status !== 'killed'; i++) {
      status = String((await img('GET', `/v2/images/${id}`)).json.status);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 'killed');
    assert.equal((await upload(cloud, token, id, Readable.from([randomBytes(10)]))).status, 409, 'no upload into a killed image');
  });

  test('a 300 MB upload streams: the server does not hold it in memory', { timeout: 300_000 }, async () => {
    const pid = cloud.child.pid!;
    const id = await create();
    const before = rssKb(pid, 'VmRSS');
    const total = 300 * 1024 * 1024;
    const g = generated(total);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rssKb(pid, 'VmRSS')); }, 50);
    const r = await upload(cloud, token, id, g.stream);
    clearInterval(sampler);
    assert.equal(r.status, 204, r.text);
    const shown = await img('GET', `/v2/images/${id}`);
    assert.equal(shown.json.size, total);
    assert.equal(shown.json.checksum, g.md5());
    const grewMb = (peak - before) / 1024;
    console.log(`RSS before ${Math.round(before / 1024)} MiB, peak during upload ${Math.round(peak / 1024)} MiB (+${grewMb.toFixed(1)} MiB) for a ${total / 2 ** 20} MiB upload`);
    assert.ok(grewMb < 100, `RSS grew by ${grewMb} MiB`);
  });
});

describe('crash during an upload', () => {
  test('kill -9 mid-upload, restart: the image is not stuck in saving', { timeout: 180_000 }, async () => {
    let cloud = await startCloud();
    try {
      const token = String(((await openstack(cloud.env, 'token', 'issue', '-f', 'json')) as Row).id);
      const c = await api(cloud, 'POST', '/image/v2/images', { token, body: { name: 'slow', disk_format: 'raw', container_format: 'bare' } });
      const id = String(c.json.id);
      // A slow upload: 64 KiB every 20 ms, never finishing before the kill.
      const slow = new Readable({ read() { setTimeout(() => this.push(randomBytes(65536)), 20); } });
      const pending = upload(cloud, token, id, slow).catch(() => ({ status: -1, text: '' }));
      for (let i = 0; i < 100; i++) {
        if ((await api(cloud, 'GET', `/image/v2/images/${id}`, { token })).json.status === 'saving') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await api(cloud, 'GET', `/image/v2/images/${id}`, { token })).json.status, 'saving');
      await new Promise((r) => setTimeout(r, 300));
      const tmpDir = join(cloud.dir, 'data', 'images', 'tmp');
      assert.ok(readdirSync(tmpDir).length > 0, 'a partial upload is on disk');
      await cloud.kill9();
      slow.destroy();
      await pending;
      cloud = await startCloud({ dir: cloud.dir, port: cloud.port });
      const token2 = String(((await openstack(cloud.env, 'token', 'issue', '-f', 'json')) as Row).id);
      const shown = await api(cloud, 'GET', `/image/v2/images/${id}`, { token: token2 });
      assert.equal(shown.json.status, 'queued');
      assert.equal(shown.json.size, null);
      assert.deepEqual(readdirSync(tmpDir), [], 'partial data removed');
      assert.ok(!existsSync(join(cloud.dir, 'data', 'images', id)));
      // And it can be uploaded again.
      assert.equal((await upload(cloud, token2, id, Readable.from([randomBytes(1000)]))).status, 204);
    } finally {
      await cloud.stop();
    }
  });
});

function randomUUIDLike(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
