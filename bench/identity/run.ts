/**
 * Identity benchmark: password token issue, token-to-token re-scope and token validation,
 * at concurrency 1 and 8, against Gureum and a real Keystone (Debian's, under uwsgi with
 * SQLite and Fernet tokens) started side by side on loopback in the same run.
 *
 *   node --import tsx bench/identity/run.ts [--only gureum] [--seconds N]
 *
 * Prints a table and the Gureum/Keystone ratios. The load generator shares the 2 cores
 * with both servers, so absolute figures are lower bounds for either side.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../../src/cli/nats.ts';
import { loadConfig } from '../../src/common/config.ts';
import { hashPassword } from '../../src/services/identity/password.ts';
import { startCloud, type Cloud } from '../../tests/helpers/cloud.ts';

/** keepAlive: uwsgi's plain http-socket (Keystone) closes connections, so it gets fresh ones. */
interface Target { name: string; base: string; password: string; projectId: string; agent: Agent }
interface Reply { status: number; token?: string; body: string }
interface Result { op: string; concurrency: number; target: string; rps: number; p50: number; p99: number; ok: number; errors: number }

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });
const fresh = new Agent({ keepAlive: false, maxSockets: 64 });

/** One request; a keep-alive socket the server closed meanwhile is retried once on a fresh one. */
async function call(agent: Agent, url: string, method: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  try {
    return await once(agent, url, method, headers, body);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ECONNRESET') throw err;
    return once(agent, url, method, headers, body);
  }
}

function once(agent: Agent, url: string, method: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: body ? { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, token: res.headers['x-subject-token'] as string | undefined, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.end(body);
  });
}

const passwordBody = (t: Target) => JSON.stringify({ auth: {
  identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: t.password } } },
  scope: { project: { id: t.projectId } },
} });
const tokenBody = (t: Target, token: string) => JSON.stringify({ auth: { identity: { methods: ['token'], token: { id: token } }, scope: { project: { id: t.projectId } } } });

async function issue(t: Target): Promise<string> {
  const r = await call(t.agent, `${t.base}/auth/tokens`, 'POST', {}, passwordBody(t));
  if (r.status !== 201 || !r.token) throw new Error(`${t.name}: password token failed: ${r.status} ${r.body.slice(0, 200)}`);
  return r.token;
}

/** Run `op` from `concurrency` loops for `seconds` (after a short warm-up); count expected statuses only. */
async function measure(name: string, target: Target, concurrency: number, seconds: number, expect: number, op: () => Promise<Reply>): Promise<Result> {
  const warmUntil = Date.now() + 500;
  while (Date.now() < warmUntil) await op().catch(() => undefined);
  const lat: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const r = await op();
        if (r.status === expect) lat.push(performance.now() - t0); else errors++;
      } catch { errors++; }
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : NaN);
  return { op: name, concurrency, target: target.name, rps: lat.length / elapsed, p50: q(0.5), p99: q(0.99), ok: lat.length, errors };
}

async function benchTarget(t: Target, seconds: number): Promise<Result[]> {
  const out: Result[] = [];
  const adminToken = await issue(t);
  const subject = await issue(t);
  for (const c of [1, 8]) {
    out.push(await measure('password issue', t, c, seconds * 2, 201, () => call(t.agent, `${t.base}/auth/tokens`, 'POST', {}, passwordBody(t))));
    out.push(await measure('re-scope (token)', t, c, seconds, 201, () => call(t.agent, `${t.base}/auth/tokens`, 'POST', {}, tokenBody(t, subject))));
    out.push(await measure('validate', t, c, seconds, 200, () => call(t.agent, `${t.base}/auth/tokens`, 'GET', { 'x-auth-token': adminToken, 'x-subject-token': subject })));
    for (const r of out.slice(-3)) console.error(`  ${r.target} ${r.op} c=${r.concurrency}: ${r.rps.toFixed(1)}/s`);
  }
  return out;
}

async function projectId(base: string, token: string): Promise<string> {
  const r = await call(fresh, `${base}/auth/projects`, 'GET', { 'x-auth-token': token });
  const p = (JSON.parse(r.body) as { projects: { id: string; name: string }[] }).projects.find((x) => x.name === 'admin');
  if (!p) throw new Error(`no admin project at ${base}`);
  return p.id;
}

async function unscoped(base: string, password: string): Promise<string> {
  const r = await call(fresh, `${base}/auth/tokens`, 'POST', {}, JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: 'unscoped' } }));
  if (!r.token) throw new Error(`unscoped token at ${base}: ${r.status} ${r.body.slice(0, 200)}`);
  return r.token;
}

function hashCosts(rounds: number): Promise<{ scryptMs: number; bcryptMs: number | null }> {
  return (async () => {
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) await hashPassword('benchmark-password', rounds);
    const scryptMs = (performance.now() - t0) / 3;
    let bcryptMs: number | null = null;
    try {
      const out = execFileSync('/usr/bin/python3', ['-c', 'import bcrypt,time\nt=time.perf_counter()\nfor _ in range(3): bcrypt.hashpw(b"benchmark-password", bcrypt.gensalt(12))\nprint((time.perf_counter()-t)/3*1000)']).toString();
      bcryptMs = Number(out.trim());
    } catch { bcryptMs = null; }
    return { scryptMs, bcryptMs };
  })();
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, seconds: { type: 'string', default: '5' } } });
  const seconds = Number(values.seconds);
  const work = mkdtempSync(join(tmpdir(), 'bench-identity-'));
  let cloud: Cloud | undefined;
  let keystoneDir: string | undefined;
  const script = new URL('./keystone.sh', import.meta.url).pathname;
  const stopAll = async () => {
    if (cloud) await cloud.stop();
    if (keystoneDir) execFileSync(script, ['stop', keystoneDir]);
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const targets: Target[] = [];
    cloud = await startCloud({ dir: join(work, 'gureum') });
    const gBase = `${cloud.url}/identity/v3`;
    targets.push({ name: 'gureum', base: gBase, password: cloud.password, agent: keepAlive, projectId: await projectId(gBase, await unscoped(gBase, cloud.password)) });
    if (values.only !== 'gureum') {
      keystoneDir = join(work, 'keystone');
      execFileSync('mkdir', ['-p', keystoneDir]);
      const port = await freePort();
      execFileSync(script, ['start', keystoneDir, String(port)], { stdio: 'inherit', env: { ...process.env, ADMIN_PASSWORD: 'keystone-anchor' } });
      const kBase = `http://127.0.0.1:${port}/v3`;
      targets.push({ name: 'keystone', base: kBase, password: 'keystone-anchor', agent: fresh, projectId: await projectId(kBase, await unscoped(kBase, 'keystone-anchor')) });
    }
    const results: Result[] = [];
    for (const t of targets) {
      console.error(`benchmarking ${t.name} (${t.base})`);
      results.push(...(await benchTarget(t, seconds)));
    }

    console.log('\nIdentity benchmark (loopback, 2 cores shared by client and servers)\n');
    console.log(`${'operation'.padEnd(18)} ${'conc'.padStart(4)} ${'target'.padEnd(9)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'ok'.padStart(7)} ${'errors'.padStart(6)}`);
    for (const r of results) {
      console.log(`${r.op.padEnd(18)} ${String(r.concurrency).padStart(4)} ${r.target.padEnd(9)} ${r.rps.toFixed(1).padStart(9)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.ok).padStart(7)} ${String(r.errors).padStart(6)}`);
    }
    if (targets.length === 2) {
      const goals: Record<string, number> = { 'password issue': 1, 're-scope (token)': 50, validate: 200 };
      console.log('\nGureum / Keystone');
      for (const op of Object.keys(goals)) {
        for (const c of [1, 8]) {
          const g = results.find((r) => r.target === 'gureum' && r.op === op && r.concurrency === c)!;
          const k = results.find((r) => r.target === 'keystone' && r.op === op && r.concurrency === c)!;
          const ratio = g.rps / k.rps;
          console.log(`${op.padEnd(18)} c=${c}: ${ratio.toFixed(1)}x  (target >= ${goals[op]}x: ${ratio >= goals[op]! ? 'met' : 'NOT met'})`);
        }
      }
    }
    const rounds = loadConfig({ flags: { dataDir: work } }).passwordHashRounds;
    const cost = await hashCosts(rounds);
    console.log(`\nPassword hash cost, one hash on this machine: Gureum scrypt N=2^${rounds},r=12,p=1: ${cost.scryptMs.toFixed(0)} ms; ` +
      `Keystone bcrypt cost 12: ${cost.bcryptMs === null ? 'n/a (python3-bcrypt missing)' : `${cost.bcryptMs.toFixed(0)} ms`}`);
  } finally {
    await stopAll();
  }
}

await main();
