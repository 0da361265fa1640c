// Backfill: replicating what the regions already hold (content pushed before
// Ferry ran, or a region added since), planned from the tags in every region's
// storage. Pure logic; the backfill activity feeds it.
//
// For each tag the newest write across regions is the one to spread, as
// reconcile does: the same push order (the write time, then Ferry's
// replication id) fences the tag, so a backfill never moves a tag behind a
// push that happened since. Regions that already hold that digest under that
// tag are skipped; so is a tag every region asked already holds.
import type { StoredTag } from './drift';
import type { Digest, RepositoryName, Tag } from './reference';

export interface BackfillScope {
  /** Only these repositories; every repository when absent (`--all`). */
  repositories?: string[];
  /** Only into these regions; every region when absent. */
  to?: string[];
}

export interface BackfillItem {
  repository: RepositoryName;
  tag: Tag;
  digest: Digest;
  sourceRegion: string;
  /** When the source region's tag was written: its place in push order. */
  occurredAt: string;
  targets: string[];
}

export interface BackfillPlan {
  /** Oldest write first, the order the tags were pushed in. */
  items: BackfillItem[];
  /** Tags every region asked (that the rules let them into) already holds at the newest digest. */
  alreadyPresent: number;
}

/** Whether a tag written in `sourceRegion` may replicate into `target` (the regions' sources and the replication rules). */
export type Admits = (target: string, change: { sourceRegion: string; repository: string; tag: string }) => boolean;

export function planBackfill(stored: readonly StoredTag[], regions: readonly string[], scope: BackfillScope, admits: Admits = () => true): BackfillPlan {
  const byTag = new Map<string, StoredTag[]>();
  for (const entry of stored) {
    if (scope.repositories && !scope.repositories.includes(entry.repository)) continue;
    const key = `${entry.repository}:${entry.tag}`;
    byTag.set(key, [...(byTag.get(key) ?? []), entry]);
  }
  const into = scope.to ?? regions;
  const items: BackfillItem[] = [];
  let alreadyPresent = 0;
  for (const copies of byTag.values()) {
    const newest = copies.reduce((a, b) => (Date.parse(b.modifiedAt) > Date.parse(a.modifiedAt) || (b.modifiedAt === a.modifiedAt && b.region < a.region) ? b : a));
    const holds = (region: string) => copies.some((copy) => copy.region === region && copy.digest === newest.digest);
    const change = { sourceRegion: newest.region, repository: newest.repository, tag: newest.tag };
    const targets = into.filter((region) => region !== newest.region && !holds(region) && admits(region, change));
    if (targets.length === 0) {
      alreadyPresent++;
      continue;
    }
    items.push({ repository: newest.repository, tag: newest.tag, digest: newest.digest, sourceRegion: newest.region, occurredAt: newest.modifiedAt, targets });
  }
  items.sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt) || `${a.repository}:${a.tag}`.localeCompare(`${b.repository}:${b.tag}`));
  return { items, alreadyPresent };
}
