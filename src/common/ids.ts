import { randomBytes, randomUUID } from 'node:crypto';

/** Keystone-style resource id: a UUID4 as 32 lowercase hex digits. */
export function newId(): string {
  return randomUUID().replaceAll('-', '');
}

/** A request id in the form OpenStack services use: req-<uuid>. */
export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

/** URL-safe random secret of `bytes` bytes of entropy. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
