import type { AuthContext, RequestContext } from '../../../api/context.ts';
import type { ComputeService } from '../service.ts';
import './policy.ts';

/**
 * createBackup: a snapshot tagged image_type=backup with its backup_type; once it is
 * uploaded, the server's backups of that type beyond the newest `rotation` are deleted
 * (rotation 0 keeps none, as Nova does).
 */
export async function createBackup(svc: ComputeService, ctx: RequestContext, auth: AuthContext, uuid: string,
  a: { name: string; backupType: string; rotation: number; metadata: Record<string, string> }): Promise<string> {
  const rotate = async () => {
    const mine = (await svc.images.list(auth)).filter((i) =>
      i.properties.instance_uuid === uuid && i.properties.image_type === 'backup' && i.properties.backup_type === a.backupType);
    mine.sort((x, y) => y.createdAt.localeCompare(x.createdAt) || y.id.localeCompare(x.id));
    for (const old of mine.slice(a.rotation)) {
      await svc.images.delete(auth, old.id).catch((err: unknown) => ctx.log.warn({ image: old.id, err: (err as Error).message }, 'backup rotation could not delete an image'));
      ctx.log.info({ instance: uuid, image: old.id, rotation: a.rotation }, 'old backup rotated out');
    }
  };
  return svc.createImage(ctx, auth, uuid, a.name, a.metadata, { properties: { image_type: 'backup', backup_type: a.backupType }, onUploaded: rotate });
}
