// Recording an accepted push or delete, whoever noticed it (a registry's
// notification, or the reconcile that found what a lost notification left
// behind, or a backfill): one ReplicationObserved event, deduplicated on its event id, and
// the request its workflow runs with.
import type { ResolvedConfig } from '../domain/config';
import type { ReplicationRequest } from '../domain/workflow-contract';
import type { EventStore } from './event-store';
import type { Observation, ReplicationObservedData } from './events';

export interface Recorded {
  request: ReplicationRequest;
  /** True when this event id had been recorded before; nothing new was written. */
  duplicate: boolean;
}

/** Records `observation`, to replicate into `targetRegions`: by default every region but the source. */
export async function recordObservation(
  store: EventStore,
  config: ResolvedConfig,
  observation: Observation,
  targetRegions = config.regions.map((region) => region.name).filter((name) => name !== observation.sourceRegion),
): Promise<Recorded> {
  const data: ReplicationObservedData = { ...observation, targetRegions };
  const appended = await store.append({ type: 'ReplicationObserved', data });
  return {
    request: {
      ...data,
      replicationId: appended.seq,
      // The projection's observed_at is the observation event's recorded_at.
      observedAt: appended.recordedAt.toISOString(),
      blobConcurrency: config.replication.blobConcurrency,
    },
    duplicate: !appended.recorded,
  };
}
