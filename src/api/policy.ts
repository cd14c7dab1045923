import { Forbidden, Unauthorized } from '../common/errors.ts';
import type { AuthContext } from './context.ts';

/**
 * The policy engine: one table of named rules for every API, each a small predicate
 * over the caller's credentials and the target of the action. Defaults follow
 * OpenStack's: admin anywhere; member/reader on their own project; owners on their
 * own credentials. Services add their rules with `definePolicies`.
 */
export type Target = Record<string, string | boolean | null | undefined>;
export type Rule = (cred: AuthContext, target: Target) => boolean;

const rules = new Map<string, Rule>();

export function definePolicies(table: Record<string, Rule>): void {
  for (const [name, rule] of Object.entries(table)) {
    if (rules.has(name)) throw new Error(`policy ${name} defined twice`);
    rules.set(name, rule);
  }
}

export function isAllowed(cred: AuthContext, action: string, target: Target = {}): boolean {
  const rule = rules.get(action);
  if (!rule) throw new Error(`no policy rule named ${action}`);
  return rule(cred, target);
}

/** Throws 401 when there is no caller and 403 when the rule says no. */
export function enforce(cred: AuthContext | undefined, action: string, target: Target = {}): AuthContext {
  if (!cred) throw new Unauthorized();
  if (!isAllowed(cred, action, target)) {
    throw new Forbidden(`You are not authorized to perform the requested action: ${action}.`);
  }
  return cred;
}

export function hasPolicy(action: string): boolean { return rules.has(action); }

// Building blocks.
export const admin: Rule = (c) => c.roles.includes('admin');
export const reader: Rule = (c) => c.roles.includes('reader') || c.roles.includes('member') || c.roles.includes('admin');
export const member: Rule = (c) => c.roles.includes('member') || c.roles.includes('admin');
export const systemReader: Rule = (c) => c.system === true && reader(c, {});
export const anyOf = (...rs: Rule[]): Rule => (c, t) => rs.some((r) => r(c, t));
export const allOf = (...rs: Rule[]): Rule => (c, t) => rs.every((r) => r(c, t));
export const always: Rule = () => true;
/** The caller is the user named by target[field]. */
export const owner = (field = 'user_id'): Rule => (c, t) => t[field] !== undefined && t[field] === c.userId;
/** The caller's token is scoped to the project named by target[field]. */
export const ownProject = (field = 'project_id'): Rule => (c, t) => c.projectId !== undefined && t[field] === c.projectId;
/** The caller's token is scoped to the domain named by target[field]. */
export const ownDomain = (field = 'domain_id'): Rule => (c, t) => c.domainId !== undefined && t[field] === c.domainId;
