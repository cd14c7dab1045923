import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { enforce, isAllowed } from '../../../api/policy.ts';
import { BadRequest, Forbidden, NotFound } from '../../../common/errors.ts';
import { newId } from '../../../common/ids.ts';
import { IdentityService } from '../service.ts';
import * as store from '../store.ts';
import { collectionLinks, renderAppCred, renderCredential, renderEc2, v3Base } from '../render.ts';
import type { Credential } from '../types.ts';
import { requireProject, requireUser } from './resources.ts';

/** Application credentials, the /v3/credentials store, and EC2 credentials for S3. */

const AppCredCreate = Type.Object({ application_credential: Type.Object({
  name: Type.String({ minLength: 1, maxLength: 255 }), description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
  secret: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 4096 }), Type.Null()])),
  expires_at: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  roles: Type.Optional(Type.Array(Type.Object({ id: Type.Optional(Type.String()), name: Type.Optional(Type.String()), domain_id: Type.Optional(Type.Union([Type.String(), Type.Null()])) }))),
  unrestricted: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  access_rules: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 0 })),
  project_id: Type.Optional(Type.String()),
}, { additionalProperties: false }) });
const CredentialCreate = Type.Object({ credential: Type.Object({
  type: Type.String({ minLength: 1, maxLength: 255 }), blob: Type.String({ minLength: 1, maxLength: 65535 }),
  user_id: Type.String({ minLength: 1, maxLength: 64 }), project_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
}, { additionalProperties: true }) });
const CredentialUpdate = Type.Object({ credential: Type.Object({
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), blob: Type.Optional(Type.String({ minLength: 1, maxLength: 65535 })),
  user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })), project_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
}, { additionalProperties: true, minProperties: 1 }) });
const Ec2Create = Type.Object({ tenant_id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: true });

/**
 * An ISO-8601 expiry, kept to the microsecond as given (Keystone returns it as
 * `YYYY-MM-DDTHH:MM:SS.ffffff`, UTC, without a zone).
 */
export function parseExpiry(s: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/.exec(s.trim());
  const t = m ? Date.parse(`${m[1]}T${m[2]}${m[4] ?? 'Z'}`) : NaN;
  if (!m || Number.isNaN(t)) throw new BadRequest(`Invalid input for field 'expires_at': ${s}`);
  const micros = (m[3] ?? '').padEnd(6, '0').slice(0, 6);
  const whole = new Date(t).toISOString().slice(0, 19);
  if (t + Number(micros) / 1000 <= Date.now()) throw new BadRequest('The expiration time must be in the future.');
  return `${whole}.${micros}`;
}

/** The access key of an EC2 credential blob, the index S3 signature checks look it up by. */
function ec2Access(c: { type: string; blob: string }): string | null {
  if (c.type !== 'ec2') return null;
  try {
    const access = (JSON.parse(c.blob) as { access?: unknown }).access;
    if (typeof access !== 'string' || access === '') throw new Error();
    return access;
  } catch {
    throw new BadRequest('Invalid blob in credential: an ec2 credential blob must be JSON with an "access" key.');
  }
}

export function credentialRoutes(app: FastifyInstance, identity: IdentityService): void {
  const db = identity.db;

  // ---- application credentials ----
  app.post<{ Params: { uid: string }; Body: Static<typeof AppCredCreate> }>('/v3/users/:uid/application_credentials', { schema: { body: AppCredCreate } }, async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'identity:create_application_credential', { user_id: req.params.uid });
    if (!auth.projectId) throw new Forbidden('An application credential needs a project-scoped token.');
    if (auth.appCredId) throw new Forbidden('An application credential cannot create another application credential.');
    const b = req.body.application_credential;
    const user = await requireUser(db, req.params.uid);
    const tokenRoles = new Map(auth.roleIds.map((id, i) => [id, auth.roles[i]!]));
    let roleIds: string[];
    if (b.roles && b.roles.length) {
      roleIds = b.roles.map((r) => {
        const id = r.id ?? [...tokenRoles].find(([, name]) => name === r.name)?.[0];
        if (!id || !tokenRoles.has(id)) throw new Forbidden(`Role ${r.id ?? r.name} is not one the token holds.`);
        return id;
      });
    } else roleIds = auth.roleIds;
    const expires = b.expires_at ? parseExpiry(b.expires_at) : null;
    const { cred, secret } = await identity.createAppCred(user, {
      name: b.name, description: b.description ?? '', project_id: auth.projectId, roleIds: [...new Set(roleIds)], expires_at: expires,
      unrestricted: b.unrestricted === true, secret: b.secret ?? undefined,
    });
    return reply.code(201).send({ application_credential: { ...renderAppCred(v3Base(req), cred), secret } });
  });
  app.get<{ Params: { uid: string }; Querystring: { name?: string } }>('/v3/users/:uid/application_credentials', async (req) => {
    enforce(req.ctx.auth, 'identity:list_application_credentials', { user_id: req.params.uid });
    await requireUser(db, req.params.uid);
    const list = await store.listAppCreds(db, req.params.uid, req.query.name);
    return { application_credentials: list.map((a) => renderAppCred(v3Base(req), a)), links: collectionLinks(req) };
  });
  const requireAppCred = async (uid: string, id: string) => {
    const a = await store.getAppCred(db, id);
    if (!a || a.user_id !== uid) throw new NotFound(`Could not find application credential: ${id}.`);
    return a;
  };
  app.get<{ Params: { uid: string; id: string } }>('/v3/users/:uid/application_credentials/:id', async (req) => {
    enforce(req.ctx.auth, 'identity:get_application_credential', { user_id: req.params.uid });
    return { application_credential: renderAppCred(v3Base(req), await requireAppCred(req.params.uid, req.params.id)) };
  });
  app.delete<{ Params: { uid: string; id: string } }>('/v3/users/:uid/application_credentials/:id', async (req, reply) => {
    const auth = enforce(req.ctx.auth, 'identity:delete_application_credential', { user_id: req.params.uid });
    const a = await requireAppCred(req.params.uid, req.params.id);
    if (auth.appCredId && !a.unrestricted) throw new Forbidden('A restricted application credential cannot delete application credentials.');
    await db.transaction().execute(async (trx) => {
      await store.deleteAppCred(trx, a.id);
      await identity.revoke({ app_cred_id: a.id }, trx);
    });
    await identity.changed('app_cred');
    return reply.code(204).send();
  });

  // ---- credentials ----
  app.post<{ Body: Static<typeof CredentialCreate> }>('/v3/credentials', { schema: { body: CredentialCreate } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:create_credential', { user_id: req.body.credential.user_id });
    const b = req.body.credential;
    await requireUser(db, b.user_id);
    if (b.type === 'ec2' && !b.project_id) throw new BadRequest('An ec2 credential needs a project_id.');
    const access = ec2Access(b);
    const c: Credential = {
      id: access ? IdentityService.ec2KeyHash(access) : newId(), user_id: b.user_id, project_id: b.project_id ?? null, type: b.type, blob: b.blob,
      extra: Object.fromEntries(Object.entries(b).filter(([k]) => !['id', 'type', 'blob', 'user_id', 'project_id'].includes(k))),
    };
    await store.insertCredential(db, c, access && IdentityService.ec2KeyHash(access));
    await identity.changed('credential');
    return reply.code(201).send({ credential: renderCredential(v3Base(req), c) });
  });
  app.get<{ Querystring: { user_id?: string; type?: string } }>('/v3/credentials', async (req) => {
    const auth = req.ctx.auth!;
    // Those who may list every credential get the filter they asked for; others only their own.
    const userId = isAllowed(auth, 'identity:list_credentials') ? req.query.user_id : enforce(auth, 'identity:list_credentials', { user_id: auth.userId }).userId;
    if (req.query.user_id !== undefined && userId !== req.query.user_id) return { credentials: [], links: collectionLinks(req) };
    const list = await store.listCredentials(db, { user_id: userId, type: req.query.type });
    return { credentials: list.map((c) => renderCredential(v3Base(req), c)), links: collectionLinks(req) };
  });
  const requireCredential = async (id: string) => {
    const c = await store.getCredential(db, id);
    if (!c) throw new NotFound(`Could not find credential: ${id}.`);
    return c;
  };
  app.get<{ Params: { id: string } }>('/v3/credentials/:id', async (req) => {
    const c = await requireCredential(req.params.id);
    enforce(req.ctx.auth, 'identity:get_credential', { user_id: c.user_id });
    return { credential: renderCredential(v3Base(req), c) };
  });
  app.patch<{ Params: { id: string }; Body: Static<typeof CredentialUpdate> }>('/v3/credentials/:id', { schema: { body: CredentialUpdate } }, async (req) => {
    const c = await requireCredential(req.params.id);
    enforce(req.ctx.auth, 'identity:update_credential', { user_id: c.user_id });
    const b = req.body.credential;
    if (b.user_id !== undefined) { enforce(req.ctx.auth, 'identity:update_credential', { user_id: b.user_id }); await requireUser(db, b.user_id); c.user_id = b.user_id; }
    if (b.type !== undefined) c.type = b.type;
    if (b.blob !== undefined) c.blob = b.blob;
    if (b.project_id !== undefined) c.project_id = b.project_id;
    if (c.type === 'ec2' && !c.project_id) throw new BadRequest('An ec2 credential needs a project_id.');
    const access = ec2Access(c);
    Object.assign(c.extra, Object.fromEntries(Object.entries(b).filter(([k]) => !['id', 'type', 'blob', 'user_id', 'project_id'].includes(k))));
    await store.updateCredential(db, c, access && IdentityService.ec2KeyHash(access));
    await identity.changed('credential');
    return { credential: renderCredential(v3Base(req), c) };
  });
  app.delete<{ Params: { id: string } }>('/v3/credentials/:id', async (req, reply) => {
    const c = await requireCredential(req.params.id);
    enforce(req.ctx.auth, 'identity:delete_credential', { user_id: c.user_id });
    await store.deleteCredential(db, c.id);
    await identity.changed('credential');
    return reply.code(204).send();
  });

  // ---- EC2 credentials (OS-EC2) ----
  app.post<{ Params: { uid: string }; Body: Static<typeof Ec2Create> }>('/v3/users/:uid/credentials/OS-EC2', { schema: { body: Ec2Create } }, async (req, reply) => {
    enforce(req.ctx.auth, 'identity:ec2_create_credential', { user_id: req.params.uid });
    await requireUser(db, req.params.uid);
    await requireProject(db, req.body.tenant_id);
    const access = randomBytes(16).toString('hex');
    const blob = JSON.stringify({ access, secret: randomBytes(16).toString('hex'), trust_id: null });
    const c: Credential = { id: IdentityService.ec2KeyHash(access), user_id: req.params.uid, project_id: req.body.tenant_id, type: 'ec2', blob, extra: {} };
    await store.insertCredential(db, c, c.id);
    await identity.changed('credential');
    return reply.code(201).send({ credential: renderEc2(v3Base(req), c) });
  });
  app.get<{ Params: { uid: string } }>('/v3/users/:uid/credentials/OS-EC2', async (req) => {
    enforce(req.ctx.auth, 'identity:ec2_list_credentials', { user_id: req.params.uid });
    await requireUser(db, req.params.uid);
    const list = await store.listCredentials(db, { user_id: req.params.uid, type: 'ec2' });
    return { credentials: list.map((c) => renderEc2(v3Base(req), c)), links: collectionLinks(req) };
  });
  const requireEc2 = async (uid: string, access: string) => {
    const c = await store.getCredential(db, IdentityService.ec2KeyHash(access));
    if (!c || c.user_id !== uid || c.type !== 'ec2') throw new NotFound(`Could not find credential: ${access}.`);
    return c;
  };
  app.get<{ Params: { uid: string; access: string } }>('/v3/users/:uid/credentials/OS-EC2/:access', async (req) => {
    enforce(req.ctx.auth, 'identity:ec2_get_credential', { user_id: req.params.uid });
    return { credential: renderEc2(v3Base(req), await requireEc2(req.params.uid, req.params.access)) };
  });
  app.delete<{ Params: { uid: string; access: string } }>('/v3/users/:uid/credentials/OS-EC2/:access', async (req, reply) => {
    enforce(req.ctx.auth, 'identity:ec2_delete_credential', { user_id: req.params.uid });
    const c = await requireEc2(req.params.uid, req.params.access);
    await store.deleteCredential(db, c.id);
    await identity.changed('credential');
    return reply.code(204).send();
  });
}
