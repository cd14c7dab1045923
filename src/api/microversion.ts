import { NotAcceptable } from '../common/errors.ts';

/** A microversion "X.Y" as a comparable pair. */
export interface Microversion { major: number; minor: number }

export function parseMicroversion(s: string): Microversion | null {
  const m = /^(\d+)\.(\d+)$/.exec(s.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

export function compare(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}

export function format(v: Microversion): string { return `${v.major}.${v.minor}`; }

/**
 * Negotiate from `OpenStack-API-Version: <service> X.Y` (or the legacy per-service
 * header). "latest" picks the maximum; absent picks the minimum; outside the range is
 * 406 as Nova and Cinder answer.
 */
export function negotiate(
  headers: Record<string, string | string[] | undefined>,
  service: string,
  min: Microversion,
  max: Microversion,
  legacyHeader?: string,
): Microversion {
  let requested: string | undefined;
  const raw = headers['openstack-api-version'];
  for (const h of (Array.isArray(raw) ? raw : raw ? [raw] : []).flatMap((x) => x.split(','))) {
    const [svc, ver] = h.trim().split(/\s+/, 2);
    if (svc?.toLowerCase() === service && ver) requested = ver;
  }
  if (requested === undefined && legacyHeader) {
    const l = headers[legacyHeader.toLowerCase()];
    if (typeof l === 'string') requested = l;
  }
  if (requested === undefined) return min;
  if (requested.toLowerCase() === 'latest') return max;
  const v = parseMicroversion(requested);
  if (!v) throw new NotAcceptable(`Invalid microversion: ${requested}`);
  if (compare(v, min) < 0 || compare(v, max) > 0) {
    throw new NotAcceptable(`Version ${requested} is not supported by the API. Minimum is ${format(min)} and maximum is ${format(max)}.`);
  }
  return v;
}
