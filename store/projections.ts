// Folds one event into the projections. The same function runs live (inside
// the transaction that appends the event) and when the projections are rebuilt
// from the log, so both paths agree by construction; a test checks it anyway.
import type { PoolClient } from 'pg';
import { replicationWorkflowId, type PushOrder } from '../domain/workflow-contract';
import type { RecordedEvent, ReplicationObservedData } from './events';

export const PROJECTION_TABLES = ['replications', 'replication_regions', 'region_tags'] as const;

type Sql = Pick<PoolClient, 'query'>;

/**
 * Points a region's tag at `digest` (null: removed). `ordered`: only if no
 * later change (by time, then replication id) holds it: a source region's own
 * changes, observed from notifications in any order. Unordered: a change
 * Ferry made in a target under the tag's lock, so the event order is the
 * order the writes happened in (activities/tags.ts).
 */
async function setTag(
  sql: Sql,
  at: Date,
  tagRef: { region: string; repository: string; tag: string },
  digest: string | null,
  order: PushOrder,
  ordered: boolean | 'merged',
): Promise<void> {
  const onlyIfLater = ordered === true ? `WHERE (region_tags.occurred_at, region_tags.replication_id) < (EXCLUDED.occurred_at, EXCLUDED.replication_id)` : '';
  // A merged listing (activities/tags.ts) holds both changes: the digest moves, the tag keeps the later order of the two.
  const later = (column: string) =>
    ordered === 'merged'
      ? `CASE WHEN (region_tags.occurred_at, region_tags.replication_id) > (EXCLUDED.occurred_at, EXCLUDED.replication_id) THEN region_tags.${column} ELSE EXCLUDED.${column} END`
      : `EXCLUDED.${column}`;
  await sql.query(
    `INSERT INTO region_tags (region, repository, tag, digest, replication_id, occurred_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (region, repository, tag) DO UPDATE
       SET digest = EXCLUDED.digest, replication_id = ${later('replication_id')},
           occurred_at = ${later('occurred_at')}, updated_at = EXCLUDED.updated_at
       ${onlyIfLater}`,
    [tagRef.region, tagRef.repository, tagRef.tag, digest, order.replicationId, order.occurredAt, at],
  );
}

async function foldObserved(sql: Sql, event: RecordedEvent, data: ReplicationObservedData): Promise<void> {
  const id = event.seq;
  const at = event.recordedAt;
  const order = { replicationId: id, occurredAt: data.occurredAt };
  await sql.query(
    `INSERT INTO replications (id, kind, source_region, repository, tag, digest, media_type, workflow_id, observed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [id, data.kind, data.sourceRegion, data.repository, data.tag, data.digest, data.mediaType, replicationWorkflowId({ ...data, replicationId: id }), at],
  );
  await sql.query(
    `INSERT INTO replication_regions (replication_id, region, state, updated_at)
     SELECT $1, region, 'pending', $3 FROM unnest($2::text[]) AS region`,
    [id, data.targetRegions, at],
  );
  // The source registry has already applied this change to its own storage.
  if (data.kind === 'push' && data.tag !== null) {
    await setTag(sql, at, { region: data.sourceRegion, repository: data.repository, tag: data.tag }, data.digest, order, true);
  } else if (data.kind === 'delete-tag' && data.tag !== null) {
    await setTag(sql, at, { region: data.sourceRegion, repository: data.repository, tag: data.tag }, null, order, true);
  } else if (data.kind === 'delete-digest') {
    await sql.query(
      `UPDATE region_tags SET digest = NULL, replication_id = $4, occurred_at = $5, updated_at = $6
       WHERE region = $1 AND repository = $2 AND digest = $3 AND (occurred_at, replication_id) < ($5, $4)`,
      [data.sourceRegion, data.repository, data.digest, id, data.occurredAt, at],
    );
  }
}

async function touchRegion(sql: Sql, event: RecordedEvent, assignments: string, values: unknown[] = []): Promise<void> {
  await sql.query(
    `UPDATE replication_regions SET ${assignments}, updated_at = $3
     WHERE replication_id = $1 AND region = $2`,
    [event.replicationId, event.region, event.recordedAt, ...values],
  );
}

/** Work recorded in a region moves it to copying, never back from an outcome (a copy finishing after a sibling blob failed). */
const COPYING = `state = CASE WHEN state IN ('pending', 'copying') THEN 'copying' ELSE state END`;

/** The union of fields the fold reads from region-level events' data. */
interface FoldedFields {
  size: number;
  repository: string;
  tag: string;
  digest: string;
  removedTags: string[];
  code: string;
  reason: string;
  succeeded: string[];
  supersededBy?: number | null;
  /** TagReplicated of a merged listing: what the region held before. */
  mergedWith?: string;
  failed: string[];
  occurredAt: string;
  blobs: number;
  totalBlobBytes: number;
}

export async function fold(sql: Sql, event: RecordedEvent): Promise<void> {
  const data = event.data as unknown as FoldedFields;
  const order = { replicationId: event.replicationId!, occurredAt: data.occurredAt };
  switch (event.type) {
    case 'ReplicationObserved':
      return foldObserved(sql, event, event.data as unknown as ReplicationObservedData);
    case 'SourceResolved':
      await sql.query(`UPDATE replications SET blob_count = $2, total_blob_bytes = $3 WHERE id = $1`, [event.replicationId, data.blobs, data.totalBlobBytes]);
      return;
    case 'BlobCopied':
      return touchRegion(sql, event, `${COPYING}, blobs_copied = blobs_copied + 1, bytes_copied = bytes_copied + $4`, [data.size]);
    case 'BlobSkipped':
      return touchRegion(sql, event, `${COPYING}, blobs_skipped = blobs_skipped + 1, bytes_skipped = bytes_skipped + $4`, [data.size]);
    case 'ManifestsWritten':
    case 'CachePurged':
    case 'TagSuperseded':
      return touchRegion(sql, event, COPYING);
    case 'TagReplicated':
      await setTag(sql, event.recordedAt, { region: event.region!, repository: data.repository, tag: data.tag }, data.digest, order, data.mergedWith === undefined ? false : 'merged');
      return touchRegion(sql, event, `tag_moved = true`);
    case 'DeleteApplied':
      for (const tag of data.removedTags) {
        await setTag(sql, event.recordedAt, { region: event.region!, repository: data.repository, tag }, null, order, false);
      }
      return;
    case 'TagRecovered':
      // The digest storage holds; the order of the last change Ferry recorded stays (none: the earliest),
      // so whatever changes the tag next is later than the recovery.
      await sql.query(
        `INSERT INTO region_tags (region, repository, tag, digest, replication_id, occurred_at, updated_at)
         VALUES ($1, $2, $3, $4, 0, 'epoch', $5)
         ON CONFLICT (region, repository, tag) DO UPDATE SET digest = EXCLUDED.digest, updated_at = EXCLUDED.updated_at
         WHERE $6::timestamptz IS NULL OR region_tags.updated_at <= $6::timestamptz`,
        [event.region, data.repository, data.tag, data.digest, event.recordedAt, (event.data as { asOf?: string }).asOf ?? null],
      );
      return;
    case 'CompletionPublished': {
      // A push whose tag a newer change holds there is superseded (its digest landed all the same).
      const superseded = 'supersededBy' in event.data;
      return touchRegion(sql, event, `state = $4, replicated_at = $3, superseded_by = $5`, [superseded ? 'superseded' : 'replicated', data.supersededBy ?? null]);
    }
    case 'RegionFailed':
      return touchRegion(sql, event, `state = 'failed', failure = $4`, [`${data.code}: ${data.reason}`]);
    case 'ReplicationFinished': {
      const failed = data.failed.length;
      const succeeded = data.succeeded.length;
      const outcome = failed === 0 ? 'succeeded' : succeeded === 0 ? 'failed' : 'partial';
      await sql.query(`UPDATE replications SET outcome = $2, finished_at = $3 WHERE id = $1`, [
        event.replicationId,
        outcome,
        event.recordedAt,
      ]);
      return;
    }
  }
}

/**
 * Folds the part of `event` that touches its own replication's rows, not
 * region_tags: for an event appended before its observation existed (a
 * replication that ran on while its store was lost, store/recovery.ts). Its
 * tag effect was folded when it was appended, in its place in the log.
 */
export async function foldOwnRows(sql: Sql, event: RecordedEvent): Promise<void> {
  if (event.type === 'TagReplicated') return touchRegion(sql, event, `tag_moved = true`);
  if (event.type === 'DeleteApplied' || event.type === 'ReplicationObserved' || event.type === 'TagRecovered') return;
  return fold(sql, event);
}
