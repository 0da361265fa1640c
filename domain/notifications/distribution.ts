// CNCF Distribution notifications (registry-spec §2). 2.8 sends
// `application/vnd.docker.distribution.events.v1+json`, v3 `...events.v2+json`;
// the JSON is the same `{"events":[...]}`, one event per request in practice.
// Only manifest pushes and deletes mean work; every other well-formed event is
// acknowledged as ignored, because a rejected event blocks the registry's
// queue forever (§2.5).
import { isManifestMediaType } from '../manifest';
import { InvalidReferenceError, parseDigest, parseRepositoryName, parseTag } from '../reference';
import { NotificationError, type RegistryEvent } from './event';

/** What Distribution puts in `target.mediaType` for every blob event. */
const BLOB_MEDIA_TYPE = 'application/octet-stream';

// RFC 3339 as Go writes it (nanoseconds, `Z` or a numeric offset). Date.parse
// alone would also accept strings such as "1" or "May 5".
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i;

type JsonObject = Record<string, unknown>;

/** One event's fields, with the `events[i].` prefix every error names. */
interface EventFields {
  readonly value: JsonObject;
  readonly field: (name: string) => string;
}

export function parseDistributionEnvelope(body: unknown): RegistryEvent[] {
  if (!isObject(body)) throw new NotificationError('MALFORMED_ENVELOPE', 'the notification body is not a JSON object');
  if (!Array.isArray(body.events)) {
    throw new NotificationError('MALFORMED_ENVELOPE', 'the notification body has no "events" array');
  }
  return body.events.map((event: unknown, index) => parseEvent(event, index));
}

function parseEvent(value: unknown, index: number): RegistryEvent {
  if (!isObject(value)) throw new NotificationError('MALFORMED_ENVELOPE', `events[${index}] is not a JSON object`);
  const event: EventFields = { value, field: (name) => `events[${index}].${name}` };
  const eventId = requiredString(event, 'id');
  const action = requiredString(event, 'action');
  switch (action) {
    case 'push':
      return parsePush(event, eventId);
    case 'delete':
      return parseDelete(event, eventId);
    case 'pull':
      return { kind: 'ignored', eventId, reason: 'pull: a read changes nothing to replicate' };
    case 'mount':
      return { kind: 'ignored', eventId, reason: 'blob mount: blobs are replicated with the manifest that names them' };
    default:
      return { kind: 'ignored', eventId, reason: `unknown action ${JSON.stringify(action)}` };
  }
}

function parsePush(event: EventFields, eventId: string): RegistryEvent {
  const target = targetOf(event);
  const mediaType = requiredString(target, 'mediaType');
  if (mediaType === BLOB_MEDIA_TYPE) {
    return { kind: 'ignored', eventId, reason: 'blob push: blobs are replicated with the manifest that names them' };
  }
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
    occurredAt: timestamp(event),
  };
}

// A delete names a digest (manifest or blob: the same shape, told apart later
// on storage) or, for a tag delete, only the tag.
function parseDelete(event: EventFields, eventId: string): RegistryEvent {
  const target = targetOf(event);
  const repository = reference(parseRepositoryName, target, 'repository');
  const occurredAt = timestamp(event);
  if (isSet(target, 'digest')) {
    return { kind: 'delete-digest', eventId, repository, digest: reference(parseDigest, target, 'digest'), occurredAt };
  }
  if (isSet(target, 'tag')) {
    return { kind: 'delete-tag', eventId, repository, tag: reference(parseTag, target, 'tag'), occurredAt };
  }
  throw new NotificationError('INVALID_FIELD', `${event.field('target')} of a delete names neither a digest nor a tag`);
}

function targetOf(event: EventFields): EventFields {
  const { target } = event.value;
  if (!isObject(target)) throw new NotificationError('INVALID_FIELD', `${event.field('target')} is not a JSON object`);
  return { value: target, field: (name) => event.field(`target.${name}`) };
}

function requiredString(fields: EventFields, name: string): string {
  const value = fields.value[name];
  if (typeof value !== 'string' || value === '') {
    throw new NotificationError('INVALID_FIELD', `${fields.field(name)} must be a non-empty string`);
  }
  return value;
}

// Go omits or zeroes unset fields; an empty string means "not set" either way.
function isSet(fields: EventFields, name: string): boolean {
  const value = fields.value[name];
  return value !== undefined && value !== '';
}

function reference<T>(parse: (value: unknown) => T, fields: EventFields, name: string): T {
  try {
    return parse(fields.value[name]);
  } catch (error) {
    if (error instanceof InvalidReferenceError) {
      throw new NotificationError('INVALID_REFERENCE', `${fields.field(name)} is an ${error.message}`);
    }
    throw error;
  }
}

function manifestSize(target: EventFields): number {
  const { size } = target.value;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new NotificationError('INVALID_FIELD', `${target.field('size')} must be a non-negative integer`);
  }
  return size;
}

function timestamp(event: EventFields): string {
  const value = requiredString(event, 'timestamp');
  if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
    throw new NotificationError('INVALID_FIELD', `${event.field('timestamp')} is not an RFC 3339 date: ${JSON.stringify(value)}`);
  }
  return value;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
