import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHarborWebhook } from '../../domain/notifications/harbor';
import { expectValidReferences, notificationErrorExpecter, parseOrNotificationError, setPath } from '../support/notification-contract';

/** Fabricated after registry-spec §3.1: its sample, and the same shape for the other kinds. */
const fixtures = new URL('../fixtures/harbor/', import.meta.url);
const fixtureFiles = readdirSync(fixtures).filter((name) => name.endsWith('.json'));
const readFixture = (file: string): any => JSON.parse(readFileSync(new URL(file, fixtures), 'utf8'));

const TAGGED = 'sha256:b6a9866d2bec206b09a1e5bc9e60a30c31a0ffd038ff5d7aced450f925943e1d';
const CHILD = 'sha256:32c575bef3e3164f06d8ea8e7af785867fdc6159f940ec105e240ac22d19832b';

/** A copy of a fixture with fields at dotted paths replaced (`undefined` removes one). */
function fixtureWith(file: string, changes: Record<string, unknown>): any {
  const body = readFixture(file);
  for (const [path, value] of Object.entries(changes)) setPath(body, path, value);
  return body;
}

const expectNotificationError = notificationErrorExpecter(parseHarborWebhook);

describe('Harbor default-format webhooks', () => {
  it('turns a push by tag into a push of that tag', () => {
    expect(parseHarborWebhook(readFixture('push-tag.json'))).toEqual([
      {
        kind: 'push',
        eventId: `harbor:PUSH_ARTIFACT:1772445304:payments/api:${TAGGED}:2.7.1`,
        repository: 'payments/api',
        digest: TAGGED,
        tag: '2.7.1',
        mediaType: '',
        size: 0,
        occurredAt: '2026-03-02T09:55:04.000Z',
      },
    ]);
  });

  it('turns a push by digest, whose tag field holds the digest, into an untagged push', () => {
    const [event] = parseHarborWebhook(readFixture('push-digest.json'));
    expect(event).toMatchObject({ kind: 'push', repository: 'payments/api', digest: CHILD, tag: null });
    expect(event!.eventId).toBe(`harbor:PUSH_ARTIFACT:1772445303:payments/api:${CHILD}:`);
  });

  it('reads a push with an empty or missing tag as untagged', () => {
    expect(parseHarborWebhook(fixtureWith('push-tag.json', { 'event_data.resources.0.tag': '' }))[0]).toMatchObject({ tag: null });
    expect(parseHarborWebhook(fixtureWith('push-tag.json', { 'event_data.resources.0.tag': undefined }))[0]).toMatchObject({ tag: null });
  });

  it('turns an artifact delete into a delete of its digest, whatever tag it had', () => {
    expect(parseHarborWebhook(readFixture('delete.json'))).toEqual([
      {
        kind: 'delete-digest',
        eventId: `harbor:DELETE_ARTIFACT:1772449021:payments/api:${TAGGED}:`,
        repository: 'payments/api',
        digest: TAGGED,
        occurredAt: '2026-03-02T10:57:01.000Z',
      },
    ]);
  });

  it('answers one event per resource, in order', () => {
    const body = readFixture('push-tag.json');
    body.event_data.resources.push(readFixture('push-digest.json').event_data.resources[0]);
    const events = parseHarborWebhook(body);
    expect(events.map((event) => event.kind === 'push' && [event.digest, event.tag])).toEqual([
      [TAGGED, '2.7.1'],
      [CHILD, null],
    ]);
    expect(new Set(events.map((event) => event.eventId)).size).toBe(2);
  });
});

describe('Harbor event ids', () => {
  it('gives a redelivered webhook the id it had the first time', () => {
    const first = parseHarborWebhook(readFixture('push-tag.json'));
    const redelivered = parseHarborWebhook(JSON.parse(JSON.stringify(readFixture('push-tag.json'))));
    expect(redelivered).toEqual(first);
  });

  it('keeps a push and a delete of the same artifact in the same second apart', () => {
    const push = parseHarborWebhook(readFixture('push-tag.json'));
    const remove = parseHarborWebhook(fixtureWith('delete.json', { occur_at: 1772445304 }));
    expect(push[0]!.eventId).not.toBe(remove[0]!.eventId);
  });

  it('tells apart two pushes of the same tag a second apart', () => {
    const first = parseHarborWebhook(readFixture('push-tag.json'));
    const second = parseHarborWebhook(fixtureWith('push-tag.json', { occur_at: 1772445305 }));
    expect(first[0]!.eventId).not.toBe(second[0]!.eventId);
  });
});

describe('Harbor CloudEvents webhooks', () => {
  it('reads harbor.artifact.pushed exactly like the default format of the same event, id included', () => {
    expect(parseHarborWebhook(readFixture('cloudevents-push.json'))).toEqual(parseHarborWebhook(readFixture('push-tag.json')));
  });

  it('reads harbor.artifact.deleted exactly like DELETE_ARTIFACT', () => {
    expect(parseHarborWebhook(readFixture('cloudevents-deleted.json'))).toEqual(parseHarborWebhook(readFixture('delete.json')));
  });

  it('ignores harbor.artifact.pulled and other CloudEvents types', () => {
    expect(parseHarborWebhook(fixtureWith('cloudevents-push.json', { type: 'harbor.artifact.pulled' }))).toEqual([
      { kind: 'ignored', eventId: null, reason: 'pull: a read changes nothing to replicate' },
    ]);
    expect(parseHarborWebhook(fixtureWith('cloudevents-push.json', { type: 'harbor.scan.completed' }))[0]).toMatchObject({ kind: 'ignored' });
  });

  it('names the CloudEvents fields in its errors', () => {
    expectNotificationError(fixtureWith('cloudevents-push.json', { specversion: '0.3' }), 'INVALID_FIELD', 'specversion');
    expectNotificationError(fixtureWith('cloudevents-push.json', { time: 1772445304 }), 'INVALID_FIELD', 'time');
    expectNotificationError(fixtureWith('cloudevents-push.json', { time: 'Mon, 02 Mar 2026 09:55:04 GMT' }), 'INVALID_FIELD', 'time');
    expectNotificationError(fixtureWith('cloudevents-push.json', { data: undefined }), 'INVALID_FIELD', 'data is not');
    expectNotificationError(fixtureWith('cloudevents-push.json', { 'data.resources.0.digest': 'sha256:b6a9' }), 'INVALID_REFERENCE', 'data.resources[0].digest');
  });
});

describe('Harbor events Ferry acknowledges and ignores', () => {
  it('ignores a pull, saying why', () => {
    expect(parseHarborWebhook(readFixture('pull.json'))).toEqual([{ kind: 'ignored', eventId: null, reason: 'pull: a read changes nothing to replicate' }]);
  });

  it.each(['SCANNING_COMPLETED', 'QUOTA_EXCEED', 'REPLICATION', 'TAG_RETENTION', 'constructor', '__proto__'])(
    'ignores the event type %s rather than making Harbor retry',
    (type) => {
      const [event] = parseHarborWebhook(fixtureWith('push-tag.json', { type }));
      expect(event).toEqual({ kind: 'ignored', eventId: null, reason: `event type ${JSON.stringify(type)} is neither an artifact push nor an artifact delete` });
    },
  );

  it('ignores a scan result without judging its other fields', () => {
    const body = fixtureWith('scanning-completed.json', { occur_at: 'later', 'event_data.repository.repo_full_name': 'Payments/API' });
    expect(parseHarborWebhook(body)[0]!.kind).toBe('ignored');
  });
});

describe('malformed Harbor webhooks', () => {
  it.each([
    ['null', null],
    ['a string', '{"type":"PUSH_ARTIFACT"}'],
    ['an array', [readFixture('push-tag.json')]],
  ])('rejects %s as MALFORMED_ENVELOPE', (_, body) => {
    expectNotificationError(body, 'MALFORMED_ENVELOPE', 'not a JSON object');
  });

  it.each([
    ['a missing type', fixtureWith('push-tag.json', { type: undefined }), 'type'],
    ['a missing occur_at', fixtureWith('push-tag.json', { occur_at: undefined }), 'occur_at'],
    ['occur_at in milliseconds past any date', fixtureWith('push-tag.json', { occur_at: 1e16 }), 'occur_at'],
    ['occur_at as a string', fixtureWith('delete.json', { occur_at: '1772449021' }), 'occur_at'],
    ['a fractional occur_at', fixtureWith('push-tag.json', { occur_at: 1772445304.5 }), 'occur_at'],
    ['no event_data', fixtureWith('push-tag.json', { event_data: undefined }), 'event_data is not a JSON object'],
    ['no repository', fixtureWith('delete.json', { 'event_data.repository': undefined }), 'event_data.repository is not a JSON object'],
    ['no resources', fixtureWith('push-tag.json', { 'event_data.resources': [] }), 'event_data.resources'],
    ['a resource that is not an object', fixtureWith('push-tag.json', { 'event_data.resources': ['sha256:b6a9'] }), 'event_data.resources[0]'],
  ])('rejects %s as INVALID_FIELD, naming the field', (_, body, text) => {
    expectNotificationError(body, 'INVALID_FIELD', text);
  });

  it.each([
    ['an uppercase repository', fixtureWith('push-tag.json', { 'event_data.repository.repo_full_name': 'Payments/api' }), 'event_data.repository.repo_full_name'],
    ['a repository climbing out with ..', fixtureWith('delete.json', { 'event_data.repository.repo_full_name': 'payments/../etc' }), 'event_data.repository.repo_full_name'],
    ['a missing repo_full_name', fixtureWith('push-tag.json', { 'event_data.repository.repo_full_name': undefined }), 'event_data.repository.repo_full_name'],
    ['a short digest', fixtureWith('push-tag.json', { 'event_data.resources.0.digest': 'sha256:b6a9866d' }), 'event_data.resources[0].digest'],
    ['a missing delete digest', fixtureWith('delete.json', { 'event_data.resources.0.digest': undefined }), 'event_data.resources[0].digest'],
    ['a tag with a slash', fixtureWith('push-tag.json', { 'event_data.resources.0.tag': 'v1/../../x' }), 'event_data.resources[0].tag'],
    ['a tag of 129 characters', fixtureWith('push-tag.json', { 'event_data.resources.0.tag': 'v'.repeat(129) }), 'event_data.resources[0].tag'],
    ['a tag that is a number', fixtureWith('push-tag.json', { 'event_data.resources.0.tag': 271 }), 'event_data.resources[0].tag'],
  ])('rejects %s as INVALID_REFERENCE, naming the field', (_, body, text) => {
    expectNotificationError(body, 'INVALID_REFERENCE', text);
  });
});

describe('parseHarborWebhook on arbitrary input', () => {
  /** Returns normally or throws NotificationError; whatever it returns is valid past the edge, and the same again. */
  function expectEdgeContract(body: unknown): void {
    const events = parseOrNotificationError(parseHarborWebhook, body);
    if (events === undefined) return;
    expect(events.length).toBeGreaterThan(0);
    expect(parseHarborWebhook(body)).toEqual(events);
    for (const event of events) {
      if (event.kind === 'ignored') continue;
      if (event.kind === 'delete-tag') expect.unreachable('Harbor deletes artifacts, never tags alone');
      expect(event.eventId.startsWith('harbor:')).toBe(true);
      // Stricter than Date.parse: occurredAt is a canonical ISO string. Harbor pushes carry no media type or size to check.
      expect(new Date(event.occurredAt).toISOString()).toBe(event.occurredAt);
      expectValidReferences(event);
    }
  }

  it('never throws anything but NotificationError on arbitrary JSON', () => {
    const resource = fc.record({ digest: fc.jsonValue(), tag: fc.jsonValue(), resource_url: fc.jsonValue() }, { requiredKeys: [] });
    const eventData = fc.record(
      { resources: fc.oneof(fc.array(fc.oneof(resource, fc.jsonValue())), fc.jsonValue()), repository: fc.oneof(fc.record({ repo_full_name: fc.jsonValue() }), fc.jsonValue()) },
      { requiredKeys: [] },
    );
    const defaultFormat = fc.record(
      { type: fc.oneof(fc.constantFrom('PUSH_ARTIFACT', 'DELETE_ARTIFACT', 'PULL_ARTIFACT'), fc.jsonValue()), occur_at: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()), event_data: fc.oneof(eventData, fc.jsonValue()) },
      { requiredKeys: [] },
    );
    const cloudEvent = fc.record(
      {
        specversion: fc.oneof(fc.constant('1.0'), fc.jsonValue()),
        type: fc.oneof(fc.constantFrom('harbor.artifact.pushed', 'harbor.artifact.deleted', 'harbor.artifact.pulled'), fc.jsonValue()),
        time: fc.oneof(fc.date({ noInvalidDate: true }).map((date) => date.toISOString()), fc.jsonValue()),
        data: fc.oneof(eventData, fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), defaultFormat, cloudEvent), expectEdgeContract), { numRuns: 1000 });
  });

  it('never throws anything but NotificationError on mutated real webhooks', () => {
    const paths = [
      'type',
      'occur_at',
      'specversion',
      'time',
      'event_data',
      'event_data.resources',
      'event_data.resources.0',
      'event_data.resources.0.digest',
      'event_data.resources.0.tag',
      'event_data.repository.repo_full_name',
      'data.resources.0.digest',
      'data.resources.0.tag',
      'data.repository.repo_full_name',
    ];
    // Values near the grammar's edges, not just random noise.
    const referenceLike = fc.string({ unit: fc.constantFrom('a', 'f', '0', '9', 'A', '/', '.', '_', '-', ':', ' ', '\n'), maxLength: 80 });
    const value = fc.oneof(
      fc.jsonValue(),
      fc.constant(undefined),
      referenceLike,
      fc.constantFrom('PUSH_ARTIFACT', 'DELETE_ARTIFACT', 'harbor.artifact.pushed', '', 'sha256:', `sha512:${'a'.repeat(128)}`, '2026-02-30T00:00:00Z', '1.0'),
      fc.integer(),
      fc.double(),
    );
    const mutation = fc.tuple(fc.constantFrom(...paths), value);
    const webhook = fc.tuple(fc.constantFrom(...fixtureFiles), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([file, mutations]) => {
      const body = readFixture(file);
      for (const [path, replacement] of mutations) setPath(body, path, replacement);
      return body;
    });
    fc.assert(fc.property(webhook, expectEdgeContract), { numRuns: 2000 });
  });
});
