// Bytes moving inside a region's replication, between the events that record
// landed blobs: what lets `ferry wait` and /v1/status show a large layer
// moving instead of jumping 0 → 100 %. Ephemeral by design: an UNLOGGED
// table outside the event log and its projections, overwritten in place, not
// rebuilt, and worthless once the region is done (the projection then says
// everything). A lost row only makes progress look older for a second.
import type pg from 'pg';
import { EVENTS_CHANNEL } from './event-store';

type Sql = Pick<pg.Pool, 'query'>;

/** Sets a region's bytes done, and wakes long polls on the replication (api/wait.ts) as an event would. */
export async function saveRegionProgress(sql: Sql, replicationId: number, region: string, bytesDone: number): Promise<void> {
  await sql.query(
    `WITH saved AS (
       INSERT INTO region_progress (replication_id, region, bytes_done, updated_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (replication_id, region) DO UPDATE SET bytes_done = EXCLUDED.bytes_done, updated_at = EXCLUDED.updated_at
       RETURNING replication_id)
     SELECT pg_notify($4, json_build_object('replicationId', replication_id, 'repository', NULL)::text) FROM saved`,
    [replicationId, region, bytesDone, EVENTS_CHANNEL],
  );
}

/** A region that finished needs its row no more. */
export async function forgetRegionProgress(sql: Sql, replicationId: number, region: string): Promise<void> {
  await sql.query(`DELETE FROM region_progress WHERE replication_id = $1 AND region = $2`, [replicationId, region]);
}
