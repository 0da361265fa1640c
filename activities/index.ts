// Every activity, built by one factory from its clients. Workers and tests
// wire activities the same way; workflow code imports only the type.
import type { ResolvedConfig } from '../domain/config';
import type { EventStore } from '../store/event-store';
import { createAnnounceActivities, type Announcer } from './announce';
import { createBackfillActivities } from './backfill';
import { createBlobActivities } from './blobs';
import { createManifestActivities } from './manifests';
import type { WorkerMetrics } from './metrics';
import { createReconcileActivities } from './reconcile';
import { createRegistryCheckActivities } from './registry-checks';
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
  return {
    ...createManifestActivities({ storages, store }),
    ...createBlobActivities({ storages, store, partSizeBytes: config.replication.partSizeBytes, metrics }),
    ...createTagActivities({ storages, store }),
    ...createRegistryCheckActivities({ regions: new Map(config.regions.map((region) => [region.name, region])), store }),
    ...createAnnounceActivities({ announcer, store, metrics }),
    ...createReconcileActivities({ config, storages, store }),
    ...createBackfillActivities({ config, storages, store }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { CopyBlobInput, CopyBlobResult, CopyProgress } from './blobs';
export type { ResolveSourceInput, ResolvedSource, SourceTagState, WriteManifestsInput } from './manifests';
export type { ApplyDeleteInput, ApplyDeleteResult, MoveTagInput, MoveTagResult } from './tags';
export type { PurgeCachesInput, VerifyPullInput, VerifyPullResult } from './registry-checks';
