// Drift between what the regions' storage holds and what Ferry recorded: the
// trace of a notification that never arrived (a registry keeps its queue in
// memory and loses it on restart). Pure logic; the reconcile activity feeds it.
import type { Digest, RepositoryName, Tag } from './reference';

/** A tag as one region's storage holds it. */
export interface StoredTag {
  region: string;
  repository: RepositoryName;
  tag: Tag;
  digest: Digest;
  /** When the tag's current link was last written. */
  modifiedAt: string;
}

/** A tag as Ferry's projection says a region holds it (digest null: deleted). */
export interface RecordedTag {
  region: string;
  repository: RepositoryName;
  tag: Tag;
  digest: Digest | null;
  updatedAt: string;
  /** When the change recorded there happened: its place among the tag's changes (domain/tag-order.ts). */
  occurredAt: string;
}

/** The later of two times. */
const later = (a: string, b: string | undefined) => (b === undefined || Date.parse(a) >= Date.parse(b) ? a : b);

/**
 * What a scan found. `push`: a change `region` made that Ferry never heard
 * of, to replicate from there. `refill`: a tag `target` lost (its storage no
 * longer holds what Ferry recorded there), copied back from `region`, which
 * holds it: a tag merely missing from one region is never a delete for the
 * others. `halted`: more than the allowed share of `region`'s recorded tags
 * vanished at once (an emptied bucket, a wrong one), so the scan does
 * nothing from or into it and says so.
 */
export type Drift =
  | { kind: 'push'; region: string; repository: RepositoryName; tag: Tag; digest: Digest; occurredAt: string }
  | { kind: 'refill'; region: string; target: string; repository: RepositoryName; tag: Tag; digest: Digest; occurredAt: string }
  | { kind: 'halted'; region: string; missing: number; recorded: number }
  /** Produced by scans before refills: kept so that a reconcile started then still records what it found. */
  | { kind: 'delete-tag'; region: string; repository: RepositoryName; tag: Tag; occurredAt: string };

/** A drift that becomes a replication. */
export type Repair = Exclude<Drift, { kind: 'halted' }>;

/** One region's tag, as a map key. */
export const regionTagKey = (region: string, repository: string, tag: string) => `${region}\u0000${repository}\u0000${tag}`;
const key = regionTagKey;
const tagKey = (repository: string, tag: string) => key('', repository, tag);

/** The key findDrift's `heldBefore` is asked with: a digest a region's tag held before its recorded one. */
export const heldBeforeKey = (region: string, repository: string, tag: string, digest: string) => `${key(region, repository, tag)}\u0000${digest}`;

/**
 * The tags that regions' storage disagrees on (another region holds another
 * digest): the only ones whose tag index (every digest the tag ever pointed
 * at there) behindInStorage needs. Keys from regionTagKey.
 */
export function disputedTags(stored: readonly StoredTag[]): StoredTag[] {
  const digests = new Map<string, Set<Digest>>();
  for (const entry of stored) {
    const seen = digests.get(tagKey(entry.repository, entry.tag)) ?? new Set();
    seen.add(entry.digest);
    digests.set(tagKey(entry.repository, entry.tag), seen);
  }
  return stored.filter((entry) => digests.get(tagKey(entry.repository, entry.tag))!.size > 1);
}

/**
 * Which regions' tags storage itself shows to be behind another region's,
 * with no record needed (a lost database, a bucket restored from an older
 * copy): region R's tag holds d, another region S's holds e, S's tag once
 * pointed at d (d is in S's tag index) and R's never pointed at e. S moved
 * on from d; R never saw e. Keys from regionTagKey; `indexes` by the same
 * keys, for the disputed tags.
 */
export function behindInStorage(disputed: readonly StoredTag[], indexes: ReadonlyMap<string, ReadonlySet<Digest>>): Set<string> {
  const byTag = new Map<string, StoredTag[]>();
  for (const entry of disputed) {
    const entries = byTag.get(tagKey(entry.repository, entry.tag)) ?? [];
    entries.push(entry);
    byTag.set(tagKey(entry.repository, entry.tag), entries);
  }
  const behind = new Set<string>();
  const indexOf = (entry: StoredTag) => indexes.get(key(entry.region, entry.repository, entry.tag)) ?? new Set<Digest>();
  for (const entries of byTag.values()) {
    for (const r of entries) {
      const movedOn = entries.some((s) => s.digest !== r.digest && indexOf(s).has(r.digest) && !indexOf(r).has(s.digest));
      if (movedOn) behind.add(key(r.region, r.repository, r.tag));
    }
  }
  return behind;
}

/**
 * Finds unobserved changes, linear in the tags. Anything younger than
 * `settledBefore` is left alone: it may be a replication or a notification
 * still in flight. When several regions changed one tag unobserved, the
 * latest write wins, as it would have had every notification arrived. A
 * region with more than `haltShare` of its settled recorded tags missing
 * (and at least two) is halted.
 *
 * A region whose tag went back to a digest Ferry recorded it holding before
 * (`heldBefore`, keys from heldBeforeKey) was restored from an older copy, not
 * pushed to: it is refilled with the recorded digest from a region holding
 * it, ordered just after the stale write, and the old digest spreads nowhere.
 * So is a region whose tag storage shows `behind` another region's
 * (behindInStorage) where the record does not hold what it holds: with no
 * record to say so (a lost database), its later write time (a restore) never
 * makes its older digest the winner; it is refilled with the newest write of
 * the regions not behind.
 */
export function findDrift(
  stored: StoredTag[],
  recorded: RecordedTag[],
  settledBefore: string,
  haltShare = 0.25,
  heldBefore: ReadonlySet<string> = new Set(),
  behind: ReadonlySet<string> = new Set(),
): Drift[] {
  const settled = Date.parse(settledBefore);
  const storedByKey = new Map(stored.map((entry) => [key(entry.region, entry.repository, entry.tag), entry]));
  const recordedByKey = new Map(recorded.map((entry) => [key(entry.region, entry.repository, entry.tag), entry]));

  const live = new Map<string, number>();
  const missing = new Map<string, RecordedTag[]>();
  for (const record of recorded) {
    if (record.digest === null || Date.parse(record.updatedAt) > settled) continue;
    live.set(record.region, (live.get(record.region) ?? 0) + 1);
    if (storedByKey.has(key(record.region, record.repository, record.tag))) continue;
    const gone = missing.get(record.region) ?? [];
    gone.push(record);
    missing.set(record.region, gone);
  }
  const halted: Drift[] = [...missing].filter(([region, gone]) => gone.length >= 2 && gone.length > haltShare * live.get(region)!).map(([region, gone]) => ({ kind: 'halted', region, missing: gone.length, recorded: live.get(region)! }));
  const haltedRegions = new Set(halted.map((drift) => drift.region));

  const latest = new Map<string, Repair>();
  const holders = new Map<string, StoredTag>();
  /** By tag and digest: the region that wrote it last. */
  const holdersOfDigest = new Map<string, StoredTag>();
  const regressed: Array<{ entry: StoredTag; digest: Digest }> = [];
  const lagging: StoredTag[] = [];
  for (const entry of stored) {
    if (haltedRegions.has(entry.region)) continue;
    const record = recordedByKey.get(key(entry.region, entry.repository, entry.tag));
    if (record?.digest !== entry.digest && behind.has(key(entry.region, entry.repository, entry.tag)) && !heldBefore.has(heldBeforeKey(entry.region, entry.repository, entry.tag, entry.digest))) {
      // Storage shows another region moved on from this digest: neither a push nor a holder. Refilled below.
      if (Date.parse(entry.modifiedAt) <= settled) lagging.push(entry);
      continue;
    }
    if (record !== undefined && record.digest !== entry.digest && heldBefore.has(heldBeforeKey(entry.region, entry.repository, entry.tag, entry.digest))) {
      // Back to what it held before: neither a push nor a holder. Refilled below (not a tag recorded as deleted: reconcile never deletes).
      if (record.digest !== null && Date.parse(entry.modifiedAt) <= settled) regressed.push({ entry, digest: record.digest });
      continue;
    }
    const holder = holders.get(tagKey(entry.repository, entry.tag));
    if (!holder || Date.parse(entry.modifiedAt) > Date.parse(holder.modifiedAt)) holders.set(tagKey(entry.repository, entry.tag), entry);
    const digestKey = `${tagKey(entry.repository, entry.tag)}\u0000${entry.digest}`;
    const ofDigest = holdersOfDigest.get(digestKey);
    if (!ofDigest || Date.parse(entry.modifiedAt) > Date.parse(ofDigest.modifiedAt)) holdersOfDigest.set(digestKey, entry);
    if (record?.digest === entry.digest || Date.parse(entry.modifiedAt) > settled) continue;
    const current = latest.get(tagKey(entry.repository, entry.tag));
    if (!current || Date.parse(entry.modifiedAt) > Date.parse(current.occurredAt)) {
      latest.set(tagKey(entry.repository, entry.tag), { kind: 'push', region: entry.region, repository: entry.repository, tag: entry.tag, digest: entry.digest, occurredAt: entry.modifiedAt });
    }
  }
  const refills: Drift[] = [];
  for (const [region, gone] of missing) {
    if (haltedRegions.has(region)) continue;
    for (const record of gone) {
      // A push of the tag found above reaches this region too.
      if (latest.has(tagKey(record.repository, record.tag))) continue;
      const holder = holders.get(tagKey(record.repository, record.tag));
      if (holder === undefined || holder.region === region) continue;
      // Ordered as the change recorded in the holder, which its storage dates to the second only.
      const occurredAt = later(holder.modifiedAt, recordedByKey.get(key(holder.region, holder.repository, holder.tag))?.occurredAt);
      refills.push({ kind: 'refill', region: holder.region, target: region, repository: record.repository, tag: record.tag, digest: holder.digest, occurredAt });
    }
  }
  /** Ordered after the stale write it undoes, which the target's storage dates at the restore. */
  const afterStale = (entry: StoredTag) => new Date(Date.parse(entry.modifiedAt) + 1).toISOString();
  const refillAfterStale = (holder: StoredTag, entry: StoredTag): Drift => ({
    kind: 'refill',
    region: holder.region,
    target: entry.region,
    repository: entry.repository,
    tag: entry.tag,
    digest: holder.digest,
    occurredAt: later(later(holder.modifiedAt, afterStale(entry)), recordedByKey.get(key(holder.region, holder.repository, holder.tag))?.occurredAt),
  });
  for (const { entry, digest } of regressed) {
    if (latest.has(tagKey(entry.repository, entry.tag))) continue;
    const holder = holdersOfDigest.get(`${tagKey(entry.repository, entry.tag)}\u0000${digest}`);
    if (holder !== undefined) refills.push(refillAfterStale(holder, entry));
  }
  for (const entry of lagging) {
    const push = latest.get(tagKey(entry.repository, entry.tag));
    if (push !== undefined) {
      // A push of the tag found above reaches this region too, once ordered after what it replaces there.
      latest.set(tagKey(entry.repository, entry.tag), { ...push, occurredAt: later(push.occurredAt, afterStale(entry)) });
      continue;
    }
    const holder = holders.get(tagKey(entry.repository, entry.tag));
    if (holder !== undefined && holder.digest !== entry.digest) refills.push(refillAfterStale(holder, entry));
  }
  return [...halted, ...latest.values(), ...refills];
}

/** A region's tag as `ferry recover` records it: what its storage holds (null: nothing). */
export interface RecoveredTag {
  region: string;
  repository: RepositoryName;
  tag: Tag;
  digest: Digest | null;
}

/**
 * What a recovery records as it finds it, linear in the tags: every tag on
 * which all regions that take it agree (the same digest in each, or in none),
 * where the record says otherwise or nothing. `takes(target, holder,
 * repository, tag)`: whether a change of the tag in `holder` replicates into
 * `target` (sources and rules). A tag the regions disagree on is left out, so
 * reconcile decides it (findDrift: the latest write wins, a missing tag is
 * refilled, never deleted).
 */
export function recoveryBaseline(
  stored: StoredTag[],
  recorded: RecordedTag[],
  regions: readonly string[],
  takes: (target: string, holder: string, repository: RepositoryName, tag: Tag) => boolean,
): RecoveredTag[] {
  const held = new Map<string, { repository: RepositoryName; tag: Tag; digests: Map<string, Digest> }>();
  for (const entry of stored) {
    const found = held.get(tagKey(entry.repository, entry.tag)) ?? { repository: entry.repository, tag: entry.tag, digests: new Map() };
    found.digests.set(entry.region, entry.digest);
    held.set(tagKey(entry.repository, entry.tag), found);
  }
  const recordedByKey = new Map(recorded.map((entry) => [key(entry.region, entry.repository, entry.tag), entry.digest]));
  const baseline: RecoveredTag[] = [];
  const record = (region: string, repository: RepositoryName, tag: Tag, digest: Digest | null) => {
    const known = recordedByKey.get(key(region, repository, tag));
    if (known === undefined ? digest !== null : known !== digest) baseline.push({ region, repository, tag, digest });
  };
  for (const { repository, tag, digests } of held.values()) {
    const agreed = new Set(digests.values());
    if (agreed.size !== 1) continue;
    const holders = [...digests.keys()];
    const takers = regions.filter((region) => digests.has(region) || holders.some((holder) => takes(region, holder, repository, tag)));
    if (!takers.every((region) => digests.has(region))) continue;
    for (const region of regions) record(region, repository, tag, digests.get(region) ?? null);
  }
  // Recorded, but in no region's storage any more: gone everywhere.
  for (const entry of recorded) {
    if (entry.digest !== null && !held.has(tagKey(entry.repository, entry.tag))) record(entry.region, entry.repository, entry.tag, null);
  }
  return baseline;
}
