/**
 * The hypervisor driver: everything the agent asks of a virtualization backend, the way
 * Nova's virt/driver.py sets the contract for libvirt, Hyper-V and the rest. The QEMU
 * implementation (qemu/) drives one QEMU process per instance through QMP; another
 * backend would implement the same interface.
 *
 * An instance lives in its own directory (`<instancesDir>/<uuid>/`): the disks the
 * storage layer prepared, plus what the driver keeps there (spec, QMP socket, pid file,
 * serial log, saved state). QEMU processes outlive the agent; `adopt()` finds them again.
 */

import type { VolumeQos } from '../../bus/compute.ts';
import type { VolumeConnection } from '../../bus/volume.ts';

/** Nova's power_state codes, as the API reports them in OS-EXT-STS:power_state. */
export const PowerStateCode = { nostate: 0, running: 1, paused: 3, shutdown: 4, crashed: 6, suspended: 7 } as const;
export type PowerState = keyof typeof PowerStateCode;

export interface DiskSpec {
  /** Absolute path of the disk file (qcow2 overlay, raw swap, ISO config drive, ...). */
  path: string;
  format: 'qcow2' | 'raw';
  readonly?: boolean;
}

/** A network interface. `user` is QEMU's built-in NAT (used until tenant networking exists). */
export type NicSpec =
  | {
    kind: 'user'; mac: string;
    /** forward 127.0.0.1:<port> on the host to the guest's port 22 */
    sshHostPort?: number;
    /** Unix socket of this instance's metadata server, reached by the guest as http://169.254.169.254/ */
    metadataSocket?: string;
  }
  | TapNicSpec;

/**
 * A NIC on a tap device the network data plane made (a Neutron port). Tap NICs are PCI
 * devices on both machines, so any of them can be hot-unplugged (interface detach).
 */
export interface TapNicSpec {
  kind: 'tap'; mac: string; ifname: string;
  /** The Neutron port it stands for (informational; the tap name derives from it). */
  portId?: string;
  /**
   * microvm: the hotplug root port (`hp<slot>`) it sits on. Hot-plugged NICs keep theirs so
   * a restart (or resume from saved state) lays the devices out exactly as before; NICs
   * without one get the lowest free slots at launch (see cmdline.ts assignSlots).
   */
  slot?: number;
}

/**
 * A Cinder volume as a disk of the instance: a virtio-blk PCI device (hot-pluggable; on
 * microvm on one of the hotplug root ports) whose serial is the volume id (Nova's libvirt
 * driver does the same, so /dev/disk/by-id/virtio-<id prefix> names it in the guest).
 */
export interface VolumeDiskSpec {
  volumeId: string;
  connection: VolumeConnection;
  readonly?: boolean;
  qos?: VolumeQos;
  /** The root disk (boot from volume): first in guest order, in place of an image disk. */
  root?: boolean;
  /** microvm: the hotplug root port it sits on (kept across restarts, as for tap NICs). */
  slot?: number;
}

export type BootSpec =
  /** Direct kernel boot (AKI/ARI images): microvm machine, PVH entry for an uncompressed vmlinux. */
  | { kind: 'kernel'; kernel: string; ramdisk?: string; cmdline?: string }
  /** Firmware boot from the first disk (whole-disk images): pc/q35 machine, SeaBIOS. */
  | { kind: 'disk' };

export interface InstanceSpec {
  uuid: string;
  /** Hypervisor-side name, e.g. instance-0000002a. */
  name: string;
  vcpus: number;
  memoryMb: number;
  boot: BootSpec;
  /** In guest order: root first (vda), then ephemeral, swap, the config drive last. */
  disks: DiskSpec[];
  nics: NicSpec[];
  /** Attached volumes, in attach order (a root volume first). */
  volumes?: VolumeDiskSpec[];
}

export interface HostCapabilities {
  /** 'kvm' when the boot probe succeeded, else 'tcg'. */
  accel: 'kvm' | 'tcg';
  /** Reported as hypervisor_type ('QEMU' under TCG, as Nova's libvirt driver does). */
  hypervisorType: string;
  hypervisorVersion: number;
  cpuModel: string;
  vcpus: number;
  memoryMb: number;
  /** Size of the instances directory's filesystem (Nova's local_gb). */
  diskGb: number;
  /** Free space there now (Nova's disk_available_least is computed from it). */
  diskFreeGb?: number;
}

export interface InstanceState {
  power: PowerState;
  pid?: number;
  /** Guest CPU time in nanoseconds (from /proc/<pid>/stat, process user+system). */
  cpuTimeNs?: number;
  /** Resident memory of the QEMU process in KiB. */
  memoryKb?: number;
  /** Why it is in this state when not running, e.g. 'guest-shutdown', 'destroyed', a crash's detail. */
  reason?: string;
}

export interface HypervisorDriver {
  /** Probe the host (KVM boot probe, CPU, RAM, disk). Called once at agent start. */
  init(): Promise<HostCapabilities>;
  /** Instances with a directory on this host and their state, running QEMU processes re-attached. */
  adopt(): Promise<Map<string, InstanceState>>;
  /** Start a new instance; resolves once QEMU runs the guest (not when the guest has booted). */
  spawn(spec: InstanceSpec): Promise<void>;
  /** Replace the saved spec of an instance that is not running; it stays shut off. */
  define(spec: InstanceSpec): Promise<void>;
  /** The saved spec of an instance on this host. */
  getSpec(uuid: string): Promise<InstanceSpec>;
  /** Hard stop (kill) if running; files stay. Idempotent. */
  destroy(uuid: string): Promise<void>;
  /** ACPI power button, wait up to timeoutMs for the guest to power off, then hard stop. */
  powerOff(uuid: string, timeoutMs: number): Promise<void>;
  /** Start a stopped instance again from its saved spec. */
  powerOn(uuid: string): Promise<void>;
  /** soft: ACPI reboot (guest-driven); hard: system_reset. */
  reboot(uuid: string, hard: boolean, softTimeoutMs?: number): Promise<void>;
  pause(uuid: string): Promise<void>;
  unpause(uuid: string): Promise<void>;
  /** Save the guest state to disk and stop QEMU (power state 'suspended'). */
  suspend(uuid: string): Promise<void>;
  /** Restart QEMU from the saved state. */
  resume(uuid: string): Promise<void>;
  getState(uuid: string): Promise<InstanceState>;
  /** The serial console log; the last `lines` lines when given. */
  consoleOutput(uuid: string, lines?: number): Promise<string>;
  /** A consistent copy of the root disk (while running: briefly paused or block-job based) as a standalone image. */
  snapshotRootDisk(uuid: string, destPath: string, format: 'qcow2' | 'raw'): Promise<void>;
  /** Stop everything and remove the instance directory. Idempotent. */
  remove(uuid: string): Promise<void>;
  /**
   * Interface attach: add a tap NIC to the saved spec and, when QEMU runs, hot-plug it
   * (netdev_add + device_add). Idempotent for a NIC already in the spec. Not for a
   * suspended instance (its saved device state would no longer match).
   */
  attachNic(uuid: string, nic: TapNicSpec): Promise<void>;
  /**
   * Interface detach: when QEMU runs, device_del and wait (up to timeoutMs) for the guest to
   * release it (DEVICE_DELETED), then netdev_del; the NIC leaves the saved spec. False when
   * the spec has no such NIC.
   */
  detachNic(uuid: string, ifname: string, timeoutMs?: number): Promise<boolean>;
  /**
   * Volume attach: add the volume to the saved spec and, when QEMU runs, hot-plug it
   * (blockdev-add + device_add). Idempotent for a volume already in the spec.
   */
  attachVolume(uuid: string, volume: VolumeDiskSpec): Promise<void>;
  /**
   * Volume detach: when QEMU runs, device_del, wait (up to timeoutMs) for the guest to let
   * go (DEVICE_DELETED), then blockdev-del; the volume leaves the saved spec. False when
   * the spec has no such volume.
   */
  detachVolume(uuid: string, volumeId: string, timeoutMs?: number): Promise<boolean>;
}
