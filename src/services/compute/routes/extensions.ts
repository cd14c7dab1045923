import type { FastifyInstance } from 'fastify';
import { enforce } from '../../../api/policy.ts';
import { NotFound } from '../../../common/errors.ts';
import '../policy.ts';

/**
 * GET /extensions and /extensions/{alias}: the legacy (pre-microversion) extension list.
 * Nova answers a fixed list; this one names what Gureum's compute API serves.
 */

/** [alias, name, description] */
const EXTENSIONS: [string, string, string][] = [
  ['extensions', 'Extensions', 'Extension information.'],
  ['flavors', 'Flavors', 'Flavors.'],
  ['images', 'Images', 'Image proxy to the image service (until microversion 2.36).'],
  ['image-metadata', 'ImageMetadata', 'Image metadata proxy (until microversion 2.39).'],
  ['ips', 'Ips', 'Server addresses.'],
  ['limits', 'Limits', 'Limits of the project.'],
  ['server-metadata', 'ServerMetadata', 'Server metadata.'],
  ['servers', 'Servers', 'Servers.'],
  ['versions', 'Versions', 'API versions.'],
  ['os-access-ips', 'AccessIPs', 'IPv4 and IPv6 access addresses of a server.'],
  ['os-aggregates', 'Aggregates', 'Host aggregates administration.'],
  ['os-availability-zone', 'AvailabilityZone', 'Availability zones.'],
  ['os-config-drive', 'ConfigDrive', 'Config drive for servers.'],
  ['os-console-output', 'ConsoleOutput', 'Console log output of a server.'],
  ['os-consoles', 'Consoles', 'Server consoles: the serial console log (os-getConsoleOutput).'],
  ['os-create-image', 'CreateImage', 'Snapshots of a server into an image.'],
  ['OS-DCF', 'DiskConfig', 'Disk management of a server (MANUAL).'],
  ['OS-EXT-AZ', 'ExtendedAvailabilityZone', 'Availability zone of a server.'],
  ['OS-EXT-IMG-SIZE', 'ImageSize', 'Image size.'],
  ['OS-EXT-IPS', 'ExtendedIps', 'Type of each server address.'],
  ['OS-EXT-SRV-ATTR', 'ExtendedServerAttributes', 'Host and hypervisor attributes of a server.'],
  ['OS-EXT-STS', 'ExtendedStatus', 'vm_state, task_state and power_state of a server.'],
  ['os-extended-volumes', 'ExtendedVolumes', 'Volumes attached to a server.'],
  ['os-flavor-access', 'FlavorAccess', 'Flavor access for projects.'],
  ['os-flavor-extra-specs', 'FlavorExtraSpecs', 'Flavor extra specs.'],
  ['os-flavor-manage', 'FlavorManage', 'Flavor create and delete.'],
  ['os-flavor-rxtx', 'FlavorRxtx', 'rxtx_factor of a flavor.'],
  ['OS-FLV-DISABLED', 'FlavorDisabled', 'Disabled flavors.'],
  ['OS-FLV-EXT-DATA', 'FlavorExtraData', 'Ephemeral disk of a flavor.'],
  ['os-hosts', 'Hosts', 'Admin-only host administration (until microversion 2.43).'],
  ['os-hypervisors', 'Hypervisors', 'Admin-only hypervisor administration.'],
  ['os-instance-actions', 'InstanceActions', 'Actions and events of a server.'],
  ['os-instance_usage_audit_log', 'OSInstanceUsageAuditLog', 'Admin-only usage audit log reports.'],
  ['os-keypairs', 'Keypairs', 'Key pairs.'],
  ['os-lock-server', 'LockServer', 'Lock and unlock a server.'],
  ['os-multiple-create', 'MultipleCreate', 'Create several servers at once.'],
  ['os-pause-server', 'PauseServer', 'Pause and unpause a server.'],
  ['os-quota-class-sets', 'QuotaClasses', 'Quota classes management.'],
  ['os-quota-sets', 'Quotas', 'Quota management.'],
  ['os-scheduler-hints', 'SchedulerHints', 'Scheduler hints when creating a server.'],
  ['os-server-diagnostics', 'ServerDiagnostics', 'Admin-only server diagnostics.'],
  ['os-server-external-events', 'ServerExternalEvents', 'Server external event triggers.'],
  ['os-server-groups', 'ServerGroups', 'Server groups.'],
  ['os-server-password', 'ServerPassword', 'Server password.'],
  ['os-server-tags', 'ServerTags', 'Server tags.'],
  ['OS-SRV-USG', 'ServerUsage', 'Launch and termination times of a server.'],
  ['os-services', 'Services', 'Compute services.'],
  ['os-simple-tenant-usage', 'SimpleTenantUsage', 'Simple project usage.'],
  ['os-suspend-server', 'SuspendServer', 'Suspend and resume a server.'],
  ['os-user-data', 'UserData', 'User data for a server.'],
];

const NAMESPACE = 'http://docs.openstack.org/compute/ext/fake_xml';
const UPDATED = '2014-12-03T00:00:00Z';

function view([alias, name, description]: [string, string, string]) {
  return { alias, description, links: [], name, namespace: NAMESPACE, updated: UPDATED };
}

export function extensionRoutes(app: FastifyInstance): void {
  app.get('/v2.1/extensions', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:extensions');
    return { extensions: EXTENSIONS.map(view) };
  });

  app.get<{ Params: { alias: string } }>('/v2.1/extensions/:alias', async (req) => {
    enforce(req.ctx.auth, 'os_compute_api:extensions');
    const ext = EXTENSIONS.find(([alias]) => alias === req.params.alias);
    if (!ext) throw new NotFound('The resource could not be found.');
    return { extension: view(ext) };
  });
}
