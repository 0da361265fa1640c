// Reconcile: compare every region's tags in storage with what Ferry recorded,
// and record each unobserved change as a replication of its own (the event id
// names the drift, so a second scan of the same drift records nothing new).
import type { ResolvedConfig } from '../domain/config';
import { Context } from '@temporalio/activity';
import { findDrift, type Drift, type RecordedTag, type Repair, type StoredTag } from '../domain/drift';
import { parseRepositoryName, type Digest, type RepositoryName, type Tag } from '../domain/reference';
import type { EventStore } from '../store/event-store';
import { recordedTags } from '../store/projection-reads';
import { recordObservation, type Recorded } from '../store/observations';
import type { WorkerMetrics } from './metrics';
import type { RegionStorage, Storages } from './storage';

async function listTags(storage: RegionStorage, prefix: string): Promise<StoredTag[]> {
  const tags: StoredTag[] = [];
  for await (const objects of storage.objectsUnder(prefix)) {
    for (const object of objects) {
      const tag = storage.layout.parseTagCurrentLink(object.key);
      if (!tag) continue;
      const digest = await storage.readLink(object.key);
      if (digest) tags.push({ region: storage.region.name, ...tag, digest, modifiedAt: object.modifiedAt.toISOString() });
    }
  }
  return tags;
}

/** Every tag one region's storage holds, in the repositories given or in all of them. */
async function storedTagsIn(storage: RegionStorage, repositories?: readonly RepositoryName[]): Promise<StoredTag[]> {
  if (!repositories) return listTags(storage, storage.layout.repositoriesPrefix());
  return (await Promise.all(repositories.map((repository) => listTags(storage, storage.layout.tagsPrefix(repository))))).flat();
}

/** Every tag every region's storage holds, in the repositories given (validated here) or in all of them. */
export async function storedTags(storages: Storages, repositories?: readonly string[]): Promise<StoredTag[]> {
  const names = repositories?.map(parseRepositoryName);
  return (await Promise.all([...storages.values()].map((storage) => storedTagsIn(storage, names)))).flat();
}

export function createReconcileActivities({ config, storages, store, metrics }: { config: ResolvedConfig; storages: Storages; store: EventStore; metrics: WorkerMetrics }) {
  return {
    async scanForDrift(scope: { repositories?: string[] }): Promise<Drift[]> {
      const inScope = (repository: string) => !scope.repositories || scope.repositories.includes(repository);
      const stored = await storedTags(storages, scope.repositories);
      const records: RecordedTag[] = (await recordedTags(store)).filter((row) => inScope(row.repository));
      const drifts = findDrift(stored, records, new Date(Date.now() - config.reconcile.settleSeconds * 1000).toISOString(), config.reconcile.haltShare);
      const halted = new Set(drifts.flatMap((drift) => (drift.kind === 'halted' ? [drift.region] : [])));
      for (const region of storages.keys()) metrics.reconcileHalted.set({ region }, halted.has(region) ? 1 : 0);
      for (const drift of drifts) {
        if (drift.kind !== 'halted') continue;
        Context.current().log.error(
          `reconcile halted for ${drift.region}: ${drift.missing} of its ${drift.recorded} recorded tags are gone from its storage (an emptied or wrong bucket?); nothing is replicated from or into it until that is fixed`,
          { region: drift.region, missing: drift.missing, recorded: drift.recorded },
        );
      }
      return drifts;
    },

    async recordDrift(drift: Repair): Promise<Recorded> {
      const digest = drift.kind === 'delete-tag' ? null : drift.digest;
      const refill = drift.kind === 'refill' ? `refill:${drift.target}:` : '';
      return recordObservation(
        store,
        config,
        {
          kind: drift.kind === 'delete-tag' ? 'delete-tag' : 'push',
          sourceRegion: drift.region,
          repository: drift.repository,
          tag: drift.tag,
          digest,
          mediaType: null,
          eventId: `reconcile:${refill}${drift.region}:${drift.repository}:${drift.tag}:${digest ?? 'deleted'}:${drift.occurredAt}`,
          occurredAt: drift.occurredAt,
        },
        // A refill goes only where the tag was lost.
        drift.kind === 'refill' ? [drift.target] : undefined,
      );
    },
  };
}
