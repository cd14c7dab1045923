import { newId } from '../../common/ids.ts';
import type { IdentityService } from './service.ts';
import * as store from './store.ts';
import { DEFAULT_DOMAIN_ID, SYSTEM_TARGET, type Role } from './types.ts';

export interface BootstrapOptions {
  adminPassword: string;
  region: string;
  /** Every service to publish in the catalog: type, name and its public base URL. */
  services: { type: string; name: string; url: string }[];
}

/**
 * Idempotent first-start set-up, as `keystone-manage bootstrap` does: the default
 * domain, the admin/member/reader roles (admin implies member implies reader), the
 * admin project and user with admin on it and on the system, the region, and the
 * catalog entries. Existing rows are left alone, so a second start changes nothing
 * (the admin password included).
 */
export async function bootstrapIdentity(identity: IdentityService, opts: BootstrapOptions): Promise<{ createdAdmin: boolean }> {
  const db = identity.db;
  let createdAdmin = false;
  await db.transaction().execute(async (trx) => {
    if (!(await store.getDomain(trx, DEFAULT_DOMAIN_ID))) {
      await store.insertDomain(trx, { id: DEFAULT_DOMAIN_ID, name: 'Default', description: 'The default domain', enabled: true, extra: {} });
    }
    const roles: Record<string, Role> = {};
    for (const name of ['admin', 'member', 'reader', 'service']) {
      let r = (await store.listRoles(trx, { name, domain_id: null }))[0];
      if (!r) { r = { id: newId(), name, domain_id: null, description: '', extra: {} }; await store.insertRole(trx, r); }
      roles[name] = r;
    }
    await store.insertImplied(trx, roles.admin!.id, roles.member!.id);
    await store.insertImplied(trx, roles.member!.id, roles.reader!.id);
    let project = await store.getProjectByName(trx, DEFAULT_DOMAIN_ID, 'admin');
    if (!project) {
      project = { id: newId(), name: 'admin', domain_id: DEFAULT_DOMAIN_ID, parent_id: null, description: 'Bootstrap project for the cloud administrator', enabled: true, is_domain: false, tags: [], extra: {} };
      await store.insertProject(trx, project);
    }
    if (!(await store.getProjectByName(trx, DEFAULT_DOMAIN_ID, 'service'))) {
      await store.insertProject(trx, { id: newId(), name: 'service', domain_id: DEFAULT_DOMAIN_ID, parent_id: null, description: 'Project for service users', enabled: true, is_domain: false, tags: [], extra: {} });
    }
    let admin = await store.getUserByName(trx, DEFAULT_DOMAIN_ID, 'admin');
    if (!admin) createdAdmin = true;
    if (!(await store.getRegion(trx, opts.region))) await store.insertRegion(trx, { id: opts.region, description: '', parent_region_id: null, extra: {} });
    for (const s of opts.services) {
      let svc = (await store.listServices(trx, { type: s.type }))[0];
      if (!svc) { svc = { id: newId(), type: s.type, name: s.name, description: '', enabled: true, extra: {} }; await store.insertService(trx, svc); }
      const existing = await store.listEndpoints(trx, { service_id: svc.id });
      for (const iface of ['public', 'internal', 'admin'] as const) {
        const e = existing.find((x) => x.interface === iface && x.region_id === opts.region);
        if (!e) await store.insertEndpoint(trx, { id: newId(), service_id: svc.id, interface: iface, url: s.url, region_id: opts.region, enabled: true, extra: {} });
        else if (e.url !== s.url) await store.updateEndpoint(trx, { ...e, url: s.url });
      }
    }
    if (admin) {
      for (const a of [{ targetType: 'Project' as const, targetId: project.id }, { targetType: 'System' as const, targetId: SYSTEM_TARGET }]) {
        await store.insertAssignment(trx, { actorType: 'User', actorId: admin.id, ...a, roleId: roles.admin!.id, inherited: false });
      }
    }
  });
  if (createdAdmin) {
    const project = (await store.getProjectByName(db, DEFAULT_DOMAIN_ID, 'admin'))!;
    const admin = await identity.createUser({ id: newId(), name: 'admin', domain_id: DEFAULT_DOMAIN_ID, enabled: true, default_project_id: project.id, password: opts.adminPassword, extra: {} });
    const adminRole = (await store.listRoles(db, { name: 'admin', domain_id: null }))[0]!;
    await store.insertAssignment(db, { actorType: 'User', actorId: admin.id, targetType: 'Project', targetId: project.id, roleId: adminRole.id, inherited: false });
    await store.insertAssignment(db, { actorType: 'User', actorId: admin.id, targetType: 'System', targetId: SYSTEM_TARGET, roleId: adminRole.id, inherited: false });
  }
  await identity.changed('bootstrap');
  return { createdAdmin };
}
