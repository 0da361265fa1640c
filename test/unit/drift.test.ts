import { describe, expect, it } from 'vitest';
import { findDrift, type RecordedTag, type StoredTag } from '../../domain/drift';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';

const repository = parseRepositoryName('team/app');
const tag = parseTag('v1');
const [a, b] = [parseDigest(`sha256:${'a'.repeat(64)}`), parseDigest(`sha256:${'b'.repeat(64)}`)];
const settled = '2026-01-01T12:00:00Z';
const stored = (region: string, digest = a, modifiedAt = '2026-01-01T11:00:00Z'): StoredTag => ({ region, repository, tag, digest, modifiedAt });
const recorded = (region: string, digest: typeof a | null = a, updatedAt = '2026-01-01T11:00:00Z'): RecordedTag => ({ region, repository, tag, digest, updatedAt });

describe('drift between storage and the event store', () => {
  it('is none when every region holds what was recorded', () => {
    expect(findDrift([stored('eastus'), stored('westeurope')], [recorded('eastus'), recorded('westeurope')], settled)).toEqual([]);
  });

  it('is a push from the region holding a tag nobody recorded (a lost notification)', () => {
    expect(findDrift([stored('eastus', b)], [recorded('eastus', a)], settled)).toEqual([
      { kind: 'push', region: 'eastus', repository, tag, digest: b, occurredAt: '2026-01-01T11:00:00Z' },
    ]);
  });

  it('leaves alone a change younger than the settle time: it may be in flight', () => {
    expect(findDrift([stored('eastus', b, '2026-01-01T12:00:01Z')], [recorded('eastus', a)], settled)).toEqual([]);
  });

  it('keeps the latest of several unrecorded writes of one tag, as the notifications would have', () => {
    const drifts = findDrift([stored('eastus', a, '2026-01-01T10:00:00Z'), stored('westeurope', b, '2026-01-01T10:30:00Z')], [], settled);
    expect(drifts.map((drift) => drift.region)).toEqual(['westeurope']);
  });

  it('is a tag delete when a recorded tag vanished from its region', () => {
    expect(findDrift([], [recorded('eastus', a)], settled)).toEqual([{ kind: 'delete-tag', region: 'eastus', repository, tag, occurredAt: settled }]);
    expect(findDrift([], [recorded('eastus', null)], settled)).toEqual([]);
  });

  it('finds the few drifts among 5,000 tags in three regions', () => {
    const tags = Array.from({ length: 5_000 }, (_, index) => parseTag(`v${index}`));
    const regions = ['eastus', 'westeurope', 'southeastasia'];
    const storedTags = regions.flatMap((region) => tags.map((name): StoredTag => ({ ...stored(region), tag: name })));
    const recordedTags = regions.flatMap((region) => tags.map((name): RecordedTag => ({ ...recorded(region), tag: name })));
    // westeurope lost v17's notification; southeastasia's v4999 was deleted behind Ferry's back.
    storedTags[5_000 + 17] = { ...storedTags[5_000 + 17]!, digest: b };
    storedTags.pop();
    expect(findDrift(storedTags, recordedTags, settled).map((drift) => [drift.kind, drift.region, drift.tag])).toEqual([
      ['push', 'westeurope', 'v17'],
      ['delete-tag', 'southeastasia', 'v4999'],
    ]);
  });
});

