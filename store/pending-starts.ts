// Changes recorded from a notification whose workflow has not been started
// yet (schema.sql pending_starts). Marked in the transaction that records the
// change (observations.ts), forgotten once Temporal accepted the start; the api's sweeper
// (api/sweeper.ts) starts whatever stays longer than it should.
import type { ResolvedConfig } from '../domain/config';
import type { ReplicationRequest } from '../domain/workflow-contract';
import type { EventStore } from './event-store';
import type { ReplicationObservedData } from './events';
import { requestOf } from './observations';

/** Its workflow was started (or found already started): nothing left for the sweeper. */
export async function forgetPendingStart(store: EventStore, replicationId: number): Promise<void> {
  await store.pool.query(`DELETE FROM pending_starts WHERE replication_id = $1`, [replicationId]);
}

/** The requests of changes waiting for their workflow since before `recordedBefore`, oldest first. */
export async function overduePendingStarts(store: EventStore, config: ResolvedConfig, recordedBefore: Date, limit: number): Promise<ReplicationRequest[]> {
  const rows = await store.pool.query<{ seq: string; data: ReplicationObservedData; recorded_at: Date }>(
    `SELECT e.seq, e.data, e.recorded_at FROM pending_starts p JOIN events e ON e.seq = p.replication_id
     WHERE p.recorded_at < $1 ORDER BY p.replication_id LIMIT $2`,
    [recordedBefore, limit],
  );
  return rows.rows.map((row) => requestOf(row.data, Number(row.seq), row.recorded_at, config));
}
