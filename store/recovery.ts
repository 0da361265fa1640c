// Rebuilding Ferry's event store after it was lost or restored from an older
// backup (README "Disaster recovery"). Temporal outlives it: every
// replication's workflow carries its id (search attribute FerryReplicationId)
// and its request (the workflow's input). So:
// - the event sequence is floored past every id Temporal knows, at every
//   start of a process that records (api, worker) and by `ferry recover`, so
//   a new change never reuses the id, and so the workflow id, of an old one;
// - the observation of every replication still running is recorded again
//   under its own id, so its progress, outcome and waiters work once more;
// - what the regions' storage holds becomes the record where they agree
//   (TagRecovered events, folded in store/projections.ts); where they do not,
//   reconcile decides (domain/drift.ts recoveryBaseline).
import { defaultPayloadConverter } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { searchAttributes, type ReplicationRequest } from '../domain/workflow-contract';
import { toRecorded, type EventRow, type EventStore } from './event-store';
import { dedupeKey, type RecordedEvent, type ReplicationObservedData } from './events';
import { fold, foldOwnRows } from './projections';

const ID = searchAttributes.replicationId.name;

/** The highest replication id any workflow Temporal still holds carries (0: none), found with count queries only. */
export async function highestReplicationId(temporal: Client): Promise<number> {
  const atLeast = async (id: number) => (await temporal.workflow.count(`${ID} >= ${id}`)).count > 0;
  if (!(await atLeast(1))) return 0;
  let low = 1; // known to exist
  let high = 2;
  while (await atLeast(high)) {
    low = high;
    high *= 2;
    // Ferry's ids come from a bigint sequence, read as JS numbers: one past 2^53 was not made by Ferry.
    if (high > Number.MAX_SAFE_INTEGER) throw new Error(`a workflow carries ${ID} ${low} or more, beyond any id Ferry hands out: find it with the query "${ID} >= ${low}" and terminate or correct it`);
  }
  // low exists, high does not.
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await atLeast(middle)) low = middle;
    else high = middle;
  }
  return low;
}

/** The requests of the replication workflows Temporal runs now, read from their inputs. */
export async function runningReplications(temporal: Client): Promise<ReplicationRequest[]> {
  const requests: ReplicationRequest[] = [];
  for await (const execution of temporal.workflow.list({ query: `ExecutionStatus = 'Running' AND ${ID} >= 1` })) {
    const history = await temporal.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) continue;
    requests.push(defaultPayloadConverter.fromPayload<ReplicationRequest>(payload));
  }
  return requests.sort((a, b) => a.replicationId - b.replicationId);
}

/**
 * Records a running replication's observation again, under its own id (the
 * sequence is floored past it), as ingest first recorded it; true when it was
 * missing. A redelivered notification of the same event then dedupes to it.
 */
export async function reinstateObservation(store: EventStore, request: ReplicationRequest): Promise<boolean> {
  const { replicationId, observedAt, blobConcurrency: _concurrency, ...observed } = request as ReplicationRequest & Partial<ReplicationObservedData>;
  // A request carries its observation whole (store/observations.ts requestOf); these guard one that does not.
  const data: ReplicationObservedData = { ...observed, mediaType: observed.mediaType ?? null, eventId: observed.eventId ?? `recovered-${replicationId}` };
  const event = { type: 'ReplicationObserved' as const, data };
  return store.transaction(async (sql) => {
    // No append meanwhile: each lands either before (folded below) or after (folded onto its rows).
    await sql.query(`LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE`);
    const inserted = await sql.query(
      // Its own id taken by another event means the sequence was not floored: that fails loudly.
      `INSERT INTO events (seq, type, data, dedupe_key, recorded_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (dedupe_key) DO NOTHING RETURNING seq`,
      [replicationId, event.type, JSON.stringify(data), dedupeKey(event), observedAt],
    );
    if (inserted.rowCount === 0) return false;
    const observedEvent: RecordedEvent = { seq: replicationId, type: event.type, replicationId: null, region: null, data: data as unknown as Record<string, unknown>, recordedAt: new Date(observedAt) };
    await fold(sql, observedEvent);
    // What it recorded since the store came back found no rows of its own then: folded onto them now.
    const since = await sql.query<EventRow>(
      `SELECT seq, type, replication_id, region, data, recorded_at FROM events WHERE replication_id = $1 ORDER BY seq`,
      [replicationId],
    );
    for (const row of since.rows) await foldOwnRows(sql, toRecorded(row));
    return true;
  });
}
