// What every registry's notification parser (Distribution, Harbor, ACR) owes
// the code past the edge, for the parser tests: it either throws a
// NotificationError or returns events whose references, time and push
// details are valid. Each parser's own promises stay in its test file.
import { expect } from 'vitest';
import { isManifestMediaType } from '../../domain/manifest';
import { NotificationError, type NotificationErrorCode, type RegistryEvent } from '../../domain/notifications/event';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';

export type NotificationParser = (body: unknown) => RegistryEvent[];

/** `expectNotificationError(body, code, text)` for `parse`: it throws a NotificationError with `code`, its message naming `text`. */
export function notificationErrorExpecter(parse: NotificationParser): (body: unknown, code: NotificationErrorCode, text: string) => void {
  return (body, code, text) => {
    expect(() => parse(body)).toThrow(NotificationError);
    expect(() => parse(body)).toThrow(expect.objectContaining({ code, message: expect.stringContaining(text) }));
  };
}

/** What `parse` returns for `body`, or undefined when it throws, which only a NotificationError may do. */
export function parseOrNotificationError(parse: NotificationParser, body: unknown): RegistryEvent[] | undefined {
  try {
    return parse(body);
  } catch (error) {
    expect(error).toBeInstanceOf(NotificationError);
    return undefined;
  }
}

/** An event that is not ignored names references that re-parse to themselves: its repository, and its tag and digest where it has them. */
export function expectValidReferences(event: Exclude<RegistryEvent, { kind: 'ignored' }>): void {
  expect(parseRepositoryName(event.repository)).toBe(event.repository);
  if (event.kind === 'delete-tag') expect(parseTag(event.tag)).toBe(event.tag);
  if (event.kind === 'delete-digest') expect(parseDigest(event.digest)).toBe(event.digest);
  if (event.kind === 'push') {
    expect(parseDigest(event.digest)).toBe(event.digest);
    if (event.tag !== null) expect(parseTag(event.tag)).toBe(event.tag);
  }
}

/**
 * Every event that is not ignored is valid past the edge: valid references,
 * an occurredAt that parses, and for a push a manifest media type and a size
 * that is a non-negative safe integer.
 */
export function expectValidPastTheEdge(events: RegistryEvent[]): void {
  for (const event of events) {
    if (event.kind === 'ignored') continue;
    expectValidReferences(event);
    expect(Number.isNaN(Date.parse(event.occurredAt))).toBe(false);
    if (event.kind === 'push') {
      expect(isManifestMediaType(event.mediaType)).toBe(true);
      expect(Number.isSafeInteger(event.size) && event.size >= 0).toBe(true);
    }
  }
}

/** Sets (or, given `undefined`, removes) the field at a dotted path below `root`; a path through a non-object, or to an array's non-index key, changes nothing. */
export function setPath(root: any, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop()!;
  const parent = keys.reduce((node: any, key) => (node !== null && typeof node === 'object' ? node[key] : undefined), root);
  if (parent === null || typeof parent !== 'object') return;
  // An array holds only its elements in JSON: another key (its `length`) is no field to set.
  if (Array.isArray(parent) && !/^\d+$/.test(last)) return;
  if (value === undefined) delete parent[last];
  else parent[last] = value;
}
