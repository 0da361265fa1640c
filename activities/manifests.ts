// Reading the manifest graph from the source region, and writing manifests and
// their links into a target region, in Distribution's own write order.
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { ManifestError, resolveManifestGraph, type ManifestGraph } from '../domain/manifest';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { FailureType } from '../domain/workflow-contract';
import type { EventStore } from '../store/event-store';
import { storageOf, type RegionStorage, type Storages } from './storage';

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
  /** A newer accepted replication of the same tag from the source region, if any. */
  supersededBy: number | null;
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

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A manifest's bytes from a region's storage, verified against its digest. */
async function readVerifiedManifest(storage: RegionStorage, repository: RepositoryName, digest: Digest): Promise<Uint8Array> {
  const signal = Context.current().cancellationSignal;
  if ((await storage.readLink(storage.layout.revisionLink(repository, digest), signal)) === null) {
    throw ApplicationFailure.nonRetryable(
      `manifest ${digest} is not in ${repository} in ${storage.region.name} (deleted since the push?)`,
      FailureType.sourceManifestMissing,
    );
  }
  const bytes = await storage.getSmall(storage.layout.blobData(digest), signal);
  if (bytes === null) {
    throw ApplicationFailure.nonRetryable(`manifest ${digest} has no data in ${storage.region.name}`, FailureType.sourceManifestMissing);
  }
  const actual = sha256(bytes);
  if (actual !== digest) {
    throw ApplicationFailure.nonRetryable(
      `manifest ${digest} in ${storage.region.name} is corrupt: its bytes hash to ${actual}`,
      FailureType.sourceManifestCorrupt,
    );
  }
  return bytes;
}

export function createManifestActivities({ storages, store }: { storages: Storages; store: EventStore }) {
  async function sourceTagState(input: ResolveSourceInput): Promise<SourceTagState> {
    if (input.tag === null) return { sourceTagDigest: null, supersededBy: null };
    const source = storageOf(storages, input.sourceRegion);
    const sourceTagDigest = await source.readLink(source.layout.tagCurrentLink(input.repository, input.tag));
    const supersededBy = await store.newerHolder(store.pool, input.sourceRegion, input.repository, input.tag, input);
    return { sourceTagDigest, supersededBy };
  }

  return {
    sourceTagState,

    /** The manifest graph of the pushed digest, read and verified from the source region. */
    async resolveSource(input: ResolveSourceInput): Promise<ResolvedSource> {
      const source = storageOf(storages, input.sourceRegion);
      try {
        const graph = await resolveManifestGraph(input.digest, (digest) => readVerifiedManifest(source, input.repository, digest));
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
     * then revision link) children first, the root last. Idempotent.
     */
    async writeManifests(input: WriteManifestsInput): Promise<void> {
      const signal = Context.current().cancellationSignal;
      const source = storageOf(storages, input.sourceRegion);
      const target = storageOf(storages, input.targetRegion);
      for (const blob of input.graph.blobs) {
        await target.writeLink(target.layout.layerLink(input.repository, blob.digest), blob.digest, signal);
      }
      for (const manifest of input.graph.manifests) {
        const dataKey = target.layout.blobData(manifest.digest);
        if ((await target.head(dataKey, signal))?.size !== manifest.size) {
          await target.put(dataKey, await readVerifiedManifest(source, input.repository, manifest.digest), signal);
        }
        await target.writeLink(target.layout.revisionLink(input.repository, manifest.digest), manifest.digest, signal);
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
