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

/** A change a region made that Ferry never heard of, to replicate from there. */
export type Drift =
  | { kind: 'push'; region: string; repository: RepositoryName; tag: Tag; digest: Digest; occurredAt: string }
  | { kind: 'delete-tag'; region: string; repository: RepositoryName; tag: Tag; occurredAt: string };

const key = (region: string, repository: string, tag: string) => `${region}\u0000${repository}\u0000${tag}`;

/**
 * Finds unobserved changes. Anything younger than `settledBefore` is left
 * alone: it may be a replication or a notification still in flight.
 * When several regions changed one tag unobserved, the latest write wins,
 * as it would have had every notification arrived.
 */
export function findDrift(stored: StoredTag[], recorded: RecordedTag[], settledBefore: string): Drift[] {
  const settled = Date.parse(settledBefore);
  const storedByKey = new Map(stored.map((entry) => [key(entry.region, entry.repository, entry.tag), entry]));
  // By key, so a scan is linear in the tags, not their product (5,000 tags × 3 regions each way).
  const recordedByKey = new Map(recorded.map((entry) => [key(entry.region, entry.repository, entry.tag), entry]));
  const candidates: Drift[] = [];
  for (const entry of stored) {
    const record = recordedByKey.get(key(entry.region, entry.repository, entry.tag));
    if (record?.digest === entry.digest || Date.parse(entry.modifiedAt) > settled) continue;
    candidates.push({ kind: 'push', region: entry.region, repository: entry.repository, tag: entry.tag, digest: entry.digest, occurredAt: entry.modifiedAt });
  }
  for (const record of recorded) {
    if (record.digest === null || storedByKey.has(key(record.region, record.repository, record.tag))) continue;
    if (Date.parse(record.updatedAt) > settled) continue;
    candidates.push({ kind: 'delete-tag', region: record.region, repository: record.repository, tag: record.tag, occurredAt: settledBefore });
  }
  const latest = new Map<string, Drift>();
  for (const drift of candidates) {
    const tagKey = key('', drift.repository, drift.tag);
    const current = latest.get(tagKey);
    if (!current || Date.parse(drift.occurredAt) > Date.parse(current.occurredAt)) latest.set(tagKey, drift);
  }
  return [...latest.values()];
}
