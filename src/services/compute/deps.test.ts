import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeSettings } from './deps.ts';

test('compute settings: Nova defaults, Nova names, bad values refused', () => {
  assert.deepEqual(computeSettings(undefined), { shelvedOffloadTimeSec: 0, reclaimInstanceIntervalSec: 0, forceConfigDrive: false });
  assert.deepEqual(computeSettings({ shelved_offload_time: -1, reclaim_instance_interval: 3600, force_config_drive: true }),
    { shelvedOffloadTimeSec: -1, reclaimInstanceIntervalSec: 3600, forceConfigDrive: true });
  assert.throws(() => computeSettings({ shelved_offload_time: -2 }), /shelved_offload_time: expected an integer >= -1/);
  assert.throws(() => computeSettings({ reclaim_instance_interval: '10' }), /reclaim_instance_interval/);
  assert.throws(() => computeSettings({ force_config_drive: 'yes' }), /force_config_drive: expected true or false/);
  assert.throws(() => computeSettings({ shelve_offload_time: 0 }), /unknown setting/);
  assert.throws(() => computeSettings([1]), /expected a mapping/);
});
