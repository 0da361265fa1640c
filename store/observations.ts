// Recording an accepted push or delete, whoever noticed it (a registry's
// notification, or the reconcile that found what a lost notification left
// behind, or a backfill): one ReplicationObserved event, deduplicated on its
// event id, and the request its workflow runs with. The event time is bounded
// by Ferry's clock (domain/event-time.ts). A redelivery runs with what was
// recorded the first time; the same id carrying other content is refused.
import { replicatesInto, type ResolvedConfig } from '../domain/config';
import { boundedEventTime } from '../domain/event-time';
import type { ReplicationRequest } from '../domain/workflow-contract';
import type { EventStore } from './event-store';
import type { Observation, ReplicationObservedData } from './events';

export interface Recorded {
  request: ReplicationRequest;
  /** True when this event id had been recorded before; nothing new was written. */
  duplicate: boolean;
}

/** An event id already recorded with other content: a registry bug or a forged notification. */
export class ConflictingEventError extends Error {
  constructor(
    readonly eventId: string,
    readonly differences: string[],
  ) {
    super(`event ${eventId} was recorded before with another ${differences.join(', ')}; refusing the new content`);
    this.name = 'ConflictingEventError';
  }
}

/** What makes two notifications with one id the same event: everything they say, at the time the registry reported. */
const CONTENT_FIELDS = ['kind', 'sourceRegion', 'repository', 'tag', 'digest', 'mediaType'] as const;

function reportedTime(data: Pick<ReplicationObservedData, 'occurredAt' | 'reportedAt'>): string {
  return data.reportedAt ?? data.occurredAt;
}

/** The fields in which `earlier` (as stored) and `now` (as reported) differ. */
export function contentDifferences(earlier: ReplicationObservedData, now: Observation): string[] {
  const differences: string[] = CONTENT_FIELDS.filter((field) => (earlier[field] ?? null) !== (now[field] ?? null));
  if (Date.parse(reportedTime(earlier)) !== Date.parse(now.occurredAt)) differences.push('occurredAt');
  return differences;
}

/**
 * Records `observation`, to replicate into `targetRegions`: by default every
 * region that takes the source's pushes (regions[].sources) and that the
 * replication rules let the change into, and never another (domain/rules.ts). With `sweep` (ingest), the change is also marked as
 * waiting for its workflow until the caller started it; reconcile and backfill
 * start theirs as child workflows, in the workflow that recorded them.
 */
export async function recordObservation(
  store: EventStore,
  config: ResolvedConfig,
  observation: Observation,
  targets = config.regions.map((region) => region.name),
  { sweep = false }: { sweep?: boolean } = {},
): Promise<Recorded> {
  const targetRegions = targets.filter((target) => replicatesInto(config, target, observation));
  const time = boundedEventTime(observation.occurredAt, new Date(), config.ingest.maxClockSkewSeconds);
  const data: ReplicationObservedData = { ...observation, ...time, targetRegions };
  const appended = await store.transaction(async (sql) => {
    const appended = await store.append({ type: 'ReplicationObserved', data }, sql);
    // Its workflow is still to start: whoever starts it forgets this (store/pending-starts.ts).
    if (appended.recorded && sweep) await sql.query(`INSERT INTO pending_starts (replication_id) VALUES ($1) ON CONFLICT DO NOTHING`, [appended.seq]);
    return appended;
  });
  // A redelivery runs with what was recorded the first time (its bounded time, its targets).
  const recorded = appended.data as unknown as ReplicationObservedData;
  if (!appended.recorded) refuseConflict(recorded, observation);
  return { request: requestOf(recorded, appended.seq, appended.recordedAt, config), duplicate: !appended.recorded };
}

/** The request a recorded observation's workflow runs with. */
export function requestOf(recorded: ReplicationObservedData, replicationId: number, recordedAt: Date, config: ResolvedConfig): ReplicationRequest {
  return {
    ...recorded,
    replicationId,
    // The projection's observed_at is the observation event's recorded_at.
    observedAt: recordedAt.toISOString(),
    blobConcurrency: config.replication.blobConcurrency,
  };
}

/** Throws ConflictingEventError when `observation`'s id was recorded with other content; writes nothing. */
export async function checkNotConflicting(store: EventStore, observation: Observation): Promise<void> {
  const earlier = await store.observed(observation.sourceRegion, observation.eventId);
  if (earlier !== null) refuseConflict(earlier, observation);
}

/** Throws ConflictingEventError when `now` says something else than `earlier`, recorded under its id. */
function refuseConflict(earlier: ReplicationObservedData, now: Observation): void {
  const differences = contentDifferences(earlier, now);
  if (differences.length > 0) throw new ConflictingEventError(now.eventId, differences);
}
