import type { AuthContext, RequestContext } from '../../../api/context.ts';
import { agentSubjects } from '../../../bus/compute.ts';
import { BadRequest, Forbidden } from '../../../common/errors.ts';
import { isoNow } from '../../../db/index.ts';
import { canonicalIPv6, type ComputeService } from '../service.ts';
import * as store from '../store.ts';
import type { Instance } from '../types.ts';
import { askAgent, begin, patchSystemMetadata, runEvent, SHUTDOWN_TIMEOUT_MS, workContext } from './common.ts';
import './policy.ts';

export interface RebuildInput {
  imageRef: string;
  name?: string;
  metadata?: Record<string, string>;
  preserveEphemeral?: boolean;
  accessIPv4?: string;
  accessIPv6?: string;
  /** 2.54: a new key pair; null removes the key. */
  keyName?: string | null;
  /** 2.57: new user data (base64); null removes it. */
  userData?: string | null;
  description?: string | null;
  hostname?: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Rebuild: the server keeps its id, flavor, host, addresses and SSH port and gets a new
 * root disk from the (possibly new) image, new metadata and config drive. A stopped
 * server stays stopped (Nova since Queens); an ERROR server comes back ACTIVE.
 */
export async function rebuild(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string, input: RebuildInput): Promise<Instance> {
  const db = svc.db;
  const current = await svc.get(auth, uuid, 'os_compute_api:servers:rebuild');
  const { image, kernel, ramdisk } = await svc.resolveImage(auth, input.imageRef, current.flavor);
  let keyPatch: store.InstancePatch = {};
  if (input.keyName === null) keyPatch = { key_name: null, key_data: null };
  else if (input.keyName !== undefined) {
    const kp = await store.getKeypair(db, auth.userId, input.keyName);
    if (!kp) throw new BadRequest('Invalid key_name provided.');
    keyPatch = { key_name: kp.name, key_data: kp.publicKey };
  }
  if (typeof input.userData === 'string') {
    const t = input.userData.replace(/\s+/g, '');
    if (t.length % 4 !== 0 || !BASE64.test(t)) throw new BadRequest('Invalid input for field/attribute user_data. Value: the data is not valid base64.');
    if (input.userData.length > 65535) throw new BadRequest('User data too large. User data must be no larger than 65535 bytes once base64 encoded.');
  }
  if (input.metadata) {
    const limit = (await svc.quotas(current.projectId)).metadata_items ?? 128;
    if (limit >= 0 && Object.keys(input.metadata).length > limit) throw new Forbidden(`Quota exceeded for metadata_items: the limit is ${limit}.`);
  }
  const sys = await patchSystemMetadata(svc, uuid, {
    image: JSON.stringify(image), kernel: kernel && JSON.stringify(kernel), ramdisk: ramdisk && JSON.stringify(ramdisk),
  });
  const powerOn = current.vmState !== 'stopped';
  const { inst, actionId } = await begin(svc, ctx, auth, uuid, {
    action: 'rebuild', rule: 'os_compute_api:servers:rebuild', vm: ['active', 'stopped', 'error'], task: 'rebuilding',
    patch: {
      image_ref: image.id, system_metadata: JSON.stringify(sys), fault: null, ...keyPatch,
      ...(input.name !== undefined ? { display_name: input.name } : {}),
      ...(input.description !== undefined ? { display_description: input.description } : {}),
      ...(input.hostname !== undefined ? { hostname: input.hostname } : {}),
      ...(input.accessIPv4 !== undefined ? { access_ip_v4: input.accessIPv4 } : {}),
      ...(input.accessIPv6 !== undefined ? { access_ip_v6: input.accessIPv6 ? canonicalIPv6(input.accessIPv6) : '' } : {}),
      ...(input.userData !== undefined ? { user_data: input.userData } : {}),
    },
  });
  if (input.metadata) {
    await db.transaction().execute(async (tx) => {
      await tx.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).execute();
      for (const [k, v] of Object.entries(input.metadata!)) await tx.insertInto('instance_metadata').values({ instance_uuid: uuid, key: k, value: v }).execute();
    });
  }
  const host = inst.host!;
  const wc = workContext(ctx, auth);
  runEvent(svc, wc, uuid, actionId, 'compute_rebuild_instance', host, async () => {
    const fresh = (await store.getInstance(db, uuid))!;
    const req = await svc.conductor.buildRequest(fresh, image, kernel, ramdisk, auth.token);
    const reply = await askAgent(svc, agentSubjects(host).rebuild, {
      ...req, powerOn, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS, preserveEphemeral: input.preserveEphemeral === true,
    }, wc);
    await store.updateInstance(db, uuid, {
      vm_state: powerOn ? 'active' : 'stopped', task_state: null, power_state: reply.power, launched_at: isoNow(), ssh_port: reply.sshHostPort ?? null,
    }, ['rebuilding']);
    wc.log.info({ instance: uuid, image: image.id }, 'instance rebuilt');
  }, async (msg) => { await svc.conductor.fail(uuid, ['rebuilding'], new Error(`Rebuild failed: ${msg}`)); });
  return (await store.getInstance(db, uuid))!;
}
