// A region's manifest caches: after a tag moved or a manifest was deleted,
// their cached manifest URLs are PURGEd before the pull check; after it, each
// cache is asked what a puller there gets, and must agree with the registry.
// A fill already in flight at the PURGE can store the old manifest after it;
// asked through the cache, that old answer shows (Varnish hands a request for
// an object being filled the fill's result), is purged and asked again, so
// "replicated" is never announced over a cache serving what the tag held
// before. Only the Accept variant Ferry asks with is checked (README
// "Guarantees" says what that leaves).
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { manifestUrl } from '../domain/registry-api';
import type { EventStore } from '../store/event-store';
import { fetchManifest, manifestAnswer } from './pull-check';
import { registryOf, type RegionConfigs, type RegistryClients } from './region-configs';
import type { RegistryClient } from './registry-client';

export interface PurgeCachesInput {
  replicationId: number;
  targetRegion: string;
  repository: RepositoryName;
  /** Tags and digests whose manifest URLs may be cached. */
  references: Array<Tag | Digest>;
}

export interface ConfirmCachesInput extends Omit<PurgeCachesInput, 'replicationId'> {
  /** What the registry answered for a reference moments ago (`200 <digest>` or `404`), by reference. */
  registryAnswers?: Record<string, string>;
}

/** How often a cache that still disagrees with its registry is purged and asked again within one attempt. */
const AGREEMENT_CHECKS = 5;
const AGREEMENT_INTERVAL_MS = 200;

export function createCachePurgeActivities({ regions, registries, store }: { regions: RegionConfigs; registries: RegistryClients; store: EventStore }) {
  async function purge(client: RegistryClient, urls: string[], repository: string, signal: AbortSignal): Promise<void> {
    // Independent requests: sent at once, the purge costs one round trip.
    await Promise.all(
      urls.map(async (url) => {
        const response = await client.fetch(url, { method: 'PURGE', repository, signal });
        await response.arrayBuffer();
        if (response.status !== 200) throw ApplicationFailure.retryable(`PURGE ${url} answered ${response.status}`, 'CachePurgeFailed');
      }),
    );
  }

  /**
   * Whether `cache` answers `reference` as the registry does (status and
   * digest). `registryAnswer`: what the registry answered just before (the
   * pull check), taken instead of asking it again.
   */
  async function agrees(client: RegistryClient, registry: string, cache: string, repository: string, reference: string, signal: AbortSignal, registryAnswer?: string) {
    const cached = manifestAnswer(await fetchManifest(client, cache, repository, reference, signal));
    // A refused login fails in the client: two refusals would agree, but tell nothing of what a puller gets.
    const served = registryAnswer ?? manifestAnswer(await fetchManifest(client, registry, repository, reference, signal));
    return { agreed: cached === served, cached, served };
  }

  return {
    /** PURGEs the manifest URLs of the references from every cache of the region (all Accept variants). */
    async purgeCaches(input: PurgeCachesInput): Promise<void> {
      const signal = Context.current().cancellationSignal;
      const { caches, client } = registryOf(regions, registries, input.targetRegion);
      const urls = caches.flatMap((cache) => input.references.map((reference) => manifestUrl(cache, input.repository, reference)));
      await purge(client, urls, input.repository, signal);
      await store.append({ type: 'CachePurged', replicationId: input.replicationId, region: input.targetRegion, data: { urls } });
    },

    /**
     * After the pull check: asks every cache for each reference, as a puller
     * does, and PURGEs it again until its answer is the registry's; a cache
     * that keeps disagreeing fails the attempt (retried, so never announced).
     */
    async confirmCaches(input: ConfirmCachesInput): Promise<void> {
      const signal = Context.current().cancellationSignal;
      const { registry, caches, client } = registryOf(regions, registries, input.targetRegion);
      for (const cache of caches) {
        for (const reference of input.references) {
          const url = manifestUrl(cache, input.repository, reference);
          for (let check = 1; ; check++) {
            // The registry's answer from the pull check serves the first comparison; a disagreement asks it afresh.
            const known = check === 1 ? input.registryAnswers?.[reference] : undefined;
            const verdict = await agrees(client, registry, cache, input.repository, reference, signal, known);
            if (verdict.agreed) break;
            if (check >= AGREEMENT_CHECKS) {
              throw ApplicationFailure.retryable(`${url} still answers ${verdict.cached} where the registry answers ${verdict.served}`, 'StaleCache');
            }
            await purge(client, [url], input.repository, signal);
            await sleep(AGREEMENT_INTERVAL_MS, undefined, { signal });
          }
        }
      }
    },
  };
}
