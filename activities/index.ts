// Every activity, built by one factory from its clients. Workers and tests
// wire activities the same way; workflow code imports only the type.
import type { ResolvedConfig } from '../domain/config';
import { BlobClaims } from '../store/blob-claims';
import { BlobHomes, UploadCheckpoints } from '../store/registry-blobs';
import { forgetPendingStart } from '../store/pending-starts';
import type { EventStore } from '../store/event-store';
import { createAnnounceActivities, type Announcer } from './announce';
import { createBackfillActivities } from './backfill';
import { createBlobActivities, createBlobCopier } from './blobs';
import { ByteBudget } from './byte-budget';
import { createCachePurgeActivities } from './cache-purge';
import { RegionLimits } from './region-limits';
import { SourceVerifications } from './source-verifications';
import { createManifestActivities } from './manifests';
import type { WorkerMetrics } from './metrics';
import { createPullCheckActivities } from './pull-check';
import { createReconcileActivities } from './reconcile';
import { connectRegistries } from './region-configs';
import { createRegionReplicationActivities } from './region-replication';
import { Regions } from './regions';
import type { Storages } from './storage';
import { createTagActivities } from './tags';

export interface ActivityDeps {
  config: ResolvedConfig;
  storages: Storages;
  store: EventStore;
  announcer: Announcer;
  metrics: WorkerMetrics;
}

export function createActivities({ config, storages, store, announcer, metrics }: ActivityDeps) {
  const partBudget = new ByteBudget(config.replication.partBudgetBytes);
  const verifications = new SourceVerifications();
  const claims = new BlobClaims(store, config.replication.claimSeconds);
  const configs = new Map(config.regions.map((region) => [region.name, region]));
  const requestIdleMs = config.replication.requestIdleSeconds * 1000;
  const registries = connectRegistries(configs, requestIdleMs);
  const regions = new Regions(configs, storages, registries, requestIdleMs);
  const copyBlob = createBlobCopier({
    regions,
    store,
    claims,
    homes: new BlobHomes(store),
    uploads: new UploadCheckpoints(store),
    partSize: config.replication.partSizeBytes,
    budget: partBudget,
    verifications,
    limits: new RegionLimits(config.regions),
    metrics,
  });
  const manifests = createManifestActivities({ regions, store });
  const tags = createTagActivities({ regions, store, awaitNotificationMs: config.replication.awaitNotificationSeconds * 1000 });
  const pullCheck = createPullCheckActivities({ regions: configs, registries });
  const caches = createCachePurgeActivities({ regions: configs, registries, store });
  const announce = createAnnounceActivities({ announcer, store, metrics });
  return {
    ...createRegionReplicationActivities({ config, store, copyBlob, manifests, tags, pullCheck, caches, announce }),
    ...createReconcileActivities({ config, storages, store, metrics }),
    ...createBackfillActivities({ config, storages, store }),
    /** A local activity of replicateChange: the change whose workflow it started (a widened listing's) needs no sweeper. */
    async forgetPendingStart(replicationId: number): Promise<void> {
      await forgetPendingStart(store, replicationId);
    },
    // announceOutcome, a local activity of replicateChange; announceRegion and the rest are the
    // per-step activities of replicatePush / replicateToRegion, registered until their executions drain.
    ...announce,
    ...manifests,
    ...createBlobActivities(copyBlob),
    ...tags,
    ...pullCheck,
    ...caches,
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { CopyBlobInput, CopyBlobResult, CopyProgress, CopyReporter } from './blobs';
export type { ResolveSourceInput, ResolvedSource, SourceTagState, WriteManifestsInput } from './manifests';
export type { ApplyDeleteInput, ApplyDeleteResult, MoveTagInput, MoveTagResult } from './tags';
export type { PurgeCachesInput } from './cache-purge';
export type { VerifyPullInput, VerifyPullResult } from './pull-check';
