// Reading the manifest graph from the source region, and writing manifests and
// their links into a target region, in Distribution's own write order.
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { ManifestError, manifestLevels, resolveManifestGraph, type ManifestGraph } from '../domain/manifest';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { FailureType } from '../domain/workflow-contract';
import type { EventStore } from '../store/event-store';
import { forEachLimited } from '../support/concurrency';
import type { Regions } from './regions';
import type { RegionRepository } from './repository';

export interface ResolveSourceInput {
  replicationId: number;
  occurredAt: string;
  sourceRegion: string;
  repository: RepositoryName;
  digest: Digest;
  tag: Tag | null;
}

export interface SourceTagState {
  /** What the source's tag link holds right now (null: no such tag). */
  sourceTagDigest: Digest | null;
  /**
   * Always null: the source's storage decides (activities/tags.ts). Kept for
   * the earlier workflow shape (workflows/replicate.ts) until it drains.
   */
  supersededBy: null;
}

export interface ResolvedSource extends SourceTagState {
  graph: ManifestGraph;
}

export interface WriteManifestsInput {
  replicationId: number;
  sourceRegion: string;
  targetRegion: string;
  repository: RepositoryName;
  graph: ManifestGraph;
}

/**
 * Manifest bytes read and verified from the source while resolving a graph,
 * by digest: the region writes reuse them instead of reading the source again
 * (content addresses: the same digest is the same bytes). In-process only.
 */
export type ManifestBytes = ReadonlyMap<Digest, Uint8Array>;

/** A manifest's bytes from a region's repository, verified against its digest; a final failure otherwise. */
async function readVerifiedManifest(repository: RegionRepository, digest: Digest): Promise<Uint8Array> {
  const read = await repository.getManifest(digest, Context.current().cancellationSignal);
  switch (read.found) {
    case 'ok':
      return read.bytes;
    case 'not-linked':
      throw ApplicationFailure.nonRetryable(
        `manifest ${digest} is not in ${repository.name} in ${repository.region} (deleted since the push?)`,
        FailureType.sourceManifestMissing,
      );
    case 'no-data':
      throw ApplicationFailure.nonRetryable(`manifest ${digest} has no data in ${repository.region}`, FailureType.sourceManifestMissing);
    case 'corrupt':
      throw ApplicationFailure.nonRetryable(`manifest ${digest} in ${repository.region} is corrupt: its bytes hash to ${read.actual}`, FailureType.sourceManifestCorrupt);
  }
}

/** Storage writes of one phase kept in flight at once. */
const WRITES_IN_FLIGHT = 16;

export function createManifestActivities({ regions, store }: { regions: Regions; store: EventStore }) {
  async function sourceTagState(input: ResolveSourceInput): Promise<SourceTagState> {
    if (input.tag === null) return { sourceTagDigest: null, supersededBy: null };
    const sourceTagDigest = await regions.repository(input.sourceRegion, input.repository).tagged(input.tag);
    return { sourceTagDigest, supersededBy: null };
  }

  return {
    sourceTagState,

    /**
     * The manifest graph of the pushed digest, read and verified from the
     * source region; `keep`, when given, receives each manifest's bytes.
     */
    async resolveSource(input: ResolveSourceInput, keep?: Map<Digest, Uint8Array>): Promise<ResolvedSource> {
      const source = regions.repository(input.sourceRegion, input.repository);
      try {
        const graph = await resolveManifestGraph(input.digest, async (digest) => {
          const bytes = await readVerifiedManifest(source, digest);
          keep?.set(digest, bytes);
          return bytes;
        });
        await store.append({
          type: 'SourceResolved',
          replicationId: input.replicationId,
          data: { manifests: graph.manifests.length, blobs: graph.blobs.length, totalBlobBytes: graph.totalBlobBytes },
        });
        return { graph, ...(await sourceTagState(input)) };
      } catch (error) {
        if (error instanceof ManifestError) {
          throw ApplicationFailure.nonRetryable(`manifest graph of ${input.digest}: ${error.message}`, FailureType.invalidManifest);
        }
        throw error;
      }
    },

    /**
     * Links every blob into the repository, then writes each manifest (data,
     * then revision link) children first, the root last. Idempotent. A
     * manifest the target lacks is taken from `known` (the bytes resolving
     * the graph read), else read from the source again.
     */
    async writeManifests(input: WriteManifestsInput, known?: ManifestBytes): Promise<void> {
      const signal = Context.current().cancellationSignal;
      const source = regions.repository(input.sourceRegion, input.repository);
      const target = regions.repository(input.targetRegion, input.repository);
      // Links are independent of each other, and so are the manifests of one level: written a few at
      // a time, each level once the one below is written, so the root comes last (an index of
      // hundreds of children into a region 300 ms away costs seconds, not minutes).
      await forEachLimited(input.graph.blobs, WRITES_IN_FLIGHT, (blob) => target.linkBlob(blob.digest, signal), signal);
      for (const level of manifestLevels(input.graph)) {
        await forEachLimited(
          level,
          WRITES_IN_FLIGHT,
          (manifest) => target.putManifest(manifest, known?.get(manifest.digest) ?? (() => readVerifiedManifest(source, manifest.digest)), signal),
          signal,
        );
      }
      await store.append({
        type: 'ManifestsWritten',
        replicationId: input.replicationId,
        region: input.targetRegion,
        data: { repository: input.repository, digests: input.graph.manifests.map((manifest) => manifest.digest) },
      });
    },
  };
}
