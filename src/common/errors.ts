/**
 * Domain errors carry an HTTP status and a human message; each API formats them in
 * its own OpenStack shape (see api/errors.ts). Nothing here knows about HTTP framing.
 */
export class GureumError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Machine-readable kind, e.g. "NetworkNotFound" for APIs that report one. */
    readonly kind?: string,
    /** Extra headers the API must send with the error (e.g. WWW-Authenticate). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequest extends GureumError {
  constructor(message: string, kind?: string) { super(400, message, kind); }
}
export class Unauthorized extends GureumError {
  constructor(message = 'The request you have made requires authentication.') { super(401, message); }
}
export class Forbidden extends GureumError {
  constructor(message = 'You are not authorized to perform the requested action.') { super(403, message); }
}
export class NotFound extends GureumError {
  constructor(message: string, kind?: string) { super(404, message, kind); }
}
export class Conflict extends GureumError {
  constructor(message: string, kind?: string) { super(409, message, kind); }
}
export class PayloadTooLarge extends GureumError {
  constructor(message = 'Request is too large.') { super(413, message); }
}
export class NotAcceptable extends GureumError {
  constructor(message: string) { super(406, message); }
}

export const HTTP_TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 409: 'Conflict', 412: 'Precondition Failed',
  413: 'Request Entity Too Large', 415: 'Unsupported Media Type', 500: 'Internal Server Error',
  501: 'Not Implemented', 503: 'Service Unavailable',
};
