import { subject, type Subject } from './index.ts';
import type { VolumeConnection } from './volume.ts';

/**
 * The protocol between the controller (conductor) and the agent on each compute host.
 * Commands go to one host (`gureum.agent.<host>.<verb>`, request/reply); the agent
 * announces itself and its instances' power states on shared subjects.
 */

/** Nova's power_state numbers (0 nostate, 1 running, 3 paused, 4 shutdown, 6 crashed, 7 suspended). */
export type PowerCode = 0 | 1 | 3 | 4 | 6 | 7;

export interface HostReport {
  host: string;
  hostIp: string;
  agentVersion: string;
  hypervisorType: string;
  hypervisorVersion: number;
  accel: 'kvm' | 'tcg';
  cpuModel: string;
  arch: string;
  vcpus: number;
  memoryMb: number;
  diskGb: number;
  /** Power state of every instance with a directory on this host. */
  instances: Record<string, PowerCode>;
  /** The volume ids in each instance's saved spec (what is really attached there), for reconciling attachments. */
  attachedVolumes?: Record<string, string[]>;
}

/** The agent's first message after start; the reply lists instances it must delete (unknown or deleted ones). */
export const AgentHello = subject<HostReport, { remove: string[] }>('gureum.compute.hello');
/** Every few seconds: liveness and the actual power states (the power-state sync). */
export const AgentHeartbeat = subject<HostReport, void>('gureum.compute.heartbeat');

export interface ImageRef {
  id: string;
  /** sha512 of the data (Glance os_hash_value), checked after download. */
  sha512?: string;
  diskFormat: string;
  /** Where the agent downloads the data (Glance `/v2/images/{id}/file`). */
  url: string;
  /** A file path to use instead of downloading, when the image store is on this host. */
  localPath?: string;
}

/** A flavor's sizes as the agent applies them to one instance. */
export interface InstanceSizes {
  uuid: string;
  vcpus: number;
  memoryMb: number;
  rootGb: number;
  ephemeralGb: number;
  /** Filesystem of the ephemeral disk: ext4 for images with os_type linux, else vfat (Nova's defaults). */
  ephemeralFormat?: 'vfat' | 'ext4';
  swapMb: number;
}

/** A Neutron port as the instance's NIC: a tap device on the port's network bridge. */
export interface PortNic { portId: string; networkId: string; mac: string; mtu: number; /** its fixed addresses (the first IPv4 one is the EC2 local-ipv4) */ ips: string[] }

/** Front-end QoS of a volume type (Cinder's qos specs with consumer front-end or both), applied by QEMU's I/O throttling. */
export interface VolumeQos {
  totalIopsSec?: number; readIopsSec?: number; writeIopsSec?: number;
  totalBytesSec?: number; readBytesSec?: number; writeBytesSec?: number;
}

/** A Cinder volume as one of an instance's disks (a block device mapping with destination volume). */
export interface VolumeDisk {
  volumeId: string;
  /** How this host reaches it (Cinder's connection_info for this attachment). */
  connection: VolumeConnection;
  /** The device name Nova reports (/dev/vdb, ...); advisory, as in Nova. */
  device: string;
  /** 0: the root disk (boot from volume): no image disk is made and the instance boots from this. */
  bootIndex?: number;
  readonly?: boolean;
  qos?: VolumeQos;
}

export interface BuildRequest extends InstanceSizes {
  name: string;
  hostname: string;
  image: ImageRef;
  kernel?: ImageRef;
  ramdisk?: ImageRef;
  /** Extra kernel command line (image property os_command_line). */
  cmdline?: string;
  /** Token the agent presents to the image API. */
  token: string;
  /**
   * none → no NIC; auto → QEMU user-mode NAT with SSH forwarded to sshHostPort (when the
   * project has no tenant network to use); ports → one tap NIC per Neutron port, in order.
   */
  network: 'none' | 'auto' | 'ports';
  ports?: PortNic[];
  mac: string;
  sshHostPort?: number;
  /** Attach a config drive (config_drive=true); the metadata service serves the same data either way. */
  configDrive: boolean;
  /** Facts only the EC2-style metadata API shows. */
  ec2?: { instanceId: string; amiId: string; instanceType: string; reservationId: string };
  /** The metadata (config drive and metadata service). */
  metaData: Record<string, unknown>;
  userData?: string;
  networkData?: Record<string, unknown>;
  vendorData?: Record<string, unknown>;
  /** Volumes attached from the start (block device mappings), in device order; one with bootIndex 0 is the root disk. */
  volumes?: VolumeDisk[];
}

export type InstanceVerb = 'stop' | 'start' | 'reboot-soft' | 'reboot-hard' | 'pause' | 'unpause' | 'suspend' | 'resume';

export interface ActionRequest { uuid: string; verb: InstanceVerb; timeoutMs?: number }
export interface StateReply { power: PowerCode; cpuTimeNs?: number; memoryKb?: number; /** host port forwarded to the guest's SSH (user-mode NIC) */ sshHostPort?: number }

/** Rebuild: the same instance from a (new) image: disks and config drive made afresh, guest started again when powerOn. */
export interface RebuildRequest extends BuildRequest {
  powerOn: boolean;
  /** How long a running guest gets to shut down cleanly first. */
  shutdownTimeoutMs: number;
  /** Keep the ephemeral disk's contents (rebuild's preserve_ephemeral). */
  preserveEphemeral?: boolean;
}

/** Resize on the same host: the guest is shut down, its disks kept for a revert, then started with the new flavor. */
export interface ResizeRequest extends InstanceSizes {
  powerOn: boolean;
  shutdownTimeoutMs: number;
}

/** Rescue: boot a rescue image with the instance's own root disk attached second (vdb). */
export interface RescueRequest {
  uuid: string;
  image: ImageRef;
  kernel?: ImageRef;
  ramdisk?: ImageRef;
  cmdline?: string;
  token: string;
  shutdownTimeoutMs: number;
}

export interface SnapshotRequest { uuid: string; imageId: string; uploadUrl: string; token: string; diskFormat: 'qcow2' | 'raw' }

/** Interface attach: the port is bound to this host already; its tap is plugged, then hot-plugged into the guest (or only saved in the spec of a stopped one). */
export interface AttachInterfaceRequest { uuid: string; port: PortNic }
/** Interface detach: the NIC leaves the guest (and its spec); the controller unbinds the port afterwards. */
export interface DetachInterfaceRequest { uuid: string; portId: string; timeoutMs?: number }

/** Volume attach: the volume is exported for this host already; it is hot-plugged (or only saved in the spec of a stopped instance). */
export interface AttachVolumeRequest { uuid: string; volume: VolumeDisk }
/** Volume detach: the disk leaves the guest (and its spec); the controller removes the export afterwards. */
export interface DetachVolumeRequest { uuid: string; volumeId: string; timeoutMs?: number }

export function agentSubjects(host: string) {
  const s = <Req, Res>(verb: string): Subject<Req, Res> => subject<Req, Res>(`gureum.agent.${host}.${verb}`);
  return {
    build: s<BuildRequest, StateReply>('build'),
    action: s<ActionRequest, StateReply>('action'),
    remove: s<{ uuid: string }, { removed: boolean }>('remove'),
    state: s<{ uuid: string }, StateReply & { exists: boolean }>('state'),
    console: s<{ uuid: string; lines?: number }, { output: string }>('console'),
    snapshot: s<SnapshotRequest, { size: number }>('snapshot'),
    rebuild: s<RebuildRequest, StateReply>('rebuild'),
    resize: s<ResizeRequest, StateReply>('resize'),
    resizeConfirm: s<{ uuid: string }, { ok: true }>('resize-confirm'),
    resizeRevert: s<{ uuid: string; powerOn: boolean }, StateReply>('resize-revert'),
    rescue: s<RescueRequest, StateReply>('rescue'),
    unrescue: s<{ uuid: string }, StateReply>('unrescue'),
    /** The password the guest posted to its metadata service ('' when none); `clear` deletes it. */
    password: s<{ uuid: string; clear?: boolean }, { password: string }>('password'),
    attachInterface: s<AttachInterfaceRequest, { attached: boolean }>('attach-interface'),
    detachInterface: s<DetachInterfaceRequest, { detached: boolean }>('detach-interface'),
    attachVolume: s<AttachVolumeRequest, { attached: boolean }>('attach-volume'),
    detachVolume: s<DetachVolumeRequest, { detached: boolean }>('detach-volume'),
  };
}
