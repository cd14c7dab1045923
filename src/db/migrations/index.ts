import type { Migration } from 'kysely';
import { m001_identity } from './001_identity.ts';
import { m002_policies_endpoint_filter } from './002_policies_endpoint_filter.ts';
import { m003_image } from './003_image.ts';
import { m004_compute } from './004_compute.ts';
import { m006_metadefs } from './006_metadefs.ts';
import { m007_compute_migrations } from './007_compute_migrations.ts';
import { m008_network } from './008_network.ts';
import { m009_instance_network_info } from './009_instance_network_info.ts';
import { m010_volume } from './010_volume.ts';
import { m011_block_device_mappings } from './011_block_device_mappings.ts';

/** Every migration, in order. Names sort lexically; never rename or edit a landed one. */
export const migrations: Record<string, Migration> = {
  '001_identity': m001_identity,
  '002_policies_endpoint_filter': m002_policies_endpoint_filter,
  '003_image': m003_image,
  '004_compute': m004_compute,
  '006_metadefs': m006_metadefs,
  '007_compute_migrations': m007_compute_migrations,
  '008_network': m008_network,
  '009_instance_network_info': m009_instance_network_info,
  '010_volume': m010_volume,
  '011_block_device_mappings': m011_block_device_mappings,
};
