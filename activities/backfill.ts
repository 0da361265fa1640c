// Backfill's activities: plan from every region's storage, and record each
// tag to spread as a replication of its own (its event id names the backfill
// and the write, so a retried activity records nothing new).
import { planBackfill, type BackfillItem, type BackfillPlan, type BackfillScope } from '../domain/backfill';
import { replicatesInto, type ResolvedConfig } from '../domain/config';
import type { EventStore } from '../store/event-store';
import { recordObservation, type Recorded } from '../store/observations';
import { storedTags } from './reconcile';
import type { Storages } from './storage';

export function createBackfillActivities({ config, storages, store }: { config: ResolvedConfig; storages: Storages; store: EventStore }) {
  return {
    async planBackfill(scope: BackfillScope): Promise<BackfillPlan> {
      const stored = await storedTags(storages, scope.repositories);
      return planBackfill(
        stored,
        config.regions.map((region) => region.name),
        scope,
        // What the rules keep out of a region now is not backfilled there; what they let in since is.
        (target, change) => replicatesInto(config, target, change),
      );
    },

    async recordBackfill(input: { backfillId: string; item: BackfillItem }): Promise<Recorded> {
      const { item } = input;
      return recordObservation(
        store,
        config,
        {
          kind: 'push',
          sourceRegion: item.sourceRegion,
          repository: item.repository,
          tag: item.tag,
          digest: item.digest,
          mediaType: null,
          eventId: `backfill:${input.backfillId}:${item.repository}:${item.tag}:${item.digest}`,
          occurredAt: item.occurredAt,
        },
        item.targets,
      );
    },
  };
}
