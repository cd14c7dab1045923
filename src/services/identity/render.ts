import type { FastifyRequest } from 'fastify';
import type { AppCred, CatalogService, Credential, Domain, Endpoint, Group, Project, Region, Role, User } from './types.ts';

/** Keystone's JSON shapes for each resource; `base` is the /v3 URL the client used. */
export function v3Base(req: FastifyRequest): string {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol;
  const mount = req.url.startsWith('/identity/') ? '/identity' : '';
  return `${proto}://${req.headers.host ?? 'localhost'}${mount}/v3`;
}

export function collectionLinks(req: FastifyRequest): { self: string; previous: null; next: null } {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol;
  return { self: `${proto}://${req.headers.host ?? 'localhost'}${req.url}`, previous: null, next: null };
}

export const renderDomain = (base: string, d: Domain) => ({
  ...d.extra, id: d.id, name: d.name, description: d.description, enabled: d.enabled, tags: [], options: {},
  links: { self: `${base}/domains/${d.id}` },
});

/** A domain seen through the projects API, as Keystone shows domains (projects acting as domains). */
export const renderDomainAsProject = (base: string, d: Domain) => ({
  ...d.extra, id: d.id, name: d.name, domain_id: null, parent_id: null, description: d.description, enabled: d.enabled,
  is_domain: true, tags: [], options: {}, links: { self: `${base}/projects/${d.id}` },
});

export const renderProject = (base: string, p: Project) => ({
  ...p.extra, id: p.id, name: p.name, domain_id: p.domain_id, parent_id: p.parent_id ?? p.domain_id, description: p.description,
  enabled: p.enabled, is_domain: false, tags: p.tags, options: {}, links: { self: `${base}/projects/${p.id}` },
});

export const renderUser = (base: string, u: User) => {
  const out: Record<string, unknown> = {
    ...u.extra, id: u.id, name: u.name, domain_id: u.domain_id, enabled: u.enabled, password_expires_at: null, options: {},
    links: { self: `${base}/users/${u.id}` },
  };
  if (u.default_project_id) out.default_project_id = u.default_project_id;
  return out;
};

export const renderGroup = (base: string, g: Group) => ({
  ...g.extra, id: g.id, name: g.name, domain_id: g.domain_id, description: g.description, links: { self: `${base}/groups/${g.id}` },
});

export const renderRole = (base: string, r: Role) => ({
  ...r.extra, id: r.id, name: r.name, domain_id: r.domain_id, description: r.description, options: {}, links: { self: `${base}/roles/${r.id}` },
});

export const roleRef = (base: string, r: Role) => ({ id: r.id, name: r.name, links: { self: `${base}/roles/${r.id}` } });

export const renderRegion = (base: string, r: Region) => ({
  ...r.extra, id: r.id, description: r.description, parent_region_id: r.parent_region_id, links: { self: `${base}/regions/${r.id}` },
});

export const renderService = (base: string, s: CatalogService) => ({
  ...s.extra, id: s.id, type: s.type, name: s.name, description: s.description, enabled: s.enabled, links: { self: `${base}/services/${s.id}` },
});

export const renderEndpoint = (base: string, e: Endpoint) => ({
  ...e.extra, id: e.id, interface: e.interface, region: e.region_id, region_id: e.region_id, service_id: e.service_id, url: e.url,
  enabled: e.enabled, links: { self: `${base}/endpoints/${e.id}` },
});

export const renderAppCred = (base: string, a: AppCred) => ({
  id: a.id, name: a.name, user_id: a.user_id, project_id: a.project_id, description: a.description, expires_at: a.expires_at,
  unrestricted: a.unrestricted, roles: a.roles, access_rules: [], system: null,
  links: { self: `${base}/users/${a.user_id}/application_credentials/${a.id}` },
});

export const renderCredential = (base: string, c: Credential) => ({
  ...c.extra, id: c.id, user_id: c.user_id, project_id: c.project_id, type: c.type, blob: c.blob, links: { self: `${base}/credentials/${c.id}` },
});

export function renderEc2(base: string, c: Credential) {
  const blob = JSON.parse(c.blob) as { access: string; secret: string; trust_id?: string | null };
  return {
    user_id: c.user_id, tenant_id: c.project_id, access: blob.access, secret: blob.secret, trust_id: blob.trust_id ?? null,
    links: { self: `${base}/users/${c.user_id}/credentials/OS-EC2/${blob.access}` },
  };
}
