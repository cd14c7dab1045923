import { GureumError, HTTP_TITLES } from '../common/errors.ts';

/** Each OpenStack API reports errors in its own JSON shape; a formatter builds that body. */
export type ErrorFormatter = (status: number, message: string, kind?: string) => unknown;

/** Keystone: {"error": {"code": 404, "title": "Not Found", "message": "..."}} */
export const keystoneError: ErrorFormatter = (status, message) => ({
  error: { code: status, title: HTTP_TITLES[status] ?? 'Error', message },
});

export interface NormalizedError { status: number; message: string; kind?: string; headers?: Record<string, string> }

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
  validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
}

/**
 * Turn anything thrown while serving a request into a status + safe message. Unknown
 * errors become a 500 whose message reveals nothing internal.
 */
export function normalizeError(err: unknown): NormalizedError {
  if (err instanceof GureumError) return { status: err.status, message: err.message, kind: err.kind, headers: err.headers };
  const e = (err ?? {}) as FastifyLikeError;
  if (e.validation && e.validation.length > 0) {
    const v = e.validation[0]!;
    const field = (v.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.') ||
      String(v.params?.missingProperty ?? v.params?.additionalProperty ?? e.validationContext ?? 'body');
    const extra = v.params?.additionalProperty ? ` ('${String(v.params.additionalProperty)}' was unexpected)` : '';
    return { status: 400, message: `Invalid input for field '${field}': ${v.message ?? 'invalid'}${extra}`, kind: 'ValidationError' };
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    switch (e.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return { status: 400, message: 'Malformed request body: the body is not valid JSON.' };
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return { status: 413, message: 'Request is too large.' };
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return { status: 415, message: 'The request media type is not supported; send application/json.' };
      default:
        if (e instanceof SyntaxError) return { status: 400, message: 'Malformed request body: the body is not valid JSON.' };
        return { status, message: e.message ?? HTTP_TITLES[status] ?? 'Bad Request' };
    }
  }
  return { status: 500, message: 'An unexpected error prevented the server from fulfilling your request.' };
}
