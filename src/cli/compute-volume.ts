import type { AuthContext } from '../api/context.ts';
import { BadRequest, Forbidden, GureumError, NotFound } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { ComputeVolume, VolumeApi } from '../services/compute/volumes.ts';
import * as att from '../services/volume/attachments.ts';
import { serviceAuth, type VolumeService } from '../services/volume/service.ts';
import * as snaps from '../services/volume/snapshots.ts';
import * as store from '../services/volume/store.ts';
import type { VolumeRecord } from '../services/volume/types.ts';
import { frontEndQos } from '../services/volume/volume-types.ts';
import * as vols from '../services/volume/volumes.ts';

/**
 * Cinder as compute sees it (services/compute/volumes.ts), the way Nova's volume/cinder.py
 * drives Cinder with the attachments API: reserve (attachment without connector), connect
 * (the pool exports the volume for the instance's host), complete, and delete (unexport).
 * Boot from volume creates the volume as the instance's project and waits for it.
 * Cinder's errors are reworded the way Nova reports them.
 */

const POLL_MS = 250;

/** Cinder's 413 (quota) is Nova's 403; a 400 stays a 400; 404 is VolumeNotFound. */
function asNova(e: unknown): unknown {
  if (!(e instanceof GureumError)) return e;
  if (e.status === 413) return new Forbidden(e.message);
  if (e.status === 404) return new NotFound(e.message, 'VolumeNotFound');
  if (e.status === 400) return new BadRequest(e.message);
  return e;
}
const nova = async <T>(p: Promise<T>): Promise<T> => { try { return await p; } catch (e) { throw asNova(e); } };

export function computeVolumeApi(svc: VolumeService): VolumeApi {
  const deps = svc.deps;

  async function view(v: VolumeRecord): Promise<ComputeVolume> {
    const atts = await store.attachmentsOf(deps.db, { volumeIds: [v.id] });
    return {
      id: v.id, projectId: v.project_id, name: v.name, status: v.status, size: v.size, bootable: v.bootable, multiattach: v.multiattach,
      availabilityZone: v.availability_zone, imageMetadata: v.image_metadata,
      attachments: atts.filter((a) => a.instance_uuid).map((a) => ({ attachmentId: a.id, instanceUuid: a.instance_uuid!, device: a.mountpoint })),
    };
  }

  /** Wait until a row leaves its transitional statuses; the final record (undefined when gone). */
  async function waitFor<T extends { status: string }>(load: () => Promise<T | undefined>, busy: string[], timeoutMs: number): Promise<T | undefined> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await load();
      if (!r || !busy.includes(r.status)) return r;
      if (Date.now() > until) throw new GureumError(504, `timed out after ${timeoutMs} ms waiting for status other than ${busy.join('/')}, still ${r.status}`);
      await new Promise((res) => setTimeout(res, POLL_MS));
    }
  }

  async function attachment(id: string) {
    const a = await store.getAttachment(deps.db, id);
    if (!a) throw new NotFound(`Volume attachment ${id} could not be found.`, 'VolumeAttachmentNotFound');
    return a;
  }

  return {
    get: (auth: AuthContext, id: string) => nova(vols.visibleVolume(deps, auth, id).then(view)),
    async getInternal(id) { const v = await store.getVolume(deps.db, id); return v ? view(v) : undefined; },
    reserve: (auth, volumeId, instance) => nova((async () => {
      const v = await vols.visibleVolume(deps, auth, volumeId);
      if (v.project_id !== instance.projectId && !auth.roles.includes('admin')) throw new BadRequest(`Volume ${volumeId} belongs to another project.`);
      return (await att.reserve(deps, auth, volumeId, instance.uuid)).id;
    })()),
    connect: (attachmentId, instanceHost, mountpoint, log) => nova((async () => {
      const { a, v, connection } = await att.connect(deps, attachmentId, { host: instanceHost, mountpoint }, mountpoint, log);
      const qos = await frontEndQos(deps, v.volume_type_id);
      return { connection, readonly: a.attach_mode === 'ro', ...(qos ? { qos } : {}) };
    })()),
    complete: async (attachmentId) => { await attachment(attachmentId); await att.complete(deps, attachmentId); },
    beginDetach: async (attachmentId) => nova(attachment(attachmentId).then((a) => att.beginDetach(deps, a.volume_id))),
    rollDetach: async (attachmentId) => nova(attachment(attachmentId).then((a) => att.rollDetach(deps, a.volume_id))),
    deleteAttachment: (attachmentId: string, log: Logger) => nova(att.remove(deps, attachmentId, log)),
    async attachmentsOf(instanceUuid) {
      return (await store.attachmentsOf(deps.db, { instanceUuid })).map((a) => ({ attachmentId: a.id, volumeId: a.volume_id, device: a.mountpoint, status: a.attach_status }));
    },
    createForInstance: (req) => nova((async () => {
      const auth = serviceAuth(req.projectId, req.userId);
      const requestId = `req-bfv-${Date.now()}`;
      const v = await vols.createVolume(svc.ops, { auth, requestId }, {
        size: req.sizeGb, name: req.name, availabilityZone: req.availabilityZone, volumeType: req.volumeType,
        imageRef: req.imageId, snapshotId: req.snapshotId, sourceVolid: req.sourceVolumeId,
      });
      req.log.info({ volume: v.id, size: v.size }, 'boot volume requested');
      const done = await waitFor(() => store.getVolume(deps.db, v.id), ['creating', 'downloading'], req.timeoutMs ?? deps.cfg.longOperationTimeoutMs);
      if (!done || done.status !== 'available') throw new BadRequest(`Volume ${v.id} did not become available: ${done?.fail_reason ?? done?.status ?? 'deleted'}`);
      return v.id;
    })()),
    async delete(volumeId, log) {
      const v = await store.getVolume(deps.db, volumeId);
      if (!v || v.status === 'deleting') return;
      await nova(vols.deleteVolume(svc.ops, { auth: serviceAuth(v.project_id), requestId: `req-dot-${volumeId}` }, volumeId, { cascade: false, force: false }));
      log.info({ volume: volumeId }, 'volume deleted on instance termination');
    },
    snapshot: (volumeId, name, log) => nova((async () => {
      const v = await store.getVolume(deps.db, volumeId);
      if (!v) throw new NotFound(`Volume ${volumeId} could not be found.`, 'VolumeNotFound');
      const s = await snaps.createSnapshot(svc.ops, { auth: serviceAuth(v.project_id), requestId: `req-snap-${volumeId}` }, { volumeId, name, force: true }, true);
      const done = await waitFor(() => store.getSnapshot(deps.db, s.id), ['creating'], deps.cfg.longOperationTimeoutMs);
      if (!done || done.status !== 'available') throw new BadRequest(`Snapshot ${s.id} of volume ${volumeId} failed: ${done?.fail_reason ?? 'deleted'}`);
      log.info({ volume: volumeId, snapshot: s.id }, 'volume snapshot taken');
      return { snapshotId: s.id, size: done.size };
    })()),
  };
}
