import type { Logger } from '../common/logger.ts';

/** Who is calling, as established from a validated token. */
export interface AuthContext {
  token: string;
  userId: string;
  userName: string;
  userDomainId: string;
  /** Exactly one scope at most: a project, a domain or the whole system. */
  projectId?: string;
  projectDomainId?: string;
  domainId?: string;
  system?: boolean;
  roles: string[];
  roleIds: string[];
  methods: string[];
  auditIds: string[];
  issuedAt: number;
  expiresAt: number;
  appCredId?: string;
}

/** Passed down from the HTTP edge through services (and onto the bus) for one request. */
export interface RequestContext {
  requestId: string;
  /** A caller-supplied req-<uuid> that ties requests across services together. */
  globalRequestId?: string;
  log: Logger;
  auth?: AuthContext;
}

/** The API layer's view of token validation; identity implements it and cli/ wires it in. */
export interface TokenValidator {
  /** Returns the caller, or throws Unauthorized (also for revoked and expired tokens). */
  validate(token: string, log: Logger): Promise<AuthContext>;
}
