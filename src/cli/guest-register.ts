import { createHash } from 'node:crypto';
import { createReadStream, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthContext } from '../api/context.ts';
import type { Logger } from '../common/logger.ts';
import type { ImageService } from '../services/image/service.ts';
import type { ImageRecord } from '../services/image/types.ts';
import type { GuestImages } from './guest-images.ts';

async function sha512(path: string): Promise<string> {
  const h = createHash('sha512');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Register the built-in guest images as public Glance images, once per build:
 *   gureum-tiny-kernel (aki), gureum-tiny-ramdisk (ari), gureum-tiny (ami: an empty
 *   root disk with kernel_id/ramdisk_id — the direct-kernel-boot fast path), and
 *   gureum-tiny-disk (qcow2 whole-disk image booted through BIOS).
 * A rebuilt guest (different bytes) replaces the earlier registration.
 */
export async function registerGuestImages(images: ImageService, admin: AuthContext, guest: GuestImages, log: Logger): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const current = async (name: string, file: string, properties: Record<string, string>): Promise<ImageRecord | undefined> => {
    const want = await sha512(file);
    let found: ImageRecord | undefined;
    for (const img of await images.findByName(name)) {
      const same = img.status === 'active' && img.os_hash_value === want && Object.entries(properties).every(([k, v]) => img.properties[k] === v);
      if (same && !found) found = img;
      else if (img.owner === admin.projectId) {
        await images.updateImage(admin, img.id, [{ op: 'replace', path: '/protected', value: false }]).catch(() => undefined);
        await images.deleteImage(admin, img.id).catch((err: unknown) => log.warn({ image: img.id, err: (err as Error).message }, 'could not remove an outdated guest image'));
      }
    }
    return found;
  };
  const register = async (name: string, file: string, diskFormat: string, containerFormat: string, properties: Record<string, string> = {}) => {
    const have = await current(name, file, properties);
    if (have) return have.id;
    const img = await images.createImage(admin, { name, visibility: 'public', disk_format: diskFormat, container_format: containerFormat, properties, protected: true });
    await images.uploadImage(admin, img.id, createReadStream(file));
    log.info({ name, image: img.id }, 'registered guest image');
    return img.id;
  };
  out['gureum-tiny-kernel'] = await register('gureum-tiny-kernel', guest.vmlinux, 'aki', 'aki', { os_distro: 'debian', kernel_version: guest.kernelVersion });
  out['gureum-tiny-ramdisk'] = await register('gureum-tiny-ramdisk', guest.initramfs, 'ari', 'ari', { os_distro: 'debian' });
  // The AMI: a small empty root disk; the guest runs from its ramdisk and never needs more.
  const scratch = mkdtempSync(join(tmpdir(), 'gureum-ami-'));
  try {
    const root = join(scratch, 'root.img');
    writeFileSync(root, Buffer.alloc(1024 * 1024));
    out['gureum-tiny'] = await register('gureum-tiny', root, 'ami', 'ami', {
      kernel_id: out['gureum-tiny-kernel'], ramdisk_id: out['gureum-tiny-ramdisk'], os_distro: 'debian', hw_machine_type: 'microvm',
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  out['gureum-tiny-disk'] = await register('gureum-tiny-disk', guest.disk, 'qcow2', 'bare', { os_distro: 'debian', hw_machine_type: 'pc' });
  return out;
}
