import type { ResolvedNic, VifInfo } from './networks.ts';

/** Nova's domain vocabulary: vm/task states, the status the API derives from them, records. */

export type VmState =
  | 'active' | 'building' | 'paused' | 'suspended' | 'stopped' | 'rescued' | 'resized'
  | 'soft-delete' | 'deleted' | 'error' | 'shelved' | 'shelved_offloaded';

export type TaskState =
  | 'scheduling' | 'block_device_mapping' | 'networking' | 'spawning'
  | 'powering-off' | 'powering-on' | 'rebooting' | 'rebooting_hard' | 'reboot_started' | 'reboot_started_hard'
  | 'pausing' | 'unpausing' | 'suspending' | 'resuming' | 'deleting' | 'image_snapshot' | 'image_uploading'
  | 'rebuilding' | 'resize_prep' | 'resize_migrating' | 'resize_finish' | 'resize_reverting' | 'resize_confirming'
  | 'shelving' | 'shelving_image_uploading' | 'shelving_offloading' | 'unshelving' | 'rescuing' | 'unrescuing'
  | 'soft-deleting' | 'restoring';

/** The API's `status` from vm_state and task_state, as Nova's common.status_from_state does it. */
export function statusOf(vm: string, task: string | null): string {
  switch (vm) {
    case 'active':
      switch (task) {
        case 'rebooting': case 'reboot_started': return 'REBOOT';
        case 'rebooting_hard': case 'reboot_started_hard': return 'HARD_REBOOT';
        case 'rebuilding': return 'REBUILD';
        case 'resize_prep': case 'resize_migrating': case 'resize_finish': return 'RESIZE';
        default: return 'ACTIVE';
      }
    case 'building': return 'BUILD';
    case 'stopped':
      return task === 'resize_prep' || task === 'resize_migrating' || task === 'resize_finish' ? 'RESIZE'
        : task === 'rebuilding' ? 'REBUILD' : 'SHUTOFF';
    case 'resized': return task === 'resize_reverting' ? 'REVERT_RESIZE' : 'VERIFY_RESIZE';
    case 'paused': return 'PAUSED';
    case 'suspended': return 'SUSPENDED';
    case 'rescued': return 'RESCUE';
    case 'error': return task === 'rebuilding' ? 'REBUILD' : 'ERROR';
    case 'deleted': return 'DELETED';
    case 'soft-delete': return 'SOFT_DELETED';
    case 'shelved': return 'SHELVED';
    case 'shelved_offloaded': return 'SHELVED_OFFLOADED';
    default: return 'UNKNOWN';
  }
}

/** The status values a `status=` filter may name, mapped back to vm states. */
export const STATUS_TO_VM: Record<string, VmState[]> = {
  ACTIVE: ['active'], BUILD: ['building'], SHUTOFF: ['stopped'], PAUSED: ['paused'], SUSPENDED: ['suspended'],
  RESCUE: ['rescued'], ERROR: ['error'], DELETED: ['deleted'], SOFT_DELETED: ['soft-delete'],
  SHELVED: ['shelved'], SHELVED_OFFLOADED: ['shelved_offloaded'], VERIFY_RESIZE: ['resized'],
  REBOOT: ['active'], HARD_REBOOT: ['active'], REBUILD: ['active', 'stopped', 'error'], RESIZE: ['active', 'stopped'],
};

export interface Flavor {
  id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number;
  rxtx_factor: number; is_public: boolean; disabled: boolean; description: string | null;
  extra_specs: Record<string, string>;
}

/** The flavor as it was when the instance was created (Nova keeps a copy with the instance). */
export type InstanceFlavor = Flavor;

export interface Fault { code: number; message: string; details?: string; created: string }

export interface Instance {
  uuid: string;
  id: number;
  name: string;
  description: string | null;
  hostname: string;
  projectId: string;
  userId: string;
  imageRef: string;
  flavor: InstanceFlavor;
  host: string | null;
  availabilityZone: string | null;
  vmState: VmState;
  taskState: TaskState | null;
  powerState: number;
  keyName: string | null;
  keyData: string | null;
  userData: string | null;
  configDrive: string;
  accessIPv4: string;
  accessIPv6: string;
  /** What the create asked for: no NIC, the user-mode NAT NIC (no tenant network to use), or Neutron ports. */
  networks: 'none' | 'auto' | ResolvedNic[];
  /** The instance's ports as last seen (Nova's network info cache). */
  vifs: VifInfo[];
  sshPort: number | null;
  locked: boolean;
  lockedBy: 'owner' | 'admin' | null;
  lockedReason: string | null;
  serverGroupId: string | null;
  reservationId: string;
  launchIndex: number;
  progress: number;
  fault: Fault | null;
  metadata: Record<string, string>;
  tags: string[];
  /** Its volumes (block device mappings with a volume), in attach order: os-extended-volumes:volumes_attached. */
  volumes: { volumeId: string; deleteOnTermination: boolean; bootIndex: number | null }[];
  createdAt: string;
  updatedAt: string;
  launchedAt: string | null;
  terminatedAt: string | null;
  deleted: boolean;
}

export interface Keypair { userId: string; name: string; type: 'ssh' | 'x509'; publicKey: string; fingerprint: string; createdAt: string }

export interface ComputeHost {
  host: string; id: number; uuid: string; serviceUuid: string; hostIp: string; hypervisorType: string;
  hypervisorVersion: number; accel: string; cpuModel: string; arch: string; vcpus: number; memoryMb: number;
  localGb: number; vcpusUsed: number; memoryMbUsed: number; localGbUsed: number; runningVms: number;
  availabilityZone: string; enabled: boolean; disabledReason: string | null; forcedDown: boolean;
  agentVersion: string; lastSeen: string; createdAt: string;
}

export interface ServerGroup { id: string; name: string; projectId: string; userId: string; policy: string; rules: Record<string, number>; members: string[]; createdAt: string }
