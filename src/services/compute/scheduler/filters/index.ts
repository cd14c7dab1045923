/** The filters Gureum ships, by the names used in `scheduler.filters`. */
import type { Filter } from '../types.ts';
import { aggregateInstanceExtraSpecsFilter } from './aggregate-instance-extra-specs.ts';
import { aggregateMultiTenancyIsolationFilter } from './aggregate-multitenancy-isolation.ts';
import { availabilityZoneFilter } from './availability-zone.ts';
import { computeFilter } from './compute.ts';
import { coresFilter } from './cores.ts';
import { diskFilter } from './disk.ts';
import { forceHostsFilter } from './force-hosts.ts';
import { imagePropertiesFilter } from './image-properties.ts';
import { ramFilter } from './ram.ts';
import { serverGroupAffinityFilter } from './server-group-affinity.ts';
import { serverGroupAntiAffinityFilter } from './server-group-anti-affinity.ts';

export const allFilters: Readonly<Record<string, Filter>> = Object.freeze({
  [forceHostsFilter.name]: forceHostsFilter,
  [computeFilter.name]: computeFilter,
  [availabilityZoneFilter.name]: availabilityZoneFilter,
  [ramFilter.name]: ramFilter,
  [coresFilter.name]: coresFilter,
  [diskFilter.name]: diskFilter,
  [imagePropertiesFilter.name]: imagePropertiesFilter,
  [serverGroupAffinityFilter.name]: serverGroupAffinityFilter,
  [serverGroupAntiAffinityFilter.name]: serverGroupAntiAffinityFilter,
  [aggregateInstanceExtraSpecsFilter.name]: aggregateInstanceExtraSpecsFilter,
  [aggregateMultiTenancyIsolationFilter.name]: aggregateMultiTenancyIsolationFilter,
});

/**
 * Enabled by default, in this order (cheap, selective checks first). The aggregate
 * filters are opt-in, as in Nova; force-hosts always runs first whether listed or not.
 */
export const DEFAULT_FILTERS: readonly string[] = Object.freeze([
  'compute',
  'availability-zone',
  'ram',
  'cores',
  'disk',
  'image-properties',
  'server-group-affinity',
  'server-group-anti-affinity',
]);

export {
  aggregateInstanceExtraSpecsFilter, aggregateMultiTenancyIsolationFilter, availabilityZoneFilter, computeFilter,
  coresFilter, diskFilter, forceHostsFilter, imagePropertiesFilter, ramFilter, serverGroupAffinityFilter,
  serverGroupAntiAffinityFilter,
};
