/**
 * The stock openstack CLI (Debian's python3-openstackclient) against `gureum up`,
 * through every identity verb of the foundation issue, on SQLite and on PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, openstack, openstackFails, startCloud, type Cloud } from './helpers/cloud.ts';
import { startPostgres, type Postgres } from './helpers/postgres.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

type Row = Record<string, unknown>;

function suite(dbName: 'sqlite' | 'postgresql'): void {
  describe(`identity with the openstack CLI on ${dbName}`, () => {
    let cloud: Cloud;
    let pg: Postgres | undefined;
    let env: NodeJS.ProcessEnv;
    const os = (...a: string[]) => openstack(env, ...a);

    before(async () => {
      if (dbName === 'postgresql') pg = await startPostgres();
      cloud = await startCloud({ database: pg?.url });
      env = cloud.env;
    });
    after(async () => {
      await cloud?.stop();
      pg?.stop();
    });

    test('token issue, catalog, endpoints, regions, services', async () => {
      const tok = (await os('token', 'issue', '-f', 'json')) as Row;
      assert.match(String(tok.id), /^gAAAAA/);
      assert.equal(typeof tok.project_id, 'string');
      const catalog = (await os('catalog', 'list', '-f', 'json')) as Row[];
      assert.deepEqual(catalog.map((c) => c.Type).sort(), ['block-storage', 'compute', 'identity', 'image', 'network', 'volumev3']);
      const endpoints = (await os('endpoint', 'list', '--service', 'identity', '-f', 'json')) as Row[];
      assert.deepEqual(endpoints.map((e) => e.Interface).sort(), ['admin', 'internal', 'public']);
      assert.ok(endpoints.every((e) => e.URL === cloud.authUrl));
      assert.deepEqual(((await os('region', 'list', '-f', 'json')) as Row[]).map((r) => r.Region), ['RegionOne']);
      assert.deepEqual(((await os('service', 'list', '-f', 'json')) as Row[]).map((s) => s.Type).sort(), ['block-storage', 'compute', 'identity', 'image', 'network', 'volumev3']);
    });

    test('domains: create, list, show, set, delete', async () => {
      const d = (await os('domain', 'create', '--description', 'first', 'dom-a', '-f', 'json')) as Row;
      assert.equal(d.name, 'dom-a');
      assert.ok(((await os('domain', 'list', '-f', 'json')) as Row[]).some((x) => x.Name === 'dom-a'));
      await os('domain', 'set', '--description', 'changed', 'dom-a');
      assert.equal(((await os('domain', 'show', 'dom-a', '-f', 'json')) as Row).description, 'changed');
      assert.match(await openstackFails(env, 'domain', 'create', 'dom-a'), /409|Conflict|Duplicate/i);
      assert.match(await openstackFails(env, 'domain', 'delete', 'dom-a'), /disable/i, 'an enabled domain is not deleted');
      await os('domain', 'set', '--disable', 'dom-a');
      await os('domain', 'delete', 'dom-a');
      assert.ok(!((await os('domain', 'list', '-f', 'json')) as Row[]).some((x) => x.Name === 'dom-a'));
    });

    test('projects, users, groups, roles and assignments end to end', async () => {
      await os('domain', 'create', 'acme');
      const p = (await os('project', 'create', '--domain', 'acme', '--description', 'web', 'web', '-f', 'json')) as Row;
      assert.equal(p.name, 'web');
      await os('project', 'set', '--domain', 'acme', '--description', 'web shop', '--property', 'cost_center=42', 'web');
      const shown = (await os('project', 'show', '--domain', 'acme', 'web', '-f', 'json')) as Row;
      assert.equal(shown.description, 'web shop');
      assert.equal(shown.cost_center, '42');
      assert.ok(((await os('project', 'list', '--domain', 'acme', '-f', 'json')) as Row[]).some((x) => x.Name === 'web'));

      const u = (await os('user', 'create', '--domain', 'acme', '--password', 'pw-one', '--email', 'ann@example.org', 'ann', '-f', 'json')) as Row;
      assert.equal(u.email, 'ann@example.org');
      assert.equal(u.password, undefined, 'no password in the response');
      await os('user', 'set', '--domain', 'acme', '--description', 'Ann', 'ann');
      assert.equal(((await os('user', 'show', '--domain', 'acme', 'ann', '-f', 'json')) as Row).description, 'Ann');
      assert.ok(((await os('user', 'list', '--domain', 'acme', '-f', 'json')) as Row[]).some((x) => x.Name === 'ann'));

      await os('group', 'create', '--domain', 'acme', 'devs');
      await os('group', 'add', 'user', '--group-domain', 'acme', '--user-domain', 'acme', 'devs', 'ann');
      assert.ok(((await os('group', 'list', '--domain', 'acme', '-f', 'json')) as Row[]).some((x) => x.Name === 'devs'));
      assert.ok(((await os('group', 'list', '--user', 'ann', '--user-domain', 'acme', '-f', 'json')) as Row[]).some((x) => x.Name === 'devs'));

      await os('role', 'create', 'auditor');
      assert.ok(((await os('role', 'list', '-f', 'json')) as Row[]).some((x) => x.Name === 'auditor'));
      await os('role', 'add', '--user', 'ann', '--user-domain', 'acme', '--project', 'web', '--project-domain', 'acme', 'member');
      await os('role', 'add', '--group', 'devs', '--group-domain', 'acme', '--project', 'web', '--project-domain', 'acme', 'auditor');
      const named = (await os('role', 'assignment', 'list', '--names', '-f', 'json')) as Row[];
      assert.ok(named.some((a) => a.Role === 'member' && a.User === 'ann@acme' && a.Project === 'web@acme'));
      assert.ok(named.some((a) => a.Role === 'auditor' && a.Group === 'devs@acme' && a.Project === 'web@acme'));
      const effective = (await os('role', 'assignment', 'list', '--names', '--effective', '--user', 'ann', '--user-domain', 'acme', '-f', 'json')) as Row[];
      assert.deepEqual(effective.map((a) => a.Role).sort(), ['auditor', 'member', 'reader'], 'group roles and implied roles count');

      // Ann authenticates, sees her roles in the token, and cannot act as admin.
      const annEnv = { ...env, OS_USERNAME: 'ann', OS_PASSWORD: 'pw-one', OS_USER_DOMAIN_NAME: 'acme', OS_PROJECT_NAME: 'web', OS_PROJECT_DOMAIN_NAME: 'acme' };
      const annTok = (await openstack(annEnv, 'token', 'issue', '-f', 'json')) as Row;
      assert.equal(annTok.project_id, p.id);
      assert.match(await openstackFails(annEnv, 'user', 'list'), /403|not authorized/i);
      assert.match(await openstackFails(annEnv, 'project', 'create', 'evil'), /403|not authorized/i);

      // Password change by the user: the old password stops working, the new one works.
      await openstack(annEnv, 'user', 'password', 'set', '--password', 'pw-two', '--original-password', 'pw-one');
      assert.match(await openstackFails(annEnv, 'token', 'issue'), /401|requires authentication/i);
      const ann2 = { ...annEnv, OS_PASSWORD: 'pw-two' };
      assert.equal(((await openstack(ann2, 'token', 'issue', '-f', 'json')) as Row).project_id, p.id);

      // Application credential: create, authenticate with it, list, delete.
      const ac = (await openstack(ann2, 'application', 'credential', 'create', 'ci', '-f', 'json')) as Row;
      assert.equal(typeof ac.secret, 'string');
      const acEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(ann2).filter(([k]) => !/^OS_(USERNAME|PASSWORD|PROJECT_NAME|USER_DOMAIN_NAME|PROJECT_DOMAIN_NAME)$/.test(k)));
      Object.assign(acEnv, { OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: String(ac.id), OS_APPLICATION_CREDENTIAL_SECRET: String(ac.secret) });
      const acTok = (await openstack(acEnv, 'token', 'issue', '-f', 'json')) as Row;
      assert.equal(acTok.project_id, p.id);
      assert.ok(((await openstack(ann2, 'application', 'credential', 'list', '-f', 'json')) as Row[]).some((x) => x.Name === 'ci'));
      await openstack(ann2, 'application', 'credential', 'delete', 'ci');
      assert.match(await openstackFails(acEnv, 'token', 'issue'), /401|requires authentication/i);

      // Token revoke: the revoked token no longer works.
      const t = (await openstack(ann2, 'token', 'issue', '-f', 'json')) as Row;
      assert.equal((await api(cloud, 'GET', '/identity/v3/auth/catalog', { token: String(t.id) })).status, 200);
      await os('token', 'revoke', String(t.id));
      assert.equal((await api(cloud, 'GET', '/identity/v3/auth/catalog', { token: String(t.id) })).status, 401);

      // EC2 credentials for S3.
      const ec2 = (await os('ec2', 'credentials', 'create', '--project', 'admin', '-f', 'json')) as Row;
      assert.match(String(ec2.access), /^[0-9a-f]{32}$/);
      assert.ok(((await os('ec2', 'credentials', 'list', '-f', 'json')) as Row[]).some((c) => c.Access === ec2.access));

      // Removing the role ends the project access.
      await os('role', 'remove', '--user', 'ann', '--user-domain', 'acme', '--project', 'web', '--project-domain', 'acme', 'member');
      await os('role', 'remove', '--group', 'devs', '--group-domain', 'acme', '--project', 'web', '--project-domain', 'acme', 'auditor');
      assert.match(await openstackFails(ann2, 'token', 'issue'), /401|no access/i);

      // Clean up in the order a user would.
      await os('user', 'delete', '--domain', 'acme', 'ann');
      await os('group', 'delete', '--domain', 'acme', 'devs');
      await os('project', 'delete', '--domain', 'acme', 'web');
      await os('role', 'delete', 'auditor');
      await os('domain', 'set', '--disable', 'acme');
      await os('domain', 'delete', 'acme');
      assert.deepEqual(((await os('domain', 'list', '-f', 'json')) as Row[]).map((d) => d.Name), ['Default']);
    });

    test('a second start re-uses the data and the admin password', async () => {
      await os('project', 'create', 'survivor');
      const natsPid = Number(readFileSync(join(cloud.dir, 'data', 'run', 'nats.pid'), 'utf8'));
      assert.ok(alive(natsPid), 'the supervised nats-server runs');
      assert.equal(await cloud.stop(), 0, 'Ctrl-C exits cleanly');
      assert.ok(!alive(natsPid), 'and stops its nats-server child');
      cloud = await startCloud({ dir: cloud.dir, database: pg?.url, port: cloud.port });
      assert.ok(!cloud.output().includes('shown once'), 'the password is not shown again');
      assert.equal(cloud.env.OS_PASSWORD, env.OS_PASSWORD);
      assert.ok(((await os('project', 'list', '-f', 'json')) as Row[]).some((x) => x.Name === 'survivor'));
    });
  });
}

suite('sqlite');
suite('postgresql');
