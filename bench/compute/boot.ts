/**
 * Boot latency and concurrent boots, through the whole product against the physical limit.
 *
 *   node --import tsx bench/compute/boot.ts [--runs 5] [--concurrent 20]
 *
 * (1) From `POST /servers` returning 202 to the guest's ready marker on its serial
 *     console, and to its SSH server answering (banner read on the forwarded port),
 *     next to the same guest started by hand with the best QEMU command line (microvm,
 *     PVH vmlinux, virtio-rng, tuned kernel command line) — the limit under this machine's
 *     accelerator.
 * (4) N VMs requested at once (one POST each, concurrently): time until every one is
 *     ACTIVE, shows its marker and answers SSH.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../../src/cli/nats.ts';
import { api, openstack, passwordToken, startCloud, type Cloud } from '../../tests/helpers/cloud.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, concurrent: { type: 'string', default: '20' } } });
const RUNS = Number(values.runs);
const CONCURRENT = Number(values.concurrent);
const ROOT = new URL('../..', import.meta.url).pathname;
const GUEST = join(ROOT, '.cache', 'guest');
const MARKER = /GUREUM-GUEST-READY \S+ \S+/;

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]!; };
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when an SSH server on 127.0.0.1:port sends its banner. */
async function sshBanner(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      const t = setTimeout(() => { s.destroy(); resolve(false); }, 1000);
      s.once('data', (d) => { clearTimeout(t); s.destroy(); resolve(d.toString().startsWith('SSH-')); });
      s.once('error', () => { clearTimeout(t); resolve(false); });
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`no SSH banner on port ${port}`);
}

async function waitFile(path: string, re: RegExp, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (existsSync(path) && re.test(readFileSync(path, 'utf8'))) return;
    await sleep(10);
  }
  throw new Error(`no ${re} in ${path}`);
}

function hostTscKhz(): number {
  const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) * 1000);
}

/** The same guest by hand: QEMU with the best command line, no cloud around it. */
async function byHand(): Promise<{ marker: number; ssh: number }> {
  const port = await freePort();
  const work = mkdtempSync(join(tmpdir(), 'bench-boot-'));
  const t0 = Date.now();
  const q = spawn('qemu-system-x86_64', [
    '-M', 'microvm,pit=on,pic=on,rtc=on', '-accel', 'tcg', '-cpu', 'max', '-m', '512', '-smp', '1', '-nodefaults', '-no-user-config',
    '-display', 'none', '-serial', `file:${join(work, 'console.log')}`, '-kernel', join(GUEST, 'vmlinux'), '-initrd', join(GUEST, 'initramfs.cpio'),
    '-append', `console=ttyS0 quiet cryptomgr.notests tsc_early_khz=${hostTscKhz()}`, '-device', 'virtio-rng-device',
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', 'virtio-net-device,netdev=n0',
  ], { stdio: 'ignore' });
  try {
    await waitFile(join(work, 'console.log'), MARKER, t0 + 60_000);
    const marker = Date.now() - t0;
    await sshBanner(port, t0 + 60_000);
    return { marker, ssh: Date.now() - t0 };
  } finally {
    q.kill('SIGKILL');
  }
}

interface Ctx { cloud: Cloud; token: string; image: string }

async function bootOne(c: Ctx, name: string): Promise<{ active: number; marker: number; ssh: number; id: string }> {
  const t0 = Date.now();
  const r = await api(c.cloud, 'POST', '/compute/v2.1/servers', { token: c.token, body: { server: { name, imageRef: c.image, flavorRef: '1' } } });
  if (r.status !== 202) throw new Error(`create: ${r.status} ${r.text}`);
  const id = r.json.server.id as string;
  const t1 = Date.now(); // the API returned
  const deadline = t1 + 300_000;
  let active = 0;
  let port = 0;
  while (Date.now() < deadline) {
    const s = (await api(c.cloud, 'GET', `/compute/v2.1/servers/${id}`, { token: c.token })).json.server as Record<string, unknown>;
    if (s.status === 'ERROR') throw new Error(`server ${name} failed: ${JSON.stringify(s.fault)}`);
    if (s.status === 'ACTIVE') { active = Date.now() - t1; break; }
    await sleep(20);
  }
  const consoleLog = join(c.cloud.dir, 'data', 'agent', 'instances', id, 'console.log');
  await waitFile(consoleLog, MARKER, deadline);
  const marker = Date.now() - t1;
  const spec = JSON.parse(readFileSync(join(c.cloud.dir, 'data', 'agent', 'instances', id, 'spec.json'), 'utf8')) as { nics: { sshHostPort?: number }[] };
  port = Number(spec.nics[0]?.sshHostPort);
  await sshBanner(port, deadline);
  const ssh = Date.now() - t1;
  void t0;
  return { active, marker, ssh, id };
}

async function main(): Promise<void> {
  // 20 one-vCPU guests on a 2-core host need more than Nova's default 4:1 CPU overcommit.
  const dir = mkdtempSync(join(tmpdir(), 'bench-cloud-'));
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'data', 'gureum.yaml'), 'scheduler:\n  cpu_allocation_ratio: 16\n');
  const cloud = await startCloud({ dir });
  try {
    const admin = (await openstack(cloud.env, 'project', 'show', 'admin', '-f', 'json')) as { id: string };
    const token = await passwordToken(cloud, { name: 'admin', password: cloud.password }, admin.id);
    const image = ((await openstack(cloud.env, 'image', 'show', 'gureum-tiny', '-f', 'json')) as { id: string }).id;
    await openstack(cloud.env, 'quota', 'set', '--instances', '100', '--cores', '200', '--ram', '200000', 'admin');
    const c: Ctx = { cloud, token, image };
    // Warm the agent's image cache so every measured boot starts from a cached base, like any boot after the first.
    const warm = await bootOne(c, 'warm-up');
    await api(cloud, 'DELETE', `/compute/v2.1/servers/${warm.id}`, { token });

    console.log(`(1) boot latency, ${RUNS} runs each, TCG, 1 vCPU, 512 MiB, m1.tiny`);
    const hand: { marker: number; ssh: number }[] = [];
    const ours: { active: number; marker: number; ssh: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      hand.push(await byHand());
      const b = await bootOne(c, `bench-${i}`);
      ours.push(b);
      await api(cloud, 'DELETE', `/compute/v2.1/servers/${b.id}`, { token });
      await sleep(500);
    }
    const hm = median(hand.map((x) => x.marker)); const hs = median(hand.map((x) => x.ssh));
    const om = median(ours.map((x) => x.marker)); const os = median(ours.map((x) => x.ssh));
    console.log(`  by hand (QEMU started directly):           ready marker ${fmt(hm)}   SSH banner ${fmt(hs)}`);
    console.log(`  gureum (from POST /servers returning 202):  ACTIVE ${fmt(median(ours.map((x) => x.active)))}   ready marker ${fmt(om)}   SSH banner ${fmt(os)}`);
    console.log(`  overhead over the limit (median):           marker +${om - hm} ms   SSH +${os - hs} ms`);

    console.log(`(4) ${CONCURRENT} VMs requested at once`);
    const t0 = Date.now();
    const all = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => bootOne(c, `many-${i}`)));
    const total = Date.now() - t0;
    console.log(`  all ${all.length} ACTIVE by ${fmt(Math.max(...all.map((x) => x.active)))}, all ready markers by ${fmt(Math.max(...all.map((x) => x.marker)))}, all answering SSH by ${fmt(Math.max(...all.map((x) => x.ssh)))}; total ${fmt(total)}`);
    await Promise.all(all.map((b) => api(cloud, 'DELETE', `/compute/v2.1/servers/${b.id}`, { token })));
    await sleep(3000);
  } finally {
    await cloud.stop();
  }
}

await main();
