// Reconcile: compare every region's tags in storage with what Ferry recorded,
// and record each unobserved change as a replication of its own (the event id
// names the drift, so a second scan of the same drift records nothing new).
import { replicatesInto, type ResolvedConfig } from '../domain/config';
import { Context } from '@temporalio/activity';
import { behindInStorage, disputedTags, findDrift, recoveryBaseline, regionTagKey, type Drift, type RecordedTag, type Repair, type StoredTag } from '../domain/drift';
import { parseRepositoryName, type Digest, type RepositoryName, type Tag } from '../domain/reference';
import type { EventStore } from '../store/event-store';
import type { ReconcileScope } from '../workflows/reconcile';
import { digestsHeldBefore, recordedTags } from '../store/projection-reads';
import { recordObservation, type Recorded } from '../store/observations';
import { dropPlan, planPage, savePlan } from '../store/plans';
import { forEachLimited } from '../support/concurrency';
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

/**
 * The tag index (every digest the tag pointed at there) of each tag regions
 * disagree on, by regionTagKey: what behindInStorage reads. One listing per
 * disputed tag and region, none for the tags every region agrees on.
 */
async function disputedIndexes(storages: Storages, disputed: readonly StoredTag[]): Promise<Map<string, Set<Digest>>> {
  const indexes = new Map<string, Set<Digest>>();
  await forEachLimited(disputed, 8, async (entry) => {
    const storage = storages.get(entry.region)!;
    const digests = new Set<Digest>();
    for await (const objects of storage.objectsUnder(storage.layout.tagIndexPrefix(entry.repository, entry.tag))) {
      for (const object of objects) {
        const digest = storage.layout.parseTagIndexLink(object.key);
        if (digest !== null) digests.add(digest);
      }
    }
    indexes.set(regionTagKey(entry.region, entry.repository, entry.tag), digests);
  });
  return indexes;
}

/** Every tag every region's storage holds, in the repositories given (validated here) or in all of them. */
export async function storedTags(storages: Storages, repositories?: readonly string[]): Promise<StoredTag[]> {
  const names = repositories?.map(parseRepositoryName);
  return (await Promise.all([...storages.values()].map((storage) => storedTagsIn(storage, names)))).flat();
}

export function createReconcileActivities({ config, storages, store, metrics }: { config: ResolvedConfig; storages: Storages; store: EventStore; metrics: WorkerMetrics }) {
  /** Records what storage holds where every region agrees (domain/drift.ts recoveryBaseline), 500 tags per transaction. */
  async function recordBaseline(recovery: string, stored: StoredTag[], recorded: RecordedTag[], asOf: Date): Promise<void> {
    const takes = (target: string, holder: string, repository: RepositoryName, tag: Tag) => replicatesInto(config, target, { sourceRegion: holder, repository, tag });
    const baseline = recoveryBaseline(stored, recorded, [...storages.keys()], takes);
    for (let start = 0; start < baseline.length; start += 500) {
      await store.transaction(async (sql) => {
        for (const { region, ...data } of baseline.slice(start, start + 500)) await store.append({ type: 'TagRecovered', region, data: { recovery, asOf: asOf.toISOString(), ...data } }, sql);
      });
      Context.current().heartbeat({ baselined: Math.min(start + 500, baseline.length), of: baseline.length });
    }
    Context.current().log.info('recovery baseline recorded', { recovery, tags: baseline.length });
  }

  /** Compares storage with the record: every drift, halted regions first (domain/drift.ts findDrift). */
  async function scan(scope: ReconcileScope): Promise<Drift[]> {
    const inScope = (repository: string) => !scope.repositories || scope.repositories.includes(repository);
    // Storage regions only: a registry-API region has no storage to compare (README, "Registry-API regions").
    const recordedNow = async () => (await recordedTags(store)).filter((row) => inScope(row.repository) && storages.has(row.region));
    // `ferry recover`: where every region agrees, storage becomes the record; the rest is drift as ever.
    // The record is read before storage is listed, and the baseline changes no tag recorded since.
    const asOf = new Date();
    const recordedFirst = scope.recovery === undefined ? null : await recordedNow();
    const stored = await storedTags(storages, scope.repositories);
    if (scope.recovery !== undefined) await recordBaseline(scope.recovery, stored, recordedFirst!, asOf);
    const records: RecordedTag[] = await recordedNow();
    // Tags whose storage and record differ: did the region hold that digest before (a restored older copy)?
    const recordedDigest = new Map(records.map((row) => [regionTagKey(row.region, row.repository, row.tag), row.digest]));
    const differing = stored.filter((entry) => {
      const digest = recordedDigest.get(regionTagKey(entry.region, entry.repository, entry.tag));
      return digest !== undefined && digest !== entry.digest;
    });
    const heldBefore = await digestsHeldBefore(store, differing);
    // Without a record to tell (a lost database), storage itself: a region whose tag another region moved on from.
    const disputed = disputedTags(stored);
    const behind = behindInStorage(disputed, await disputedIndexes(storages, disputed));
    const drifts = findDrift(stored, records, new Date(Date.now() - config.reconcile.settleSeconds * 1000).toISOString(), config.reconcile.haltShare, heldBefore, behind);
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
  }

  async function recordDrift(drift: Repair): Promise<Recorded> {
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
  }

  return {
    /** The whole scan as one result: reconciles started before plans were paged. */
    scanForDrift: scan,
    recordDrift,

    /**
     * Scans, keeps the repairs as plan `planId` (store/plans.ts) and returns
     * only their number, the halted regions and how to page the plan.
     */
    async planDrift(scope: ReconcileScope & { planId: string }): Promise<DriftPlan> {
      const drifts = await scan(scope);
      const repairs = drifts.filter((drift): drift is Repair => drift.kind !== 'halted');
      await savePlan(store, scope.planId, repairs);
      const halted = drifts.flatMap((drift) => (drift.kind === 'halted' ? [drift] : []));
      return { count: repairs.length, halted, pageSize: config.reconcile.pageSize, pagesPerRun: config.reconcile.pagesPerRun };
    },

    /** Records the repairs `offset` to `offset + limit` of a plan, each as a replication of its own. */
    async recordDriftPage(page: { planId: string; offset: number; limit: number }): Promise<Array<{ drift: Repair } & Recorded>> {
      const repairs = await planPage<Repair>(store, page.planId, page.offset, page.limit);
      const recorded: Array<{ drift: Repair } & Recorded> = [];
      for (const drift of repairs) recorded.push({ drift, ...(await recordDrift(drift)) });
      return recorded;
    },

    async dropPlan(planId: string): Promise<void> {
      await dropPlan(store, planId);
    },
  };
}

/** What planDrift returns: the plan's size, not its items. */
export interface DriftPlan {
  count: number;
  halted: Array<Extract<Drift, { kind: 'halted' }>>;
  pageSize: number;
  pagesPerRun: number;
}
