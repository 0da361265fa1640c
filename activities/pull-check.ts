// What a user in the target region would see: a pull from that region's
// registry. Completion is announced only after the pull check passes
// (invariant 1, "announced ⇒ pullable").
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { digestOf } from '../domain/content-digest';
import { MANIFEST_ACCEPT, type ManifestGraph } from '../domain/manifest';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { blobUrl, manifestUrl } from '../domain/registry-api';
import { forEachLimited } from '../support/concurrency';
import { registryOf, type RegionConfigs, type RegistryClients } from './region-configs';
import type { RegistryClient } from './registry-client';

export interface VerifyPullInput {
  targetRegion: string;
  repository: RepositoryName;
  /** The tag this replication moved, if it did. */
  tag: Tag | null;
  graph: ManifestGraph;
  /** What the tag should hold when other than the graph's root: a merged referrers index (activities/tags.ts). */
  tagDigest?: Digest;
}

export interface VerifyPullResult {
  /**
   * False when the tag already resolves to another digest or to nothing: only a
   * newer push or delete can have moved it (tag moves and deletes are fenced), so
   * this one is announced by digest.
   */
  tagHoldsDigest: boolean;
  /**
   * What the registry answered for the tag (`200 <digest>` or `404`), absent
   * when no tag was checked: the cache check compares its caches with it
   * instead of asking the registry again.
   */
  tagAnswer?: string;
}

/** A manifest answer as the cache check compares them: status, and the digest of a 200. */
export function manifestAnswer(response: { status: number; digestHeader: string | null }): string {
  return `${response.status} ${response.status === 200 ? response.digestHeader : ''}`.trim();
}

function notPullable(region: string, what: string): ApplicationFailure {
  return ApplicationFailure.retryable(`not pullable from ${region}: ${what}`, 'NotPullable');
}

/** GET of a manifest as a puller asks for it, through `client`, from the registry or a cache at `base`. */
export async function fetchManifest(client: RegistryClient, base: string, repository: string, reference: string, signal: AbortSignal) {
  const response = await client.fetch(manifestUrl(base, repository, reference), { headers: { Accept: MANIFEST_ACCEPT }, repository, signal });
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, digestHeader: response.headers.get('docker-content-digest'), body };
}

/** Registry requests one pull check keeps in flight. */
const PULL_CHECKS_IN_FLIGHT = 16;

export function createPullCheckActivities({ regions, registries }: { regions: RegionConfigs; registries: RegistryClients }) {
  return {
    /**
     * Pulls the image from the region's registry as a client would: the root by
     * tag (by digest too when the tag serves other bytes, or there is no tag),
     * every child manifest by GET, every blob by HEAD.
     */
    async verifyPull(input: VerifyPullInput): Promise<VerifyPullResult> {
      const signal = Context.current().cancellationSignal;
      const { registry, client } = registryOf(regions, registries, input.targetRegion);
      let tagHoldsDigest = false;
      let tagAnswer: string | undefined;
      const checkRoot = async () => {
        const root = await fetchManifest(client, registry, input.repository, input.graph.root, signal);
        const actualRoot = digestOf(root.body);
        if (root.status !== 200 || actualRoot !== input.graph.root) {
          throw notPullable(input.targetRegion, `GET ${input.repository}@${input.graph.root} answered ${root.status} with ${actualRoot}`);
        }
      };
      const checkTag = async (tag: Tag) => {
        const tagged = await fetchManifest(client, registry, input.repository, tag, signal);
        // 404: a newer delete of the tag won (deletes are fenced like moves); the digest is still announced.
        if (tagged.status !== 200 && tagged.status !== 404) throw notPullable(input.targetRegion, `GET ${input.repository}:${tag} answered ${tagged.status}`);
        tagHoldsDigest = tagged.status === 200 && tagged.digestHeader === (input.tagDigest ?? input.graph.root);
        tagAnswer = manifestAnswer(tagged);
        // The tag served the root's very bytes: that was the pull of the root. Otherwise pull it by digest.
        if (tagged.status !== 200 || digestOf(tagged.body) !== input.graph.root) await checkRoot();
      };
      const checkChild = async (digest: Digest) => {
        const child = await fetchManifest(client, registry, input.repository, digest, signal);
        if (child.status !== 200) throw notPullable(input.targetRegion, `child manifest ${digest} answered ${child.status}`);
      };
      const checkBlob = async (blob: { digest: Digest; size: number }) => {
        const response = await client.fetch(blobUrl(registry, input.repository, blob.digest), { method: 'HEAD', repository: input.repository, signal });
        const length = Number(response.headers.get('content-length'));
        if (response.status !== 200 || length !== blob.size) {
          throw notPullable(input.targetRegion, `HEAD blob ${blob.digest} answered ${response.status} with ${length} bytes, expected ${blob.size}`);
        }
      };
      // Independent requests, asked a few at a time: the check costs about one round trip, not one per manifest and blob.
      const checks = [
        input.tag === null ? checkRoot : () => checkTag(input.tag!),
        ...input.graph.manifests.filter((manifest) => manifest.digest !== input.graph.root).map((manifest) => () => checkChild(manifest.digest)),
        ...input.graph.blobs.map((blob) => () => checkBlob(blob)),
      ];
      await forEachLimited(checks, PULL_CHECKS_IN_FLIGHT, (check) => check(), signal);
      return { tagHoldsDigest, ...(tagAnswer === undefined ? {} : { tagAnswer }) };
    },
  };
}
