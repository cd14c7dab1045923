/**
 * kill -9 the controller in the middle of a burst of user creations, restart it, and
 * check that every acknowledged user exists and that nothing is half-written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { api, passwordToken, startCloud } from './helpers/cloud.ts';

test('crash during a burst of user creations loses no acknowledged user', async () => {
  let cloud = await startCloud();
  const token = await passwordToken(cloud, { name: 'admin', password: cloud.password }, undefined);
  const scoped = await api(cloud, 'POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['token'], token: { id: token } }, scope: { system: { all: true } } } } });
  const admin = scoped.headers.get('x-subject-token')!;
  const acked = new Set<string>();
  let stop = false;
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const name = `burst-${w}-${i}`;
      try {
        const r = await api(cloud, 'POST', '/identity/v3/users', { token: admin, body: { user: { name, password: `pw-${name}`, description: `user ${i} of worker ${w}` } } });
        if (r.status === 201) acked.add(name);
      } catch {
        return; // connection cut by the kill
      }
    }
  };
  const workers = Array.from({ length: 8 }, (_, w) => worker(w));
  // Kill mid-burst: once 20 creations are acknowledged (each hashes a password, ~0.2 s).
  for (let waited = 0; acked.size < 20 && waited < 60_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  await cloud.kill9();
  stop = true;
  await Promise.all(workers);
  assert.ok(acked.size >= 20, `the burst created users before the kill (${acked.size})`);

  // The database file is consistent on its own, before any restart.
  const db = new SQLite(join(cloud.dir, 'data', 'gureum.db'), { readonly: true });
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  db.close();

  cloud = await startCloud({ dir: cloud.dir, port: cloud.port });
  try {
    const admin2 = await passwordToken(cloud, { name: 'admin', password: cloud.password }, undefined);
    const scoped2 = await api(cloud, 'POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['token'], token: { id: admin2 } }, scope: { system: { all: true } } } } });
    const list = await api(cloud, 'GET', '/identity/v3/users', { token: scoped2.headers.get('x-subject-token')! });
    const users = (list.json.users as { name: string; description: string; enabled: boolean }[]).filter((u) => u.name.startsWith('burst-'));
    const names = new Set(users.map((u) => u.name));
    for (const n of acked) assert.ok(names.has(n), `acknowledged user ${n} exists after the crash`);
    assert.ok(names.size - acked.size <= 8, 'at most the in-flight requests were committed without an answer');
    for (const u of users) {
      assert.match(u.description, /^user \d+ of worker \d+$/, 'every row is whole');
      assert.equal(u.enabled, true);
    }
    // Users written just before the kill can log in with their passwords.
    const last = [...names].slice(-3);
    for (const n of last) await passwordToken(cloud, { name: n, password: `pw-${n}` });
  } finally {
    await cloud.stop();
  }
});
