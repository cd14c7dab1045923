import { BadRequest } from '../../common/errors.ts';

/**
 * Disk-format inspection of uploaded data, in the spirit of Glance's format inspector:
 * the bytes must be what the image claims to be, and a qcow2 image must not point
 * outside itself (a backing file or an external data file could make a hypervisor read
 * any host path). Works on the first HEAD_BYTES and the last TAIL_BYTES of the data,
 * which the store keeps while streaming, so nothing is buffered whole.
 */
export const HEAD_BYTES = 64 * 1024;
export const TAIL_BYTES = 512;

export interface Sample { head: Buffer; tail: Buffer; size: number }

const QCOW2_MAGIC = 0x514649fb;
const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;

/** What the data looks like, independent of the claim (null: no known signature). */
export function detectFormat(s: Sample): string | null {
  const h = s.head;
  if (h.length >= 4 && h.readUInt32BE(0) === QCOW2_MAGIC) return 'qcow2';
  if (h.length >= 4 && h.toString('latin1', 0, 4) === 'KDMV') return 'vmdk';
  if (h.length >= 8 && h.toString('latin1', 0, 8) === 'vhdxfile') return 'vhdx';
  if (h.length >= 0x44 && h.readUInt32LE(0x40) === 0xbeda107f) return 'vdi';
  if (s.tail.length >= 512 && s.tail.toString('latin1', s.tail.length - 512, s.tail.length - 504) === 'conectix') return 'vhd';
  if (h.length >= 0x8006 && h.toString('latin1', 0x8001, 0x8006) === 'CD001') return 'iso';
  return null;
}

/** Virtual (guest-visible) size in bytes per format, or null when unknown. */
function virtualSize(format: string, s: Sample): number | null {
  const h = s.head;
  switch (format) {
    case 'raw': return s.size;
    case 'qcow2': return h.length >= 32 ? Number(h.readBigUInt64BE(24)) : null;
    case 'vmdk': return h.length >= 20 ? Number(h.readBigUInt64LE(12)) * 512 : null;
    case 'vdi': return h.length >= 0x178 ? Number(h.readBigUInt64LE(0x170)) : null;
    case 'vhd': return s.tail.length >= 512 ? Number(s.tail.readBigUInt64BE(s.tail.length - 512 + 48)) : null;
    case 'iso': {
      // Primary volume descriptor at 0x8000: volume space size (LE u32 at +80) x logical block size (LE u16 at +128).
      if (h.length < 0x8000 + 132) return s.size;
      return h.readUInt32LE(0x8000 + 80) * h.readUInt16LE(0x8000 + 128);
    }
    default: return null;
  }
}

/**
 * Check data against its claimed disk format; returns its virtual size. Throws
 * BadRequest (Glance reports an image whose data does not match as a 400).
 */
export function inspect(claimed: string | null, s: Sample): number | null {
  const seen = detectFormat(s);
  switch (claimed) {
    case 'qcow2': {
      if (seen !== 'qcow2') throw new BadRequest('Image data does not match disk_format: not a qcow2 image.', 'InvalidImageData');
      const h = s.head;
      if (h.length < 72) throw new BadRequest('Image data is a truncated qcow2 header.', 'InvalidImageData');
      const version = h.readUInt32BE(4);
      if (version !== 2 && version !== 3) throw new BadRequest(`Unsupported qcow2 version ${version}.`, 'InvalidImageData');
      const backingOffset = h.readBigUInt64BE(8);
      if (backingOffset !== 0n) {
        throw new BadRequest('QCOW2 images with a backing file are not allowed: the backing file could reference a host path.', 'InvalidImageData');
      }
      if (version === 3 && h.length >= 80 && (h.readBigUInt64BE(72) & QCOW2_INCOMPAT_DATA_FILE) !== 0n) {
        throw new BadRequest('QCOW2 images with an external data file are not allowed.', 'InvalidImageData');
      }
      const cluster = h.readUInt32BE(20);
      if (cluster < 9 || cluster > 21) throw new BadRequest('Invalid qcow2 cluster size.', 'InvalidImageData');
      break;
    }
    case 'vmdk': case 'vhdx': case 'vdi': case 'vhd': case 'iso':
      if (seen !== claimed) throw new BadRequest(`Image data does not match disk_format: not a ${claimed} image.`, 'InvalidImageData');
      break;
    case 'raw':
      // Raw data that is really a qcow2 with a backing file would be safe as raw, but it
      // means the caller mislabeled it; Glance's inspector reports the mismatch too.
      if (seen === 'qcow2') throw new BadRequest('Image data does not match disk_format: raw image data is a qcow2 image.', 'InvalidImageData');
      break;
    default:
      break;
  }
  return claimed ? virtualSize(claimed, s) : null;
}
