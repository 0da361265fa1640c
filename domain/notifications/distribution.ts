// CNCF Distribution notifications (registry-spec §2). 2.8 sends
// `application/vnd.docker.distribution.events.v1+json`, v3 `...events.v2+json`;
// the JSON is the same `{"events":[...]}`, one event per request in practice.
// Only manifest pushes and deletes mean work; every other well-formed event is
// acknowledged as ignored, because a rejected event blocks the registry's
// queue forever (§2.5).
import { NotificationError, readEvent, type IngestedEvent, type RegistryEvent } from './event';
import { deleteFromTarget, ferryEcho, isObject, manifestPush, objectField, requiredEventId, requiredString, type Fields } from './fields';

/** What Distribution puts in `target.mediaType` for every blob event. */
const BLOB_MEDIA_TYPE = 'application/octet-stream';

function envelopeEvents(body: unknown): unknown[] {
  if (!isObject(body)) throw new NotificationError('MALFORMED_ENVELOPE', 'the notification body is not a JSON object');
  if (!Array.isArray(body.events)) {
    throw new NotificationError('MALFORMED_ENVELOPE', 'the notification body has no "events" array');
  }
  // Array.from visits every index: map would skip the holes of a sparse array.
  return Array.from(body.events as unknown[]);
}

/** Every event of an envelope; the first one that cannot be read fails the whole envelope. */
export function parseDistributionEnvelope(body: unknown): RegistryEvent[] {
  return envelopeEvents(body).map((event, index) => parseEvent(event, index));
}

/**
 * What ingest uses: an envelope that is not one fails, but an event in it that
 * cannot be read becomes an UnreadableEvent, and the others are read as usual.
 */
export function readDistributionEnvelope(body: unknown): IngestedEvent[] {
  return envelopeEvents(body).flatMap((event, index) => readEvent(event, () => [parseEvent(event, index)]));
}

function parseEvent(value: unknown, index: number): RegistryEvent {
  if (!isObject(value)) throw new NotificationError('MALFORMED_ENVELOPE', `events[${index}] is not a JSON object`);
  const event: Fields = { value, field: (name) => `events[${index}].${name}` };
  const eventId = requiredEventId(event, 'id');
  const action = requiredString(event, 'action');
  switch (action) {
    case 'push':
      return ferryEcho(event, eventId) ?? parsePush(event, eventId);
    case 'delete':
      return ferryEcho(event, eventId) ?? parseDelete(event, eventId);
    case 'pull':
      return { kind: 'ignored', eventId, reason: 'pull: a read changes nothing to replicate' };
    case 'mount':
      return { kind: 'ignored', eventId, reason: 'blob mount: blobs are replicated with the manifest that names them' };
    default:
      return { kind: 'ignored', eventId, reason: `unknown action ${JSON.stringify(action)}` };
  }
}

function parsePush(event: Fields, eventId: string): RegistryEvent {
  const target = objectField(event, 'target');
  if (target.value.mediaType === BLOB_MEDIA_TYPE) {
    return { kind: 'ignored', eventId, reason: 'blob push: blobs are replicated with the manifest that names them' };
  }
  return manifestPush(event, eventId, target);
}

// Distribution deletes a manifest, a blob or a tag; a delete naming none of
// them is not one it sends.
function parseDelete(event: Fields, eventId: string): RegistryEvent {
  return deleteFromTarget(event, eventId, objectField(event, 'target'), () => {
    throw new NotificationError('INVALID_FIELD', `${event.field('target')} of a delete names neither a digest nor a tag`);
  });
}
