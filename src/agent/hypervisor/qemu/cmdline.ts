/**
 * The QEMU command line of an instance: a pure function of its spec, the host's
 * acceleration and where the instance directory is. Two machine forms:
 *
 * - kernel boot (AKI/ARI images): `-M microvm` with an uncompressed kernel entered
 *   through PVH, virtio-mmio devices, no firmware — about 2–3 s to userspace under TCG.
 *   virtio-mmio cannot hotplug, so the machine also has a PCIe host (`pcie=on`, ECAM
 *   described through ACPI) with HOTPLUG_ROOT_PORTS `pcie-root-port`s (`hp0`…): tap NICs
 *   (Neutron ports) are virtio-net-pci devices on them, cold-plugged at launch or
 *   hot-plugged later (interface attach; Cinder volumes will use the same slots). The
 *   guest kernel gets `pcie_ports=native` since microvm's ACPI tables do not hand PCIe
 *   hotplug to the OS through _OSC, and Linux's pciehp only drives slots it owns;
 * - disk boot (whole-disk images): `-M pc`, SeaBIOS, virtio-pci devices; tap NICs are
 *   hot-plugged on the root bus (`pci.0`, ACPI PCI hotplug of the PIIX4).
 *
 * Both run without default devices or user config, headless, with the serial console
 * appended to `<dir>/console.log`, QMP on `<dir>/qmp.sock` and `-no-shutdown` (a guest
 * power-off stops the VM instead of exiting QEMU, so whoever holds the monitor — or
 * adopts it later — sees that it was a guest shutdown and then quits it; libvirt's model).
 *
 * microvm also runs with `-no-reboot`: QEMU 7.2's reset of a microvm that had a device
 * hot-plugged or unplugged, or that was resumed from saved state, leaves the guest hanging
 * before its kernel prints anything. With -no-reboot (and -no-shutdown) a reset the guest
 * asks for stops the VM with SHUTDOWN reason `guest-reset` instead, and the driver starts
 * a fresh QEMU on the saved spec; its API reboots do the same (a QMP system_reset would
 * also turn into a shutdown). The `pc` machine resets in place.
 */
import { join } from 'node:path';
import type { HostCapabilities, InstanceSpec } from '../driver.ts';

/** Files of an instance directory the driver owns. */
export function instanceFiles(dir: string) {
  return {
    spec: join(dir, 'spec.json'),
    launch: join(dir, 'launch.json'),
    pid: join(dir, 'qemu.pid'),
    qmp: join(dir, 'qmp.sock'),
    /** A second monitor for operators and tests (the agent holds the first; QMP serves one client per socket). */
    qmpDebug: join(dir, 'qmp-debug.sock'),
    console: join(dir, 'console.log'),
    qemuLog: join(dir, 'qemu.log'),
    exit: join(dir, 'exit.json'),
    state: join(dir, 'state'),
  };
}

export interface LaunchOptions {
  /** The instance directory. */
  dir: string;
  /** Host TSC frequency in kHz, given to a TCG microvm guest as tsc_early_khz (0: leave out). */
  tscKhz?: number;
  /** Resume: load the guest state from this file (`-incoming exec:cat <file>`); implies startPaused. */
  incomingFile?: string;
  /** Start with the vCPUs stopped (`-S`). */
  startPaused?: boolean;
  qemuBinary?: string;
}

/** QEMU option values: a comma inside a value is written twice. */
function esc(v: string): string {
  return v.replace(/,/g, ',,');
}

/** POSIX shell single-quoting (for the exec: migration URI, run through /bin/sh). */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const IFNAME = /^[\w.-]{1,15}$/;

/** Hotplug root ports every microvm gets (more when its spec already uses more slots). */
export const HOTPLUG_ROOT_PORTS = 8;

/** QEMU ids of a tap NIC's backend and device (stable across launches, so any NIC can be unplugged). */
export function tapIds(ifname: string): { netdev: string; device: string } {
  if (!IFNAME.test(ifname)) throw new Error(`invalid tap interface name ${ifname}`);
  return { netdev: `hn-${ifname}`, device: `nic-${ifname}` };
}

/**
 * The root-port slot of every tap NIC of a microvm spec (by index into spec.nics): the
 * slot it was given, else the lowest free one in spec order. Deterministic, so the
 * driver computes the same layout the command line uses.
 */
export function assignSlots(spec: Pick<InstanceSpec, 'nics'>): Map<number, number> {
  const out = new Map<number, number>();
  const used = new Set<number>();
  spec.nics.forEach((n, i) => {
    if (n.kind === 'tap' && n.slot !== undefined) {
      if (!Number.isInteger(n.slot) || n.slot < 0 || n.slot > 31) throw new Error(`invalid hotplug slot ${n.slot}`);
      if (used.has(n.slot)) throw new Error(`hotplug slot ${n.slot} is used twice`);
      used.add(n.slot);
      out.set(i, n.slot);
    }
  });
  let next = 0;
  spec.nics.forEach((n, i) => {
    if (n.kind !== 'tap' || out.has(i)) return;
    while (used.has(next)) next++;
    used.add(next);
    out.set(i, next);
  });
  return out;
}

/** The lowest root-port slot no NIC of the spec holds. */
export function freeSlot(spec: Pick<InstanceSpec, 'nics'>): number {
  const used = new Set(assignSlots(spec).values());
  let s = 0;
  while (used.has(s)) s++;
  return s;
}

/** How many root ports a microvm of this spec gets. */
export function rootPorts(spec: Pick<InstanceSpec, 'nics'>): number {
  const slots = [...assignSlots(spec).values()];
  return Math.max(HOTPLUG_ROOT_PORTS, slots.length ? Math.max(...slots) + 1 : 0);
}

/**
 * The network of every user-mode (slirp) NIC. slirp only intercepts guest traffic to
 * addresses inside its own virtual network (guestfwd, its host and DNS aliases), so the
 * network is the /24 that holds the metadata address 169.254.169.254 rather than slirp's
 * default 10.0.2.0/24. The guest's first DHCP lease is `guest` (checked with the tiny
 * guest's udhcpc: 169.254.169.15/24, default route via `gateway`, DNS `dns`).
 */
export const USER_NETWORK = {
  cidr: '169.254.169.0/24',
  /** slirp's host alias: the gateway; it also reaches the host's 127.0.0.1 (slirp's restrict=off default). */
  gateway: '169.254.169.1',
  dns: '169.254.169.3',
  /** The first (and, with one NIC per slirp, only) DHCP lease. */
  guest: '169.254.169.15',
  metadata: '169.254.169.254',
} as const;

/**
 * A path that can go into the guestfwd command unquoted: QEMU splits the netdev options at
 * commas, libslirp splits the command like a shell, socat splits addresses at `:` and `,`.
 * Unix socket paths are limited to 107 bytes (sun_path).
 */
const SOCKET_PATH = /^\/[\w./+@-]+$/;

/**
 * slirp's guestfwd for the metadata service: each TCP connection the guest opens to
 * 169.254.169.254:80 starts one `socat` that joins it to the instance's metadata socket.
 * (A `-chardev` guestfwd connects once at QEMU start and serves only the first connection;
 * `cmd:` needs no socket at QEMU start and survives the metadata server's restarts.)
 * socat's -T closes a connection idle for 60 s.
 */
export function metadataGuestfwd(socketPath: string): string {
  if (!SOCKET_PATH.test(socketPath) || Buffer.byteLength(socketPath) > 107) {
    throw new Error(`metadata socket path not usable in a QEMU guestfwd (absolute, [A-Za-z0-9_./+@-], at most 107 bytes): ${socketPath}`);
  }
  return `guestfwd=tcp:${USER_NETWORK.metadata}:80-cmd:socat -T 60 - UNIX-CONNECT:${socketPath}`;
}

/**
 * The -device value of a tap NIC: virtio-net-pci, on a root port (microvm) or the root bus
 * (pc). On microvm without its option ROM: there is no firmware to run it, and with it a
 * system_reset (reboot) left the guest hanging before its kernel printed anything.
 */
function tapDevice(ids: { netdev: string; device: string }, mac: string, bus: string | undefined): string {
  return ['virtio-net-pci', `id=${ids.device}`, `netdev=${ids.netdev}`, `mac=${mac}`, ...(bus ? [`bus=${bus}`, 'romfile='] : [])].join(',');
}

/** The QMP device_add arguments of a hot-plugged tap NIC (the same device as tapDevice on a command line). */
export function tapDeviceArgs(ifname: string, mac: string, bus: string | undefined): { driver: string; id: string; netdev: string; mac: string; bus?: string; romfile?: string } {
  if (!MAC.test(mac)) throw new Error(`invalid MAC address ${mac}`);
  const ids = tapIds(ifname);
  return { driver: 'virtio-net-pci', id: ids.device, netdev: ids.netdev, mac, ...(bus ? { bus, romfile: '' } : {}) };
}

export function qemuArgv(spec: InstanceSpec, host: Pick<HostCapabilities, 'accel'>, opts: LaunchOptions): string[] {
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) throw new Error(`invalid vcpus ${spec.vcpus}`);
  if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 16) throw new Error(`invalid memoryMb ${spec.memoryMb}`);
  const f = instanceFiles(opts.dir);
  const micro = spec.boot.kind === 'kernel';
  const kvm = host.accel === 'kvm';
  const bus = micro ? 'device' : 'pci';
  const argv: string[] = [
    '-name', `guest=${esc(spec.name)},debug-threads=on`,
    '-uuid', spec.uuid,
    '-machine', micro ? 'microvm,pit=on,pic=on,rtc=on,acpi=on,pcie=on' : 'pc',
    '-accel', kvm ? 'kvm' : 'tcg',
    '-cpu', kvm ? 'host' : 'max',
    '-m', String(spec.memoryMb),
    '-smp', String(spec.vcpus),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-shutdown', ...(micro ? ['-no-reboot'] : []),
    '-msg', 'timestamp=on',
    '-chardev', `file,id=serial0,path=${esc(f.console)},append=on`,
    '-serial', 'chardev:serial0',
    '-qmp', `unix:${esc(f.qmp)},server=on,wait=off`,
    '-qmp', `unix:${esc(f.qmpDebug)},server=on,wait=off`,
    '-pidfile', f.pid,
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', `virtio-rng-${bus},rng=rng0`,
  ];

  if (spec.boot.kind === 'kernel') {
    argv.push('-kernel', spec.boot.kernel);
    if (spec.boot.ramdisk) argv.push('-initrd', spec.boot.ramdisk);
    const parts: string[] = [];
    const extra = spec.boot.cmdline?.trim() ?? '';
    if (spec.disks.length > 0 && !/(^|\s)root=/.test(extra)) parts.push('root=/dev/vda');
    parts.push('console=ttyS0', 'quiet', 'cryptomgr.notests', 'pcie_ports=native');
    if (!kvm && opts.tscKhz && opts.tscKhz > 0) parts.push(`tsc_early_khz=${opts.tscKhz}`);
    if (extra) parts.push(extra);
    argv.push('-append', parts.join(' '));
  }

  spec.disks.forEach((d, i) => {
    const drive = [`file=${esc(d.path)}`, 'if=none', `id=disk${i}`, `format=${d.format}`, 'cache=writeback'];
    if (d.readonly) drive.push('readonly=on');
    else drive.push('discard=unmap');
    argv.push('-drive', drive.join(','));
    // Linux names them in command-line order on both machines (checked: first -device is vda).
    const dev = [`virtio-blk-${bus}`, `drive=disk${i}`];
    if (!micro && i === 0) dev.push('bootindex=1');
    argv.push('-device', dev.join(','));
  });

  const slots = micro ? assignSlots(spec) : new Map<number, number>();
  if (micro) {
    for (let i = 0; i < rootPorts(spec); i++) argv.push('-device', `pcie-root-port,id=hp${i},chassis=${i + 1},slot=${i}`);
  }

  spec.nics.forEach((n, i) => {
    if (!MAC.test(n.mac)) throw new Error(`invalid MAC address ${n.mac}`);
    if (n.kind === 'user') {
      const netdev = [`user`, `id=net${i}`, `net=${USER_NETWORK.cidr}`, `host=${USER_NETWORK.gateway}`, `dns=${USER_NETWORK.dns}`,
        `dhcpstart=${USER_NETWORK.guest}`];
      if (n.sshHostPort !== undefined) {
        if (!Number.isInteger(n.sshHostPort) || n.sshHostPort < 1 || n.sshHostPort > 65535) throw new Error(`invalid SSH host port ${n.sshHostPort}`);
        netdev.push(`hostfwd=tcp:127.0.0.1:${n.sshHostPort}-:22`);
      }
      if (n.metadataSocket !== undefined) netdev.push(metadataGuestfwd(n.metadataSocket));
      argv.push('-netdev', netdev.join(','));
      argv.push('-device', `virtio-net-${bus},netdev=net${i},mac=${n.mac}`);
    } else {
      const ids = tapIds(n.ifname);
      argv.push('-netdev', `tap,id=${ids.netdev},ifname=${n.ifname},script=no,downscript=no`);
      argv.push('-device', tapDevice(ids, n.mac, micro ? `hp${slots.get(i)!}` : undefined));
    }
  });

  if (opts.incomingFile) argv.push('-incoming', `exec:cat ${shQuote(opts.incomingFile)}`);
  if (opts.startPaused || opts.incomingFile) argv.push('-S');
  return argv;
}
