import { QmpClient } from '../../src/agent/hypervisor/qemu/qmp.ts';

/** Press the guest's ACPI power button through the product's QMP client. */
export async function powerButton(qmpPath: string): Promise<void> {
  const m = await QmpClient.connect(qmpPath, { timeoutMs: 5000 });
  try { await m.execute('system_powerdown'); } finally { m.close(); }
}
