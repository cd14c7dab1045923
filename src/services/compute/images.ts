import type { AuthContext } from '../../api/context.ts';

/**
 * What compute needs from the image service. The controller wires Glance's in-process
 * ImageService behind this, so compute never imports the image service's internals.
 */
export interface ComputeImage {
  id: string;
  name: string | null;
  status: string;
  diskFormat: string | null;
  containerFormat: string | null;
  size: number | null;
  virtualSize: number | null;
  minDisk: number;
  minRam: number;
  sha512: string | null;
  properties: Record<string, string>;
}

/** An image with the facts Nova's image proxy (/images) shows besides ComputeImage's. */
export interface ProxyImage extends ComputeImage {
  /** ISO 8601 times. */
  createdAt: string;
  updatedAt: string;
}

export interface ImageApi {
  /** The image as the caller may see it; rejects (NotFound) when it does not exist or is invisible. */
  get(auth: AuthContext, id: string): Promise<ComputeImage>;
  /** Where an agent downloads the image's data. */
  fileUrl(id: string): string;
  /** A path on this machine holding the data, when the store is local. */
  localPath(id: string): string | null;
  /** Register a new (queued) image for a snapshot; returns its id. */
  createSnapshot(auth: AuthContext, fields: { name: string; diskFormat: 'qcow2' | 'raw'; properties: Record<string, string>; minDisk: number; minRam: number }): Promise<string>;
  /** The image's status (after a snapshot upload). */
  status(auth: AuthContext, id: string): Promise<string>;
  /** Mark a queued snapshot image failed (killed/deleted) when the snapshot could not be taken. */
  discard(auth: AuthContext, id: string): Promise<void>;
  /** Delete an image as the caller (Glance's rules: 404 when invisible, 403 when not theirs or protected). */
  delete(auth: AuthContext, id: string): Promise<void>;
  /** Every image the caller may see in a default listing (Glance's visibility rules), newest first. */
  list(auth: AuthContext): Promise<ProxyImage[]>;
  /** One image as the caller may see it (NotFound otherwise), with its times. */
  show(auth: AuthContext, id: string): Promise<ProxyImage>;
  /**
   * Replace the image's custom properties with exactly `properties` (keys not named are
   * removed), as the caller (Glance's rules: 403 when not theirs); returns the image after.
   */
  updateProperties(auth: AuthContext, id: string, properties: Record<string, string>): Promise<ProxyImage>;
}
