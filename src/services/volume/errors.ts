import type { ErrorFormatter } from '../../api/errors.ts';
import { GureumError } from '../../common/errors.ts';

/**
 * Cinder's error body: {"badRequest": {"code": 400, "message": "..."}}, the key named by
 * the status as Cinder's wsgi Fault does; messages keep Cinder's wording, since the
 * openstack CLI prints them and tempest matches some.
 */
const KEYS: Record<number, string> = {
  400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod', 406: 'notAcceptable',
  409: 'conflictingRequest', 413: 'overLimit', 415: 'badMediaType', 429: 'overLimit', 501: 'notImplemented', 503: 'serviceUnavailable',
};

export const cinderError: ErrorFormatter = (status, message) => ({ [KEYS[status] ?? 'computeFault']: { code: status, message } });

export class CinderError extends GureumError {}

const invalid = (kind: string, message: string) => new CinderError(400, message, kind);

export const err = {
  badRequest: (message: string) => invalid('BadRequest', message),
  invalidInput: (reason: string) => invalid('InvalidInput', `Invalid input received: ${reason}`),
  badField: (field: string, value: unknown, reason: string) =>
    invalid('ValidationError', `Invalid input for field/attribute ${field}. Value: ${typeof value === 'string' ? value : JSON.stringify(value)}. ${reason}`),
  missingBody: (member: string) => invalid('BadRequest', `Missing required element '${member}' in request body.`),
  policy: (action: string) => new CinderError(403, `Policy doesn't allow ${action} to be performed.`, 'PolicyNotAuthorized'),

  volumeNotFound: (id: string) => new CinderError(404, `Volume ${id} could not be found.`, 'VolumeNotFound'),
  snapshotNotFound: (id: string) => new CinderError(404, `Snapshot ${id} could not be found.`, 'SnapshotNotFound'),
  backupNotFound: (id: string) => new CinderError(404, `Backup ${id} could not be found.`, 'BackupNotFound'),
  typeNotFound: (id: string) => new CinderError(404, `Volume type ${id} could not be found.`, 'VolumeTypeNotFound'),
  typeNotFoundByName: (name: string) => new CinderError(404, `Volume type with name ${name} could not be found.`, 'VolumeTypeNotFoundByName'),
  extraSpecNotFound: (typeId: string, key: string) =>
    new CinderError(404, `Volume Type ${typeId} has no extra specs with key ${key}.`, 'VolumeTypeExtraSpecsNotFound'),
  qosNotFound: (id: string) => new CinderError(404, `No such QoS spec ${id}.`, 'QoSSpecsNotFound'),
  qosKeyNotFound: (id: string, key: string) => new CinderError(404, `QoS spec ${id} has no spec with key ${key}.`, 'QoSSpecsKeyNotFound'),
  attachmentNotFound: (id: string) => new CinderError(404, `Volume attachment could not be found with filter: attachment_id = ${id}.`, 'VolumeAttachmentNotFound'),
  transferNotFound: (id: string) => new CinderError(404, `Transfer ${id} could not be found.`, 'TransferNotFound'),
  metadataNotFound: (id: string, key: string) => new CinderError(404, `Volume ${id} has no metadata with key ${key}.`, 'VolumeMetadataNotFound'),
  snapshotMetadataNotFound: (id: string, key: string) => new CinderError(404, `Snapshot ${id} has no metadata with key ${key}.`, 'SnapshotMetadataNotFound'),
  imageNotFound: (id: string) => new CinderError(404, `Image ${id} could not be found.`, 'ImageNotFound'),
  quotaClassNotFound: (name: string) => new CinderError(404, `Quota class ${name} could not be found.`, 'QuotaClassNotFound'),

  invalidVolume: (reason: string) => invalid('InvalidVolume', `Invalid volume: ${reason}`),
  invalidSnapshot: (reason: string) => invalid('InvalidSnapshot', `Invalid snapshot: ${reason}`),
  invalidBackup: (reason: string) => invalid('InvalidBackup', `Invalid backup: ${reason}`),
  invalidType: (reason: string) => invalid('InvalidVolumeType', `Invalid volume type: ${reason}`),
  invalidQos: (reason: string) => invalid('InvalidQoSSpecs', `Invalid qos specs: ${reason}`),
  invalidAttachment: (reason: string) => invalid('InvalidVolumeAttachMode', reason),
  invalidTransfer: (reason: string) => invalid('InvalidTransfer', reason),
  invalidAuthKey: (id: string) => invalid('InvalidAuthKey', `Invalid auth key: Attempt to transfer ${id} with invalid auth key.`),
  imageTooLarge: (sizeGb: number, imageGb: number) =>
    invalid('ImageUnacceptable', `Image virtual size is ${imageGb}GB and doesn't fit in a volume of size ${sizeGb}GB.`),
  imageNotActive: (id: string) => invalid('InvalidInput', `Invalid input received: Image ${id} is not active.`),
  noValidBackend: (reason: string) => invalid('NoValidBackend', `No valid backend was found. ${reason}`),

  typeExists: (name: string) => new CinderError(409, `Volume Type ${name} already exists.`, 'VolumeTypeExists'),
  typeInUse: (id: string) => invalid('VolumeTypeInUse', `Volume Type ${id} deletion is not allowed with volumes present with the type.`),
  typeAccessExists: (typeId: string, projectId: string) =>
    new CinderError(409, `Volume type access for ${typeId} / ${projectId} combination already exists.`, 'VolumeTypeAccessExists'),
  typeAccessNotFound: (typeId: string, projectId: string) =>
    new CinderError(404, `Volume type access not found for ${typeId} / ${projectId} combination.`, 'VolumeTypeAccessNotFound'),
  qosExists: (name: string) => new CinderError(409, `QoS Specs ${name} already exists.`, 'QoSSpecsExists'),
  qosInUse: (id: string) => invalid('QoSSpecsInUse', `QoS Specs ${id} is still associated with entities.`),

  /** Quotas: 413 overLimit with Cinder's messages. */
  overLimit: (resource: string, allowed: number) => new CinderError(413, resourceLimitMessage(resource, allowed), 'OverQuota'),
  sizeOverQuota: (kind: 'gigabytes' | 'backup_gigabytes', requested: number, quota: number, consumed: number) => new CinderError(413,
    kind === 'gigabytes'
      ? `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested ${requested}G, quota is ${quota}G and ${consumed}G has been consumed.`
      : `VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested ${requested}G, quota is ${quota}G and ${consumed}G has been consumed.`,
    'OverQuota'),
  perVolumeOverLimit: (size: number, limit: number) =>
    new CinderError(413, `VolumeSizeExceedsLimit: Requested volume size ${size}G is larger than maximum allowed limit ${limit}G.`, 'OverQuota'),
  invalidQuotaValue: (reason: string) => invalid('InvalidQuotaValue', `Change would make usage less than 0 for the following resources: ${reason}`),
};

function resourceLimitMessage(resource: string, allowed: number): string {
  switch (resource) {
    case 'volumes': return `VolumeLimitExceeded: Maximum number of volumes allowed (${allowed}) exceeded for quota 'volumes'.`;
    case 'snapshots': return `SnapshotLimitExceeded: Maximum number of snapshots allowed (${allowed}) exceeded`;
    case 'backups': return `BackupLimitExceeded: Maximum number of backups allowed (${allowed}) exceeded`;
    default: return `Quota exceeded for resources: ['${resource}']`;
  }
}
