// What a user in the target region would see: a pull from that region's
// registry, and the region's manifest caches. Completion is announced only
// after the pull check passes (invariant 1, "announced ⇒ pullable").
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import type { RegionConfig } from '../domain/config';
import { MANIFEST_ACCEPT, type ManifestGraph } from '../domain/manifest';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import type { EventStore } from '../store/event-store';

export interface VerifyPullInput {
  targetRegion: string;
  repository: RepositoryName;
  /** The tag this replication moved, if it did. */
  tag: Tag | null;
  graph: ManifestGraph;
}

export interface VerifyPullResult {
  /**
   * False when the tag already resolves to another digest or to nothing: only a
   * newer push or delete can have moved it (tag moves and deletes are fenced), so
   * this one is announced by digest.
   */
  tagHoldsDigest: boolean;
}

export interface PurgeCachesInput {
  replicationId: number;
  targetRegion: string;
  repository: RepositoryName;
  /** Tags and digests whose manifest URLs may be cached. */
  references: Array<Tag | Digest>;
}

function notPullable(region: string, what: string): ApplicationFailure {
  return ApplicationFailure.retryable(`not pullable from ${region}: ${what}`, 'NotPullable');
}

async function fetchManifest(registry: string, repository: string, reference: string, signal: AbortSignal) {
  const response = await fetch(`${registry}/v2/${repository}/manifests/${reference}`, {
    headers: { Accept: MANIFEST_ACCEPT },
    signal,
  });
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, digestHeader: response.headers.get('docker-content-digest'), body };
}

export function createRegistryCheckActivities({ regions, store }: { regions: ReadonlyMap<string, RegionConfig>; store: EventStore }) {
  const regionOf = (name: string): RegionConfig => {
    const region = regions.get(name);
    if (!region) throw new Error(`region ${name} is not configured`);
    return region;
  };

  return {
    /**
     * Pulls the image from the region's registry as a client would: the root by
     * digest (and by tag), every child manifest by GET, every blob by HEAD.
     */
    async verifyPull(input: VerifyPullInput): Promise<VerifyPullResult> {
      const signal = Context.current().cancellationSignal;
      const registry = regionOf(input.targetRegion).registryUrl;
      const root = await fetchManifest(registry, input.repository, input.graph.root, signal);
      const actualRoot = `sha256:${createHash('sha256').update(root.body).digest('hex')}`;
      if (root.status !== 200 || actualRoot !== input.graph.root) {
        throw notPullable(input.targetRegion, `GET ${input.repository}@${input.graph.root} answered ${root.status} with ${actualRoot}`);
      }
      let tagHoldsDigest = false;
      if (input.tag !== null) {
        const tagged = await fetchManifest(registry, input.repository, input.tag, signal);
        // 404: a newer delete of the tag won (deletes are fenced like moves); the digest is still announced.
        if (tagged.status !== 200 && tagged.status !== 404) {
          throw notPullable(input.targetRegion, `GET ${input.repository}:${input.tag} answered ${tagged.status}`);
        }
        tagHoldsDigest = tagged.status === 200 && tagged.digestHeader === input.graph.root;
      }
      // Children and blobs are independent requests: asked at once, the check costs one round trip, not one per blob.
      const children = input.graph.manifests.filter((manifest) => manifest.digest !== input.graph.root);
      await Promise.all([
        ...children.map(async (manifest) => {
          const child = await fetchManifest(registry, input.repository, manifest.digest, signal);
          if (child.status !== 200) throw notPullable(input.targetRegion, `child manifest ${manifest.digest} answered ${child.status}`);
        }),
        ...input.graph.blobs.map(async (blob) => {
          const response = await fetch(`${registry}/v2/${input.repository}/blobs/${blob.digest}`, { method: 'HEAD', signal });
          const length = Number(response.headers.get('content-length'));
          if (response.status !== 200 || length !== blob.size) {
            throw notPullable(input.targetRegion, `HEAD blob ${blob.digest} answered ${response.status} with ${length} bytes, expected ${blob.size}`);
          }
        }),
      ]);
      return { tagHoldsDigest };
    },

    /** PURGEs the manifest URLs of the references from every cache of the region (all Accept variants). */
    async purgeCaches(input: PurgeCachesInput): Promise<void> {
      const signal = Context.current().cancellationSignal;
      const urls: string[] = [];
      for (const cache of regionOf(input.targetRegion).cachePurgeUrls) {
        for (const reference of input.references) {
          const url = `${cache.replace(/\/$/, '')}/v2/${input.repository}/manifests/${reference}`;
          const response = await fetch(url, { method: 'PURGE', signal });
          await response.arrayBuffer();
          if (response.status !== 200) {
            throw ApplicationFailure.retryable(`PURGE ${url} answered ${response.status}`, 'CachePurgeFailed');
          }
          urls.push(url);
        }
      }
      await store.append({ type: 'CachePurged', replicationId: input.replicationId, region: input.targetRegion, data: { urls } });
    },
  };
}
