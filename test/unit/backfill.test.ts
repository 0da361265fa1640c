import { describe, expect, it } from 'vitest';
import { planBackfill } from '../../domain/backfill';
import type { StoredTag } from '../../domain/drift';
import type { Digest, RepositoryName, Tag } from '../../domain/reference';

const REGIONS = ['eastus', 'westeurope', 'southeastasia'];
const A = `sha256:${'a'.repeat(64)}` as Digest;
const B = `sha256:${'b'.repeat(64)}` as Digest;

function stored(region: string, tag: string, digest: Digest, modifiedAt: string, repository = 'team/app'): StoredTag {
  return { region, repository: repository as RepositoryName, tag: tag as Tag, digest, modifiedAt };
}

describe('planBackfill', () => {
  it('spreads each tag from where it is into every region that lacks it', () => {
    const plan = planBackfill([stored('eastus', 'v1', A, '2026-01-01T00:00:00Z')], REGIONS, {});
    expect(plan).toEqual({
      items: [{ repository: 'team/app', tag: 'v1', digest: A, sourceRegion: 'eastus', occurredAt: '2026-01-01T00:00:00Z', targets: ['westeurope', 'southeastasia'] }],
      alreadyPresent: 0,
    });
  });

  it('skips regions already holding the digest under the tag, and tags present everywhere', () => {
    const plan = planBackfill(
      [
        stored('eastus', 'v1', A, '2026-01-01T00:00:00Z'),
        stored('westeurope', 'v1', A, '2026-01-01T00:00:05Z'),
        stored('eastus', 'v2', B, '2026-01-02T00:00:00Z'),
        stored('westeurope', 'v2', B, '2026-01-02T00:00:00Z'),
        stored('southeastasia', 'v2', B, '2026-01-02T00:00:00Z'),
      ],
      REGIONS,
      {},
    );
    expect(plan.items.map((item) => [item.tag, item.targets])).toEqual([['v1', ['southeastasia']]]);
    expect(plan.alreadyPresent).toBe(1);
  });

  it('spreads the newest write of a tag, so a tag never moves back to an older push', () => {
    const plan = planBackfill([stored('eastus', 'v1', A, '2026-01-01T00:00:00Z'), stored('westeurope', 'v1', B, '2026-01-01T00:10:00Z')], REGIONS, {});
    expect(plan.items).toEqual([expect.objectContaining({ digest: B, sourceRegion: 'westeurope', targets: ['eastus', 'southeastasia'] })]);
  });

  it('limits to the repositories and target regions asked', () => {
    const plan = planBackfill(
      [stored('eastus', 'v1', A, '2026-01-01T00:00:00Z'), stored('eastus', 'v1', A, '2026-01-01T00:00:00Z', 'team/other')],
      REGIONS,
      { repositories: ['team/app'], to: ['southeastasia'] },
    );
    expect(plan.items.map((item) => [item.repository, item.targets])).toEqual([['team/app', ['southeastasia']]]);
  });

  it('orders the work oldest write first, as the tags were pushed', () => {
    const plan = planBackfill(
      [stored('eastus', 'late', A, '2026-01-03T00:00:00Z'), stored('eastus', 'early', B, '2026-01-01T00:00:00Z'), stored('eastus', 'middle', A, '2026-01-02T00:00:00Z')],
      REGIONS,
      {},
    );
    expect(plan.items.map((item) => item.tag)).toEqual(['early', 'middle', 'late']);
  });
});
