/**
 * The OpenStack metadata service (http://169.254.169.254/) for guests on QEMU user-mode
 * networking: one HTTP server per instance on `<instance dir>/metadata.sock`, serving the
 * document the agent writes to `<instance dir>/metadata.json`. See docs/hypervisor.md.
 */
export { MetadataServers, type MetadataServersOptions } from './server.ts';
export {
  clearPassword, metadataFiles, parseMetadataDocument, PASSWORD_MAX_BYTES, readPassword, storePassword, writeMetadataDocument,
  type Ec2Facts, type MetadataDocument,
} from './document.ts';
export { EC2_VERSIONS, lookup, OPENSTACK_VERSIONS, type Lookup } from './routes.ts';
