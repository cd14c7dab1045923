/**
 * The stock openstack CLI (Debian's python3-openstackclient 6.0, through openstacksdk and
 * novaclient) against `gureum up`: flavors, keypairs, quotas and limits, availability
 * zones, hypervisors, compute services, aggregates and server groups.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, openstack, openstackFails, otherProject, startCloud, type Cloud } from './helpers/cloud.ts';

type Row = Record<string, unknown>;
const work = mkdtempSync(join(tmpdir(), 'gureum-compute-resources-cli-'));

/** Rows of `-f json` list output as {Name: Value} (limits show, quota show are Field/Value tables in some versions). */
function asMap(rows: Row[]): Record<string, unknown> {
  return Object.fromEntries(rows.map((r) => [String(r.Name ?? r.Field), r.Value]));
}

/** Wait until the local agent has registered its host (gureum up supervises one). */
async function firstHypervisor(env: NodeJS.ProcessEnv): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const hv = (await openstack(env, 'hypervisor', 'list', '-f', 'json')) as Row[];
    if (hv.length > 0) return String(hv[0]!['Hypervisor Hostname']);
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error('no hypervisor registered within 60 s');
}

describe('compute resources with the openstack CLI', () => {
  let cloud: Cloud;
  let env: NodeJS.ProcessEnv;
  let other: { env: NodeJS.ProcessEnv; projectId: string };
  const os = (...a: string[]) => openstack(env, ...a);

  before(async () => {
    cloud = await startCloud();
    env = cloud.env;
    other = await otherProject(env, 'cli-other');
  });
  after(async () => { await cloud?.stop(); });

  test('default flavors; create, show, set/unset properties, delete', async () => {
    const names = ((await os('flavor', 'list', '-f', 'json')) as Row[]).map((f) => f.Name);
    for (const n of ['m1.nano', 'm1.micro', 'm1.tiny', 'm1.small', 'm1.medium', 'm1.large', 'm1.xlarge']) assert.ok(names.includes(n), n);
    const tiny = (await os('flavor', 'show', 'm1.tiny', '-f', 'json')) as Row;
    assert.equal(tiny.id, '1');
    assert.equal(tiny.ram, 512);

    const f = (await os('flavor', 'create', '--ram', '256', '--vcpus', '2', '--disk', '3', '--ephemeral', '1', '--swap', '64',
      '--description', 'made by the CLI test', '--property', 'hw:cpu_policy=shared', 'cli-f1', '-f', 'json')) as Row;
    assert.equal(f.name, 'cli-f1');
    assert.equal(f.ram, 256);
    assert.equal(f.vcpus, 2);
    assert.equal(f.disk, 3);
    assert.equal(f['OS-FLV-EXT-DATA:ephemeral'] ?? f.ephemeral, 1);
    assert.equal(f.swap, 64);
    assert.match(await openstackFails(env, 'flavor', 'create', '--ram', '1', '--vcpus', '1', '--disk', '0', 'cli-f1'), /409|already exists/i);

    await os('flavor', 'set', '--property', 'quota:disk_read_iops_sec=100', 'cli-f1');
    let shown = (await os('flavor', 'show', 'cli-f1', '-f', 'json')) as Row;
    assert.deepEqual(shown.properties, { 'hw:cpu_policy': 'shared', 'quota:disk_read_iops_sec': '100' });
    assert.equal(shown.description, 'made by the CLI test');
    await os('flavor', 'unset', '--property', 'hw:cpu_policy', 'cli-f1');
    shown = (await os('flavor', 'show', 'cli-f1', '-f', 'json')) as Row;
    assert.deepEqual(shown.properties, { 'quota:disk_read_iops_sec': '100' });

    const long = (await os('flavor', 'list', '--long', '-f', 'json')) as Row[];
    assert.ok(long.some((r) => r.Name === 'cli-f1' && r.Swap === 64));

    // Members can read flavors but not manage them.
    assert.ok(((await openstack(other.env, 'flavor', 'list', '-f', 'json')) as Row[]).some((r) => r.Name === 'cli-f1'));
    assert.match(await openstackFails(other.env, 'flavor', 'delete', 'cli-f1'), /403|Forbidden|not authorized/i);

    await os('flavor', 'delete', 'cli-f1');
    assert.match(await openstackFails(env, 'flavor', 'show', 'cli-f1'), /No Flavor found|404|could not be found/i);
  });

  test('private flavors and project access (flavor set --project)', async () => {
    await os('flavor', 'create', '--private', '--ram', '128', '--vcpus', '1', '--disk', '0', 'cli-priv');
    assert.ok(!((await os('flavor', 'list', '-f', 'json')) as Row[]).some((r) => r.Name === 'cli-priv'));
    assert.ok(((await os('flavor', 'list', '--private', '-f', 'json')) as Row[]).some((r) => r.Name === 'cli-priv'));
    assert.ok(((await os('flavor', 'list', '--all', '-f', 'json')) as Row[]).some((r) => r.Name === 'cli-priv'));
    assert.match(await openstackFails(other.env, 'flavor', 'show', 'cli-priv'), /No Flavor found|404|could not be found/i);

    await os('flavor', 'set', '--project', 'cli-other', 'cli-priv');
    const shown = (await os('flavor', 'show', 'cli-priv', '-f', 'json')) as Row;
    assert.equal(shown['os-flavor-access:is_public'] ?? shown.is_public, false);
    assert.deepEqual(shown.access_project_ids, [other.projectId]);
    const seen = (await openstack(other.env, 'flavor', 'show', 'cli-priv', '-f', 'json')) as Row;
    assert.equal(seen.name, 'cli-priv');
    assert.match(await openstackFails(env, 'flavor', 'set', '--project', 'cli-other', 'm1.tiny'), /public|409|Conflict/i);

    await os('flavor', 'unset', '--project', 'cli-other', 'cli-priv');
    assert.match(await openstackFails(other.env, 'flavor', 'show', 'cli-priv'), /No Flavor found|404|could not be found/i);
    await os('flavor', 'delete', 'cli-priv');
  });

  test('keypairs: generated (private key that ssh-keygen accepts), imported ed25519, list, show, delete', async () => {
    const keyFile = join(work, 'gen.pem');
    const gen = (await os('keypair', 'create', '--private-key', keyFile, 'cli-gen', '-f', 'json')) as Row;
    assert.equal(gen.name, 'cli-gen');
    assert.match(String(gen.fingerprint), /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    assert.ok(existsSync(keyFile));
    chmodSync(keyFile, 0o600);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', keyFile]).toString().trim().split(' ').slice(0, 2).join(' ');
    const pub = String(await os('keypair', 'show', '--public-key', 'cli-gen')).trim().split(' ').slice(0, 2).join(' ');
    assert.equal(derived, pub);
    assert.match(pub, /^ssh-rsa /);

    const edFile = join(work, 'ed');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cli@test', '-f', edFile]);
    const fp = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', `${edFile}.pub`]).toString().split(' ')[1]!.replace(/^MD5:/, '');
    const imp = (await os('keypair', 'create', '--public-key', `${edFile}.pub`, 'cli-ed', '-f', 'json')) as Row;
    assert.equal(imp.fingerprint, fp);
    assert.equal(imp.type, 'ssh');

    const badFile = join(work, 'bad.pub');
    execFileSync('sh', ['-c', `echo 'ssh-ed25519 AAAAnotakey cli@test' > ${badFile}`]);
    assert.match(await openstackFails(env, 'keypair', 'create', '--public-key', badFile, 'cli-bad'), /Keypair data is invalid|400/);
    assert.match(await openstackFails(env, 'keypair', 'create', '--public-key', `${edFile}.pub`, 'cli-ed'), /already exists|409/);

    const list = (await os('keypair', 'list', '-f', 'json')) as Row[];
    assert.deepEqual(list.map((k) => k.Name).sort(), ['cli-ed', 'cli-gen']);
    assert.equal(list.find((k) => k.Name === 'cli-ed')!.Fingerprint, fp);
    const show = (await os('keypair', 'show', 'cli-ed', '-f', 'json')) as Row;
    assert.equal(show.fingerprint, fp);
    assert.equal(typeof show.user_id, 'string');
    assert.equal(String(await os('keypair', 'show', '--public-key', 'cli-ed')).trim(), readFileSync(`${edFile}.pub`, 'utf8').trim());

    // Keypairs belong to their user.
    assert.deepEqual(await openstack(other.env, 'keypair', 'list', '-f', 'json'), []);
    await os('keypair', 'delete', 'cli-gen', 'cli-ed');
    assert.deepEqual(await os('keypair', 'list', '-f', 'json'), []);
  });

  test('quota show, quota set --instances, limits show --absolute', async () => {
    let q = (await os('quota', 'show', 'admin', '-f', 'json')) as Row;
    assert.equal(q.instances, 10);
    assert.equal(q.cores, 20);
    assert.equal(q.ram, 51200);
    await os('quota', 'set', '--instances', '25', '--cores', '30', 'admin');
    q = (await os('quota', 'show', 'admin', '-f', 'json')) as Row;
    assert.equal(q.instances, 25);
    assert.equal(q.cores, 30);
    const lim = asMap((await os('limits', 'show', '--absolute', '-f', 'json')) as Row[]);
    assert.equal(lim.maxTotalInstances, 25);
    assert.equal(lim.maxTotalCores, 30);
    assert.equal(lim.totalInstancesUsed, 0);
    assert.ok('maxTotalKeypairs' in lim && 'maxServerGroups' in lim);
    // A member may not change quotas.
    assert.match(await openstackFails(other.env, 'quota', 'set', '--instances', '99', 'cli-other'), /403|Forbidden|not authorized/i);
  });

  test('hypervisors, compute services (disable/enable), availability zones', async () => {
    const host = await firstHypervisor(env);
    const hv = (await os('hypervisor', 'show', host, '-f', 'json')) as Row;
    assert.equal(hv.hypervisor_hostname, host);
    assert.equal(hv.state, 'up');
    assert.equal(hv.status, 'enabled');
    assert.equal(typeof hv.vcpus, 'number');

    const svcs = (await os('compute', 'service', 'list', '-f', 'json')) as Row[];
    const bins = svcs.map((s) => s.Binary);
    for (const b of ['nova-scheduler', 'nova-conductor', 'nova-compute']) assert.ok(bins.includes(b), b);
    assert.ok(svcs.every((s) => s.State === 'up'));

    await os('compute', 'service', 'set', '--disable', '--disable-reason', 'cli maintenance', host, 'nova-compute');
    let me = ((await os('compute', 'service', 'list', '--service', 'nova-compute', '--long', '-f', 'json')) as Row[]).find((s) => s.Host === host)!;
    assert.equal(me.Status, 'disabled');
    assert.equal(me['Disabled Reason'], 'cli maintenance');
    assert.equal(((await os('hypervisor', 'show', host, '-f', 'json')) as Row).status, 'disabled');
    await os('compute', 'service', 'set', '--enable', host, 'nova-compute');
    me = ((await os('compute', 'service', 'list', '--service', 'nova-compute', '-f', 'json')) as Row[]).find((s) => s.Host === host)!;
    assert.equal(me.Status, 'enabled');

    // The CLI lists zones from the detail call, so admins see the controller's 'internal' zone too (as with Nova).
    const zones = (await os('availability', 'zone', 'list', '--compute', '-f', 'json')) as Row[];
    assert.deepEqual(zones.map((z) => [z['Zone Name'], z['Zone Status']]), [['internal', 'available'], ['nova', 'available']]);
    const memberZones = (await openstack(other.env, 'availability', 'zone', 'list', '--compute', '-f', 'json')) as Row[];
    assert.deepEqual(memberZones.map((z) => [z['Zone Name'], z['Zone Status']]), [['nova', 'available']]);
    const long = (await os('availability', 'zone', 'list', '--compute', '--long', '-f', 'json')) as Row[];
    assert.ok(long.some((z) => z['Zone Name'] === 'internal' && z['Service Name'] === 'nova-scheduler'));
    assert.ok(long.some((z) => z['Zone Name'] === 'nova' && z['Host Name'] === host && z['Service Name'] === 'nova-compute'));
  });

  test('aggregates: create with a zone, add host, set property, show, remove host, delete', async () => {
    const host = await firstHypervisor(env);
    const agg = (await os('aggregate', 'create', '--zone', 'cli-az', 'cli-agg', '-f', 'json')) as Row;
    assert.equal(agg.name, 'cli-agg');
    assert.equal(agg.availability_zone, 'cli-az');
    assert.match(await openstackFails(env, 'aggregate', 'create', 'cli-agg'), /409|already exists/i);
    await os('aggregate', 'add', 'host', 'cli-agg', host);
    await os('aggregate', 'set', '--property', 'ssd=true', 'cli-agg');
    const shown = (await os('aggregate', 'show', 'cli-agg', '-f', 'json')) as Row;
    assert.deepEqual(shown.hosts, [host]);
    assert.equal((shown.properties as Row).ssd, 'true');
    assert.equal(shown.availability_zone, 'cli-az');
    const zones = ((await os('availability', 'zone', 'list', '--compute', '-f', 'json')) as Row[]).map((z) => z['Zone Name']);
    assert.deepEqual(zones, ['internal', 'cli-az']);
    const listed = (await os('aggregate', 'list', '--long', '-f', 'json')) as Row[];
    assert.ok(listed.some((a) => a.Name === 'cli-agg'));

    assert.match(await openstackFails(env, 'aggregate', 'delete', 'cli-agg'), /not empty|400/i);
    await os('aggregate', 'remove', 'host', 'cli-agg', host);
    assert.deepEqual(((await os('availability', 'zone', 'list', '--compute', '-f', 'json')) as Row[]).map((z) => z['Zone Name']), ['internal', 'nova']);
    await os('aggregate', 'unset', '--property', 'ssd', 'cli-agg');
    assert.deepEqual(((await os('aggregate', 'show', 'cli-agg', '-f', 'json')) as Row).properties, {});
    await os('aggregate', 'delete', 'cli-agg');
    assert.deepEqual(await os('aggregate', 'list', '-f', 'json'), []);
    assert.match(await openstackFails(other.env, 'aggregate', 'list'), /403|Forbidden|not authorized/i);
  });

  test('server groups: create --policy anti-affinity, list, show, delete; other projects do not see them', async () => {
    const g = (await os('server', 'group', 'create', '--policy', 'anti-affinity', 'cli-sg', '-f', 'json')) as Row;
    assert.equal(g.name, 'cli-sg');
    assert.match(String(g.policy ?? g.policies), /anti-affinity/);
    const list = (await os('server', 'group', 'list', '-f', 'json')) as Row[];
    assert.deepEqual(list.map((x) => x.Name), ['cli-sg']);
    const shown = (await os('server', 'group', 'show', 'cli-sg', '-f', 'json')) as Row;
    assert.equal(shown.id, g.id);
    assert.deepEqual(await openstack(other.env, 'server', 'group', 'list', '-f', 'json'), []);
    // Another project's group is 404 (the CLI of Debian's OSC 6.0 then trips over its own None; check the API itself).
    await openstackFails(other.env, 'server', 'group', 'show', String(g.id));
    const otherToken = String(await openstack(other.env, 'token', 'issue', '-f', 'value', '-c', 'id')).trim();
    const r = await api(cloud, 'GET', `/compute/v2.1/os-server-groups/${String(g.id)}`, { token: otherToken });
    assert.equal(r.status, 404);
    assert.equal(r.json.itemNotFound.code, 404);
    const all = (await os('server', 'group', 'list', '--all-projects', '-f', 'json')) as Row[];
    assert.ok(all.some((x) => x.Name === 'cli-sg'));
    await os('server', 'group', 'delete', 'cli-sg');
    assert.deepEqual(await os('server', 'group', 'list', '-f', 'json'), []);
  });
});
