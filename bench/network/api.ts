/**
 * The network API and data plane through the whole product (`gureum up` as root):
 *
 *   node --import tsx bench/network/api.ts [--ports 200] [--concurrency 8] [--leases 10]
 *
 * (1) Port create and delete rate through the Neutron API (HTTP, Keystone tokens, SQLite),
 *     sequentially and at a given concurrency, on a /22 tenant network.
 * (2) Port bound → DHCP lease served: a fake VM (a network namespace whose veth is named
 *     like the port's tap, with the port's MAC) waits on an unbound port; the port is then
 *     bound to this host (binding:host_id, as compute does after scheduling); the time from
 *     that PUT to busybox udhcpc holding the port's address covers the controller's nudge,
 *     the agent's pull and apply (plug, firewall, dnsmasq hosts reload) and the DHCP exchange.
 * Figures are printed, never asserted.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { deviceNames } from '../../src/bus/network.ts';
import { api, passwordToken, startCloud } from '../../tests/helpers/cloud.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { ports: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '8' }, leases: { type: 'string', default: '10' } } });
const N = Number(values.ports);
const C = Number(values.concurrency);
const LEASES = Number(values.leases);

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))]!; };
const fmt = (xs: number[]) => `median ${pct(xs, 0.5).toFixed(0)} ms, p90 ${pct(xs, 0.9).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)} ms`;

const cloud = await startCloud();
try {
  const projects = await api(cloud, 'GET', '/identity/v3/projects?name=admin', { token: await passwordToken(cloud, { name: 'admin', password: cloud.password }) });
  const token = await passwordToken(cloud, { name: 'admin', password: cloud.password }, (projects.json as { projects: { id: string }[] }).projects[0]!.id);
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await api(cloud, method, `/networking/v2.0${path}`, { token, body });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return r.json as Record<string, Record<string, unknown>>;
  };
  const net = (await call('POST', '/networks', { network: { name: 'bench' } })).network!;
  await call('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.77.0.0/22', ip_version: 4, name: 'bench' } });

  // (1) create/delete rates
  const once = async () => {
    const t0 = performance.now();
    const p = (await call('POST', '/ports', { port: { network_id: net.id } })).port!;
    const t1 = performance.now();
    await call('DELETE', `/ports/${String(p.id)}`);
    return [t1 - t0, performance.now() - t1] as const;
  };
  for (const conc of [1, C]) {
    const creates: number[] = [];
    const deletes: number[] = [];
    const started = performance.now();
    let left = N;
    await Promise.all(Array.from({ length: conc }, async () => {
      while (left-- > 0) { const [c, d] = await once(); creates.push(c); deletes.push(d); }
    }));
    const secs = (performance.now() - started) / 1000;
    console.log(`ports, concurrency ${conc}: ${(N / secs).toFixed(0)} create+delete pairs/s; create ${fmt(creates)}; delete ${fmt(deletes)}`);
  }

  // (2) port create -> DHCP lease
  // the agent registers its host with its first heartbeat (it may come after the port rounds)
  let hostName: string | undefined;
  for (const t0 = Date.now(); !hostName && Date.now() - t0 < 60_000; await new Promise((r) => setTimeout(r, 500))) {
    const host = (await api(cloud, 'GET', '/compute/v2.1/os-hypervisors', { token })).json as { hypervisors: { hypervisor_hostname: string }[] };
    hostName = host.hypervisors[0]?.hypervisor_hostname;
  }
  if (!hostName) throw new Error('no compute host registered within 60 s');
  const script = join(cloud.dir, 'udhcpc.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip"\nexit 0\n', { mode: 0o755 });
  const leases: number[] = [];
  const plugged: number[] = [];
  let failed = 0;
  for (let i = 0; i < LEASES; i++) {
    const ns = `gbench-vm${i}`;
    // The port exists first (Neutron picks its id), the fake VM's device is named after it,
    // then the port is bound to this host: from that PUT the host must plug it, let it
    // through its filters and serve it a lease — what a boot waits for.
    const port = (await call('POST', '/ports', { port: { network_id: net.id, device_owner: 'compute:nova', device_id: `bench-${i}` } })).port!;
    const want = ((port.fixed_ips as { ip_address: string }[])[0]!).ip_address;
    await run('ip', ['netns', 'add', ns]);
    try {
      await run('ip', ['link', 'add', deviceNames.tap(String(port.id)), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', String(port.mac_address), 'up']);
      const tap = deviceNames.tap(String(port.id));
      const t0 = performance.now();
      await call('PUT', `/ports/${String(port.id)}`, { port: { 'binding:host_id': hostName } });
      // udhcpc retries only once a second: start it once the host has plugged the device (on a bridge, up).
      for (;;) {
        const { stdout: j } = await run('ip', ['-json', 'link', 'show', 'dev', tap]);
        const l = (JSON.parse(j) as { master?: string; operstate?: string }[])[0];
        if (l?.master && l.operstate === 'UP') break;
        if (performance.now() - t0 > 30_000) throw new Error(`${tap} was not plugged within 30 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
      plugged.push(performance.now() - t0);
      const { stdout } = await run('ip', ['netns', 'exec', ns, 'busybox', 'udhcpc', '-f', '-q', '-n', '-t', '20', '-T', '1', '-A', '1', '-i', 'eth0', '-s', script], { timeout: 60_000 })
        .catch(() => ({ stdout: '' }));
      const got = /LEASE (\S+)/.exec(stdout)?.[1];
      if (got === want) leases.push(performance.now() - t0);
      else { failed++; console.log(`fake VM ${i}: no lease for ${want} (got ${got ?? 'nothing'})`); }
    } finally {
      await call('DELETE', `/ports/${String(port.id)}`).catch(() => undefined);
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  }
  console.log(`port bound to this host -> device plugged (bridge, filters) (${LEASES} fake VMs): ${fmt(plugged)}`);
  console.log(`port bound to this host -> DHCP lease served (${leases.length} of ${LEASES} fake VMs${failed ? `, ${failed} got none` : ''}): ${leases.length ? fmt(leases) : 'no samples'}`);
  await call('DELETE', `/networks/${String(net.id)}`);
} finally {
  await cloud.stop();
}
