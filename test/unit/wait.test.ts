import { describe, expect, it } from 'vitest';
import { InvalidReferenceError, parseImageReference } from '../../domain/reference';
import { describeRegions, waitStatus, type PushRecord, type RegionRecord } from '../../domain/wait';

const OBSERVED = '2026-11-22T10:00:00.000Z';

function region(state: RegionRecord['state'], extra: Partial<RegionRecord> = {}): RegionRecord {
  return { state, bytesDone: 0, replicatedAt: null, failure: null, supersededBy: null, ...extra };
}

function push(replicationId: number, regions: Record<string, RegionRecord>, sourceRegion = 'eastus', kind: PushRecord['kind'] = 'push'): PushRecord {
  return { replicationId, kind, sourceRegion, observedAt: OBSERVED, bytesTotal: 1_000_000, regions };
}

describe('waitStatus', () => {
  describe('a tag whose newest push is superseded in a region', () => {
    const replicated = region('replicated', { replicatedAt: '2026-11-22T10:00:02.000Z' });

    it('follows the change that holds the tag there, and is replicated only once that is', () => {
      const newest = push(20, { westeurope: replicated, southeastasia: region('superseded', { supersededBy: 18, replicatedAt: OBSERVED }) }, 'eastus');
      const holder = push(18, { southeastasia: region('copying', { bytesDone: 10 }), eastus: replicated }, 'westeurope');
      const copying = waitStatus(['westeurope', 'southeastasia'], [newest, holder], 'tag');
      expect(copying.state).toBe('waiting');
      expect(copying.regions.southeastasia).toMatchObject({ state: 'copying', replicationId: 18, via: [20] });
      const done = waitStatus(['westeurope', 'southeastasia'], [newest, { ...holder, regions: { southeastasia: replicated } }], 'tag');
      expect(done.state).toBe('replicated');
      expect(describeRegions(done).join('\n')).toContain('(replication #18, which superseded #20 here)');
    });

    it('keeps waiting while the change holding the tag is not known yet, or is a delete', () => {
      const unknown = waitStatus(['southeastasia'], [push(20, { southeastasia: region('superseded', { supersededBy: null, replicatedAt: OBSERVED }) })], 'tag');
      expect(unknown.state).toBe('waiting');
      expect(unknown.regions.southeastasia).toMatchObject({ state: 'superseded', replicationId: 20, supersededBy: null });
      expect(describeRegions(unknown)[0]).toContain('waiting for that push');
      const deleted = waitStatus(['southeastasia'], [push(20, { southeastasia: region('superseded', { supersededBy: 21 }) }), push(21, {}, 'westeurope', 'delete-tag')], 'tag');
      expect(deleted.state).toBe('waiting');
      expect(deleted.regions.southeastasia).toMatchObject({ state: 'superseded', supersededBy: 21 });
    });

    it('does not loop on changes that name each other', () => {
      const a = push(5, { southeastasia: region('superseded', { supersededBy: 6 }) });
      const b = push(6, { southeastasia: region('superseded', { supersededBy: 5 }) }, 'westeurope');
      expect(waitStatus(['southeastasia'], [a, b], 'tag').regions.southeastasia).toMatchObject({ state: 'superseded', replicationId: 6, via: [5] });
    });

    it('counts a superseded push of a digest as replicated: its digest landed', () => {
      const status = waitStatus(['southeastasia'], [push(20, { southeastasia: region('superseded', { supersededBy: 18, replicatedAt: OBSERVED }) })], 'digest');
      expect(status.state).toBe('replicated');
    });
  });

  it('waits while no push of the reference has been observed', () => {
    const status = waitStatus(['westeurope'], []);
    expect(status.state).toBe('waiting');
    expect(status.regions.westeurope!.state).toBe('unobserved');
  });

  it('is replicated only when every region asked is', () => {
    const replicated = region('replicated', { replicatedAt: '2026-11-22T10:00:01.500Z', bytesDone: 1_000_000 });
    const partly = waitStatus(['westeurope', 'southeastasia'], [push(7, { westeurope: replicated, southeastasia: region('copying', { bytesDone: 400_000 }) })]);
    expect(partly.state).toBe('waiting');
    const all = waitStatus(['westeurope', 'southeastasia'], [push(7, { westeurope: replicated, southeastasia: replicated })]);
    expect(all.state).toBe('replicated');
    expect(all.regions.westeurope).toMatchObject({ replicationId: 7, lagSeconds: 1.5 });
  });

  it('counts the source region of a push as replicated when the push is observed', () => {
    const status = waitStatus(['eastus'], [push(3, { westeurope: region('pending') })]);
    expect(status.state).toBe('replicated');
    expect(status.regions.eastus).toMatchObject({ state: 'replicated', lagSeconds: 0 });
  });

  it('fails as soon as one region asked failed for good, even while others still copy', () => {
    const status = waitStatus(
      ['westeurope', 'southeastasia'],
      [push(9, { westeurope: region('copying'), southeastasia: region('failed', { failure: 'SourceBlobCorrupt: source blob corrupt' }) })],
    );
    expect(status.state).toBe('failed');
    expect(describeRegions(status).join('\n')).toContain('southeastasia  failed: SourceBlobCorrupt: source blob corrupt');
  });

  it('ignores a failed region nobody asked about', () => {
    const status = waitStatus(['westeurope'], [push(9, { westeurope: region('replicated', { replicatedAt: OBSERVED }), southeastasia: region('failed') })]);
    expect(status.state).toBe('replicated');
  });

  it('takes the most advanced of several pushes of one digest', () => {
    const failedEarlier = push(4, { westeurope: region('failed', { failure: 'x' }) });
    const copyingNow = push(12, { westeurope: region('copying', { bytesDone: 10 }) });
    const status = waitStatus(['westeurope'], [failedEarlier, copyingNow]);
    expect(status.state).toBe('waiting');
    expect(status.regions.westeurope).toMatchObject({ state: 'copying', replicationId: 12 });
  });

  it('ends, failed, for a region the push does not target (a rule keeps it out, or added since), naming why', () => {
    const status = waitStatus(['westeurope', 'southeastasia'], [push(2, { westeurope: region('replicated') })]);
    expect([status.state, status.regions.southeastasia!.state]).toEqual(['failed', 'excluded']);
    expect(describeRegions(status).join('\n')).toContain('southeastasia  not replicated here by rule: replication #2 does not target this region');
    // A digest another push did bring there is replicated there.
    const digest = waitStatus(['southeastasia'], [push(2, { westeurope: region('replicated') }), push(3, { southeastasia: region('replicated') })]);
    expect(digest.state).toBe('replicated');
  });

  it('changes its version exactly when the status changes', () => {
    const a = waitStatus(['westeurope'], [push(5, { westeurope: region('copying', { bytesDone: 10 }) })]);
    const same = waitStatus(['westeurope'], [push(5, { westeurope: region('copying', { bytesDone: 10 }) })]);
    const more = waitStatus(['westeurope'], [push(5, { westeurope: region('copying', { bytesDone: 20 }) })]);
    expect(same.version).toBe(a.version);
    expect(more.version).not.toBe(a.version);
  });

  it('describes progress in MB and percent', () => {
    const status = waitStatus(['westeurope'], [push(5, { westeurope: region('copying', { bytesDone: 250_000 }) })]);
    expect(describeRegions(status)).toEqual(['westeurope  copying 0.3 / 1.0 MB (25%)']);
  });
});

describe('parseImageReference', () => {
  const digest = `sha256:${'ab'.repeat(32)}`;

  it('reads repository:tag and repository@digest', () => {
    expect(parseImageReference('team/app:v2')).toEqual({ repository: 'team/app', tag: 'v2' });
    expect(parseImageReference(`team/app@${digest}`)).toEqual({ repository: 'team/app', digest });
  });

  it.each(['team/app', 'team/app:', 'Team/app:v1', `team/app@sha256:short`, 'team/app:v1/x', ':v1'])('rejects %j', (value) => {
    expect(() => parseImageReference(value)).toThrow(InvalidReferenceError);
  });
});
