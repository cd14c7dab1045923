import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthContext } from './context.ts';
import { enforce, isAllowed } from './policy.ts';
import '../services/identity/policy.ts';

const cred = (roles: string[], extra: Partial<AuthContext> = {}): AuthContext => ({
  token: 't', userId: 'u1', userName: 'u', userDomainId: 'default', roles, roleIds: roles, methods: ['password'],
  auditIds: ['a'], issuedAt: 0, expiresAt: Date.now() + 1000, projectId: 'p1', ...extra,
});

test('admin may do anything identity defines', () => {
  assert.ok(isAllowed(cred(['admin', 'member', 'reader']), 'identity:create_domain'));
  assert.ok(isAllowed(cred(['admin']), 'identity:delete_user', { user_id: 'someone' }));
});

test('members see their own project and themselves, nothing else', () => {
  const m = cred(['member', 'reader']);
  assert.ok(isAllowed(m, 'identity:get_project', { project_id: 'p1' }));
  assert.ok(!isAllowed(m, 'identity:get_project', { project_id: 'p2' }));
  assert.ok(isAllowed(m, 'identity:get_user', { user_id: 'u1' }));
  assert.ok(!isAllowed(m, 'identity:get_user', { user_id: 'u2' }));
  assert.ok(!isAllowed(m, 'identity:list_users'));
  assert.ok(!isAllowed(m, 'identity:create_role'));
});

test('a system reader reads everything and writes nothing', () => {
  const r = cred(['reader'], { projectId: undefined, system: true });
  assert.ok(isAllowed(r, 'identity:list_users'));
  assert.ok(isAllowed(r, 'identity:get_project', { project_id: 'p9' }));
  assert.ok(!isAllowed(r, 'identity:create_user'));
  assert.ok(!isAllowed(r, 'identity:update_project', { project_id: 'p9' }));
});

test('owners manage their own credentials only', () => {
  const m = cred(['member']);
  assert.ok(isAllowed(m, 'identity:create_application_credential', { user_id: 'u1' }));
  assert.ok(!isAllowed(m, 'identity:create_application_credential', { user_id: 'u2' }));
  assert.ok(isAllowed(m, 'identity:ec2_create_credential', { user_id: 'u1' }));
  assert.ok(!isAllowed(m, 'identity:ec2_list_credentials', { user_id: 'u2' }));
});

test('enforce: 401 without a caller, 403 when refused, unknown rules are a programming error', () => {
  assert.throws(() => enforce(undefined, 'identity:list_users'), { status: 401 });
  assert.throws(() => enforce(cred(['member']), 'identity:list_users'), { status: 403 });
  assert.throws(() => isAllowed(cred(['admin']), 'identity:no_such_rule'), /no policy rule/);
});
