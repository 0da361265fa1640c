// Every read of the projections that the api, the activities and the bench
// make, each named for what it answers. The projection tables are the store's
// (schema.sql, projections.ts); nothing outside store/ writes SQL against them.
import { heldBeforeKey } from '../domain/drift';
import type { Digest, ImageReference, RepositoryName, Tag } from '../domain/reference';
import type { EventStore } from './event-store';

export interface ReplicationRow {
  id: string;
  kind: string;
  source_region: string;
  repository: string;
  tag: string | null;
  digest: string | null;
  workflow_id: string;
  observed_at: Date;
  outcome: string;
  finished_at: Date | null;
  total_blob_bytes: string | null;
}

export interface RegionRow {
  replication_id: string;
  region: string;
  state: string;
  blobs_copied: number;
  blobs_skipped: number;
  bytes_copied: string;
  bytes_skipped: string;
  tag_moved: boolean;
  failure: string | null;
  /** With state superseded: the replication whose change holds the tag there, when known. */
  superseded_by: string | null;
  replicated_at: Date | null;
  /** Landed plus moving bytes while the region copies (store/progress.ts); null when nothing is moving. */
  bytes_in_flight: string | null;
}

/** Per replication id, its regions (with bytes in flight), by region name. */
export async function regionsOf(store: EventStore, ids: string[]): Promise<Map<string, RegionRow[]>> {
  const rows = await store.pool.query<RegionRow>(
    `SELECT rr.*, rp.bytes_done AS bytes_in_flight FROM replication_regions rr
     LEFT JOIN region_progress rp USING (replication_id, region)
     WHERE rr.replication_id = ANY($1::bigint[]) ORDER BY rr.region`,
    [ids],
  );
  const byReplication = new Map<string, RegionRow[]>();
  for (const row of rows.rows) byReplication.set(row.replication_id, [...(byReplication.get(row.replication_id) ?? []), row]);
  return byReplication;
}

/** The newest push Ferry observed of repository:tag or repository@digest. */
export async function newestPushOf(store: EventStore, reference: ImageReference): Promise<ReplicationRow | undefined> {
  const [column, value] = reference.tag !== undefined ? ['tag', reference.tag] : ['digest', reference.digest];
  const found = await store.pool.query<ReplicationRow>(
    `SELECT * FROM replications WHERE kind = 'push' AND repository = $1 AND ${column} = $2 ORDER BY id DESC LIMIT 1`,
    [reference.repository, value],
  );
  return found.rows[0];
}

/** Replications by id (any kind), in id order. */
export async function replicationsByIds(store: EventStore, ids: string[]): Promise<ReplicationRow[]> {
  const found = await store.pool.query<ReplicationRow>(`SELECT * FROM replications WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids]);
  return found.rows;
}

/** Every push of a digest to a repository, oldest first. */
export async function pushesOfDigest(store: EventStore, repository: RepositoryName, digest: Digest): Promise<ReplicationRow[]> {
  const found = await store.pool.query<ReplicationRow>(`SELECT * FROM replications WHERE kind = 'push' AND repository = $1 AND digest = $2 ORDER BY id`, [repository, digest]);
  return found.rows;
}

export interface ReplicationFilter {
  repository: RepositoryName | null;
  /** With a region in that state. */
  state: string | null;
  /** Replicating into that region. */
  region: string | null;
  /** Ids below this. */
  before: number;
  limit: number;
  /** Only these repositories and those under these prefixes (a read token's grant, domain/auth.ts); null: all. */
  readable: { exact: string[]; under: string[] } | null;
}

/** Replications newest first, filtered, one page. */
export async function replicationsPage(store: EventStore, filter: ReplicationFilter): Promise<ReplicationRow[]> {
  const found = await store.pool.query<ReplicationRow>(
    `SELECT r.* FROM replications r
     WHERE r.id < $1 AND ($2::text IS NULL OR r.repository = $2)
       AND ($3::text IS NULL AND $4::text IS NULL OR EXISTS (
         SELECT 1 FROM replication_regions rr WHERE rr.replication_id = r.id
           AND ($3::text IS NULL OR rr.state = $3) AND ($4::text IS NULL OR rr.region = $4)))
       AND ($6::text[] IS NULL OR r.repository = ANY($6) OR r.repository LIKE ANY($7))
     ORDER BY r.id DESC LIMIT $5`,
    [filter.before, filter.repository, filter.state, filter.region, filter.limit, filter.readable?.exact ?? null, filter.readable?.under ?? null],
  );
  return found.rows;
}

/** Per region, replications not yet replicated or failed there. */
/** Per region: replications pending or copying, and the seconds since the stalest of them last recorded progress. */
export async function inFlightByRegion(store: EventStore): Promise<Map<string, { count: number; stalestSeconds: number }>> {
  const rows = await store.pool.query<{ region: string; count: string; stalest: number }>(
    `SELECT region, count(*) AS count, extract(epoch FROM now() - min(updated_at))::float8 AS stalest
     FROM replication_regions WHERE state IN ('pending', 'copying') GROUP BY region`,
  );
  return new Map(rows.rows.map((row) => [row.region, { count: Number(row.count), stalestSeconds: Math.max(0, row.stalest) }]));
}

export interface RecordedTagRow {
  region: string;
  repository: RepositoryName;
  tag: Tag;
  digest: Digest | null;
  updatedAt: string;
  occurredAt: string;
}

/** What the store says every region's tags point at. */
export async function recordedTags(store: EventStore): Promise<RecordedTagRow[]> {
  const rows = await store.pool.query<{ region: string; repository: RepositoryName; tag: Tag; digest: Digest | null; updated_at: Date; occurred_at: Date }>(
    `SELECT region, repository, tag, digest, updated_at, occurred_at FROM region_tags`,
  );
  return rows.rows.map(({ updated_at, occurred_at, ...row }) => ({ ...row, updatedAt: updated_at.toISOString(), occurredAt: occurred_at.toISOString() }));
}

/**
 * Of the given region tags, the digests Ferry recorded each holding at some
 * point: written there by a replication, or pushed there by its own registry.
 * As domain/drift.ts heldBeforeKey makes them.
 */
export async function digestsHeldBefore(store: EventStore, tags: ReadonlyArray<{ region: string; repository: string; tag: string }>): Promise<Set<string>> {
  if (tags.length === 0) return new Set();
  const columns = [tags.map((entry) => entry.region), tags.map((entry) => entry.repository), tags.map((entry) => entry.tag)];
  const rows = await store.pool.query<{ region: string; repository: string; tag: string; digest: string }>(
    `WITH asked (region, repository, tag) AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
     SELECT rr.region, r.repository, r.tag, r.digest FROM asked a
       JOIN replications r ON r.repository = a.repository AND r.tag = a.tag AND r.kind = 'push'
       JOIN replication_regions rr ON rr.replication_id = r.id AND rr.region = a.region AND rr.tag_moved
     UNION
     SELECT r.source_region, r.repository, r.tag, r.digest FROM asked a
       JOIN replications r ON r.repository = a.repository AND r.tag = a.tag AND r.source_region = a.region AND r.kind = 'push'`,
    columns,
  );
  return new Set(rows.rows.map((row) => heldBeforeKey(row.region, row.repository, row.tag, row.digest)));
}
