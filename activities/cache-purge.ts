// A region's manifest caches: after a tag moved or a manifest was deleted,
// their cached manifest URLs are PURGEd before completion is announced, so a
// pull through a cache never sees the old manifest once "replicated" is out.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { manifestUrl } from '../domain/registry-api';
import type { EventStore } from '../store/event-store';
import { regionConfigOf, type RegionConfigs } from './region-configs';

export interface PurgeCachesInput {
  replicationId: number;
  targetRegion: string;
  repository: RepositoryName;
  /** Tags and digests whose manifest URLs may be cached. */
  references: Array<Tag | Digest>;
}

export function createCachePurgeActivities({ regions, store }: { regions: RegionConfigs; store: EventStore }) {
  return {
    /** PURGEs the manifest URLs of the references from every cache of the region (all Accept variants). */
    async purgeCaches(input: PurgeCachesInput): Promise<void> {
      const signal = Context.current().cancellationSignal;
      const caches = regionConfigOf(regions, input.targetRegion).cachePurgeUrls;
      const urls = caches.flatMap((cache) => input.references.map((reference) => manifestUrl(cache, input.repository, reference)));
      // Independent requests: sent at once, the purge costs one round trip.
      await Promise.all(
        urls.map(async (url) => {
          const response = await fetch(url, { method: 'PURGE', signal });
          await response.arrayBuffer();
          if (response.status !== 200) throw ApplicationFailure.retryable(`PURGE ${url} answered ${response.status}`, 'CachePurgeFailed');
        }),
      );
      await store.append({ type: 'CachePurged', replicationId: input.replicationId, region: input.targetRegion, data: { urls } });
    },
  };
}
