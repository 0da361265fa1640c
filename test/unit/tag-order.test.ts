// domain/tag-order.ts: one source's changes are decided by its storage, changes
// from different sources by bounded time and then replication id.
import { describe, expect, it } from 'vitest';
import { decideUnrecorded, laterThan, mayChangeTag } from '../../domain/tag-order';

const at = (seconds: number) => new Date(Date.UTC(2026, 10, 24, 12, 0, seconds)).toISOString();

describe('mayChangeTag', () => {
  it('moves a tag nobody holds, or that this change already holds (a retry)', () => {
    expect(mayChangeTag({ replicationId: 5, occurredAt: at(0), sourceRegion: 'eastus' }, null)).toBe(true);
    expect(mayChangeTag({ replicationId: 5, occurredAt: at(0), sourceRegion: 'eastus' }, { replicationId: 5, occurredAt: at(0), sourceRegion: 'eastus' })).toBe(true);
  });

  it('lets the source decide between its own changes, whatever their times', () => {
    const futureHolder = { replicationId: 4, occurredAt: at(50), sourceRegion: 'eastus' };
    expect(mayChangeTag({ replicationId: 9, occurredAt: at(1), sourceRegion: 'eastus' }, futureHolder)).toBe(true);
  });

  it('orders changes from different sources by time, then replication id', () => {
    const holder = { replicationId: 7, occurredAt: at(10), sourceRegion: 'westeurope' };
    expect(mayChangeTag({ replicationId: 3, occurredAt: at(11), sourceRegion: 'eastus' }, holder)).toBe(true);
    expect(mayChangeTag({ replicationId: 9, occurredAt: at(9), sourceRegion: 'eastus' }, holder)).toBe(false);
    expect(mayChangeTag({ replicationId: 8, occurredAt: at(10), sourceRegion: 'eastus' }, holder)).toBe(true);
    expect(mayChangeTag({ replicationId: 6, occurredAt: at(10), sourceRegion: 'eastus' }, holder)).toBe(false);
  });

  it('orders the earlier workflow shape, which names no source, by time alone', () => {
    const holder = { replicationId: 7, occurredAt: at(10), sourceRegion: 'eastus' };
    expect(mayChangeTag({ replicationId: 9, occurredAt: at(9) }, holder)).toBe(false);
    expect(mayChangeTag({ replicationId: 9, occurredAt: at(11) }, holder)).toBe(true);
  });
});

describe('laterThan', () => {
  it('compares instants, not strings, so offsets and precision do not matter', () => {
    expect(laterThan({ replicationId: 1, occurredAt: '2026-11-24T13:00:00+01:00' }, { replicationId: 2, occurredAt: '2026-11-24T12:00:00.000Z' })).toBe(false);
    expect(laterThan({ replicationId: 3, occurredAt: '2026-11-24T12:00:00.5Z' }, { replicationId: 2, occurredAt: '2026-11-24T12:00:00.499999Z' })).toBe(true);
  });
});

describe('decideUnrecorded: a change the target region made itself, not yet recorded', () => {
  const WAIT_MS = 10_000;
  const change = { replicationId: 40, occurredAt: at(10) };
  const written = (seconds: number) => new Date(at(seconds));
  const now = (seconds: number) => Date.parse(at(seconds));

  it('waits for its notification, up to the wait after the target wrote the tag', () => {
    const pushed = { digest: 'sha256:b', modifiedAt: written(12), seenAt: now(13) };
    expect(decideUnrecorded(change, pushed, now(13), WAIT_MS)).toBe('wait');
    expect(decideUnrecorded(change, pushed, now(21.9), WAIT_MS)).toBe('wait');
    expect(decideUnrecorded(change, pushed, now(22), WAIT_MS)).not.toBe('wait');
  });

  it('with no notification, orders by the target storage\'s write time, which wins ties', () => {
    expect(decideUnrecorded(change, { digest: 'sha256:b', modifiedAt: written(12), seenAt: now(13) }, now(30), WAIT_MS)).toBe('refused');
    expect(decideUnrecorded(change, { digest: 'sha256:b', modifiedAt: written(10), seenAt: now(13) }, now(30), WAIT_MS)).toBe('refused');
    expect(decideUnrecorded(change, { digest: 'sha256:b', modifiedAt: written(9), seenAt: now(13) }, now(30), WAIT_MS)).toBe('allowed');
  });

  it('does not wait for a tag written long ago (before Ferry knew the repository)', () => {
    expect(decideUnrecorded(change, { digest: 'sha256:b', modifiedAt: written(-300), seenAt: now(13) }, now(13), WAIT_MS)).toBe('allowed');
  });

  it('waits for a delete from when it was first met, then lets the change restore the tag', () => {
    const deleted = { digest: null, modifiedAt: null, seenAt: now(13) };
    expect(decideUnrecorded(change, deleted, now(20), WAIT_MS)).toBe('wait');
    expect(decideUnrecorded(change, deleted, now(23), WAIT_MS)).toBe('allowed');
  });
});
