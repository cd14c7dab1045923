/**
 * TCP throughput between two real guests on one tenant network (`gureum up` as root):
 *
 *   node --import tsx bench/network/vm.ts [--megabytes 64] [--rounds 3]
 *
 * Two `gureum-tiny` servers on a VXLAN tenant network, both plugged through the agent's
 * tap + bridge + nftables security groups (a rule lets TCP 5001 in). Guest B listens
 * with busybox `nc`, guest A streams `--megabytes` of zeros to it; the time is taken
 * inside guest A (/proc/uptime, 10 ms resolution) from before the stream to the end of
 * the stream. Next to it, in the same run: iperf3 between two network namespaces on a
 * plain Linux bridge, the most the host's own bridge path can carry (the limit). Under
 * TCG the guests' CPUs (emulated virtio-net, the guest's TCP stack) bound the figure,
 * not the data plane. Figures are printed, never asserted.
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startCloud } from '../../tests/helpers/cloud.ts';
import { computeTools, guestSsh, until } from '../../tests/helpers/compute.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { megabytes: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' } } });
const MB = Number(values.megabytes);
const ROUNDS = Number(values.rounds);

const sh = (cmd: string) => run('sh', ['-c', cmd], { timeout: 120_000 });

/** iperf3 between two namespaces joined by a Linux bridge (veth each side): the host-side limit. */
async function bridgeLimit(): Promise<number> {
  const id = `bb${process.pid % 100000}`;
  const [a, b, br] = [`${id}a`, `${id}b`, `${id}br`];
  try {
    await sh(`ip netns add ${a} && ip netns add ${b} && ip netns add ${br}`);
    await sh(`ip -n ${br} link add br0 type bridge && ip -n ${br} link set br0 up`);
    for (const [ns, ip] of [[a, '10.99.0.1'], [b, '10.99.0.2']] as const) {
      await sh(`ip -n ${br} link add p-${ns} type veth peer name eth0 netns ${ns} && ip -n ${br} link set p-${ns} master br0 up`
        + ` && ip -n ${ns} addr add ${ip}/24 dev eth0 && ip -n ${ns} link set eth0 up && ip -n ${ns} link set lo up`);
    }
    const server = spawn('ip', ['netns', 'exec', b, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const { stdout } = await run('ip', ['netns', 'exec', a, 'iperf3', '-c', '10.99.0.2', '-t', '3', '-J'], { timeout: 60_000, maxBuffer: 16 << 20 });
    server.kill();
    return (JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  } finally {
    for (const ns of [a, b, br]) await sh(`ip netns del ${ns}`).catch(() => undefined);
  }
}

const cloud = await startCloud();
const t = computeTools(cloud);
const ids: string[] = [];
try {
  const key = join(cloud.dir, 'key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await t.os('keypair', 'create', '--public-key', `${key}.pub`, 'bench');
  const net = await t.json<{ id: string }>('network', 'create', 'benchnet');
  await t.os('subnet', 'create', '--network', 'benchnet', '--subnet-range', '10.88.0.0/24', 'benchsub');
  const sg = await t.json<{ id: string }>('security', 'group', 'create', 'bench');
  for (const port of ['22', '5001']) await t.os('security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', port, sg.id);
  for (const name of ['bench-a', 'bench-b']) {
    ids.push((await t.json<{ id: string }>('server', 'create', '--image', 'gureum-tiny', '--flavor', 'm1.nano', '--key-name', 'bench',
      '--network', 'benchnet', '--security-group', 'bench', name)).id);
  }
  const ips: string[] = [];
  for (const id of ids) {
    const s = await t.waitStatus(id, 'ACTIVE', 180_000);
    ips.push((s.addresses as Record<string, string[]>).benchnet![0]!);
    await t.consoleMatch(id, /GUREUM-GUEST-READY/, 180_000);
  }
  const inGuest = async (ip: string, cmd: string, timeoutMs = 300_000) => {
    const r = await guestSsh(key, ip, cmd, { ns: `qdhcp-${net.id}`, timeoutMs });
    if (!r.ok) throw new Error(`ssh ${ip} ${cmd}: ${r.out}`);
    return r.out;
  };
  const [ipA, ipB] = ips as [string, string];
  for (const ip of ips) await until(`SSH into ${ip}`, async () => (await inGuest(ip, 'true', 30_000).then(() => true, () => false)), 180_000, 1000);

  const rates: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // B: a one-shot listener in the background that counts what it got (busybox nc ends
    // the connection when its own stdin ends, hence the sleep); A: streams MB
    // megabytes and time it from inside; then B's count must be all of it.
    // (setsid: the listener outlives the SSH session that starts it; wc writes once, at the end)
    await inGuest(ipB, `rm -f /tmp/got; setsid sh -c 'sleep 300 | nc -l -p 5001 | wc -c > /tmp/got' </dev/null >/dev/null 2>&1 &`);
    await new Promise((r) => setTimeout(r, 500));
    const out = await inGuest(ipA, `t0=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=64k count=${MB * 16} 2>/dev/null | nc ${ipB} 5001; t1=$(cut -d' ' -f1 /proc/uptime); echo "$t0 $t1"`);
    const got = await until('the listener to finish', async () => { const r = (await inGuest(ipB, 'cat /tmp/got 2>/dev/null || true', 30_000)).trim(); return r || undefined; }, 60_000, 500);
    if (Number(got) !== MB * 1024 * 1024) throw new Error(`the listener got ${got} bytes, not ${MB * 1024 * 1024}`);
    const [t0, t1] = out.trim().split(/\s+/).map(Number) as [number, number];
    const bps = (MB * 1024 * 1024 * 8) / (t1 - t0);
    rates.push(bps);
    console.log(`round ${i + 1}: ${MB} MiB in ${(t1 - t0).toFixed(2)} s = ${(bps / 1e6).toFixed(0)} Mbit/s`);
  }
  const limit = await bridgeLimit();
  const best = Math.max(...rates);
  const { stdout: accel } = await run('sh', ['-c', `grep -h '"accel"' ${cloud.dir}/data/instances/*/launch.json 2>/dev/null | head -1 || true`]).catch(() => ({ stdout: '' }));
  console.log(`\nVM ↔ VM TCP (busybox nc, ${MB} MiB, guests ${/kvm/.test(accel) ? 'KVM' : 'TCG'}): best ${(best / 1e6).toFixed(0)} Mbit/s, median ${(rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]! / 1e6).toFixed(0)} Mbit/s`);
  console.log(`namespace ↔ namespace over a Linux bridge (iperf3, the limit): ${(limit / 1e9).toFixed(1)} Gbit/s`);
} finally {
  for (const id of ids) await t.os('server', 'delete', '--wait', id).catch(() => undefined);
  await t.os('network', 'delete', 'benchnet').catch(() => undefined);
  await cloud.stop();
}
