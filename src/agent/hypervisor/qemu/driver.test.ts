/**
 * QemuDriver with real QEMU (TCG) and the tiny guest: one instance taken through its
 * whole life (spawn, pause, snapshot, agent restart, suspend/resume, reboots, guest
 * power-off, crash, power on/off, remove). Steps run in order and share the guest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../../common/logger.ts';
import { freePort } from '../../../cli/nats.ts';
import { buildConfigDrive } from '../../storage/config-drive.ts';
import { createEphemeral, createRootOverlay, createSwap, imageInfo } from '../../storage/disks.ts';
import type { InstanceSpec } from '../driver.ts';
import { QemuDriver } from './driver.ts';

const run = promisify(execFile);
const ROOT = new URL('../../../../', import.meta.url).pathname;
const GUEST = join(ROOT, '.cache', 'guest');
const UUID = '3f0c5a52-7a8e-4c43-9a51-0b7de0e6a001';
const log = createLogger(process.env.GUREUM_LOG_LEVEL ?? 'warn');

let work: string;
let instancesDir: string;
let driver: QemuDriver;
let spec: InstanceSpec;
let port: number;

before(async () => {
  await run(join(ROOT, 'guest', 'build.sh'), [GUEST], { maxBuffer: 16 * 1024 * 1024 });
  work = mkdtempSync(join(tmpdir(), 'qemu-driver-'));
  instancesDir = join(work, 'instances');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]);
  port = await freePort();
});

/** SIGKILL whatever QEMU the test left behind (pid files under the instances dir). */
after(async () => {
  await driver?.close();
  for (const d of existsSync(instancesDir ?? '/nonexistent') ? readdirSync(instancesDir) : []) {
    try {
      const pid = Number(readFileSync(join(instancesDir, d, 'qemu.pid'), 'utf8'));
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(d)) process.kill(pid, 'SIGKILL');
    } catch { /* not running */ }
  }
  rmSync(work, { recursive: true, force: true });
  await run('ip', ['link', 'del', TAP]).catch(() => undefined);
});

// The address is left out when eth0 has none at that moment (a hot-plugged PCI NIC is eth0 after
// a fresh boot: PCI probes before virtio-mmio; the user-mode NIC is eth1 then).
const READY = /GUREUM-GUEST-READY (\S+)/g;
async function readyCount(): Promise<number> {
  return [...(await driver.consoleOutput(UUID)).matchAll(READY)].length;
}
async function waitReady(count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await readyCount()) < count) {
    if (Date.now() > deadline) throw new Error(`guest not ready (#${count}) in ${timeoutMs} ms:\n${await driver.consoleOutput(UUID, 30)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
function ssh(cmd: string) {
  return run('ssh', ['-i', join(work, 'key'), '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', cmd]);
}
function alive(pid: number): boolean {
  try { return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

test('init picks TCG here and reports the host', { timeout: 30_000 }, async () => {
  driver = new QemuDriver({ instancesDir, log });
  const caps = await driver.init();
  assert.equal(caps.accel, 'tcg', 'KVM on this machine is PVM and must be rejected by the probe');
  assert.equal(caps.hypervisorType, 'QEMU');
  assert.ok(caps.hypervisorVersion >= 7_002_000, String(caps.hypervisorVersion));
  assert.ok(caps.vcpus >= 1 && caps.memoryMb > 0 && caps.diskGb > 0);
});

test('spawn boots the guest from its disks and config drive', { timeout: 90_000 }, async () => {
  const dir = driver.dirOf(UUID);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'base.qcow2'), '32M']);
  await run('qemu-io', ['-c', 'write -P 0x5a 0 4M', join(work, 'base.qcow2')]);
  await createRootOverlay(join(work, 'base.qcow2'), 'qcow2', join(dir, 'disk'), 1);
  await createEphemeral(join(dir, 'disk.eph0'), 1);
  await createSwap(join(dir, 'disk.swap'), 16);
  const pub = readFileSync(join(work, 'key.pub'), 'utf8').trim();
  await buildConfigDrive(join(dir, 'disk.config'), { metaData: { uuid: UUID, name: 'vm1', hostname: 'vm1.novalocal', public_keys: { k: `${pub}\n` } } });
  spec = {
    uuid: UUID, name: 'instance-00000001', vcpus: 1, memoryMb: 256,
    boot: { kind: 'kernel', kernel: join(GUEST, 'vmlinux'), ramdisk: join(GUEST, 'initramfs.cpio') },
    disks: [
      { path: join(dir, 'disk'), format: 'qcow2' },
      { path: join(dir, 'disk.eph0'), format: 'qcow2' },
      { path: join(dir, 'disk.swap'), format: 'raw' },
      { path: join(dir, 'disk.config'), format: 'raw', readonly: true },
    ],
    nics: [{ kind: 'user', mac: '52:54:00:aa:00:01', sshHostPort: port }],
  };
  const t0 = Date.now();
  await driver.spawn(spec);
  await waitReady(1);
  console.log(`guest ready ${Date.now() - t0} ms after spawn`);
  const marker = [...(await driver.consoleOutput(UUID)).matchAll(READY)][0]!;
  assert.equal(marker[1], 'vm1');
  const st = await driver.getState(UUID);
  assert.equal(st.power, 'running');
  assert.ok(st.pid && alive(st.pid));
  assert.ok(st.cpuTimeNs! > 0 && st.memoryKb! > 0);
  assert.ok(existsSync(join(dir, 'spec.json')));
  assert.match(await driver.consoleOutput(UUID, 1), /^[^\n]*\n?$/);
  await assert.rejects(driver.spawn(spec), /already running/);
});

test('pause and unpause', { timeout: 30_000 }, async () => {
  await driver.pause(UUID);
  assert.equal((await driver.getState(UUID)).power, 'paused');
  await driver.unpause(UUID);
  assert.equal((await driver.getState(UUID)).power, 'running');
});

/** A tap device of our own for the hotplug steps (nothing attached to it, no address; deleted in after()). */
const TAP = `gtap${process.pid % 100000}`;
const TAP_MAC = 'fa:16:3e:77:00:01';
const guestMacs = async () => (await ssh('cat /sys/class/net/*/address')).stdout.trim().split('\n');
/** After a fresh boot with the tap NIC as eth0, the user-mode NIC (SSH) gets its lease a little after the ready marker. */
async function guestMacsAfterBoot(timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try { return await guestMacs(); } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

test('attachNic hot-plugs a virtio-net-pci NIC on a free root port; the guest sees it; the spec keeps it', { timeout: 90_000 }, async () => {
  await run('ip', ['tuntap', 'add', 'dev', TAP, 'mode', 'tap', 'vnet_hdr']);
  const t0 = Date.now();
  await driver.attachNic(UUID, { kind: 'tap', mac: TAP_MAC, ifname: TAP, portId: 'p1' });
  const deadline = Date.now() + 30_000;
  while (!(await guestMacs()).includes(TAP_MAC)) {
    assert.ok(Date.now() < deadline, 'the guest never saw the hot-plugged NIC');
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`hot-plugged NIC visible in the guest after ${Date.now() - t0} ms`);
  const saved = await driver.getSpec(UUID);
  assert.deepEqual(saved.nics.at(-1), { kind: 'tap', mac: TAP_MAC, ifname: TAP, portId: 'p1', slot: 0 });
  await driver.attachNic(UUID, { kind: 'tap', mac: TAP_MAC, ifname: TAP }); // idempotent
  assert.equal((await driver.getSpec(UUID)).nics.length, 2);
});

test('snapshotRootDisk: a standalone qcow2 with the same content, the guest keeps running', { timeout: 60_000 }, async () => {
  const dest = join(work, 'snap.qcow2');
  await driver.snapshotRootDisk(UUID, dest, 'qcow2');
  const info = await imageInfo(dest);
  assert.equal(info.format, 'qcow2');
  assert.equal(info.backingFile, undefined);
  assert.equal(info.virtualSize, 1024 ** 3);
  await run('qemu-img', ['compare', '-U', join(driver.dirOf(UUID), 'disk'), dest]);
  assert.equal((await driver.getState(UUID)).power, 'running');
});

test('callers racing for a dropped monitor share one connection (QMP serves one client at a time)', { timeout: 30_000 }, async () => {
  await driver.close();
  // A second QMP client would wait in the socket's backlog and fail on the greeting timeout.
  // Callers keep coming, one per event-loop turn, while the first connects and after it has
  // connected (an agent's heartbeat, diagnostics and an action do this): any that misses the
  // shared attempt or the new connection opens a second client.
  const calls: Promise<string>[] = [];
  for (const t0 = Date.now(); Date.now() - t0 < 60 && calls.length < 400;) {
    calls.push(calls.length % 4 === 3
      ? driver.qmp(UUID).then(async (q) => (await q.execute('query-status')).status)
      : driver.getState(UUID).then((s) => s.power));
    await new Promise((r) => setImmediate(r));
  }
  const states = await Promise.all(calls);
  assert.ok(states.length > 20, `only ${states.length} callers`);
  assert.deepEqual([...new Set(states)], ['running']);
});

test('adopt after an agent restart re-attaches the running QEMU', { timeout: 30_000 }, async () => {
  const before = (await driver.getState(UUID)).pid;
  await driver.close(); // what a dying agent leaves: QEMU running, nobody on the monitor
  driver = new QemuDriver({ instancesDir, log, accel: 'tcg' });
  await driver.init();
  const states = await driver.adopt();
  assert.equal(states.get(UUID)?.power, 'running');
  assert.equal(states.get(UUID)?.pid, before);
  await driver.pause(UUID); // the new monitor works
  await driver.unpause(UUID);
});

test('suspend saves the state and stops QEMU; resume continues the same boot', { timeout: 90_000 }, async () => {
  await ssh('echo before-suspend > /tmp/mark');
  const pid = (await driver.getState(UUID)).pid!;
  await driver.suspend(UUID);
  assert.ok(existsSync(join(driver.dirOf(UUID), 'state')));
  assert.equal(alive(pid), false);
  assert.equal((await driver.getState(UUID)).power, 'suspended');
  await driver.resume(UUID);
  assert.equal((await driver.getState(UUID)).power, 'running');
  assert.equal(existsSync(join(driver.dirOf(UUID), 'state')), false);
  const { stdout } = await ssh('cat /tmp/mark; hostname');
  assert.deepEqual(stdout.trim().split('\n'), ['before-suspend', 'vm1']);
  assert.equal(await readyCount(), 1, 'no second boot');
});

test('the guest reboots itself after hotplug and resume: -no-reboot stops it (SHUTDOWN guest-reset), a fresh QEMU boots it with the NIC', { timeout: 120_000 }, async () => {
  assert.ok((await guestMacs()).includes(TAP_MAC), 'the hot-plugged NIC survived suspend/resume');
  const pid = (await driver.getState(UUID)).pid!;
  const t0 = Date.now();
  await ssh('(sleep 0.3; reboot) >/dev/null 2>&1 &');
  await waitReady(2, 90_000);
  console.log(`guest back ${Date.now() - t0} ms after rebooting itself`);
  const st = await driver.getState(UUID);
  assert.equal(st.power, 'running');
  assert.ok(st.pid && st.pid !== pid && !alive(pid), 'a new QEMU process');
  assert.match(await driver.consoleOutput(UUID), /reboot: Restarting system/);
  assert.ok((await guestMacsAfterBoot()).includes(TAP_MAC), 'the NIC is there after the reboot');
  assert.equal((await driver.getSpec(UUID)).nics.length, 2);
});

test('a guest reboot while the agent is away: QEMU waits stopped, adopt sees the restart on the console and starts a fresh QEMU', { timeout: 120_000 }, async () => {
  const pid = (await driver.getState(UUID)).pid!;
  await driver.close();
  await ssh('(sleep 0.3; reboot) >/dev/null 2>&1 &');
  const deadline = Date.now() + 30_000;
  while (!/reboot: Restarting system/.test((await driver.consoleOutput(UUID)).split('GUREUM-GUEST-READY').at(-1)!)) {
    assert.ok(Date.now() < deadline, 'the guest did not reboot');
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(alive(pid), true, 'QEMU stays, stopped, until someone looks');
  driver = new QemuDriver({ instancesDir, log, accel: 'tcg' });
  await driver.init();
  const states = await driver.adopt();
  assert.equal(states.get(UUID)?.power, 'running');
  assert.ok(states.get(UUID)?.pid !== pid && !alive(pid), 'a fresh QEMU');
  await waitReady(3, 90_000);
  assert.ok((await guestMacsAfterBoot()).includes(TAP_MAC));
});

test('detachNic: device_del, the guest lets go (DEVICE_DELETED), netdev_del; the spec drops it', { timeout: 90_000 }, async () => {
  const t0 = Date.now();
  assert.equal(await driver.detachNic(UUID, TAP, 60_000), true);
  console.log(`NIC unplugged in ${Date.now() - t0} ms`);
  assert.ok(!(await guestMacs()).includes(TAP_MAC));
  assert.equal((await driver.getSpec(UUID)).nics.length, 1);
  assert.equal(await driver.detachNic(UUID, TAP), false);
  await run('ip', ['link', 'del', TAP]).catch(() => undefined);
});

test('detachNic right after attachNic: QEMU refuses the unplug while the guest brings the slot up ("guest is busy"); it is asked again until it lets go', { timeout: 90_000 }, async () => {
  await run('ip', ['tuntap', 'add', 'dev', TAP, 'mode', 'tap', 'vnet_hdr']);
  try {
    await driver.attachNic(UUID, { kind: 'tap', mac: TAP_MAC, ifname: TAP, portId: 'p2' });
    const t0 = Date.now();
    assert.equal(await driver.detachNic(UUID, TAP, 60_000), true);
    console.log(`NIC unplugged ${Date.now() - t0} ms after it was plugged`);
    assert.ok(!(await guestMacs()).includes(TAP_MAC));
    assert.equal((await driver.getSpec(UUID)).nics.length, 1);
  } finally {
    await run('ip', ['link', 'del', TAP]).catch(() => undefined);
  }
});

test('a hard reboot of a microvm (after hotplug and unplug) starts a fresh QEMU on the saved spec', { timeout: 120_000 }, async () => {
  const pid = (await driver.getState(UUID)).pid;
  await driver.reboot(UUID, true);
  await waitReady(4);
  const now = (await driver.getState(UUID)).pid;
  assert.ok(now && now !== pid, 'a new QEMU process');
  // The next steps count boots on a fresh console.
  await driver.powerOff(UUID, 30_000);
  await driver.powerOn(UUID);
  await waitReady(1);
});

test('soft reboot: the guest powers off on the ACPI button, a fresh QEMU boots it (microvm); hard reboot too', { timeout: 90_000 }, async () => {
  const pid = (await driver.getState(UUID)).pid;
  const t0 = Date.now();
  await driver.reboot(UUID, false, 30_000);
  assert.ok(Date.now() - t0 < 10_000, 'the guest reacted to the power button');
  await waitReady(2);
  const now = (await driver.getState(UUID)).pid;
  assert.ok(now && now !== pid && !alive(pid!));
  assert.match(await driver.consoleOutput(UUID), /reboot: Power down/);
  await driver.reboot(UUID, true);
  await waitReady(3);
  assert.equal((await driver.getState(UUID)).power, 'running');
});

test('a guest power-off while the agent is away: QEMU waits (-no-shutdown), adopt records the shutdown and quits it', { timeout: 60_000 }, async () => {
  const pid = (await driver.getState(UUID)).pid!;
  await driver.close();
  await ssh('(sleep 0.3; poweroff -f) >/dev/null 2>&1 &');
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(alive(pid), true, 'QEMU stays, stopped, until someone looks');
  driver = new QemuDriver({ instancesDir, log, accel: 'tcg' });
  await driver.init();
  const states = await driver.adopt();
  assert.equal(states.get(UUID)?.power, 'shutdown');
  assert.equal(states.get(UUID)?.reason, 'guest-shutdown');
  assert.equal(alive(pid), false);
});

test('a guest power-off seen live is recorded as a shutdown and QEMU ends', { timeout: 60_000 }, async () => {
  await driver.powerOn(UUID);
  await waitReady(1);
  const pid = (await driver.getState(UUID)).pid!;
  await ssh('(sleep 0.3; poweroff -f) >/dev/null 2>&1 &');
  const deadline = Date.now() + 30_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(pid), false, 'QEMU quit after the guest powered off');
  assert.deepEqual(await driver.getState(UUID), { power: 'shutdown', reason: 'guest-shutdown' });
});

test('powerOn boots again; powerOff is graceful', { timeout: 90_000 }, async () => {
  await driver.powerOn(UUID);
  await waitReady(1); // console.log starts afresh on a new boot
  const pid = (await driver.getState(UUID)).pid!;
  const t0 = Date.now();
  await driver.powerOff(UUID, 30_000);
  assert.ok(Date.now() - t0 < 10_000);
  assert.equal(alive(pid), false);
  assert.deepEqual(await driver.getState(UUID), { power: 'shutdown', reason: 'powered-off' });
  assert.match(await driver.consoleOutput(UUID), /reboot: Power down/);
  await driver.powerOff(UUID, 1500); // idempotent
});

test('disk boot (pc, SeaBIOS) with nothing to boot ignores the power button: powerOff stops it after the timeout', { timeout: 60_000 }, async () => {
  const uuid = '3f0c5a52-7a8e-4c43-9a51-0b7de0e6a003';
  const { mkdirSync } = await import('node:fs');
  mkdirSync(driver.dirOf(uuid), { recursive: true });
  await createEphemeral(join(driver.dirOf(uuid), 'disk'), 1);
  await driver.spawn({ uuid, name: 'instance-00000003', vcpus: 1, memoryMb: 128, boot: { kind: 'disk' },
    disks: [{ path: join(driver.dirOf(uuid), 'disk'), format: 'qcow2' }], nics: [{ kind: 'user', mac: '52:54:00:aa:00:03' }] });
  const st = await driver.getState(uuid);
  assert.equal(st.power, 'running');
  const t0 = Date.now();
  await driver.powerOff(uuid, 1500);
  assert.ok(Date.now() - t0 >= 1500, 'waited for the guest first');
  assert.equal(alive(st.pid!), false);
  assert.deepEqual(await driver.getState(uuid), { power: 'shutdown', reason: 'powered-off' });
  await driver.destroy(uuid); // idempotent
  await driver.remove(uuid);
});

test('a killed QEMU is reported crashed', { timeout: 90_000 }, async () => {
  await driver.powerOn(UUID);
  const pid = (await driver.getState(UUID)).pid!;
  process.kill(pid, 'SIGKILL');
  while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  const st = await driver.getState(UUID);
  assert.equal(st.power, 'crashed');
  assert.match(st.reason ?? '', /exited unexpectedly|exit record/);
});

test('remove deletes the directory; the instance is gone', { timeout: 30_000 }, async () => {
  await driver.powerOn(UUID);
  assert.equal((await driver.getState(UUID)).power, 'running');
  const pid = (await driver.getState(UUID)).pid!;
  await driver.remove(UUID);
  assert.equal(alive(pid), false);
  assert.equal(existsSync(driver.dirOf(UUID)), false);
  assert.deepEqual(await driver.getState(UUID), { power: 'nostate' });
  await driver.remove(UUID); // idempotent
  assert.equal((await driver.adopt()).size, 0);
});

test('QEMU survives a kill -9 of the agent process that started it', { timeout: 60_000 }, async () => {
  const uuid = '3f0c5a52-7a8e-4c43-9a51-0b7de0e6a004';
  const script = join(work, 'agent.mts');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(script, `
    import { QemuDriver } from ${JSON.stringify(new URL('./driver.ts', import.meta.url).pathname)};
    import { createLogger } from ${JSON.stringify(join(ROOT, 'src/common/logger.ts'))};
    const d = new QemuDriver({ instancesDir: ${JSON.stringify(instancesDir)}, log: createLogger('warn'), accel: 'tcg' });
    await d.init();
    await d.spawn({ uuid: '${uuid}', name: 'instance-00000004', vcpus: 1, memoryMb: 64, boot: { kind: 'disk' }, disks: [], nics: [] });
    console.log('spawned');
    setInterval(() => {}, 1000);
  `);
  const { spawn: spawnProcess } = await import('node:child_process');
  const agent = spawnProcess(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    agent.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('spawned')) resolve(); });
    agent.once('exit', (c) => reject(new Error(`agent exited ${c}`)));
  });
  agent.kill('SIGKILL');
  await new Promise((r) => agent.once('exit', r));
  const states = await driver.adopt();
  const st = states.get(uuid)!;
  assert.equal(st.power, 'running');
  assert.ok(alive(st.pid!));
  await driver.remove(uuid);
  assert.equal(alive(st.pid!), false);
});

test('a QEMU that cannot start fails with its own error message', { timeout: 30_000 }, async () => {
  const bad: InstanceSpec = { ...spec, uuid: '3f0c5a52-7a8e-4c43-9a51-0b7de0e6a002', disks: [], nics: [], boot: { kind: 'kernel', kernel: join(work, 'key.pub') } };
  await assert.rejects(driver.spawn(bad), /QEMU failed to start .*(kernel|PVH|linux)/i);
  assert.equal((await driver.getState(bad.uuid)).power, 'shutdown');
  await driver.remove(bad.uuid);
});
