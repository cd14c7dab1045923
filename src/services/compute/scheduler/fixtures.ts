/** Test fixtures: a HostState and a RequestSpec with sensible defaults. */
import type { HostState, RequestSpec } from './types.ts';

export function host(name: string, over: Partial<HostState> = {}): HostState {
  return {
    host: name, enabled: true, up: true, availabilityZone: 'nova',
    vcpus: 8, vcpusUsed: 0, memoryMb: 16384, memoryMbUsed: 0, diskGb: 200, diskGbUsed: 0, instances: 0,
    cpuAllocationRatio: 4, ramAllocationRatio: 1, diskAllocationRatio: 1,
    hypervisorType: 'QEMU', arch: 'x86_64', aggregates: [],
    ...over,
  };
}

export function request(over: Partial<RequestSpec> = {}): RequestSpec {
  return {
    instanceUuid: '00000000-0000-4000-8000-000000000001', projectId: 'p1',
    vcpus: 1, memoryMb: 512, diskGb: 1, imageProperties: {}, flavorExtraSpecs: {},
    ...over,
  };
}
