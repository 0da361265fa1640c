import { describe, expect, it } from 'vitest';
import { behindInStorage, disputedTags, findDrift, heldBeforeKey, recoveryBaseline, regionTagKey, type RecordedTag, type StoredTag } from '../../domain/drift';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';
import { laterThan } from '../../domain/tag-order';

const repository = parseRepositoryName('team/app');
const tag = parseTag('v1');
const [a, b] = [parseDigest(`sha256:${'a'.repeat(64)}`), parseDigest(`sha256:${'b'.repeat(64)}`)];
const settled = '2026-01-01T12:00:00Z';
const stored = (region: string, digest = a, modifiedAt = '2026-01-01T11:00:00Z'): StoredTag => ({ region, repository, tag, digest, modifiedAt });
const recorded = (region: string, digest: typeof a | null = a, updatedAt = '2026-01-01T11:00:00Z', occurredAt = '2026-01-01T10:59:00Z'): RecordedTag => ({
  region,
  repository,
  tag,
  digest,
  updatedAt,
  occurredAt,
});

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

  it('refills a region that lost a tag from a region that holds it, and never deletes it elsewhere', () => {
    const drifts = findDrift([stored('eastus'), stored('westeurope', a, '2026-01-01T11:30:00Z')], ['eastus', 'westeurope', 'southeastasia'].map((region) => recorded(region)), settled);
    expect(drifts).toEqual([{ kind: 'refill', region: 'westeurope', target: 'southeastasia', repository, tag, digest: a, occurredAt: '2026-01-01T11:30:00Z' }]);
    // Gone everywhere, or recorded as deleted: nothing to refill from, and nothing to do.
    expect(findDrift([], [recorded('eastus', a), recorded('westeurope', a)], settled)).toEqual([]);
    expect(findDrift([], [recorded('eastus', null)], settled)).toEqual([]);
  });

  it('orders a refill as the change recorded in its holder, which storage dates to the second only', () => {
    // The push happened at .347 of the second; the holder's storage says the second, earlier than the change it refills.
    const records = ['eastus', 'westeurope', 'southeastasia'].map((region) => recorded(region, a, '2026-01-01T11:00:01Z', '2026-01-01T11:00:00.347Z'));
    const drifts = findDrift([stored('eastus'), stored('westeurope')], records, settled);
    expect(drifts).toEqual([{ kind: 'refill', region: 'eastus', target: 'southeastasia', repository, tag, digest: a, occurredAt: '2026-01-01T11:00:00.347Z' }]);
    expect(laterThan({ occurredAt: drifts[0]!.kind === 'refill' ? drifts[0]!.occurredAt : '', replicationId: 2 }, { occurredAt: '2026-01-01T11:00:00.347Z', replicationId: 1 }), 'not refused by the change it restores').toBe(true);
  });

  it('leaves a refill to a push of the same tag, which reaches the region that lost it', () => {
    const drifts = findDrift([stored('eastus', b, '2026-01-01T11:30:00Z')], [recorded('eastus', a), recorded('westeurope', a)], settled);
    expect(drifts.map((drift) => drift.kind)).toEqual(['push']);
  });

  it('halts a region that lost more than the allowed share of its tags, doing nothing from or into it', () => {
    const tags = ['v1', 'v2', 'v3', 'v4'].map(parseTag);
    const everywhere = (region: string) => tags.map((name) => ({ ...stored(region), tag: name }));
    const records = ['eastus', 'westeurope'].flatMap((region) => tags.map((name) => ({ ...recorded(region), tag: name })));
    // westeurope's bucket came back empty but for v4, which it now holds at another digest.
    const drifts = findDrift([...everywhere('eastus'), { ...stored('westeurope', b), tag: tags[3]! }], records, settled, 0.25);
    expect(drifts).toEqual([{ kind: 'halted', region: 'westeurope', missing: 3, recorded: 4 }]);
    // One tag of four gone is a refill at that share; halting needs at least two gone.
    expect(findDrift([...everywhere('eastus'), ...everywhere('westeurope').slice(1)], records, settled, 0.25).map((drift) => drift.kind)).toEqual(['refill']);
    expect(findDrift(everywhere('eastus'), records.filter((record) => record.region === 'eastus' || record.tag === 'v1'), settled, 0.25).map((drift) => drift.kind)).toEqual(['refill']);
  });

  it('finds the few drifts among 5,000 tags in three regions', () => {
    const tags = Array.from({ length: 5_000 }, (_, index) => parseTag(`v${index}`));
    const regions = ['eastus', 'westeurope', 'southeastasia'];
    const storedTags = regions.flatMap((region) => tags.map((name): StoredTag => ({ ...stored(region), tag: name })));
    const recordedTags = regions.flatMap((region) => tags.map((name): RecordedTag => ({ ...recorded(region), tag: name })));
    // westeurope lost v17's notification; southeastasia lost v4999 from its storage.
    storedTags[5_000 + 17] = { ...storedTags[5_000 + 17]!, digest: b };
    storedTags.pop();
    expect(findDrift(storedTags, recordedTags, settled).map((drift) => (drift.kind === 'halted' ? [] : [drift.kind, drift.region, drift.tag]))).toEqual([
      ['push', 'westeurope', 'v17'],
      ['refill', 'eastus', 'v4999'],
    ]);
  });
});


describe('the baseline a recovery records', () => {
  const regions = ['eastus', 'westeurope', 'southeastasia'];
  const everywhere = () => true;

  it('records storage where every region holds the same digest, and nothing the record already says', () => {
    const held = regions.map((region) => stored(region, b));
    expect(recoveryBaseline(held, [], regions, everywhere)).toEqual(regions.map((region) => ({ region, repository, tag, digest: b })));
    expect(recoveryBaseline(held, regions.map((region) => recorded(region, b)), regions, everywhere)).toEqual([]);
    // A restored backup that still says a: storage wins where all agree.
    expect(recoveryBaseline(held, [recorded('eastus', a)], regions, everywhere).map((entry) => entry.region)).toEqual(regions);
  });

  it('leaves a tag the regions disagree on to reconcile: other digests, or missing where it belongs', () => {
    expect(recoveryBaseline([stored('eastus', a), stored('westeurope', b), stored('southeastasia', b)], [], regions, everywhere)).toEqual([]);
    expect(recoveryBaseline([stored('eastus', a), stored('westeurope', a)], [], regions, everywhere)).toEqual([]);
  });

  it('counts only the regions that take the tag (sources and rules), and records the others as holding nothing', () => {
    const notFar = (target: string) => target !== 'southeastasia';
    const baseline = recoveryBaseline([stored('eastus', a), stored('westeurope', a)], [recorded('southeastasia', b)], regions, notFar);
    expect(baseline).toEqual([
      { region: 'eastus', repository, tag, digest: a },
      { region: 'westeurope', repository, tag, digest: a },
      { region: 'southeastasia', repository, tag, digest: null },
    ]);
  });

  it('records as deleted a recorded tag that no region holds any more', () => {
    expect(recoveryBaseline([], [recorded('eastus', a), recorded('westeurope', null)], regions, everywhere)).toEqual([{ region: 'eastus', repository, tag, digest: null }]);
  });
});

describe('a region restored from an older copy', () => {
  // southeastasia's tag went back to a, which it held before b; the restore dated it later than every other write.
  const restored = stored('southeastasia', a, '2026-01-01T11:50:00Z');
  const heldBefore = new Set([heldBeforeKey('southeastasia', repository, tag, a)]);
  const everyRegion = ['eastus', 'westeurope', 'southeastasia'].map((region) => recorded(region, b));

  it('is refilled with the recorded digest, ordered after the stale write, and the old digest spreads nowhere', () => {
    const drifts = findDrift([stored('eastus', b, '2026-01-01T10:00:00Z'), stored('westeurope', b, '2026-01-01T10:05:00Z'), restored], everyRegion, settled, 0.25, heldBefore);
    expect(drifts).toEqual([{ kind: 'refill', region: 'westeurope', target: 'southeastasia', repository, tag, digest: b, occurredAt: '2026-01-01T11:50:00.001Z' }]);
    // Without the history it reads as a push of a everywhere: the hazard this guards against.
    expect(findDrift([stored('eastus', b), stored('westeurope', b), restored], everyRegion, settled)).toEqual([
      { kind: 'push', region: 'southeastasia', repository, tag, digest: a, occurredAt: '2026-01-01T11:50:00Z' },
    ]);
  });

  it('is left alone while unsettled, when no region holds the recorded digest, or when the record says deleted', () => {
    expect(findDrift([stored('eastus', b), stored('southeastasia', a, '2026-01-01T12:00:01Z')], [recorded('eastus', b), recorded('southeastasia', b)], settled, 0.25, heldBefore)).toEqual([]);
    expect(findDrift([restored], [recorded('southeastasia', b)], settled, 0.25, heldBefore)).toEqual([]);
    expect(findDrift([stored('eastus', b), restored], [recorded('eastus', b), recorded('southeastasia', null)], settled, 0.25, heldBefore)).toEqual([]);
  });
});

describe('a region storage shows behind, with no record to say so (the database lost too)', () => {
  const c = parseDigest(`sha256:${'c'.repeat(64)}`);
  // eastus and westeurope moved v1 from a to b; southeastasia, restored from a copy taken before that, holds a, written last.
  const tags = [stored('eastus', b, '2026-01-01T10:00:00Z'), stored('westeurope', b, '2026-01-01T10:05:00Z'), stored('southeastasia', a, '2026-01-01T11:50:00Z')];
  const index = (region: string, ...digests: Array<typeof a>) => [regionTagKey(region, repository, tag), new Set(digests)] as const;
  const indexes = new Map([index('eastus', a, b), index('westeurope', a, b), index('southeastasia', a)]);

  it('is the region whose digest another region moved on from, and which never held that one’s', () => {
    expect(disputedTags(tags)).toEqual(tags);
    expect(disputedTags([stored('eastus'), stored('westeurope')]), 'every region agrees: nothing to list').toEqual([]);
    expect(behindInStorage(tags, indexes)).toEqual(new Set([regionTagKey('southeastasia', repository, tag)]));
    // A push in southeastasia after b (c, which the others never held): the others are behind it, not it behind them.
    const pushed = [tags[0]!, tags[1]!, stored('southeastasia', c, '2026-01-01T11:50:00Z')];
    expect(behindInStorage(pushed, new Map([index('eastus', a, b), index('westeurope', a, b), index('southeastasia', a, b, c)]))).toEqual(
      new Set([regionTagKey('eastus', repository, tag), regionTagKey('westeurope', repository, tag)]),
    );
    // Both indexes hold both digests (the tag went back and forth): storage cannot tell, the write time decides.
    expect(behindInStorage([tags[0]!, tags[2]!], new Map([index('eastus', a, b), index('southeastasia', a, b)]))).toEqual(new Set());
  });

  it('never wins by its later write time: the newest of the others spreads to it, ordered after its stale write', () => {
    const behind = behindInStorage(tags, indexes);
    expect(findDrift(tags, [], settled, 0.25, new Set(), behind)).toEqual([
      { kind: 'push', region: 'westeurope', repository, tag, digest: b, occurredAt: '2026-01-01T11:50:00.001Z' },
    ]);
    // Without the storage evidence, the restore reads as the latest push: a spreads everywhere.
    expect(findDrift(tags, [], settled)).toEqual([{ kind: 'push', region: 'southeastasia', repository, tag, digest: a, occurredAt: '2026-01-01T11:50:00Z' }]);
  });

  it('is refilled from the newest holder when the others are recorded, and left alone where the record agrees with it', () => {
    const behind = behindInStorage(tags, indexes);
    const others = [recorded('eastus', b), recorded('westeurope', b)];
    expect(findDrift(tags, others, settled, 0.25, new Set(), behind)).toEqual([
      { kind: 'refill', region: 'westeurope', target: 'southeastasia', repository, tag, digest: b, occurredAt: '2026-01-01T11:50:00.001Z' },
    ]);
    // Recorded as holding a (a replication of b still on its way there): not drift at all.
    expect(findDrift(tags, [...others, recorded('southeastasia', a)], settled, 0.25, new Set(), behind)).toEqual([]);
  });
});
