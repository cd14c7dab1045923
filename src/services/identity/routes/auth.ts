import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { enforce } from '../../../api/policy.ts';
import { Forbidden, NotFound } from '../../../common/errors.ts';
import type { IdentityService, AuthRequest } from '../service.ts';
import * as store from '../store.ts';
import { collectionLinks, renderDomain, renderProject, v3Base } from '../render.ts';

const NameOrId = Type.Object({ id: Type.Optional(Type.String({ maxLength: 255 })), name: Type.Optional(Type.String({ maxLength: 255 })) });
const UserRef = Type.Object({
  id: Type.Optional(Type.String({ maxLength: 64 })), name: Type.Optional(Type.String({ maxLength: 255 })),
  domain: Type.Optional(NameOrId),
});

const AuthBody = Type.Object({
  auth: Type.Object({
    identity: Type.Object({
      methods: Type.Array(Type.String(), { minItems: 1 }),
      password: Type.Optional(Type.Object({ user: Type.Intersect([UserRef, Type.Object({ password: Type.String({ maxLength: 4096 }) })]) })),
      token: Type.Optional(Type.Object({ id: Type.String({ maxLength: 4096 }) })),
      application_credential: Type.Optional(Type.Object({
        id: Type.Optional(Type.String({ maxLength: 64 })), name: Type.Optional(Type.String({ maxLength: 255 })),
        secret: Type.String({ maxLength: 4096 }), user: Type.Optional(UserRef),
      })),
    }),
    scope: Type.Optional(Type.Union([
      Type.Literal('unscoped'),
      Type.Object({
        project: Type.Optional(Type.Object({
          id: Type.Optional(Type.String({ maxLength: 64 })), name: Type.Optional(Type.String({ maxLength: 255 })), domain: Type.Optional(NameOrId),
        })),
        domain: Type.Optional(NameOrId),
        system: Type.Optional(Type.Object({ all: Type.Optional(Type.Boolean()) })),
        'OS-TRUST:trust': Type.Optional(Type.Object({ id: Type.String() })),
      }),
    ])),
  }),
});

const flag = (v: unknown): boolean => v !== undefined && v !== 'false' && v !== '0' && v !== 'False';

export function authRoutes(app: FastifyInstance, identity: IdentityService): void {
  app.post<{ Body: { auth: AuthRequest }; Querystring: { nocatalog?: string } }>('/v3/auth/tokens', {
    schema: { body: AuthBody }, config: { auth: false },
  }, async (req, reply) => {
    const { token, view, catalog } = await identity.authenticate(req.body.auth, { nocatalog: flag(req.query.nocatalog) });
    req.ctx.auth = view.auth;
    return reply.code(201).header('X-Subject-Token', token).send({ token: catalog ? { ...view.body, catalog } : view.body });
  });

  const subjectView = async (req: { headers: Record<string, unknown> }) => {
    const subject = req.headers['x-subject-token'];
    const view = typeof subject === 'string' && subject !== '' ? await identity.view(subject) : null;
    return { subject: typeof subject === 'string' ? subject : '', view };
  };

  app.get<{ Querystring: { nocatalog?: string; allow_expired?: string } }>('/v3/auth/tokens', async (req, reply) => {
    const { subject, view } = await subjectView(req);
    // An invalid token is simply not found, whoever asks; a valid one only for those allowed.
    if (!view) throw new NotFound('Could not find token.');
    enforce(req.ctx.auth, 'identity:validate_token', { token_user_id: view.auth.userId });
    const hasScope = view.auth.projectId || view.auth.domainId || view.auth.system;
    const catalog = flag(req.query.nocatalog) || !hasScope ? undefined : await identity.catalog(view.auth.projectId);
    // HEAD requests reuse this handler; Fastify drops the body.
    return reply.header('X-Subject-Token', subject).send({ token: catalog ? { ...view.body, catalog } : view.body });
  });

  app.delete('/v3/auth/tokens', async (req, reply) => {
    const { view } = await subjectView(req);
    if (!view) throw new NotFound('Could not find token.');
    enforce(req.ctx.auth, 'identity:revoke_token', { token_user_id: view.auth.userId });
    await identity.revoke({ audit_id: view.auth.auditIds[0] });
    await identity.changed('revocation');
    return reply.code(204).send();
  });

  app.get('/v3/auth/catalog', async (req) => {
    const auth = req.ctx.auth!;
    if (!auth.projectId && !auth.domainId && !auth.system) throw new Forbidden('The catalog needs a scoped token.');
    return { catalog: await identity.catalog(auth.projectId), links: collectionLinks(req) };
  });

  app.get('/v3/auth/projects', async (req) => {
    const auth = req.ctx.auth!;
    const base = v3Base(req);
    const projects = await store.listProjects(identity.db, { enabled: true });
    const out = [];
    for (const p of projects) {
      const d = await store.getDomain(identity.db, p.domain_id);
      if (!d?.enabled) continue;
      if ((await identity.roleIdsFor(auth.userId, { kind: 'project', project: p, domain: d })).length) out.push(renderProject(base, p));
    }
    return { projects: out, links: collectionLinks(req) };
  });

  app.get('/v3/auth/domains', async (req) => {
    const auth = req.ctx.auth!;
    const base = v3Base(req);
    const out = [];
    for (const d of await store.listDomains(identity.db, { enabled: true })) {
      if ((await identity.roleIdsFor(auth.userId, { kind: 'domain', domain: d })).length) out.push(renderDomain(base, d));
    }
    return { domains: out, links: collectionLinks(req) };
  });

  app.get('/v3/auth/system', async (req) => {
    const auth = req.ctx.auth!;
    const has = (await identity.roleIdsFor(auth.userId, { kind: 'system' })).length > 0;
    return { system: has ? [{ all: true }] : [], links: collectionLinks(req) };
  });
}
