// Backfill's activities: plan from every region's storage, and record each
// tag to spread as a replication of its own (its event id names the backfill
// and the write, so a retried activity records nothing new).
import { planBackfill, type BackfillItem, type BackfillPlan, type BackfillScope } from '../domain/backfill';
import { replicatesInto, type ResolvedConfig } from '../domain/config';
import type { EventStore } from '../store/event-store';
import { recordObservation, type Recorded } from '../store/observations';
import { planPage, savePlan } from '../store/plans';
import { storedTags } from './reconcile';
import type { Storages } from './storage';

export function createBackfillActivities({ config, storages, store }: { config: ResolvedConfig; storages: Storages; store: EventStore }) {
  async function plan(scope: BackfillScope): Promise<BackfillPlan> {
    const stored = await storedTags(storages, scope.repositories);
    return planBackfill(
      stored,
      config.regions.map((region) => region.name),
      scope,
      // What the rules keep out of a region now is not backfilled there; what they let in since is.
      (target, change) => replicatesInto(config, target, change),
    );
  }

  return {
    /** The whole plan as one result: backfills started before plans were paged. */
    planBackfill: plan,

    /** Plans, keeps the items as plan `planId` (store/plans.ts) and returns only their number and how to page them. */
    async planBackfillInto(input: { scope: BackfillScope; planId: string }): Promise<{ count: number; alreadyPresent: number; pageSize: number; pagesPerRun: number }> {
      const planned = await plan(input.scope);
      await savePlan(store, input.planId, planned.items);
      return { count: planned.items.length, alreadyPresent: planned.alreadyPresent, pageSize: config.reconcile.pageSize, pagesPerRun: config.reconcile.pagesPerRun };
    },

    async backfillPage(page: { planId: string; offset: number; limit: number }): Promise<BackfillItem[]> {
      return planPage<BackfillItem>(store, page.planId, page.offset, page.limit);
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
