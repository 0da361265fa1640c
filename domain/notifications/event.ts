// What every registry's notification becomes once parsed at the edge. The
// Distribution, Harbor and ACR parsers each produce these values; nothing
// downstream knows which registry sent the notification.
// No Node built-ins: workflow code imports these types.
import type { Digest, RepositoryName, Tag } from '../reference';

/** A manifest landed in the source registry; `tag` is a hint to confirm, never trusted (§2.3, distribution#2625). */
export interface PushEvent {
  kind: 'push';
  eventId: string;
  repository: RepositoryName;
  digest: Digest;
  tag: Tag | null;
  mediaType: string;
  size: number;
  occurredAt: string;
}

/** A manifest or a blob was deleted by digest; which one is decided on storage. */
export interface DeleteDigestEvent {
  kind: 'delete-digest';
  eventId: string;
  repository: RepositoryName;
  digest: Digest;
  occurredAt: string;
}

export interface DeleteTagEvent {
  kind: 'delete-tag';
  eventId: string;
  repository: RepositoryName;
  tag: Tag;
  occurredAt: string;
}

/**
 * A well-formed event Ferry has nothing to do for (blob push, pull, mount,
 * unknown action). Acknowledged, never rejected: a 4xx would block the
 * registry's notification queue forever (distribution#2422).
 */
export interface IgnoredEvent {
  kind: 'ignored';
  eventId: string | null;
  reason: string;
}

/**
 * An event Ferry cannot read (a sha512 digest, a name no registry accepts):
 * acknowledged like an ignored one, so it blocks nothing behind it, and kept
 * as a dead letter with its reason (store/dead-letters.ts).
 */
export interface UnreadableEvent {
  kind: 'unreadable';
  eventId: string | null;
  code: NotificationErrorCode;
  reason: string;
  /** The event as the registry sent it. */
  event: unknown;
}

export type RegistryEvent = PushEvent | DeleteDigestEvent | DeleteTagEvent | IgnoredEvent;

/** What ingest reads from a notification: events, and those it could not read. */
export type IngestedEvent = RegistryEvent | UnreadableEvent;

export type NotificationErrorCode = 'MALFORMED_ENVELOPE' | 'INVALID_FIELD' | 'INVALID_REFERENCE';

/** The longest event id Ferry records: registries send UUIDs, and the id is part of keys Postgres indexes. */
export const MAX_EVENT_ID_LENGTH = 256;

/** A UTF-16 surrogate without its pair: Postgres's JSON holds none. */
export const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A control character (Postgres text holds no NUL), or an unpaired surrogate. */
const UNRECORDABLE = new RegExp(`[\\u0000-\\u001f\\u007f]|${UNPAIRED_SURROGATE.source}`);

/** Whether `value` can be recorded as an event id: non-empty text, at most MAX_EVENT_ID_LENGTH characters, none UNRECORDABLE. */
export function isEventId(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && value.length <= MAX_EVENT_ID_LENGTH && !UNRECORDABLE.test(value);
}

/** A notification that cannot be read; the message names the event and the field. */
export class NotificationError extends Error {
  constructor(
    readonly code: NotificationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'NotificationError';
  }
}

/** The events `parse` reads from one registry event; an UnreadableEvent when it throws a NotificationError. */
export function readEvent(event: unknown, parse: () => RegistryEvent[]): IngestedEvent[] {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof NotificationError)) throw error;
    const id = typeof event === 'object' && event !== null ? (event as { id?: unknown }).id : undefined;
    return [{ kind: 'unreadable', eventId: isEventId(id) ? id : null, code: error.code, reason: error.message, event }];
  }
}
