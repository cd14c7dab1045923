/**
 * VM port devices: `tap<port id>`. A device of that name that already exists (a tap QEMU
 * holds, or a test's veth whose peer is in a fake-VM namespace) is plugged as it is:
 * enslaved to the network's bridge, MTU set, up. A missing one is created as a persistent
 * tap (vnet_hdr on, one queue) that QEMU can attach to.
 *
 * A tap no longer listed is removed only when it is a tun device nobody holds (no carrier)
 * that the agent created or that hangs on one of the agent's bridges; otherwise it is only
 * taken off the bridge. The agent never deletes a device a process still uses.
 */
import type { Link } from './ip.ts';
import { attachLines } from './bridge.ts';

export interface PortDeviceSpec { name: string; bridge: string; mtu: number; /** false: keep the device down (admin_state_up false). */ up?: boolean }

export function createTapLine(name: string): string {
  return `tuntap add dev ${name} mode tap vnet_hdr`;
}

/** Lines that plug the port's device (creating a tap when there is none); `created` is set when it creates one. */
export function portLines(want: PortDeviceSpec, have: Link | undefined): { lines: string[]; created: boolean } {
  const up = want.up ?? true;
  if (have) return { lines: attachLines(want.name, want.bridge, want.mtu, have, up), created: false };
  return { lines: [createTapLine(want.name), ...attachLines(want.name, want.bridge, want.mtu, undefined, up)], created: true };
}

export type StaleTapAction = 'delete' | 'detach' | 'leave';

export function staleTapAction(have: Link, createdByAgent: boolean, ownBridges: ReadonlySet<string>): StaleTapAction {
  const onOurs = have.master !== undefined && ownBridges.has(have.master);
  const unusedTun = have.kind === 'tun' && (!have.up || have.noCarrier);
  if (unusedTun && (createdByAgent || onOurs)) return 'delete';
  if (onOurs) return 'detach';
  return 'leave';
}
