/**
 * The QEMU command line of an instance: a pure function of its spec, the host's
 * acceleration and where the instance directory is. Two machine forms:
 *
 * - kernel boot (AKI/ARI images): `-M microvm` with an uncompressed kernel entered
 *   through PVH, virtio-mmio devices, no firmware — about 2–3 s to userspace under TCG.
 *   virtio-mmio cannot hotplug, so the machine also has a PCIe host (`pcie=on`, ECAM
 *   described through ACPI) with HOTPLUG_ROOT_PORTS `pcie-root-port`s (`hp0`…): tap NICs
 *   (Neutron ports) are virtio-net-pci devices on them, cold-plugged at launch or
 *   hot-plugged later (interface attach), and so are Cinder volumes (virtio-blk-pci). The
 *   guest kernel gets `pcie_ports=native` since microvm's ACPI tables do not hand PCIe
 *   hotplug to the OS through _OSC, and Linux's pciehp only drives slots it owns;
 * - disk boot (whole-disk images): `-M pc`, SeaBIOS, virtio-pci devices; tap NICs are
 *   hot-plugged on the root bus (`pci.0`, ACPI PCI hotplug of the PIIX4).
 *
 * Volumes are `-blockdev` node chains (a file, or an NBD export over TLS with a pre-shared
 * key) written as JSON, the same objects QMP's blockdev-add takes for a hot-plug; their
 * devices are key=value options (QEMU creates JSON -devices after the others). A root
 * volume (boot from volume) comes first in guest order: on microvm a virtio-mmio disk like
 * the image disks it replaces (the tiny guest loads virtio_mmio before virtio_pci, so the
 * mmio disks are vda… and PCI volumes follow), on pc the first PCI disk with bootindex 1.
 * QoS limits are not on the command line: QEMU's throttling of the disk's BlockBackend is
 * set over QMP (block_set_io_throttle) before the guest runs, and survives live snapshots.
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
import type { VolumeQos } from '../../../bus/compute.ts';
import type { HostCapabilities, InstanceSpec, VolumeDiskSpec } from '../driver.ts';

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
    /** Pre-shared keys of the instance's NBD volumes (`<identity>:<hex key>` lines, mode 0600), read by QEMU's tls-creds-psk objects. */
    psk: join(dir, 'keys.psk'),
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

/** What holds hotplug root ports on a microvm: tap NICs and the volumes that are not the root disk. */
type SlotUsers = Pick<InstanceSpec, 'nics'> & Partial<Pick<InstanceSpec, 'volumes'>>;

/**
 * The root-port slot of every tap NIC and every non-root volume of a microvm spec (by index
 * into spec.nics and spec.volumes): the slot it was given, else the lowest free one in spec
 * order, NICs first. Deterministic, so the driver computes the same layout the command line uses.
 */
export function assignDeviceSlots(spec: SlotUsers): { nics: Map<number, number>; volumes: Map<number, number> } {
  const out = { nics: new Map<number, number>(), volumes: new Map<number, number>() };
  const users: Array<{ map: Map<number, number>; i: number; slot?: number }> = [
    ...spec.nics.flatMap((n, i) => (n.kind === 'tap' ? [{ map: out.nics, i, slot: n.slot }] : [])),
    ...(spec.volumes ?? []).flatMap((v, i) => (v.root ? [] : [{ map: out.volumes, i, slot: v.slot }])),
  ];
  const used = new Set<number>();
  for (const u of users) {
    if (u.slot === undefined) continue;
    if (!Number.isInteger(u.slot) || u.slot < 0 || u.slot > 31) throw new Error(`invalid hotplug slot ${u.slot}`);
    if (used.has(u.slot)) throw new Error(`hotplug slot ${u.slot} is used twice`);
    used.add(u.slot);
    u.map.set(u.i, u.slot);
  }
  let next = 0;
  for (const u of users) {
    if (u.map.has(u.i)) continue;
    while (used.has(next)) next++;
    used.add(next);
    u.map.set(u.i, next);
  }
  return out;
}

/** The root-port slot of every tap NIC of a microvm spec (by index into spec.nics); see assignDeviceSlots. */
export function assignSlots(spec: SlotUsers): Map<number, number> {
  return assignDeviceSlots(spec).nics;
}

function usedSlots(spec: SlotUsers): number[] {
  const { nics, volumes } = assignDeviceSlots(spec);
  return [...nics.values(), ...volumes.values()];
}

/** The lowest root-port slot no NIC or volume of the spec holds. */
export function freeSlot(spec: SlotUsers): number {
  const used = new Set(usedSlots(spec));
  let s = 0;
  while (used.has(s)) s++;
  return s;
}

/** How many root ports a microvm of this spec gets. */
export function rootPorts(spec: SlotUsers): number {
  const slots = usedSlots(spec);
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

const VOLUME_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PSK_IDENTITY = /^[\w.@+-]{1,128}$/;
const PSK_KEY = /^[0-9a-f]{16,1024}$/i;
const NBD_HOST = /^[\w.:-]{1,253}$/;

/**
 * QEMU names of a volume's pieces, stable across launches: block node names are limited to
 * 31 characters, so they carry the first 20 hex digits of the volume id. `node` is the
 * node the device is created on; after a live snapshot the device's top is an overlay
 * (`<overlayPrefix><n>`) above it (resolve the current top through query-block).
 */
export function volumeIds(volumeId: string) {
  if (!VOLUME_ID.test(volumeId)) throw new Error(`invalid volume id ${JSON.stringify(volumeId)}`);
  const key = volumeId.replace(/-/g, '').slice(0, 20).toLowerCase();
  return {
    node: `vf-${key}`, protocol: `vp-${key}`, device: `vd-${key}`, tls: `vt-${key}`, overlayPrefix: `vs-${key}-`,
    /** What the guest sees as the disk's serial (/sys/block/vdX/serial): the volume id cut to virtio's 20 bytes, as Nova's libvirt driver does. */
    serial: volumeId.slice(0, 20),
  };
}

/** A -blockdev / blockdev-add definition (the subset Gureum uses). */
export type BlockdevOptions =
  | {
    driver: 'qcow2' | 'raw'; 'node-name': string; 'read-only'?: boolean; discard?: 'unmap'; cache?: BlockdevCache;
    file: { driver: 'file'; filename: string; 'node-name'?: string; 'read-only'?: boolean; discard?: 'unmap'; cache?: BlockdevCache; aio?: 'native' | 'threads' };
    /** null: do not open the backing chain the image names (an overlay put on top of a running node by blockdev-snapshot). */
    backing?: null;
  }
  | {
    driver: 'nbd'; 'node-name': string; 'read-only'?: boolean;
    server: { type: 'inet'; host: string; port: string }; export: string; 'tls-creds'?: string; 'reconnect-delay'?: number;
  };

/** Node cache options: direct = O_DIRECT; no-flush false = guest flushes reach the disk. */
export interface BlockdevCache { direct: boolean; 'no-flush': boolean }

/**
 * Cache options of a file volume's format and file nodes: with cache 'none', O_DIRECT and
 * native AIO (QEMU's cache=none, Nova's choice where the filesystem allows it); the format
 * node's setting is inherited by the backing files QEMU opens below it.
 */
export function volumeCacheOptions(c: { cache?: 'none' | 'writeback' }): { format: { cache?: BlockdevCache }; file: { cache?: BlockdevCache; aio?: 'native' } } {
  if (c.cache !== 'none') return { format: {}, file: {} };
  const cache = { direct: true, 'no-flush': false };
  return { format: { cache }, file: { cache, aio: 'native' } };
}

/** A -object / object-add definition: the TLS client credentials of an NBD volume. */
export interface TlsPskObject { 'qom-type': 'tls-creds-psk'; id: string; endpoint: 'client'; dir: string; username: string }

/** A -device / device_add definition of a virtio disk. */
export interface BlockDeviceArgs { driver: 'virtio-blk-pci' | 'virtio-blk-device'; id: string; drive: string; serial: string; bus?: string; bootindex?: number }

/** block_set_io_throttle arguments (without the device): QEMU's I/O throttling of the disk's BlockBackend. */
export interface IoThrottle { bps: number; bps_rd: number; bps_wr: number; iops: number; iops_rd: number; iops_wr: number }

/**
 * A volume's block node chain. File: a format node (qcow2/raw) over a file node, defined as
 * one tree so that blockdev-del of the format node frees both. NBD: one nbd node (the
 * export is the volume's content, raw), with TLS when the connection carries a PSK; a
 * lost connection is retried for 15 s before requests fail (the exporting daemon restarting).
 */
export function volumeBlockdev(vol: VolumeDiskSpec): BlockdevOptions {
  const ids = volumeIds(vol.volumeId);
  const ro = vol.readonly ? { 'read-only': true as const } : {};
  const c = vol.connection;
  if (c.type === 'file') {
    if (!c.path.startsWith('/')) throw new Error(`volume ${vol.volumeId}: the file ${JSON.stringify(c.path)} is not an absolute path`);
    if (c.format !== 'qcow2' && c.format !== 'raw') throw new Error(`volume ${vol.volumeId}: unsupported format ${String(c.format)}`);
    const discard = vol.readonly ? {} : { discard: 'unmap' as const };
    const cache = volumeCacheOptions(c);
    return {
      driver: c.format, 'node-name': ids.node, ...ro, ...discard, ...cache.format,
      file: { driver: 'file', filename: c.path, 'node-name': ids.protocol, ...ro, ...discard, ...cache.file },
    };
  }
  if (!NBD_HOST.test(c.host)) throw new Error(`volume ${vol.volumeId}: invalid NBD host ${JSON.stringify(c.host)}`);
  if (!Number.isInteger(c.port) || c.port < 1 || c.port > 65535) throw new Error(`volume ${vol.volumeId}: invalid NBD port ${c.port}`);
  if (c.tls) tlsCheck(vol.volumeId, c.tls);
  return {
    driver: 'nbd', 'node-name': ids.node, ...ro, server: { type: 'inet', host: c.host, port: String(c.port) }, export: c.exportName,
    ...(c.tls ? { 'tls-creds': ids.tls } : {}), 'reconnect-delay': 15,
  };
}

function tlsCheck(volumeId: string, tls: { identity: string; psk: string }): void {
  if (!PSK_IDENTITY.test(tls.identity)) throw new Error(`volume ${volumeId}: invalid TLS PSK identity ${JSON.stringify(tls.identity)}`);
  if (!PSK_KEY.test(tls.psk)) throw new Error(`volume ${volumeId}: the TLS pre-shared key must be hex (16 to 1024 digits)`);
}

/** The TLS credentials object an NBD volume's node uses (its key is in the instance's keys.psk), if it has one. */
export function volumeTlsObject(vol: VolumeDiskSpec, dir: string): TlsPskObject | undefined {
  const c = vol.connection;
  if (c.type !== 'nbd' || !c.tls) return undefined;
  return { 'qom-type': 'tls-creds-psk', id: volumeIds(vol.volumeId).tls, endpoint: 'client', dir, username: c.tls.identity };
}

/** The content of an instance's keys.psk: one `<identity>:<hex key>` line per NBD volume with TLS (gnutls' psktool format). */
export function pskFileContent(volumes: VolumeDiskSpec[]): string {
  const lines = new Map<string, string>();
  for (const v of volumes) {
    const c = v.connection;
    if (c.type !== 'nbd' || !c.tls) continue;
    tlsCheck(v.volumeId, c.tls);
    lines.set(c.tls.identity, c.tls.psk.toLowerCase());
  }
  return [...lines].map(([id, key]) => `${id}:${key}\n`).join('');
}

/**
 * The virtio-blk device of a volume. `bus`: a PCI device on that bus (a microvm root port),
 * or on the machine's root bus when undefined; `mmio`: a virtio-mmio device (a microvm's
 * root volume, which then sits with the image disks and is named before the PCI ones).
 */
export function volumeDeviceArgs(vol: VolumeDiskSpec, at: { mmio: true } | { mmio?: false; bus?: string }, bootindex?: number): BlockDeviceArgs {
  const ids = volumeIds(vol.volumeId);
  return {
    driver: at.mmio ? 'virtio-blk-device' : 'virtio-blk-pci', id: ids.device, drive: ids.node, serial: ids.serial,
    ...(!at.mmio && at.bus ? { bus: at.bus } : {}), ...(bootindex !== undefined ? { bootindex } : {}),
  };
}

/**
 * A volume device as a -device option in QEMU's key=value form. (Not JSON: QEMU 7.2 creates
 * JSON -devices apart from the others, so they would lose their place in guest order.)
 */
export function volumeDeviceOption(args: BlockDeviceArgs): string {
  return Object.entries(args).map(([k, v]) => (k === 'driver' ? esc(String(v)) : `${k}=${esc(String(v))}`)).join(',');
}

/**
 * A volume type's front-end QoS as QEMU throttling limits (0: unlimited), or undefined when
 * it limits nothing. QEMU refuses a total limit together with a read or write one of the same kind.
 */
export function ioThrottle(qos: VolumeQos | undefined): IoThrottle | undefined {
  if (!qos) return undefined;
  const n = (name: keyof VolumeQos): number => {
    const v = qos[name] ?? 0;
    if (!Number.isInteger(v) || v < 0) throw new Error(`invalid QoS ${name} ${v}: a whole number of at least 0 expected`);
    return v;
  };
  const t: IoThrottle = {
    bps: n('totalBytesSec'), bps_rd: n('readBytesSec'), bps_wr: n('writeBytesSec'),
    iops: n('totalIopsSec'), iops_rd: n('readIopsSec'), iops_wr: n('writeIopsSec'),
  };
  if (t.bps && (t.bps_rd || t.bps_wr)) throw new Error('QoS: total_bytes_sec cannot be combined with read_bytes_sec or write_bytes_sec');
  if (t.iops && (t.iops_rd || t.iops_wr)) throw new Error('QoS: total_iops_sec cannot be combined with read_iops_sec or write_iops_sec');
  return Object.values(t).some((v) => v > 0) ? t : undefined;
}

/** The root volume of a spec (boot from volume), checking there is at most one. */
export function rootVolume(spec: Partial<Pick<InstanceSpec, 'volumes'>>): VolumeDiskSpec | undefined {
  const roots = (spec.volumes ?? []).filter((v) => v.root);
  if (roots.length > 1) throw new Error(`more than one root volume: ${roots.map((v) => v.volumeId).join(', ')}`);
  return roots[0];
}

export function qemuArgv(spec: InstanceSpec, host: Pick<HostCapabilities, 'accel'>, opts: LaunchOptions): string[] {
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) throw new Error(`invalid vcpus ${spec.vcpus}`);
  if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 16) throw new Error(`invalid memoryMb ${spec.memoryMb}`);
  const f = instanceFiles(opts.dir);
  const micro = spec.boot.kind === 'kernel';
  const kvm = host.accel === 'kvm';
  const bus = micro ? 'device' : 'pci';
  const volumes = spec.volumes ?? [];
  const rootVol = rootVolume(spec);
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
    if ((spec.disks.length > 0 || rootVol) && !/(^|\s)root=/.test(extra)) parts.push('root=/dev/vda');
    parts.push('console=ttyS0', 'quiet', 'cryptomgr.notests', 'pcie_ports=native');
    if (!kvm && opts.tscKhz && opts.tscKhz > 0) parts.push(`tsc_early_khz=${opts.tscKhz}`);
    if (extra) parts.push(extra);
    argv.push('-append', parts.join(' '));
  }

  // Volumes' block nodes (and the TLS credentials of NBD ones), in the same JSON form as blockdev-add.
  for (const v of volumes) {
    const tls = volumeTlsObject(v, opts.dir);
    if (tls) argv.push('-object', JSON.stringify(tls));
    argv.push('-blockdev', JSON.stringify(volumeBlockdev(v)));
  }
  // A root volume is the first disk, in place of an image disk (and the one the firmware boots).
  if (rootVol) argv.push('-device', volumeDeviceOption(volumeDeviceArgs(rootVol, micro ? { mmio: true } : {}, micro ? undefined : 1)));

  spec.disks.forEach((d, i) => {
    const drive = [`file=${esc(d.path)}`, 'if=none', `id=disk${i}`, `format=${d.format}`, 'cache=writeback'];
    if (d.readonly) drive.push('readonly=on');
    else drive.push('discard=unmap');
    argv.push('-drive', drive.join(','));
    // Linux names them in command-line order on both machines (checked: first -device is vda).
    const dev = [`virtio-blk-${bus}`, `drive=disk${i}`];
    if (!micro && i === 0 && !rootVol) dev.push('bootindex=1');
    argv.push('-device', dev.join(','));
  });

  const slots = micro ? assignDeviceSlots(spec) : { nics: new Map<number, number>(), volumes: new Map<number, number>() };
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
      argv.push('-device', tapDevice(ids, n.mac, micro ? `hp${slots.nics.get(i)!}` : undefined));
    }
  });

  // The other volumes: PCI disks (hot-pluggable), on their root ports on a microvm.
  volumes.forEach((v, i) => {
    if (v.root) return;
    argv.push('-device', volumeDeviceOption(volumeDeviceArgs(v, { bus: micro ? `hp${slots.volumes.get(i)!}` : undefined })));
  });

  if (opts.incomingFile) argv.push('-incoming', `exec:cat ${shQuote(opts.incomingFile)}`);
  if (opts.startPaused || opts.incomingFile) argv.push('-S');
  return argv;
}
