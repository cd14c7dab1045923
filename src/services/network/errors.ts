import type { ErrorFormatter } from '../../api/errors.ts';
import { GureumError } from '../../common/errors.ts';

/**
 * Neutron's errors: each has the exception class name Neutron reports as `type` and its
 * message wording, since the openstack CLI prints the message and SDKs match the type.
 * The body is {"NeutronError": {"type": ..., "message": ..., "detail": ""}}.
 */

const DEFAULT_TYPES: Record<number, string> = {
  400: 'HTTPBadRequest', 401: 'HTTPUnauthorized', 403: 'HTTPForbidden', 404: 'HTTPNotFound', 405: 'HTTPMethodNotAllowed',
  409: 'HTTPConflict', 412: 'HTTPPreconditionFailed', 413: 'HTTPRequestEntityTooLarge', 415: 'HTTPUnsupportedMediaType',
  500: 'HTTPInternalServerError', 503: 'HTTPServiceUnavailable',
};

export const neutronError: ErrorFormatter = (status, message, kind) => ({
  NeutronError: {
    type: kind && kind !== 'ValidationError' ? kind : (DEFAULT_TYPES[status] ?? 'NeutronError'),
    message,
    detail: '',
  },
});

export class NeutronError extends GureumError {}

export const err = {
  /** Attribute validation: "Invalid input for cidr. Reason: '10.0.0.300/24' is not a valid IP subnet." */
  badAttr: (attr: string, reason: string) => new NeutronError(400, `Invalid input for ${attr}. Reason: ${reason}.`, 'HTTPBadRequest'),
  badRequest: (message: string) => new NeutronError(400, message, 'HTTPBadRequest'),
  /** Neutron's InvalidInput: "Invalid input for operation: ...". */
  invalidInput: (message: string) => new NeutronError(400, `Invalid input for operation: ${message}.`, 'InvalidInput'),
  policy: (action: string) => new NeutronError(403, `(rule:${action}) is disallowed by policy`, 'PolicyNotAuthorized'),
  adminRequired: (reason: string) => new NeutronError(403, `User does not have admin privileges: ${reason}.`, 'AdminRequired'),

  networkNotFound: (id: string) => new NeutronError(404, `Network ${id} could not be found.`, 'NetworkNotFound'),
  subnetNotFound: (id: string) => new NeutronError(404, `Subnet ${id} could not be found.`, 'SubnetNotFound'),
  portNotFound: (id: string) => new NeutronError(404, `Port ${id} could not be found.`, 'PortNotFound'),
  securityGroupNotFound: (id: string) => new NeutronError(404, `Security group ${id} does not exist`, 'SecurityGroupNotFound'),
  securityGroupRuleNotFound: (id: string) => new NeutronError(404, `Security group rule ${id} does not exist`, 'SecurityGroupRuleNotFound'),
  tagNotFound: (resource: string, id: string, tag: string) =>
    new NeutronError(404, `Tag ${tag} could not be found for ${resource} ${id}.`, 'TagNotFound'),
  extensionNotFound: (alias: string) => new NeutronError(404, `Extension with alias ${alias} does not exist`, 'ExtensionNotFound'),

  networkInUse: (id: string, ports: string[]) => new NeutronError(409,
    `Unable to complete operation on network ${id}. There are one or more ports still in use on the network, id for these ports is: ${ports.join(',')}.`, 'NetworkInUse'),
  subnetInUse: (id: string, reason = 'One or more ports have an IP allocation from this subnet') =>
    new NeutronError(409, `Unable to complete operation on subnet ${id}: ${reason}.`, 'SubnetInUse'),
  macInUse: (netId: string, mac: string) =>
    new NeutronError(409, `Unable to complete operation for network ${netId}. The mac address ${mac} is in use.`, 'MacAddressInUse'),
  macGenerationFailure: (netId: string) => new NeutronError(503, `Unable to generate unique mac on network ${netId}.`, 'MacAddressGenerationFailure'),
  ipAlreadyAllocated: (ip: string, subnetId: string) =>
    new NeutronError(409, `IP address ${ip} already allocated in subnet ${subnetId}`, 'IpAddressAlreadyAllocated'),
  ipGenerationFailure: (netId: string) => new NeutronError(409, `No more IP addresses available on network ${netId}.`, 'IpAddressGenerationFailure'),
  invalidIpForSubnet: (ip: string) => new NeutronError(400, `IP address ${ip} is not a valid IP for the specified subnet.`, 'InvalidIpForSubnet'),
  invalidIpForNetwork: (ip: string) =>
    new NeutronError(400, `IP address ${ip} is not a valid IP for any of the subnets on the specified network.`, 'InvalidIpForNetwork'),
  tunnelIdInUse: (id: number) => new NeutronError(409, `Unable to create the network. The tunnel ID ${id} is in use.`, 'TunnelIdInUse'),
  flatNetworkInUse: (physnet: string) =>
    new NeutronError(409, `Unable to create the flat network. Physical network ${physnet} is in use.`, 'FlatNetworkInUse'),
  noNetworkAvailable: () => new NeutronError(503, 'Unable to create the network. No tenant network is available for allocation.', 'NoNetworkAvailable'),
  overQuota: (resources: string[]) =>
    new NeutronError(409, `Quota exceeded for resources: [${resources.map((r) => `'${r}'`).join(', ')}].`, 'OverQuota'),
  revisionMismatch: (expected: number, current: number) =>
    new NeutronError(412, `Constrained to ${expected}, but current revision is ${current}`, 'RevisionNumberConstraintFailed'),

  invalidAllocationPool: (pool: string) => new NeutronError(400, `The allocation pool ${pool} is not valid.`, 'InvalidAllocationPool'),
  outOfBoundsPool: (pool: string, cidr: string) =>
    new NeutronError(400, `The allocation pool ${pool} spans beyond the subnet cidr ${cidr}.`, 'OutOfBoundsAllocationPool'),
  overlappingPools: (a: string, b: string, cidr: string) =>
    new NeutronError(409, `Found overlapping allocation pools: ${a} ${b} for subnet ${cidr}.`, 'OverlappingAllocationPools'),
  gatewayConflictsWithPool: (ip: string, pool: string) =>
    new NeutronError(409, `Gateway ip ${ip} conflicts with allocation pool ${pool}.`, 'GatewayConflictWithAllocationPools'),
  dnsExhausted: (subnetId: string, max: number) =>
    new NeutronError(400, `Unable to complete operation for ${subnetId}. The number of DNS nameservers exceeds the limit ${max}.`, 'DNSNameServersExhausted'),
  hostRoutesExhausted: (subnetId: string, max: number) =>
    new NeutronError(400, `Unable to complete operation for ${subnetId}. The number of host routes exceeds the limit ${max}.`, 'HostRoutesExhausted'),

  securityGroupInUse: (id: string) => new NeutronError(409, `Security Group ${id} in use.`, 'SecurityGroupInUse'),
  cannotRemoveDefault: () => new NeutronError(409, 'Insufficient rights for removing default security group.', 'SecurityGroupCannotRemoveDefault'),
  cannotUpdateDefault: () => new NeutronError(409, 'Updating default security group not allowed.', 'SecurityGroupCannotUpdateDefault'),
  defaultExists: () => new NeutronError(409, 'Default security group already exists.', 'SecurityGroupDefaultAlreadyExists'),
  ruleExists: (id: string) => new NeutronError(409, `Security group rule already exists. Rule id is ${id}.`, 'SecurityGroupRuleExists'),
  duplicateRuleInPost: () => new NeutronError(409, 'Duplicate Security Group Rule in POST.', 'DuplicateSecurityGroupRuleInPost'),
  portSecurityRequiredForGroups: () => new NeutronError(400,
    'Port security must be enabled and port must have an IP address in order to use security groups.', 'PortSecurityAndIPRequiredForSecurityGroups'),
  portHasSecurityGroup: () => new NeutronError(409,
    'Port has security group associated. Cannot disable port security or IP address until security group is removed.', 'PortSecurityPortHasSecurityGroup'),
  addressPairsNeedPortSecurity: () => new NeutronError(409,
    'Port Security must be enabled in order to have allowed address pairs on a port.', 'AddressPairAndPortSecurityRequired'),
  addressPairsExhausted: (max: number) =>
    new NeutronError(400, `The number of allowed address pair exceeds the maximum ${max}.`, 'AllowedAddressPairExhausted'),
};
