import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isManifestMediaType } from '../../domain/manifest';
import { parseDistributionEnvelope, readDistributionEnvelope } from '../../domain/notifications/distribution';
import type { RegistryEvent } from '../../domain/notifications/event';
import { expectValidPastTheEdge, notificationErrorExpecter, parseOrNotificationError, setPath } from '../support/notification-contract';

const notifications = new URL('../fixtures/distribution-2.8/notifications/', import.meta.url);
const fixtureFiles = readdirSync(notifications).filter((name) => name.endsWith('.json'));
const readFixture = (file: string): any => JSON.parse(readFileSync(new URL(file, notifications), 'utf8'));

/** INDEX.tsv: what a real 2.8 registry sent while skopeo pushed, copied and deleted demo/app. */
const index = readFileSync(new URL('INDEX.tsv', notifications), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((line) => {
    const [file, action, mediaType, repository, tag, digest] = line.split('\t');
    const dash = (value: string | undefined) => (value === '-' ? null : value!);
    return { file: file!, action: action!, mediaType: dash(mediaType), repository: repository!, tag: dash(tag), digest: dash(digest) };
  });

/** What a row of INDEX.tsv must become: the behaviour this parser exists for. */
function expectedKind(row: (typeof index)[number]): RegistryEvent['kind'] {
  if (row.action === 'push' && isManifestMediaType(row.mediaType)) return 'push';
  if (row.action === 'delete') return row.digest === null ? 'delete-tag' : 'delete-digest';
  return 'ignored';
}

// §2.8 sample: a v3 registry's manifest push by tag (envelope media type events.v2+json).
const v3Push = {
  events: [
    {
      id: 'f72df8eb-7e31-49b5-9526-770503ccf0eb',
      timestamp: '2026-03-02T10:15:04.118273645Z',
      action: 'push',
      target: {
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: 'sha256:859a9c0f9c2942259a4b9c95318eea9a16328ca421d8c0673058a41881ca7c73',
        size: 856,
        length: 856,
        repository: 'payments/api',
        url: 'https://registry.eu1.example.net/v2/payments/api/manifests/sha256:859a9c0f9c2942259a4b9c95318eea9a16328ca421d8c0673058a41881ca7c73',
        tag: '2.7.1',
        references: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: 'sha256:32c575bef3e3164f06d8ea8e7af785867fdc6159f940ec105e240ac22d19832b',
            size: 1204,
            platform: { architecture: 'amd64', os: 'linux' },
          },
        ],
      },
      request: { id: '39316a12-4d25-467a-a52a-18b84f83f8a3', addr: '10.20.3.14', host: 'registry.eu1.example.net', method: 'PUT', useragent: 'buildkit/v0.20' },
      actor: { name: 'ci-bot' },
      source: { addr: 'registry-7c9f5d-abcde:5000', instanceID: 'f56022d8-946d-45e8-a3c8-b99ea9ed0d96' },
    },
  ],
};

/** A copy of a real fixture's single event with some fields replaced (`undefined` removes one). */
function fixtureWith(file: string, changes: Record<string, unknown>, targetChanges: Record<string, unknown> = {}): any {
  const envelope = readFixture(file);
  const event = envelope.events[0];
  Object.assign(event.target, targetChanges);
  for (const [key, value] of Object.entries(targetChanges)) if (value === undefined) delete event.target[key];
  Object.assign(event, changes);
  for (const [key, value] of Object.entries(changes)) if (value === undefined) delete event[key];
  return envelope;
}

const expectNotificationError = notificationErrorExpecter(parseDistributionEnvelope);

describe('Distribution 2.8 notifications from a real registry', () => {
  it('has an INDEX.tsv row for every fixture', () => {
    expect(index.map((row) => row.file).sort()).toEqual([...fixtureFiles].sort());
  });

  it.each(index)('$file ($action $mediaType) becomes the event the index describes', (row) => {
    const envelope = readFixture(row.file);
    const events = parseDistributionEnvelope(envelope);
    expect(events).toHaveLength(1);
    const event = events[0]!;
    expect(event.kind).toBe(expectedKind(row));
    expect(event.eventId).toBe(envelope.events[0].id);
    if (event!.kind === 'ignored') {
      expect(event.reason).not.toBe('');
      return;
    }
    expect(event.repository).toBe(row.repository);
    expect(event.occurredAt).toBe(envelope.events[0].timestamp);
    if (event.kind === 'push') {
      expect(event).toMatchObject({ digest: row.digest, tag: row.tag, mediaType: row.mediaType, size: envelope.events[0].target.size });
    }
    if (event.kind === 'delete-digest') expect(event.digest).toBe(row.digest);
    if (event.kind === 'delete-tag') expect(event.tag).toBe(row.tag);
  });

  it('turns the untagged child pushes of a multi-arch image into pushes with a null tag', () => {
    const [child] = parseDistributionEnvelope(readFixture('0010.json'));
    expect(child).toMatchObject({ kind: 'push', tag: null, digest: 'sha256:f1f72c2d375423985053a0a3f2f8a7506ac3b3e73c8c130585290c2b47af9510' });
  });

  it('reads 0032 as a digest delete and 0033 as a tag delete of demo/mirror:v2', () => {
    expect(parseDistributionEnvelope(readFixture('0032.json'))).toEqual([
      {
        kind: 'delete-digest',
        eventId: 'd11270ec-c4bd-4d8a-8469-e8064508c9b3',
        repository: 'demo/mirror',
        digest: 'sha256:7558a5fe69262baed49fda244168f06d20a282e81efaf46e29eac6cef4c76f8f',
        occurredAt: '2026-11-22T03:57:06.207725749Z',
      },
    ]);
    expect(parseDistributionEnvelope(readFixture('0033.json'))).toEqual([
      { kind: 'delete-tag', eventId: 'e626a56e-5702-4501-aca3-33aab9a327f1', repository: 'demo/mirror', tag: 'v2', occurredAt: '2026-11-22T03:57:06.222892541Z' },
    ]);
  });
});

describe('Distribution v3 notifications', () => {
  it('reads the v2 envelope of a v3 registry the same way', () => {
    expect(parseDistributionEnvelope(v3Push)).toEqual([
      {
        kind: 'push',
        eventId: 'f72df8eb-7e31-49b5-9526-770503ccf0eb',
        repository: 'payments/api',
        digest: 'sha256:859a9c0f9c2942259a4b9c95318eea9a16328ca421d8c0673058a41881ca7c73',
        tag: '2.7.1',
        mediaType: 'application/vnd.oci.image.index.v1+json',
        size: 856,
        occurredAt: '2026-03-02T10:15:04.118273645Z',
      },
    ]);
  });

  it("ignores a push or delete Ferry made itself through the API (its User-Agent): an echo, never replicated back", () => {
    const push = readFixture('0003.json');
    push.events[0].request.useragent = 'ferry-replicator/1';
    expect(parseDistributionEnvelope(push)).toEqual([{ kind: 'ignored', eventId: push.events[0].id, reason: expect.stringMatching(/^push by Ferry itself/) }]);
    const remove = readFixture('0033.json');
    remove.events[0].request.useragent = 'ferry-replicator/1';
    expect(parseDistributionEnvelope(remove)).toMatchObject([{ kind: 'ignored', reason: expect.stringMatching(/^delete by Ferry itself/) }]);
    // Any other client's, skopeo's among them, and one merely mentioning Ferry, are changes to replicate.
    push.events[0].request.useragent = 'skopeo/1.9.3 ferry-replicator/1';
    expect(parseDistributionEnvelope(push)).toMatchObject([{ kind: 'push' }]);
  });

  it('reads a tag delete whose unset digest arrives as an empty string', () => {
    const body = { events: [{ id: '9b4a2298', timestamp: '2026-03-02T11:00:00.7+01:00', action: 'delete', target: { mediaType: '', digest: '', size: 0, repository: 'payments/api', tag: '2.7.1' } }] };
    expect(parseDistributionEnvelope(body)).toEqual([
      { kind: 'delete-tag', eventId: '9b4a2298', repository: 'payments/api', tag: '2.7.1', occurredAt: '2026-03-02T11:00:00.7+01:00' },
    ]);
  });

  it('reads a leap day, and an offset of ±15:59', () => {
    expect(parseDistributionEnvelope(fixtureWith('0003.json', { timestamp: '2024-02-29T10:00:00.5+15:59' }))).toMatchObject([{ kind: 'push', occurredAt: '2024-02-29T10:00:00.5+15:59' }]);
  });

  it('answers every event of a multi-event envelope, in order', () => {
    const body = { events: [...readFixture('0001.json').events, ...readFixture('0003.json').events, ...readFixture('0033.json').events] };
    expect(parseDistributionEnvelope(body).map((event) => event.kind)).toEqual(['ignored', 'push', 'delete-tag']);
  });
});

describe('events Ferry acknowledges and ignores', () => {
  it('ignores an unknown action rather than jamming the registry queue', () => {
    const [event] = parseDistributionEnvelope(fixtureWith('0003.json', { action: 'replicate' }));
    expect(event).toEqual({ kind: 'ignored', eventId: '4666e50d-139e-4804-8ce9-a97c8a32045a', reason: 'unknown action "replicate"' });
  });

  it('ignores a push of a schema1 manifest, saying why', () => {
    const body = fixtureWith('0003.json', {}, { mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
    const [event] = parseDistributionEnvelope(body);
    expect(event).toMatchObject({ kind: 'ignored', reason: expect.stringContaining('manifest.v1+prettyjws') });
  });

  it('ignores blob events without judging their other fields', () => {
    const [event] = parseDistributionEnvelope(fixtureWith('0026.json', { timestamp: 'not a date' }, { repository: 'Not/Valid' }));
    expect(event!.kind).toBe('ignored');
  });

  it('accepts an empty envelope', () => {
    expect(parseDistributionEnvelope({ events: [] })).toEqual([]);
  });
});

describe('malformed notifications', () => {
  it.each([
    ['null', null, 'not a JSON object'],
    ['a string', '{"events":[]}', 'not a JSON object'],
    ['an array', [], 'not a JSON object'],
    ['an object without events', {}, '"events" array'],
    ['events that are not an array', { events: {} }, '"events" array'],
    ['an event that is not an object', { events: [readFixture('0003.json').events[0], 'push'] }, 'events[1]'],
    ['a null event', { events: [null] }, 'events[0]'],
  ])('rejects %s as MALFORMED_ENVELOPE', (_, body, text) => {
    expectNotificationError(body, 'MALFORMED_ENVELOPE', text);
  });

  it.each([
    ['a missing id', fixtureWith('0003.json', { id: undefined }), 'events[0].id'],
    ['an empty id', fixtureWith('0003.json', { id: '' }), 'events[0].id'],
    ['a missing action', fixtureWith('0003.json', { action: undefined }), 'events[0].action'],
    ['a push without target', fixtureWith('0003.json', { target: undefined }), 'events[0].target'],
    ['a push without mediaType', fixtureWith('0003.json', {}, { mediaType: undefined }), 'events[0].target.mediaType'],
    ['a negative size', fixtureWith('0003.json', {}, { size: -401 }), 'events[0].target.size'],
    ['a size that is a string', fixtureWith('0003.json', {}, { size: '401' }), 'events[0].target.size'],
    ['a timestamp that is not a date', fixtureWith('0003.json', { timestamp: 'yesterday' }), 'events[0].timestamp'],
    ['a timestamp Date.parse would guess at', fixtureWith('0003.json', { timestamp: '1' }), 'events[0].timestamp'],
    ['an impossible date', fixtureWith('0032.json', { timestamp: '2026-13-45T03:57:06Z' }), 'events[0].timestamp'],
    ['a day Date.parse rolls into March', fixtureWith('0003.json', { timestamp: '2026-02-29T10:00:00Z' }), 'events[0].timestamp'],
    ['year 0, which Postgres has not', fixtureWith('0032.json', { timestamp: '0000-01-01T00:00:00Z' }), 'events[0].timestamp'],
    ['an offset beyond ±15:59', fixtureWith('0033.json', { timestamp: '2026-01-01T00:00:00-16:00' }), 'events[0].timestamp'],
    ['an id with a NUL', fixtureWith('0003.json', { id: 'a\u0000b' }), 'events[0].id'],
    ['an id of 257 characters', fixtureWith('0003.json', { id: 'i'.repeat(257) }), 'events[0].id'],
    ['a delete naming neither digest nor tag', fixtureWith('0033.json', {}, { tag: undefined }), 'events[0].target'],
  ])('rejects %s as INVALID_FIELD, naming the field', (_, body, text) => {
    expectNotificationError(body, 'INVALID_FIELD', text);
  });

  it.each([
    ['an uppercase repository', fixtureWith('0003.json', {}, { repository: 'Demo/App' }), 'events[0].target.repository'],
    ['a repository climbing out with ..', fixtureWith('0032.json', {}, { repository: 'demo/../etc' }), 'events[0].target.repository'],
    ['a missing repository', fixtureWith('0033.json', {}, { repository: undefined }), 'events[0].target.repository'],
    ['a short digest', fixtureWith('0003.json', {}, { digest: 'sha256:3490ab91' }), 'events[0].target.digest'],
    ['a sha512 delete', fixtureWith('0032.json', {}, { digest: `sha512:${'a'.repeat(128)}` }), 'events[0].target.digest'],
    ['a tag with a slash', fixtureWith('0003.json', {}, { tag: 'v1/../../x' }), 'events[0].target.tag'],
    ['a tag of 129 characters', fixtureWith('0033.json', {}, { tag: 'v'.repeat(129) }), 'events[0].target.tag'],
    ['a tag that is a number', fixtureWith('0003.json', {}, { tag: 1 }), 'events[0].target.tag'],
  ])('rejects %s as INVALID_REFERENCE, naming the field', (_, body, text) => {
    expectNotificationError(body, 'INVALID_REFERENCE', text);
  });
});

describe('parseDistributionEnvelope on arbitrary input', () => {
  /** Returns normally or throws NotificationError; whatever it returns is valid past the edge. */
  function expectEdgeContract(body: unknown): void {
    const events = parseOrNotificationError(parseDistributionEnvelope, body);
    if (events === undefined) return;
    expect(events).toHaveLength((body as { events: unknown[] }).events.length);
    expectValidPastTheEdge(events);
  }

  it('never throws anything but NotificationError on arbitrary JSON', () => {
    const target = fc.record(
      { mediaType: fc.oneof(fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/octet-stream'), fc.jsonValue()), digest: fc.jsonValue(), repository: fc.jsonValue(), tag: fc.jsonValue(), size: fc.jsonValue() },
      { requiredKeys: [] },
    );
    const event = fc.record(
      { id: fc.jsonValue(), timestamp: fc.jsonValue(), action: fc.oneof(fc.constantFrom('push', 'delete', 'pull'), fc.jsonValue()), target: fc.oneof(target, fc.jsonValue()) },
      { requiredKeys: [] },
    );
    const body = fc.oneof(fc.jsonValue(), fc.record({ events: fc.array(fc.oneof(event, fc.jsonValue())) }));
    fc.assert(fc.property(body, expectEdgeContract), { numRuns: 1000 });
  });

  it('never throws anything but NotificationError on mutated real envelopes', () => {
    const paths = ['id', 'timestamp', 'action', 'target', 'target.mediaType', 'target.digest', 'target.repository', 'target.tag', 'target.size'];
    // Values near the grammar's edges, not just random noise.
    const referenceLike = fc.string({ unit: fc.constantFrom('a', 'f', '0', '9', 'A', '/', '.', '_', '-', ':', ' ', '\n'), maxLength: 80 });
    const value = fc.oneof(
      fc.jsonValue(),
      fc.constant(undefined),
      referenceLike,
      fc.constantFrom('push', 'delete', 'pull', 'mount', '', 'application/octet-stream', 'application/vnd.oci.image.index.v1+json', 'sha256:', '2026-02-30T00:00:00Z'),
      fc.integer(),
      fc.double(),
    );
    const mutation = fc.tuple(fc.constantFrom(...paths), value);
    const envelope = fc.tuple(fc.constantFrom(...fixtureFiles), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([file, mutations]) => {
      const body = readFixture(file);
      for (const [path, replacement] of mutations) setPath(body.events[0], path, replacement);
      return body;
    });
    fc.assert(fc.property(envelope, expectEdgeContract), { numRuns: 2000 });
  });
});

describe('readDistributionEnvelope (what ingest uses)', () => {
  it('reads an event it cannot parse as unreadable, with its id, code and reason, and the others as usual', () => {
    const push = readFixture('0003.json').events[0];
    const bad = { ...structuredClone(push), id: 'bad-1', target: { ...push.target, digest: `sha512:${'c'.repeat(128)}` } };
    const events = readDistributionEnvelope({ events: [bad, push] });
    expect(events.map((event) => event.kind)).toEqual(['unreadable', 'push']);
    expect(events[0]).toMatchObject({ kind: 'unreadable', eventId: 'bad-1', code: 'INVALID_REFERENCE', event: bad });
    expect(() => parseDistributionEnvelope({ events: [bad, push] })).toThrow(/digest/);
  });

  it('reads an event that is not an object, or has no id, as unreadable with no id', () => {
    expect(readDistributionEnvelope({ events: [42] })).toMatchObject([{ kind: 'unreadable', eventId: null, code: 'MALFORMED_ENVELOPE' }]);
  });

  it('keeps no id Postgres could not record with an unreadable event', () => {
    const event = (id: string) => fixtureWith('0003.json', { id }).events[0];
    expect(readDistributionEnvelope({ events: [event('a\u0000b'), event('\ud800'), event('i'.repeat(257))] }).map((read) => read.kind === 'unreadable' && read.eventId)).toEqual([null, null, null]);
    expect(readDistributionEnvelope({ events: [event('i'.repeat(256))] })).toMatchObject([{ kind: 'push', eventId: 'i'.repeat(256) }]);
  });

  it('still refuses what is not an envelope', () => {
    expect(() => readDistributionEnvelope({ events: 'none' })).toThrow(/"events" array/);
    expect(() => readDistributionEnvelope([])).toThrow(/not a JSON object/);
  });
});
