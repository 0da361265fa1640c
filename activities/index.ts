// Every activity, built by one factory from its clients. Workers and tests
// wire activities the same way; workflow code imports only the type.
import type { ResolvedConfig } from '../domain/config';
import type { EventStore } from '../store/event-store';
import { createAnnounceActivities, type Announcer } from './announce';
import { createBlobActivities } from './blobs';
import { createManifestActivities } from './manifests';
import { createReconcileActivities } from './reconcile';
import { createRegistryCheckActivities } from './registry-checks';
import type { Storages } from './storage';
import { createTagActivities } from './tags';

export interface ActivityDeps {
  config: ResolvedConfig;
  storages: Storages;
  store: EventStore;
  announcer: Announcer;
}

export function createActivities({ config, storages, store, announcer }: ActivityDeps) {
  return {
    ...createManifestActivities({ storages, store }),
    ...createBlobActivities({ storages, store, partSizeBytes: config.replication.partSizeBytes }),
    ...createTagActivities({ storages, store }),
    ...createRegistryCheckActivities({ regions: new Map(config.regions.map((region) => [region.name, region])), store }),
    ...createAnnounceActivities({ announcer, store }),
    ...createReconcileActivities({ config, storages, store }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { CopyBlobInput, CopyBlobResult, CopyProgress } from './blobs';
export type { ResolveSourceInput, ResolvedSource, SourceTagState, WriteManifestsInput } from './manifests';
export type { ApplyDeleteInput, ApplyDeleteResult, MoveTagInput, MoveTagResult } from './tags';
export type { PurgeCachesInput, VerifyPullInput, VerifyPullResult } from './registry-checks';
