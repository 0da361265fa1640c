import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAcrWebhook } from '../../domain/notifications/acr';
import { NotificationError } from '../../domain/notifications/event';
import { expectValidPastTheEdge, notificationErrorExpecter, parseOrNotificationError, setPath } from '../support/notification-contract';

/** Fabricated after registry-spec §3.2: its push and delete samples, and the other actions in the same envelope. */
const fixtures = new URL('../fixtures/acr/', import.meta.url);
const fixtureFiles = readdirSync(fixtures).filter((name) => name.endsWith('.json'));
const readFixture = (file: string): any => JSON.parse(readFileSync(new URL(file, fixtures), 'utf8'));

const DIGEST = 'sha256:38af459acb016f800faae5708a8d238f2d7fae3731c4c0ccbffbd8ffcb64295f';

/** A copy of a fixture with some fields replaced (`undefined` removes one). */
function fixtureWith(file: string, changes: Record<string, unknown>, targetChanges: Record<string, unknown> = {}): any {
  const event = readFixture(file);
  Object.assign(event.target, targetChanges);
  for (const [key, value] of Object.entries(targetChanges)) if (value === undefined) delete event.target[key];
  Object.assign(event, changes);
  for (const [key, value] of Object.entries(changes)) if (value === undefined) delete event[key];
  return event;
}

const expectNotificationError = notificationErrorExpecter(parseAcrWebhook);

describe('ACR webhooks', () => {
  it('turns a push by tag into a push of that tag', () => {
    expect(parseAcrWebhook(readFixture('push.json'))).toEqual([
      {
        kind: 'push',
        eventId: '0b1e5c9a-2f44-4c1e-9a61-3d2f7e8a9b10',
        repository: 'payments/api',
        digest: DIGEST,
        tag: '2.7.1',
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        size: 1577,
        occurredAt: '2026-03-02T10:15:04.9Z',
      },
    ]);
  });

  it('turns a push by digest into an untagged push', () => {
    expect(parseAcrWebhook(readFixture('push-digest.json'))).toEqual([
      {
        kind: 'push',
        eventId: '5d7e9f1a-3b4c-4d6e-8f0a-2b3c4d5e6f70',
        repository: 'payments/api',
        digest: 'sha256:32c575bef3e3164f06d8ea8e7af785867fdc6159f940ec105e240ac22d19832b',
        tag: null,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 1204,
        occurredAt: '2026-03-02T10:15:04.31Z',
      },
    ]);
  });

  it('turns a manifest delete into a delete of its digest', () => {
    expect(parseAcrWebhook(readFixture('delete.json'))).toEqual([
      { kind: 'delete-digest', eventId: '7c2d4e6f-8a9b-4c1d-9e2f-3a4b5c6d7e8f', repository: 'payments/api', digest: DIGEST, occurredAt: '2026-03-02T11:40:12.5Z' },
    ]);
  });

  it('turns a delete naming only a tag into a tag delete', () => {
    const body = fixtureWith('delete.json', {}, { digest: '', mediaType: undefined, tag: '2.7.1' });
    expect(parseAcrWebhook(body)).toEqual([
      { kind: 'delete-tag', eventId: '7c2d4e6f-8a9b-4c1d-9e2f-3a4b5c6d7e8f', repository: 'payments/api', tag: '2.7.1', occurredAt: '2026-03-02T11:40:12.5Z' },
    ]);
  });

  it('prefers the digest when a delete names both', () => {
    const [event] = parseAcrWebhook(fixtureWith('delete.json', {}, { tag: '2.7.1' }));
    expect(event).toMatchObject({ kind: 'delete-digest', digest: DIGEST });
  });
});

describe('ACR events Ferry acknowledges and ignores', () => {
  it('answers the portal ping, which names no artifact', () => {
    expect(parseAcrWebhook(readFixture('ping.json'))).toEqual([
      { kind: 'ignored', eventId: 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b', reason: 'ping: a connectivity test, not a registry change' },
    ]);
  });

  it('ignores a push Ferry made itself into a registry-API region (its User-Agent): an echo', () => {
    const push = readFixture('push.json');
    push.request.useragent = 'ferry-replicator/1';
    expect(parseAcrWebhook(push)).toEqual([{ kind: 'ignored', eventId: push.id, reason: expect.stringMatching(/^push by Ferry itself/) }]);
  });

  it('answers a ping without an id too', () => {
    expect(parseAcrWebhook({ action: 'ping' })).toEqual([{ kind: 'ignored', eventId: null, reason: expect.stringContaining('ping') }]);
  });

  it.each([
    ['a legacy Helm chart push', fixtureWith('chart-push.json', {}), 'chart_push'],
    ['a legacy Helm chart delete', fixtureWith('chart-push.json', { action: 'chart_delete' }), 'chart_delete'],
    ['a quarantine', fixtureWith('push.json', { action: 'quarantine' }), 'quarantine'],
    ['an unknown action', fixtureWith('push.json', { action: 'import' }), 'unknown action "import"'],
  ])('ignores %s, saying why', (_, body, reason) => {
    expect(parseAcrWebhook(body)).toEqual([{ kind: 'ignored', eventId: body.id, reason: expect.stringContaining(reason) }]);
  });

  it('ignores a push of a media type that is not a manifest', () => {
    const [event] = parseAcrWebhook(fixtureWith('push.json', {}, { mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' }));
    expect(event).toMatchObject({ kind: 'ignored', reason: expect.stringContaining('manifest.v1+prettyjws') });
  });

  it('ignores a repository delete, which names neither digest nor tag', () => {
    const [event] = parseAcrWebhook(fixtureWith('delete.json', {}, { digest: undefined, mediaType: undefined }));
    expect(event).toEqual({ kind: 'ignored', eventId: '7c2d4e6f-8a9b-4c1d-9e2f-3a4b5c6d7e8f', reason: expect.stringContaining('repository delete of payments/api') });
  });

  it('ignores other actions without judging their other fields', () => {
    const [event] = parseAcrWebhook(fixtureWith('chart-push.json', { timestamp: 'not a date' }, { repository: 'Not/Valid' }));
    expect(event!.kind).toBe('ignored');
  });
});

describe('malformed ACR webhooks', () => {
  it.each([
    ['null', null],
    ['a string', '{"action":"push"}'],
    ['an Event Grid batch', [{ eventType: 'Microsoft.ContainerRegistry.ImagePushed', data: readFixture('push.json') }]],
    ['a Distribution envelope', { events: [readFixture('push.json')] }],
  ])('rejects %s', (_, body) => {
    expect(() => parseAcrWebhook(body)).toThrow(NotificationError);
  });

  it.each([
    ['a missing action', fixtureWith('push.json', { action: undefined }), 'action'],
    ['a push without id', fixtureWith('push.json', { id: undefined }), 'id'],
    ['a delete with an empty id', fixtureWith('delete.json', { id: '' }), 'id'],
    ['a push without target', fixtureWith('push.json', { target: undefined }), 'target'],
    ['a push without mediaType', fixtureWith('push.json', {}, { mediaType: undefined }), 'target.mediaType'],
    ['a negative size', fixtureWith('push.json', {}, { size: -1577 }), 'target.size'],
    ['a size that is a string', fixtureWith('push.json', {}, { size: '1577' }), 'target.size'],
    ['a timestamp that is not a date', fixtureWith('push.json', { timestamp: 'yesterday' }), 'timestamp'],
    ['a timestamp Date.parse would guess at', fixtureWith('delete.json', { timestamp: '1' }), 'timestamp'],
  ])('rejects %s as INVALID_FIELD, naming the field', (_, body, text) => {
    expectNotificationError(body, 'INVALID_FIELD', text);
  });

  it.each([
    ['an uppercase repository', fixtureWith('push.json', {}, { repository: 'Payments/API' }), 'target.repository'],
    ['a repository climbing out with ..', fixtureWith('delete.json', {}, { repository: 'payments/../etc' }), 'target.repository'],
    ['a missing repository', fixtureWith('delete.json', {}, { repository: undefined }), 'target.repository'],
    ['a short digest', fixtureWith('push.json', {}, { digest: 'sha256:38af459a' }), 'target.digest'],
    ['a sha512 delete', fixtureWith('delete.json', {}, { digest: `sha512:${'a'.repeat(128)}` }), 'target.digest'],
    ['a tag with a slash', fixtureWith('push.json', {}, { tag: 'v1/../../x' }), 'target.tag'],
    ['a tag of 129 characters', fixtureWith('push.json', {}, { tag: 'v'.repeat(129) }), 'target.tag'],
    ['a tag that is a digest', fixtureWith('push.json', {}, { tag: DIGEST }), 'target.tag'],
  ])('rejects %s as INVALID_REFERENCE, naming the field', (_, body, text) => {
    expectNotificationError(body, 'INVALID_REFERENCE', text);
  });
});

describe('parseAcrWebhook on arbitrary input', () => {
  /** Returns normally or throws NotificationError; whatever it returns is valid past the edge. */
  function expectEdgeContract(body: unknown): void {
    const events = parseOrNotificationError(parseAcrWebhook, body);
    if (events === undefined) return;
    expect(events).toHaveLength(1);
    for (const event of events) if (event.kind !== 'ignored') expect(event.eventId).toBe((body as { id: unknown }).id);
    expectValidPastTheEdge(events);
  }

  it('never throws anything but NotificationError on arbitrary JSON', () => {
    const target = fc.record(
      { mediaType: fc.oneof(fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.acr.helm.chart'), fc.jsonValue()), digest: fc.jsonValue(), repository: fc.jsonValue(), tag: fc.jsonValue(), size: fc.jsonValue() },
      { requiredKeys: [] },
    );
    const event = fc.record(
      { id: fc.jsonValue(), timestamp: fc.jsonValue(), action: fc.oneof(fc.constantFrom('push', 'delete', 'ping', 'chart_push'), fc.jsonValue()), target: fc.oneof(target, fc.jsonValue()) },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), event), expectEdgeContract), { numRuns: 1000 });
  });

  it('never throws anything but NotificationError on mutated real webhooks', () => {
    const paths = ['id', 'timestamp', 'action', 'target', 'target.mediaType', 'target.digest', 'target.repository', 'target.tag', 'target.size'];
    // Values near the grammar's edges, not just random noise.
    const referenceLike = fc.string({ unit: fc.constantFrom('a', 'f', '0', '9', 'A', '/', '.', '_', '-', ':', ' ', '\n'), maxLength: 80 });
    const value = fc.oneof(
      fc.jsonValue(),
      fc.constant(undefined),
      referenceLike,
      fc.constantFrom('push', 'delete', 'ping', 'chart_push', '', 'application/vnd.oci.image.index.v1+json', 'sha256:', '2026-02-30T00:00:00Z'),
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
