import { createHash } from 'node:crypto';
import type { AuthContext, TokenValidator } from '../../api/context.ts';
import { BadRequest, Conflict, Forbidden, NotFound, Unauthorized } from '../../common/errors.ts';
import { newId, newSecret } from '../../common/ids.ts';
import type { Logger } from '../../common/logger.ts';
import { isoNow, isUniqueViolation, type Db } from '../../db/index.ts';
import { hashPassword, verifyPassword } from './password.ts';
import * as store from './store.ts';
import { newAuditId, type TokenCodec, type TokenPayload } from './tokens.ts';
import {
  SYSTEM_TARGET, type AppCred, type Assignment, type Domain, type Project, type RevocationEvent, type Role, type User,
} from './types.ts';

export interface IdentityOptions {
  tokenExpiration: number;
  passwordHashRounds: number;
}

/** What a token stands for, resolved against the current identity data. */
export interface TokenView {
  auth: AuthContext;
  body: TokenBody;
}

export interface NamedRef { id: string; name: string }
export interface TokenBody {
  methods: string[];
  user: { id: string; name: string; domain: NamedRef; password_expires_at: null };
  audit_ids: string[];
  expires_at: string;
  issued_at: string;
  project?: { id: string; name: string; domain: NamedRef };
  is_domain?: boolean;
  domain?: NamedRef;
  system?: { all: true };
  roles?: NamedRef[];
  application_credential?: { id: string; name: string; restricted: boolean };
}

export interface CatalogEntry {
  id: string; type: string; name: string;
  endpoints: { id: string; interface: string; region: string | null; region_id: string | null; url: string }[];
}

/** The body of POST /v3/auth/tokens, after schema validation. */
export interface AuthRequest {
  identity: {
    methods: string[];
    password?: { user: { id?: string; name?: string; domain?: { id?: string; name?: string }; password: string } };
    token?: { id: string };
    application_credential?: { id?: string; name?: string; secret: string; user?: { id?: string; name?: string; domain?: { id?: string; name?: string } } };
  };
  scope?: 'unscoped' | {
    project?: { id?: string; name?: string; domain?: { id?: string; name?: string } };
    domain?: { id?: string; name?: string };
    system?: { all?: boolean };
  };
}

export type Scope = { kind: 'project'; project: Project; domain: Domain } | { kind: 'domain'; domain: Domain } | { kind: 'system' } | { kind: 'none' };

const SYSTEM_ROLE_TYPES = ['UserSystem', 'GroupSystem'] as const;
const iso = (ms: number): string => isoNow(new Date(ms));
/** Epoch ms of a stored UTC time, with or without its trailing Z. */
const utcMs = (s: string): number => Date.parse(/Z$|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`);

/**
 * Keystone v3 rules: authentication, scoping, effective roles, tokens and their
 * revocation, and the writes that must revoke. Routes call this after policy checks.
 */
export class IdentityService implements TokenValidator {
  /** Bumped on every identity write; cached token views from older generations are rebuilt. */
  private generation = 0;
  private readonly tokenCache = new Map<string, { gen: number; view: TokenView }>();
  private revocations: RevocationEvent[] = [];
  private catalogCache: { gen: number; entries: CatalogEntry[] } | null = null;
  private filterCache: { gen: number; projects: Set<string>; byProject: Map<string, string[]> } | null = null;
  private readonly listeners: ((kind: string) => void)[] = [];
  private keysSeen = -1;
  /** Reads of identity rows, kept until the next write (the same rule as the token cache). */
  private reads = { gen: -1, map: new Map<string, Promise<unknown>>() };

  constructor(
    readonly db: Db,
    private readonly codec: TokenCodec,
    private readonly opts: IdentityOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const cutoff = iso(Date.now() - (this.opts.tokenExpiration + 3600) * 1000);
    await store.pruneRevocations(this.db, cutoff);
    this.revocations = await store.listRevocations(this.db);
  }

  /** Called after any identity write (locally or, through the bus, on another controller). */
  onChange(fn: (kind: string) => void): void { this.listeners.push(fn); }

  /** Another controller changed identity data: forget cached views and re-read revocations. */
  async refreshFromPeer(): Promise<void> {
    this.generation++;
    await this.loadNewRevocations();
  }

  /**
   * Call after every committed identity write: cached token views are dropped, revocation
   * events the write committed are loaded (the database is their only source, so an event
   * of a rolled-back transaction never takes effect), and other controllers are told.
   */
  async changed(kind: string): Promise<void> {
    this.generation++;
    if (this.tokenCache.size > 50_000) this.tokenCache.clear();
    await this.loadNewRevocations();
    this.generation++;
    for (const l of this.listeners) l(kind);
  }

  private async loadNewRevocations(): Promise<void> {
    const last = this.revocations.at(-1)?.revoked_at;
    const known = new Set(this.revocations.filter((e) => e.revoked_at === last).map((e) => e.id));
    const fresh = await store.listRevocations(this.db, last);
    this.revocations.push(...fresh.filter((e) => !known.has(e.id)));
  }

  async revoke(e: Partial<Omit<RevocationEvent, 'id' | 'revoked_at' | 'issued_before'>>, db: Db = this.db): Promise<void> {
    const now = isoNow();
    const ev: RevocationEvent = {
      id: newId(), user_id: e.user_id ?? null, project_id: e.project_id ?? null, domain_id: e.domain_id ?? null,
      audit_id: e.audit_id ?? null, audit_chain_id: e.audit_chain_id ?? null, role_id: e.role_id ?? null,
      app_cred_id: e.app_cred_id ?? null, issued_before: now, revoked_at: now,
    };
    await store.insertRevocation(db, ev);
  }

  private memo<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (this.reads.gen !== this.generation || this.reads.map.size > 100_000) this.reads = { gen: this.generation, map: new Map() };
    let p = this.reads.map.get(key) as Promise<T> | undefined;
    if (!p) {
      p = load();
      this.reads.map.set(key, p);
      p.catch(() => this.reads.map.delete(key));
    }
    return p;
  }
  private user(id: string) { return this.memo(`u:${id}`, () => store.getUser(this.db, id)); }
  private domain(id: string) { return this.memo(`d:${id}`, () => store.getDomain(this.db, id)); }
  private project(id: string) { return this.memo(`p:${id}`, () => store.getProject(this.db, id)); }
  private roles() { return this.memo('roles', () => store.allRoles(this.db)); }
  private impliedRules() { return this.memo('implied', () => store.listImplied(this.db)); }
  private appCred(id: string) { return this.memo(`a:${id}`, () => store.getAppCred(this.db, id)); }

  // ---- authentication -------------------------------------------------------------

  async authenticate(req: AuthRequest, opts: { nocatalog?: boolean } = {}): Promise<{ token: string; view: TokenView; catalog?: CatalogEntry[] }> {
    const methods = req.identity.methods;
    if (!Array.isArray(methods) || methods.length === 0) throw new BadRequest('Invalid input for field identity/methods: at least one method is required.');
    for (const m of methods) {
      if (!['password', 'token', 'application_credential'].includes(m)) throw new Unauthorized(`Attempted to authenticate with an unsupported method.`);
      if (!req.identity[m as 'password']) throw new BadRequest(`Invalid input for field identity/${m}: the method is listed but its data is missing.`);
    }
    let user: User | undefined;
    let prior: TokenPayload | undefined;
    let appCred: AppCred | undefined;
    const now = Date.now();
    for (const m of methods) {
      let u: User;
      if (m === 'password') {
        u = await this.passwordAuth(req.identity.password!.user);
      } else if (m === 'token') {
        const p = await this.openValid(req.identity.token!.id);
        if (!p) throw new Unauthorized('Could not validate the token: it is invalid, expired or revoked.');
        if (p.c) throw new Forbidden('An application credential token cannot be used to create another token.');
        prior = p;
        u = await this.requireActiveUser(p.u);
      } else {
        appCred = await this.appCredAuth(req.identity.application_credential!);
        u = await this.requireActiveUser(appCred.user_id);
      }
      if (user && user.id !== u.id) throw new Unauthorized('All authentication methods must identify the same user.');
      user = u;
    }
    if (!user) throw new Unauthorized();

    let scope: Scope;
    if (appCred) {
      if (req.scope && req.scope !== 'unscoped' && (req.scope.domain || req.scope.system ||
        (req.scope.project && req.scope.project.id !== undefined && req.scope.project.id !== appCred.project_id))) {
        throw new Unauthorized('Application credentials cannot request a scope.');
      }
      scope = await this.projectScope({ id: appCred.project_id });
    } else if (req.scope === 'unscoped') {
      scope = { kind: 'none' };
    } else if (req.scope) {
      const s = req.scope;
      const n = [s.project, s.domain, s.system].filter((x) => x !== undefined).length;
      if (n > 1) throw new BadRequest('Specify at most one of project, domain and system as the scope.');
      if (s.project) scope = await this.projectScope(s.project);
      else if (s.domain) scope = await this.domainScope(s.domain);
      else if (s.system) {
        if (s.system.all !== true) throw new BadRequest('Invalid system scope: only {"all": true} is supported.');
        scope = { kind: 'system' };
      } else scope = { kind: 'none' };
    } else if (prior) {
      scope = { kind: 'none' };
    } else {
      scope = { kind: 'none' };
      // Keystone scopes to the user's default project when it can.
      if (user.default_project_id) {
        const p = await store.getProject(this.db, user.default_project_id);
        const d = p && (await store.getDomain(this.db, p.domain_id));
        if (p && d && p.enabled && d.enabled && (await this.roleIdsFor(user.id, { kind: 'project', project: p, domain: d })).length > 0) {
          scope = { kind: 'project', project: p, domain: d };
        }
      }
    }
    if (scope.kind !== 'none') {
      const roles = await this.roleIdsFor(user.id, scope);
      if (roles.length === 0) {
        throw new Unauthorized(scope.kind === 'project' ? `User ${user.id} has no access to project ${scope.project.id}`
          : scope.kind === 'domain' ? `User ${user.id} has no access to domain ${scope.domain.id}` : `User ${user.id} has no access to the system`);
      }
      if (appCred && !appCred.roles.some((r) => roles.includes(r.id))) {
        throw new Unauthorized('The application credential\'s roles are no longer assigned to the user.');
      }
    }

    const auditId = newAuditId();
    const payload: TokenPayload = {
      u: user.id,
      m: prior ? [...new Set(['token', ...prior.m])] : [...new Set(methods)],
      i: now,
      e: prior ? prior.e : now + this.opts.tokenExpiration * 1000,
      a: prior ? [auditId, prior.a.at(-1)!] : [auditId],
    };
    if (appCred) {
      payload.c = appCred.id;
      if (appCred.expires_at) payload.e = Math.min(payload.e, utcMs(appCred.expires_at));
    }
    if (scope.kind === 'project') payload.p = scope.project.id;
    else if (scope.kind === 'domain') payload.d = scope.domain.id;
    else if (scope.kind === 'system') payload.s = 1;
    const gen = this.generation;
    const token = this.codec.issue(payload);
    const view = await this.buildView(token, payload);
    if (!view) throw new Unauthorized();
    // The first validation of a new token needs no database read either.
    if (gen === this.generation) this.tokenCache.set(token, { gen, view });
    return { token, view, catalog: opts.nocatalog || scope.kind === 'none' ? undefined : await this.catalog(view.auth.projectId) };
  }

  private async passwordAuth(u: { id?: string; name?: string; domain?: { id?: string; name?: string }; password: string }): Promise<User> {
    let user: User | undefined;
    if (u.id !== undefined) user = await store.getUser(this.db, u.id);
    else if (u.name !== undefined) {
      if (!u.domain || (u.domain.id === undefined && u.domain.name === undefined)) {
        throw new BadRequest('Invalid input for field identity/password/user: a user name needs a domain.');
      }
      const d = u.domain.id !== undefined ? await store.getDomain(this.db, u.domain.id) : await store.getDomainByName(this.db, u.domain.name!);
      user = d && (await store.getUserByName(this.db, d.id, u.name));
    } else throw new BadRequest('Invalid input for field identity/password/user: give an id, or a name and a domain.');
    const ok = await verifyPassword(u.password, user?.password_hash ?? null, this.opts.passwordHashRounds);
    if (!user || !ok) throw new Unauthorized('The request you have made requires authentication.');
    return this.requireActiveUser(user.id, user);
  }

  private async appCredAuth(a: NonNullable<AuthRequest['identity']['application_credential']>): Promise<AppCred> {
    let cred: AppCred | undefined;
    if (a.id !== undefined) cred = await store.getAppCred(this.db, a.id);
    else if (a.name !== undefined && a.user) {
      let userId = a.user.id;
      if (userId === undefined && a.user.name !== undefined && a.user.domain) {
        const d = a.user.domain.id !== undefined ? await store.getDomain(this.db, a.user.domain.id) : await store.getDomainByName(this.db, a.user.domain.name ?? '');
        userId = d && (await store.getUserByName(this.db, d.id, a.user.name))?.id;
      }
      cred = userId ? (await store.listAppCreds(this.db, userId, a.name))[0] : undefined;
    } else throw new BadRequest('Invalid input for field identity/application_credential: give an id, or a name and a user.');
    const ok = await verifyPassword(a.secret, cred?.secret_hash ?? null, this.opts.passwordHashRounds);
    if (!cred || !ok) throw new Unauthorized();
    if (cred.expires_at && utcMs(cred.expires_at) <= Date.now()) throw new Unauthorized('The application credential has expired.');
    return cred;
  }

  private async requireActiveUser(id: string, u?: User): Promise<User> {
    const user = u ?? (await this.user(id));
    if (!user || !user.enabled) throw new Unauthorized();
    const d = await this.domain(user.domain_id);
    if (!d || !d.enabled) throw new Unauthorized();
    return user;
  }

  private async projectScope(p: { id?: string; name?: string; domain?: { id?: string; name?: string } }): Promise<Scope> {
    let project: Project | undefined;
    if (p.id !== undefined) project = await this.project(p.id);
    else if (p.name !== undefined && p.domain) {
      const d = p.domain.id !== undefined ? await store.getDomain(this.db, p.domain.id) : await store.getDomainByName(this.db, p.domain.name ?? '');
      project = d && (await store.getProjectByName(this.db, d.id, p.name));
    } else throw new BadRequest('Invalid input for field scope/project: give an id, or a name and a domain.');
    if (!project) throw new Unauthorized(`Could not find the project to scope to.`);
    const domain = await this.domain(project.domain_id);
    if (!project.enabled || !domain || !domain.enabled) throw new Unauthorized(`The project ${project.id} is disabled.`);
    return { kind: 'project', project, domain };
  }

  private async domainScope(d: { id?: string; name?: string }): Promise<Scope> {
    const domain = d.id !== undefined ? await store.getDomain(this.db, d.id) : d.name !== undefined ? await store.getDomainByName(this.db, d.name) : undefined;
    if (d.id === undefined && d.name === undefined) throw new BadRequest('Invalid input for field scope/domain: give an id or a name.');
    if (!domain || !domain.enabled) throw new Unauthorized('Could not find the domain to scope to, or it is disabled.');
    return { kind: 'domain', domain };
  }

  // ---- tokens ---------------------------------------------------------------------

  /** Decrypts, checks expiry and revocation events; null when the token is not valid. */
  private async openValid(token: string): Promise<TokenPayload | null> {
    const p = this.codec.open(token);
    if (!p || p.e <= Date.now()) return null;
    if (this.isRevoked(p)) return null;
    return p;
  }

  private isRevoked(p: TokenPayload, roleIds: string[] = []): boolean {
    for (const e of this.revocations) {
      if (p.i > Date.parse(e.issued_before)) continue;
      if (e.user_id !== null && e.user_id !== p.u) continue;
      if (e.project_id !== null && e.project_id !== p.p) continue;
      if (e.domain_id !== null && e.domain_id !== p.d) continue;
      if (e.audit_id !== null && e.audit_id !== p.a[0]) continue;
      if (e.audit_chain_id !== null && e.audit_chain_id !== p.a.at(-1)) continue;
      if (e.app_cred_id !== null && e.app_cred_id !== p.c) continue;
      if (e.role_id !== null && !roleIds.includes(e.role_id)) continue;
      return true;
    }
    return false;
  }

  /** TokenValidator for the API layer: the caller behind X-Auth-Token, or 401. */
  async validate(token: string): Promise<AuthContext> {
    const v = await this.view(token);
    if (!v) throw new Unauthorized();
    return v.auth;
  }

  /** The current view of a token (cached until identity data changes), or null when invalid. */
  async view(token: string): Promise<TokenView | null> {
    const hit = this.tokenCache.get(token);
    const keys = this.codec.keysVersion();
    if (keys !== this.keysSeen) {
      // A retired key invalidates the tokens it signed: re-check every cached token.
      this.keysSeen = keys;
      this.generation++;
    }
    if (hit && hit.gen === this.generation) {
      if (hit.view.auth.expiresAt > Date.now()) return hit.view;
      this.tokenCache.delete(token);
      return null;
    }
    const gen = this.generation;
    const p = await this.openValid(token);
    const view = p && (await this.buildView(token, p));
    if (!view) { this.tokenCache.delete(token); return null; }
    if (gen === this.generation) this.tokenCache.set(token, { gen, view });
    return view;
  }

  private async buildView(token: string, p: TokenPayload): Promise<TokenView | null> {
    const user = await this.user(p.u);
    if (!user || !user.enabled) return null;
    const userDomain = await this.domain(user.domain_id);
    if (!userDomain || !userDomain.enabled) return null;
    let scope: Scope = { kind: 'none' };
    if (p.p) {
      const project = await this.project(p.p);
      const domain = project && (await this.domain(project.domain_id));
      if (!project || !domain || !project.enabled || !domain.enabled) return null;
      scope = { kind: 'project', project, domain };
    } else if (p.d) {
      const domain = await this.domain(p.d);
      if (!domain || !domain.enabled) return null;
      scope = { kind: 'domain', domain };
    } else if (p.s) scope = { kind: 'system' };

    let roles: Role[] = [];
    let appCred: AppCred | undefined;
    if (scope.kind !== 'none') {
      let ids = await this.roleIdsFor(user.id, scope);
      if (p.c) {
        appCred = await this.appCred(p.c);
        if (!appCred) return null;
        const allowed = await this.expandImplied(appCred.roles.map((r) => r.id));
        ids = ids.filter((id) => allowed.includes(id));
      }
      if (ids.length === 0) return null;
      if (this.isRevoked(p, ids)) return null;
      const all = new Map((await this.roles()).map((r) => [r.id, r]));
      roles = ids.map((id) => all.get(id)!).filter((r) => r && r.domain_id === null).sort((a, b) => a.name.localeCompare(b.name));
    }

    const body: TokenBody = {
      methods: p.m,
      user: { id: user.id, name: user.name, domain: { id: userDomain.id, name: userDomain.name }, password_expires_at: null },
      audit_ids: p.a,
      expires_at: iso(p.e),
      issued_at: iso(p.i),
    };
    const auth: AuthContext = {
      token, userId: user.id, userName: user.name, userDomainId: user.domain_id, roles: roles.map((r) => r.name),
      roleIds: roles.map((r) => r.id), methods: p.m, auditIds: p.a, issuedAt: p.i, expiresAt: p.e,
    };
    if (scope.kind === 'project') {
      body.project = { id: scope.project.id, name: scope.project.name, domain: { id: scope.domain.id, name: scope.domain.name } };
      body.is_domain = false;
      auth.projectId = scope.project.id;
      auth.projectDomainId = scope.domain.id;
    } else if (scope.kind === 'domain') {
      body.domain = { id: scope.domain.id, name: scope.domain.name };
      auth.domainId = scope.domain.id;
    } else if (scope.kind === 'system') {
      body.system = { all: true };
      auth.system = true;
    }
    if (scope.kind !== 'none') body.roles = roles.map((r) => ({ id: r.id, name: r.name }));
    if (appCred) {
      body.application_credential = { id: appCred.id, name: appCred.name, restricted: !appCred.unrestricted };
      auth.appCredId = appCred.id;
    }
    return { auth, body };
  }

  // ---- roles ----------------------------------------------------------------------

  /** Role ids the user holds on the scope: direct, through groups, inherited, and implied. */
  async roleIdsFor(userId: string, scope: Scope): Promise<string[]> {
    if (scope.kind === 'none') return [];
    const key = scope.kind === 'project' ? scope.project.id : scope.kind === 'domain' ? scope.domain.id : SYSTEM_TARGET;
    return this.memo(`r:${userId}:${scope.kind}:${key}`, () => this.loadRoleIds(userId, scope));
  }

  private async loadRoleIds(userId: string, scope: Exclude<Scope, { kind: 'none' }>): Promise<string[]> {
    const actors = [userId, ...(await store.groupIdsOfUser(this.db, userId))];
    const direct = new Set<string>();
    if (scope.kind === 'system') {
      for (const a of await store.listAssignments(this.db, { actorIds: actors, targetIds: [SYSTEM_TARGET], types: [...SYSTEM_ROLE_TYPES] })) direct.add(a.roleId);
    } else if (scope.kind === 'domain') {
      for (const a of await store.listAssignments(this.db, { actorIds: actors, targetIds: [scope.domain.id], types: ['UserDomain', 'GroupDomain'] })) {
        if (!a.inherited) direct.add(a.roleId);
      }
    } else {
      const ancestors = await this.ancestorIds(scope.project);
      const targets = [scope.project.id, scope.project.domain_id, ...ancestors];
      for (const a of await store.listAssignments(this.db, { actorIds: actors, targetIds: targets, types: ['UserProject', 'GroupProject', 'UserDomain', 'GroupDomain'] })) {
        const onProject = a.targetType === 'Project' && a.targetId === scope.project.id;
        if ((onProject && !a.inherited) || (!onProject && a.inherited)) direct.add(a.roleId);
      }
    }
    return this.expandImplied([...direct]);
  }

  async expandImplied(ids: string[]): Promise<string[]> {
    const rules = await this.impliedRules();
    const out = new Set(ids);
    const queue = [...ids];
    while (queue.length) {
      const r = queue.pop()!;
      for (const rule of rules) {
        if (rule.prior_role_id === r && !out.has(rule.implied_role_id)) {
          out.add(rule.implied_role_id);
          queue.push(rule.implied_role_id);
        }
      }
    }
    return [...out];
  }

  async ancestorIds(project: Project): Promise<string[]> {
    const out: string[] = [];
    let parent = project.parent_id;
    while (parent && out.length < 100) {
      out.push(parent);
      parent = (await this.project(parent))?.parent_id ?? null;
    }
    return out;
  }

  // ---- catalog --------------------------------------------------------------------

  async catalog(projectId?: string): Promise<CatalogEntry[]> {
    if (!this.catalogCache || this.catalogCache.gen !== this.generation) {
      const services = await store.listServices(this.db);
      const endpoints = await store.listEndpoints(this.db);
      const entries = services.filter((s) => s.enabled).map((s) => ({
        id: s.id, type: s.type, name: s.name,
        endpoints: endpoints.filter((e) => e.service_id === s.id && e.enabled)
          .map((e) => ({ id: e.id, interface: e.interface, region: e.region_id, region_id: e.region_id, url: e.url })),
      }));
      this.catalogCache = { gen: this.generation, entries };
    }
    let entries = this.catalogCache.entries;
    const allowed = projectId ? await this.filteredEndpointIds(projectId) : null;
    if (allowed) {
      const ids = new Set(allowed);
      entries = entries.map((s) => ({ ...s, endpoints: s.endpoints.filter((e) => ids.has(e.id)) })).filter((s) => s.endpoints.length > 0);
    }
    if (!entries.some((s) => s.endpoints.some((e) => e.url.includes('$(')))) return entries;
    return entries.map((s) => ({
      ...s,
      endpoints: s.endpoints.flatMap((e) => {
        if (!e.url.includes('$(')) return [e];
        if (!projectId) return [];
        return [{ ...e, url: e.url.replaceAll('$(project_id)s', projectId).replaceAll('$(tenant_id)s', projectId) }];
      }),
    }));
  }

  /**
   * OS-EP-FILTER: the endpoints a project is limited to (direct associations plus those
   * matched by its endpoint groups), or null when it has no associations and sees all.
   * Cached with the catalog, so the common case costs no query.
   */
  async filteredEndpointIds(projectId: string): Promise<string[] | null> {
    if (!this.filterCache || this.filterCache.gen !== this.generation) {
      const direct = await store.endpointProjectPairs(this.db, {});
      const groups = await store.groupProjectPairs(this.db, {});
      this.filterCache = { gen: this.generation, projects: new Set([...direct.map((d) => d.project_id), ...groups.map((g) => g.project_id)]), byProject: new Map() };
    }
    const cache = this.filterCache;
    if (!cache.projects.has(projectId)) return null;
    let ids = cache.byProject.get(projectId);
    if (!ids) {
      const set = new Set((await store.endpointProjectPairs(this.db, { projectId })).map((r) => r.endpoint_id));
      const groupIds = (await store.groupProjectPairs(this.db, { projectId })).map((r) => r.endpoint_group_id);
      for (const g of await store.listEndpointGroups(this.db, { ids: groupIds })) {
        for (const e of await store.listEndpoints(this.db, { service_id: g.filters.service_id, region_id: g.filters.region_id, interface: g.filters.interface })) set.add(e.id);
      }
      ids = [...set];
      cache.byProject.set(projectId, ids);
    }
    return ids;
  }

  // ---- writes that need care --------------------------------------------------------

  async createUser(u: Omit<User, 'password_hash' | 'password_created_at'> & { password?: string | null }): Promise<User> {
    const hash = u.password ? await hashPassword(u.password, this.opts.passwordHashRounds) : null;
    const user: User = { id: u.id, name: u.name, domain_id: u.domain_id, enabled: u.enabled, default_project_id: u.default_project_id, extra: u.extra, password_hash: hash, password_created_at: hash ? isoNow() : null };
    try {
      await store.insertUser(this.db, user, isoNow());
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Duplicate entry found with name ${u.name} at domain ID ${u.domain_id}.`);
      throw err;
    }
    await this.changed('user');
    return user;
  }

  async setPassword(user: User, password: string): Promise<User> {
    user.password_hash = await hashPassword(password, this.opts.passwordHashRounds);
    user.password_created_at = isoNow();
    await this.db.transaction().execute(async (trx) => {
      await store.updateUser(trx, user);
      await this.revoke({ user_id: user.id }, trx);
    });
    await this.changed('user');
    return user;
  }

  async changePassword(userId: string, original: string, password: string): Promise<void> {
    const user = await store.getUser(this.db, userId);
    if (!user) throw new NotFound(`Could not find user: ${userId}.`);
    if (!(await verifyPassword(original, user.password_hash, this.opts.passwordHashRounds))) throw new Unauthorized('The original password was wrong.');
    await this.setPassword(user, password);
  }

  async createAppCred(user: User, a: { name: string; description: string; project_id: string; roleIds: string[]; expires_at: string | null; unrestricted: boolean; secret?: string }): Promise<{ cred: AppCred; secret: string }> {
    const secret = a.secret ?? newSecret(64);
    const all = new Map((await store.allRoles(this.db)).map((r) => [r.id, r]));
    const roles = a.roleIds.map((id) => all.get(id)!).map((r) => ({ id: r.id, name: r.name, domain_id: r.domain_id }));
    const cred: AppCred = {
      id: newId(), name: a.name, user_id: user.id, project_id: a.project_id, description: a.description, expires_at: a.expires_at,
      unrestricted: a.unrestricted, roles, secret_hash: await hashPassword(secret, this.opts.passwordHashRounds),
    };
    try {
      await store.insertAppCred(this.db, cred, isoNow());
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`An application credential named ${a.name} already exists for this user.`);
      throw err;
    }
    await this.changed('app_cred');
    return { cred, secret };
  }

  /** SHA-256 of an EC2 access key, so S3 signature checks can find it by an index. */
  static ec2KeyHash(access: string): string { return createHash('sha256').update(access).digest('hex'); }
}

