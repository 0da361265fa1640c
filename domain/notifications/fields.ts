// The field readers the notification parsers share. Each reads one field of a
// JSON object and, when the field is wrong, names its full path in the error,
// so whoever reads the error can find the field in the payload.
// Distribution and ACR describe a push or a delete the same way, in a `target`
// object; the two builders below read that shape for both.
// No Node built-ins: workflow code imports domain/.
import { isManifestMediaType } from '../manifest';
import { InvalidReferenceError, parseDigest, parseRepositoryName, parseTag, type RepositoryName } from '../reference';
import { FERRY_USER_AGENT, isFerryUserAgent } from '../registry-api';
import { isEventId, MAX_EVENT_ID_LENGTH, NotificationError, type IgnoredEvent, type RegistryEvent } from './event';

// RFC 3339 as Go, ACR and Harbor write it (fractional seconds or none, `Z` or
// a numeric offset). Date.parse alone would also accept strings such as "1"
// or "May 5", and rolls a day that does not exist (February 30th) into the
// next month.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$/i;

/** The widest zone offset Postgres's timestamptz takes is ±15:59; no time zone is wider than ±14:00. */
const MAX_OFFSET_HOURS = 15;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export type JsonObject = Record<string, unknown>;

/** An object's fields, with the path prefix every error names. */
export interface Fields {
  readonly value: JsonObject;
  readonly field: (name: string) => string;
}

/**
 * A push whose `target` names a manifest: Distribution's and ACR's shape.
 * A push of any media type Ferry cannot replicate is ignored.
 */
export function manifestPush(event: Fields, eventId: string, target: Fields): RegistryEvent {
  const mediaType = requiredString(target, 'mediaType');
  if (!isManifestMediaType(mediaType)) {
    return { kind: 'ignored', eventId, reason: `push of unsupported manifest media type ${JSON.stringify(mediaType)}` };
  }
  return {
    kind: 'push',
    eventId,
    repository: reference(parseRepositoryName, target, 'repository'),
    digest: reference(parseDigest, target, 'digest'),
    tag: isSet(target, 'tag') ? reference(parseTag, target, 'tag') : null,
    mediaType,
    size: manifestSize(target),
    occurredAt: timestamp(event, 'timestamp'),
  };
}

/**
 * A delete whose `target` names a digest (manifest or blob: the same shape,
 * told apart later on storage) or, for a tag delete, only the tag. What a
 * delete naming neither means is the registry's to say: `namesNeither`.
 */
export function deleteFromTarget(
  event: Fields,
  eventId: string,
  target: Fields,
  namesNeither: (repository: RepositoryName) => RegistryEvent,
): RegistryEvent {
  const repository = reference(parseRepositoryName, target, 'repository');
  const occurredAt = timestamp(event, 'timestamp');
  if (isSet(target, 'digest')) {
    return { kind: 'delete-digest', eventId, repository, digest: reference(parseDigest, target, 'digest'), occurredAt };
  }
  if (isSet(target, 'tag')) {
    return { kind: 'delete-tag', eventId, repository, tag: reference(parseTag, target, 'tag'), occurredAt };
  }
  return namesNeither(repository);
}

/**
 * A change Ferry itself made through a registry's API (a replication into a
 * registry-API region), as its `request.useragent` says: acknowledged and not
 * replicated, or every write into such a region would echo back out of it.
 * Null when the event is someone else's.
 */
export function ferryEcho(event: Fields, eventId: string | null): IgnoredEvent | null {
  const request = event.value.request;
  if (!isObject(request) || !isFerryUserAgent(request.useragent)) return null;
  return { kind: 'ignored', eventId, reason: `${String(event.value.action)} by Ferry itself (User-Agent ${FERRY_USER_AGENT}): its own replication, not a change to replicate` };
}

export function objectField(fields: Fields, name: string): Fields {
  const value = fields.value[name];
  if (!isObject(value)) throw new NotificationError('INVALID_FIELD', `${fields.field(name)} is not a JSON object`);
  return { value, field: (child) => fields.field(`${name}.${child}`) };
}

export function requiredString(fields: Fields, name: string): string {
  const value = fields.value[name];
  if (typeof value !== 'string' || value === '') {
    throw new NotificationError('INVALID_FIELD', `${fields.field(name)} must be a non-empty string`);
  }
  return value;
}

// Go omits or zeroes unset fields, and ACR follows Distribution's Go structs:
// an empty string means "not set" either way.
function isSet(fields: Fields, name: string): boolean {
  const value = fields.value[name];
  return value !== undefined && value !== '';
}

export function reference<T>(parse: (value: unknown) => T, fields: Fields, name: string): T {
  try {
    return parse(fields.value[name]);
  } catch (error) {
    if (error instanceof InvalidReferenceError) {
      throw new NotificationError('INVALID_REFERENCE', `${fields.field(name)} is an ${error.message}`);
    }
    throw error;
  }
}

function manifestSize(target: Fields): number {
  const { size } = target.value;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new NotificationError('INVALID_FIELD', `${target.field('size')} must be a non-negative integer`);
  }
  return size;
}

/** The event's id, recorded as the registry wrote it (isEventId). */
export function requiredEventId(fields: Fields, name: string): string {
  const value = requiredString(fields, name);
  if (!isEventId(value)) {
    throw new NotificationError('INVALID_FIELD', `${fields.field(name)} must be at most ${MAX_EVENT_ID_LENGTH} characters, with no control character or unpaired surrogate`);
  }
  return value;
}

/**
 * Whether `value` is RFC 3339 naming an instant that exists: a real day from
 * year 1 on (Postgres has no year 0), a clock up to 23:59:59, a zone offset up
 * to ±15:59. Event times reach Postgres as written, to keep their precision.
 */
function isInstant(value: string): boolean {
  const match = RFC3339.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number, number, number];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  return year >= 1 && days !== undefined && day >= 1 && day <= days && hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= MAX_OFFSET_HOURS && offsetMinutes <= 59;
}

export function timestamp(fields: Fields, name: string): string {
  const value = requiredString(fields, name);
  if (!isInstant(value)) {
    throw new NotificationError('INVALID_FIELD', `${fields.field(name)} is not an RFC 3339 date: ${JSON.stringify(value)}`);
  }
  return value;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
