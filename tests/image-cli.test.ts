/**
 * The stock openstack CLI (Debian's python3-openstackclient, through openstacksdk) against
 * `gureum up`: the image verbs of the Glance issue, on SQLite, and a shorter pass on PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openstack, openstackFails, otherProject, startCloud, type Cloud } from './helpers/cloud.ts';
import { startPostgres, type Postgres } from './helpers/postgres.ts';

type Row = Record<string, unknown>;
const work = mkdtempSync(join(tmpdir(), 'gureum-image-cli-'));
const qcow2 = (name: string, size: string): string => {
  const p = join(work, name);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', p, size]);
  return p;
};

describe('images with the openstack CLI on sqlite', () => {
  let cloud: Cloud;
  let env: NodeJS.ProcessEnv;
  let other: { env: NodeJS.ProcessEnv; projectId: string };
  const os = (...a: string[]) => openstack(env, ...a);

  before(async () => {
    cloud = await startCloud();
    env = cloud.env;
    other = await otherProject(env, 'other');
  });
  after(async () => { await cloud?.stop(); });

  test('catalog publishes glance; version discovery works', async () => {
    const catalog = (await os('catalog', 'list', '-f', 'json')) as Row[];
    assert.ok(catalog.some((c) => c.Type === 'image' && c.Name === 'glance'));
    const versions = (await os('versions', 'show', '--service', 'image', '-f', 'json')) as Row[];
    assert.ok(versions.some((v) => String(v.Version).startsWith('2.') && v.Status === 'CURRENT'));
  });

  test('create with file, properties, min-disk, protected; show; virtual_size from the qcow2 header', async () => {
    const file = qcow2('one.qcow2', '1G');
    const created = (await os('image', 'create', '--file', file, '--disk-format', 'qcow2', '--container-format', 'bare',
      '--property', 'k=v', '--property', 'hw_disk_bus=virtio', '--min-disk', '2', '--min-ram', '64', '--protected', 'img-one', '-f', 'json')) as Row;
    const img = (await os('image', 'show', String(created.id), '-f', 'json')) as Row;
    assert.equal(img.status, 'active');
    assert.equal(img.disk_format, 'qcow2');
    assert.equal(img.min_disk, 2);
    assert.equal(img.min_ram, 64);
    assert.equal(img.protected, true);
    assert.equal(img.virtual_size, 1024 ** 3);
    const data = readFileSync(file);
    assert.equal(img.size, data.length);
    assert.equal(img.checksum, (await import('node:crypto')).createHash('md5').update(data).digest('hex'));
    const props = img.properties as Row;
    assert.equal(props.k, 'v');
    assert.equal(props.hw_disk_bus, 'virtio');
    assert.equal(props.os_hash_algo ?? img.os_hash_algo ?? 'sha512', 'sha512');

    // Protected images are not deleted; unprotected they are.
    assert.match(await openstackFails(env, 'image', 'delete', 'img-one'), /protected|403|Forbidden/i);
    await os('image', 'set', '--unprotected', 'img-one');
    await os('image', 'delete', 'img-one');
    assert.match(await openstackFails(env, 'image', 'show', String(created.id)), /No Image found|404|Not Found|could not be found/i);
  });

  test('list with filters, --long, --sort, --limit/--marker', async () => {
    const raw = join(work, 'r.raw');
    for (const [name, size] of [['lst-a', 1000], ['lst-b', 3000], ['lst-c', 2000]] as const) {
      writeFileSync(raw, randomBytes(size));
      await os('image', 'create', '--file', raw, '--disk-format', 'raw', '--container-format', 'bare', '--private', '--tag', 'listing', '--property', `n=${name}`, name);
    }
    const byName = (await os('image', 'list', '--sort', 'name:asc', '--tag', 'listing', '-f', 'json')) as Row[];
    assert.deepEqual(byName.map((r) => r.Name), ['lst-a', 'lst-b', 'lst-c']);
    const bySize = (await os('image', 'list', '--sort', 'size:desc', '--tag', 'listing', '--long', '-f', 'json')) as Row[];
    assert.deepEqual(bySize.map((r) => r.Name), ['lst-b', 'lst-c', 'lst-a']);
    assert.ok(bySize.every((r) => r['Disk Format'] === 'raw' && r.Visibility === 'private' && typeof r.Checksum === 'string'));
    // One page: the server's default order is newest first (the CLI's --sort is client-side).
    const first = (await os('image', 'list', '--tag', 'listing', '--limit', '1', '-f', 'json')) as Row[];
    assert.equal(first.length, 1);
    assert.equal(first[0]!.Name, 'lst-c');
    const rest = (await os('image', 'list', '--sort', 'name:asc', '--tag', 'listing', '--marker', String(first[0]!.ID), '-f', 'json')) as Row[];
    assert.deepEqual(rest.map((r) => r.Name), ['lst-a', 'lst-b']);
    const byProp = (await os('image', 'list', '--property', 'n=lst-c', '-f', 'json')) as Row[];
    assert.deepEqual(byProp.map((r) => r.Name), ['lst-c']);
    const priv = (await os('image', 'list', '--private', '-f', 'json')) as Row[];
    assert.ok(['lst-a', 'lst-b', 'lst-c'].every((n) => priv.some((r) => r.Name === n)));
    const active = (await os('image', 'list', '--status', 'active', '--name', 'lst-b', '-f', 'json')) as Row[];
    assert.deepEqual(active.map((r) => r.Name), ['lst-b']);
  });

  test('set and unset: name, properties, tags; --public is admin-only; save is byte-identical', async () => {
    const raw = join(work, 'set.raw');
    const bytes = randomBytes(300_000);
    writeFileSync(raw, bytes);
    await os('image', 'create', '--file', raw, '--disk-format', 'raw', '--container-format', 'bare', 'set-me');
    await os('image', 'set', '--name', 'set-me-2', '--property', 'os_distro=debian', '--tag', 't1', '--tag', 't2', 'set-me');
    let img = (await os('image', 'show', 'set-me-2', '-f', 'json')) as Row;
    assert.equal((img.properties as Row).os_distro, 'debian');
    assert.deepEqual([...(img.tags as string[])].sort(), ['t1', 't2']);
    await os('image', 'unset', '--property', 'os_distro', '--tag', 't1', 'set-me-2');
    img = (await os('image', 'show', 'set-me-2', '-f', 'json')) as Row;
    assert.equal((img.properties as Row | undefined)?.os_distro, undefined);
    assert.deepEqual(img.tags, ['t2']);
    await os('image', 'set', '--public', 'set-me-2');
    assert.equal(((await os('image', 'show', 'set-me-2', '-f', 'json')) as Row).visibility, 'public');
    // The other project sees the public image but may not change it; making its own public is refused.
    assert.equal(((await openstack(other.env, 'image', 'show', 'set-me-2', '-f', 'json')) as Row).visibility, 'public');
    assert.match(await openstackFails(other.env, 'image', 'set', '--name', 'stolen', String(img.id)), /403|Forbidden|not permitted/i);
    writeFileSync(raw, randomBytes(10));
    await openstack(other.env, 'image', 'create', '--file', raw, '--disk-format', 'raw', '--container-format', 'bare', 'theirs');
    assert.match(await openstackFails(other.env, 'image', 'set', '--public', 'theirs'), /403|Forbidden|not authorized/i);
    await openstack(other.env, 'image', 'set', '--community', 'theirs');

    const out = join(work, 'saved.raw');
    await os('image', 'save', '--file', out, 'set-me-2');
    assert.ok(readFileSync(out).equals(bytes), 'download is byte-identical');
  });

  test('deactivate and reactivate', async () => {
    const raw = join(work, 'd.raw');
    writeFileSync(raw, randomBytes(4096));
    await os('image', 'create', '--file', raw, '--disk-format', 'raw', '--container-format', 'bare', 'deact');
    await os('image', 'set', '--deactivate', 'deact');
    assert.equal(((await os('image', 'show', 'deact', '-f', 'json')) as Row).status, 'deactivated');
    await os('image', 'set', '--activate', 'deact');
    assert.equal(((await os('image', 'show', 'deact', '-f', 'json')) as Row).status, 'active');
    await os('image', 'save', '--file', join(work, 'd.out'), 'deact');
    assert.ok(readFileSync(join(work, 'd.out')).equals(readFileSync(raw)));
  });

  test('private images are invisible to another project; members share, accept, list', async () => {
    const raw = join(work, 'p.raw');
    writeFileSync(raw, randomBytes(2048));
    const priv = (await os('image', 'create', '--file', raw, '--disk-format', 'raw', '--container-format', 'bare', '--private', 'secret', '-f', 'json')) as Row;
    assert.match(await openstackFails(other.env, 'image', 'show', String(priv.id)), /404|No Image found|could not be found/i);
    assert.ok(!((await openstack(other.env, 'image', 'list', '-f', 'json')) as Row[]).some((r) => r.ID === priv.id));

    const shared = (await os('image', 'create', '--file', raw, '--disk-format', 'raw', '--container-format', 'bare', '--shared', 'to-share', '-f', 'json')) as Row;
    const id = String(shared.id);
    await os('image', 'add', 'project', id, other.projectId);
    const members = (await os('image', 'member', 'list', id, '-f', 'json')) as Row[];
    assert.deepEqual(members.map((m) => [m['Member ID'], m.Status]), [[other.projectId, 'pending']]);
    // Pending: not in the member's default list, but visible by id and with --member-status.
    assert.ok(!((await openstack(other.env, 'image', 'list', '-f', 'json')) as Row[]).some((r) => r.ID === id));
    assert.equal(((await openstack(other.env, 'image', 'show', id, '-f', 'json')) as Row).id, id);
    await openstack(other.env, 'image', 'set', '--accept', id);
    assert.ok(((await openstack(other.env, 'image', 'list', '-f', 'json')) as Row[]).some((r) => r.ID === id));
    assert.equal(((await os('image', 'member', 'list', id, '-f', 'json')) as Row[])[0]!.Status, 'accepted');
    // The member may read the data but not change the image.
    await openstack(other.env, 'image', 'save', '--file', join(work, 'm.out'), id);
    assert.ok(readFileSync(join(work, 'm.out')).equals(raw ? readFileSync(raw) : Buffer.alloc(0)));
    assert.match(await openstackFails(other.env, 'image', 'delete', id), /403|Forbidden|not permitted/i);
    await os('image', 'remove', 'project', id, other.projectId);
    assert.match(await openstackFails(other.env, 'image', 'show', id), /404|No Image found|could not be found/i);
  });

  test('data that is not what the disk format claims is refused; qcow2 with a backing file is refused', async () => {
    const fake = join(work, 'fake.qcow2');
    writeFileSync(fake, randomBytes(65536));
    assert.match(await openstackFails(env, 'image', 'create', '--file', fake, '--disk-format', 'qcow2', '--container-format', 'bare', 'fake-qcow2'),
      /400|Bad Request|does not match/i);
    const left = (await os('image', 'list', '--name', 'fake-qcow2', '-f', 'json')) as Row[];
    assert.ok(left.every((r) => r.Status !== 'active'), 'no active image with bad data');

    const baseFile = qcow2('base.qcow2', '64M');
    const overlay = join(work, 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', baseFile, '-F', 'qcow2', overlay]);
    assert.match(await openstackFails(env, 'image', 'create', '--file', overlay, '--disk-format', 'qcow2', '--container-format', 'bare', 'overlay'),
      /400|Bad Request|backing file/i);
  });
});

describe('images with the openstack CLI on postgresql', () => {
  let cloud: Cloud;
  let pg: Postgres;
  before(async () => {
    pg = await startPostgres();
    cloud = await startCloud({ database: pg.url });
  });
  after(async () => {
    await cloud?.stop();
    pg?.stop();
  });

  test('create, list, show, save, delete', async () => {
    const env = cloud.env;
    const file = qcow2('pg.qcow2', '2G');
    const created = (await openstack(env, 'image', 'create', '--file', file, '--disk-format', 'qcow2', '--container-format', 'bare', '--property', 'a=b', 'pg-img', '-f', 'json')) as Row;
    const img = (await openstack(env, 'image', 'show', String(created.id), '-f', 'json')) as Row;
    assert.equal(img.status, 'active');
    assert.equal(img.virtual_size, 2 * 1024 ** 3);
    assert.equal(typeof img.size, 'number');
    assert.ok(((await openstack(env, 'image', 'list', '--long', '-f', 'json')) as Row[]).some((r) => r.Name === 'pg-img'));
    await openstack(env, 'image', 'save', '--file', join(work, 'pg.out'), 'pg-img');
    assert.ok(readFileSync(join(work, 'pg.out')).equals(readFileSync(file)));
    await openstack(env, 'image', 'delete', 'pg-img');
    assert.ok(!((await openstack(env, 'image', 'list', '-f', 'json')) as Row[]).some((r) => r.Name === 'pg-img'));
  });
});
