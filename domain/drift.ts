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
}

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

const key = (region: string, repository: string, tag: string) => `${region}\u0000${repository}\u0000${tag}`;
const tagKey = (repository: string, tag: string) => key('', repository, tag);

/**
 * Finds unobserved changes, linear in the tags. Anything younger than
 * `settledBefore` is left alone: it may be a replication or a notification
 * still in flight. When several regions changed one tag unobserved, the
 * latest write wins, as it would have had every notification arrived. A
 * region with more than `haltShare` of its settled recorded tags missing
 * (and at least two) is halted.
 */
export function findDrift(stored: StoredTag[], recorded: RecordedTag[], settledBefore: string, haltShare = 0.25): Drift[] {
  const settled = Date.parse(settledBefore);
  const storedByKey = new Map(stored.map((entry) => [key(entry.region, entry.repository, entry.tag), entry]));
  const recordedByKey = new Map(recorded.map((entry) => [key(entry.region, entry.repository, entry.tag), entry]));

  const live = new Map<string, number>();
  const missing = new Map<string, RecordedTag[]>();
  for (const record of recorded) {
    if (record.digest === null || Date.parse(record.updatedAt) > settled) continue;
    live.set(record.region, (live.get(record.region) ?? 0) + 1);
    if (!storedByKey.has(key(record.region, record.repository, record.tag))) missing.set(record.region, [...(missing.get(record.region) ?? []), record]);
  }
  const halted: Drift[] = [...missing].filter(([region, gone]) => gone.length >= 2 && gone.length > haltShare * live.get(region)!).map(([region, gone]) => ({ kind: 'halted', region, missing: gone.length, recorded: live.get(region)! }));
  const haltedRegions = new Set(halted.map((drift) => drift.region));

  const latest = new Map<string, Repair>();
  const holders = new Map<string, StoredTag>();
  for (const entry of stored) {
    if (haltedRegions.has(entry.region)) continue;
    const holder = holders.get(tagKey(entry.repository, entry.tag));
    if (!holder || Date.parse(entry.modifiedAt) > Date.parse(holder.modifiedAt)) holders.set(tagKey(entry.repository, entry.tag), entry);
    const record = recordedByKey.get(key(entry.region, entry.repository, entry.tag));
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
      refills.push({ kind: 'refill', region: holder.region, target: region, repository: record.repository, tag: record.tag, digest: holder.digest, occurredAt: holder.modifiedAt });
    }
  }
  return [...halted, ...latest.values(), ...refills];
}
