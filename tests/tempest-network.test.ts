/**
 * Tempest's network API tests (Neutron v2.0) and the network scenario tests that boot
 * guests and SSH into them over floating IPs (Debian's tempest package) against
 * `gureum up` (as root: the external network `public` on br-ex). The extensions tempest
 * may use are exactly those the cloud lists; every tempest.api.network test runs, then the
 * scenario tests named below (guests are gureum-tiny under TCG, so they take a while). The
 * test fails if any test fails that tests/tempest/unsupported-network.txt does not name
 * (features Gureum does not have yet, each with its reason). The tempest workspace
 * (tempest.log with every HTTP request) is kept and its path printed.
 */

import { test } from 'node:test';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { openstack, startCloud } from './helpers/cloud.ts';
import { reportTempest, runTempest } from './helpers/tempest.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;

/**
 * The scenario tests that run beside the API tests (about 4 minutes of the run). Of the
 * rest: the interface-attach ones skip (os-interface is not there yet), test_subnet_details
 * needs the cirros udhcpc pid file gureum-tiny does not keep; the other security-group
 * ones, test_connectivity_between_vms_on_different_networks, test_mtu_sized_frames,
 * test_preserve_preexisting_port and test_dhcp6_stateless_from_os passed when run but
 * would take the run past 10 minutes on 2 cores (GUREUM_TEMPEST_REGEX selects them); the
 * dual-net and multi-prefix IPv6 variants have not been run since router interfaces on
 * SLAAC subnets were fixed.
 */
const SCENARIOS = [
  'test_network_basic_ops\\.TestNetworkBasicOps\\.(test_network_basic_ops|test_update_instance_port_admin_state|test_update_router_admin_state)',
  'test_security_groups_basic_ops\\.TestSecurityGroupsBasicOps\\.(test_in_tenant_traffic|test_cross_tenant_traffic)',
  'test_network_v6\\.TestGettingAddress\\.test_slaac_from_os',
];

test('tempest.api.network and the network scenarios pass except the features listed as unsupported', { timeout: 20 * 60_000 }, async () => {
  // Other all-in-one clouds on this machine run their agents in the root namespace, where
  // each treats every qrouter-/qdhcp- namespace, brq bridge and tap as its own; two
  // simulated hosts (`--hosts 2`) keep this cloud's data plane in its own namespaces, with
  // prefixed names, out of their reach (and test VXLAN between hosts on the way). All of
  // them share br-ex and 172.24.4.0/24: a random slice of the pool keeps this cloud's
  // router gateways and floating IPs apart from theirs (which start at .10).
  const dir = mkdtempSync(join(tmpdir(), 'gureum-test-'));
  const first = 40 + 24 * Math.floor(Math.random() * 8);
  // (in the data directory: sections like external_network are read from there, not from --config)
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'data', 'gureum.yaml'), `external_network:\n  pool: 172.24.4.${first}-172.24.4.${first + 23}\n`);
  const cloud = await startCloud({ dir, extraArgs: ['--hosts', '2'] });
  try {
    const image = (await openstack(cloud.env, 'image', 'show', 'gureum-tiny', '-f', 'json')) as { id: string };
    const pub = (await openstack(cloud.env, 'network', 'show', 'public', '-f', 'json')) as { id: string };
    const ext = (await openstack(cloud.env, 'extension', 'list', '--network', '-f', 'json')) as { Alias: string }[];
    const regex = process.env.GUREUM_TEMPEST_REGEX ??
      `^tempest\\.(api\\.network\\.|scenario\\.(${SCENARIOS.join('|')}))`;
    const r = await runTempest({
      label: 'network', conf: 'tempest-network.conf.in', regex, unsupported: 'unsupported-network.txt',
      vars: {
        ADMIN_PASSWORD: cloud.password, AUTH_URL: cloud.authUrl, IMAGE_REF: image.id, PUBLIC_NETWORK_ID: pub.id,
        EXTENSIONS: ext.map((e) => e.Alias).join(','), IPV6: 'true', INTERFACE_ATTACH: 'false',
      },
      timeoutMs: 16 * 60_000, noSubnetDeleteSleep: true,
    });
    reportTempest(r, 100);
  } finally {
    await cloud.stop();
    await run(join(ROOT, 'bin/gureum'), ['hosts', 'remove', '--data-dir', join(dir, 'data'), '--log-level', 'warn']).catch(() => undefined);
  }
});
