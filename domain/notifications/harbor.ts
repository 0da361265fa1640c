// Harbor 2.x webhooks (registry-spec §3.1), in either of a policy's formats:
// the default JSON (`type` PUSH_ARTIFACT, `occur_at`, `event_data`) or a
// structured CloudEvent (`specversion`, `type` harbor.artifact.pushed, `time`,
// `data`), whose `data` is the same `event_data` object.
// Only artifact pushes and deletes mean work; every other well-formed event is
// acknowledged as ignored, because a rejected one is retried by Harbor's job
// service and then dropped.
import { parseDigest, parseRepositoryName, parseTag, type Digest, type RepositoryName, type Tag } from '../reference';
import { NotificationError, type IgnoredEvent, type RegistryEvent } from './event';
import { isObject, objectField, reference, requiredString, timestamp, type Fields } from './fields';

const PUSH_ARTIFACT = 'PUSH_ARTIFACT';
const DELETE_ARTIFACT = 'DELETE_ARTIFACT';
type ArtifactEventType = typeof PUSH_ARTIFACT | typeof DELETE_ARTIFACT;

/** CloudEvents types and the default-format type each one stands for. A Map: a type such as "constructor" must not find Object.prototype. */
const CLOUDEVENT_TYPES = new Map<string, ArtifactEventType>([
  ['harbor.artifact.pushed', PUSH_ARTIFACT],
  ['harbor.artifact.deleted', DELETE_ARTIFACT],
]);

const PULL_TYPES = new Set(['PULL_ARTIFACT', 'harbor.artifact.pulled']);

// With no tag (a push by digest), Harbor writes the digest into `tag`. A real
// tag never contains ':', so a digest-shaped value there means "untagged".
const DIGEST_STRING = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** The largest Unix second a JavaScript Date can hold. */
const MAX_UNIX_SECONDS = 8_640_000_000_000;

/** What both formats say about one artifact event. */
interface ArtifactNotification {
  readonly type: ArtifactEventType;
  readonly occurAt: number;
  readonly eventData: Fields;
}

export function parseHarborWebhook(body: unknown): RegistryEvent[] {
  if (!isObject(body)) throw new NotificationError('MALFORMED_ENVELOPE', 'the webhook body is not a JSON object');
  const root: Fields = { value: body, field: (name) => name };
  const notification = body.specversion === undefined ? readDefaultFormat(root) : readCloudEvent(root);
  return 'kind' in notification ? [notification] : artifactEvents(notification);
}

function readDefaultFormat(root: Fields): ArtifactNotification | IgnoredEvent {
  const type = requiredString(root, 'type');
  if (type !== PUSH_ARTIFACT && type !== DELETE_ARTIFACT) return ignored(type);
  return { type, occurAt: unixSeconds(root, 'occur_at'), eventData: objectField(root, 'event_data') };
}

// Harbor's CloudEvent `time` is `occur_at` in RFC 3339, whole seconds; reading
// it back into seconds gives both formats the same event ids.
function readCloudEvent(root: Fields): ArtifactNotification | IgnoredEvent {
  if (root.value.specversion !== '1.0') {
    throw new NotificationError('INVALID_FIELD', `specversion must be "1.0", got ${JSON.stringify(root.value.specversion)}`);
  }
  const cloudEventType = requiredString(root, 'type');
  const type = CLOUDEVENT_TYPES.get(cloudEventType);
  if (type === undefined) return ignored(cloudEventType);
  const time = timestamp(root, 'time');
  return { type, occurAt: Math.floor(Date.parse(time) / 1000), eventData: objectField(root, 'data') };
}

function ignored(type: string): IgnoredEvent {
  const reason = PULL_TYPES.has(type)
    ? 'pull: a read changes nothing to replicate'
    : `event type ${JSON.stringify(type)} is neither an artifact push nor an artifact delete`;
  return { kind: 'ignored', eventId: null, reason };
}

// One event per resource. Harbor sends a single resource even for an artifact
// with several tags; `tag` is then its first tag, the others stay unknown.
function artifactEvents({ type, occurAt, eventData }: ArtifactNotification): RegistryEvent[] {
  const repository = reference(parseRepositoryName, objectField(eventData, 'repository'), 'repo_full_name');
  const occurredAt = new Date(occurAt * 1000).toISOString();
  return resourcesOf(eventData).map((resource): RegistryEvent => {
    const digest = reference(parseDigest, resource, 'digest');
    // Harbor deletes an artifact with all its tags: the digest says it all.
    if (type === DELETE_ARTIFACT) {
      return { kind: 'delete-digest', eventId: eventId(type, occurAt, repository, digest, null), repository, digest, occurredAt };
    }
    const tag = tagOf(resource);
    return {
      kind: 'push',
      eventId: eventId(type, occurAt, repository, digest, tag),
      repository,
      digest,
      tag,
      // The webhook names no media type and no size; the manifest read from
      // storage supplies both.
      mediaType: '',
      size: 0,
      occurredAt,
    };
  });
}

/**
 * Harbor events carry no id (a CloudEvent's `id` is a fresh UUID per policy),
 * and a redelivery resends the very same body: the job service stores the
 * formatted payload and retries it as is. So the id is the content: a
 * redelivered event, or the same event through a second policy or format,
 * gets the same id, while a push and a delete of one artifact in the same
 * second stay apart. `occur_at` has one-second resolution: a second identical
 * push within that second collapses into the first, which has the same effect.
 */
function eventId(type: ArtifactEventType, occurAt: number, repository: RepositoryName, digest: Digest, tag: Tag | null): string {
  return `harbor:${type}:${occurAt}:${repository}:${digest}:${tag ?? ''}`;
}

function resourcesOf(eventData: Fields): Fields[] {
  const { resources } = eventData.value;
  if (!Array.isArray(resources) || resources.length === 0) {
    throw new NotificationError('INVALID_FIELD', `${eventData.field('resources')} must be a non-empty array`);
  }
  // Array.from visits every index: map would skip the holes of a sparse array.
  return Array.from(resources, (resource: unknown, index) => {
    const field = eventData.field(`resources[${index}]`);
    if (!isObject(resource)) throw new NotificationError('INVALID_FIELD', `${field} is not a JSON object`);
    return { value: resource, field: (name) => `${field}.${name}` };
  });
}

function tagOf(resource: Fields): Tag | null {
  const { tag } = resource.value;
  if (tag === undefined || tag === '' || (typeof tag === 'string' && DIGEST_STRING.test(tag))) return null;
  return reference(parseTag, resource, 'tag');
}

function unixSeconds(fields: Fields, name: string): number {
  const value = fields.value[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_UNIX_SECONDS) {
    throw new NotificationError('INVALID_FIELD', `${fields.field(name)} must be a Unix time in seconds, got ${JSON.stringify(value)}`);
  }
  return value;
}
