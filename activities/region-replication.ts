// One replication into one target region, every phase in order, as one
// activity on that region's task queue (DESIGN.md "Cost of one push"):
//
//   push:   resolve the source graph → confirm the source tag → blobs
//           → _layers links + manifests (children first) → tag, last
//           → purge the region's caches → pull check → announce
//   delete: untag / unlink (fenced) → purge → announce
//
// Every phase is idempotent, so a retried attempt runs them again from the
// top: present blobs are skipped, links rewritten with the same bytes, the tag
// fence and the event dedupe keys make the rest effect-once. Heartbeat details
// (RegionProgress) name the phase, the blobs moving and their bytes, for the
// Temporal UI and `ferry stuck`, and carry the multipart uploads a retried
// attempt resumes. The activity heartbeats every few seconds whatever it is
// doing (a part on a slow link, a lock wait, hundreds of manifests), so a
// slow region is not mistaken for a dead worker; a hung request is ended by
// its own timeout instead (storage.ts, registry-client.ts), and an attempt
// Temporal gave up on learns it at its next heartbeat and stops. A failure
// retrying cannot fix (a corrupt source blob) is recorded and announced here,
// and returned, not thrown: the workflow only collects outcomes.
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ResolvedConfig } from '../domain/config';
import type { ManifestGraph } from '../domain/manifest';
import type { Digest, Tag } from '../domain/reference';
import { listingKind, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE } from '../domain/referrers';
import { regionMessageIds, type RegionOutcome, type RegionReplication, type ReplicationRequest } from '../domain/workflow-contract';
import type { EventStore } from '../store/event-store';
import { recordObservation } from '../store/observations';
import { forEachLimited } from '../support/concurrency';
import type { createAnnounceActivities } from './announce';
import type { BlobCopier } from './blobs';
import type { createCachePurgeActivities } from './cache-purge';
import type { createManifestActivities, ManifestBytes, ResolvedSource } from './manifests';
import { RegionHeartbeat } from './region-heartbeat';
import type { createPullCheckActivities } from './pull-check';
import { SingleFlight } from './single-flight';
import type { createTagActivities } from './tags';

/** The registry notifies before it writes the tag (distribution#2625): give the tag this long to appear. */
const SOURCE_TAG_CHECKS = 10;
const SOURCE_TAG_INTERVAL_MS = 1_000;

interface SourceCheck {
  graph: ManifestGraph;
  /** The graph's manifests as the source held them, verified: written into each region without reading the source again. */
  manifestBytes: ManifestBytes;
  /** The source tag holds the pushed digest: the tag may move (checked again under the tag's lock). */
  tagConfirmed: boolean;
}

export interface RegionReplicationDeps {
  config: ResolvedConfig;
  store: EventStore;
  copyBlob: BlobCopier;
  manifests: ReturnType<typeof createManifestActivities>;
  tags: ReturnType<typeof createTagActivities>;
  pullCheck: ReturnType<typeof createPullCheckActivities>;
  caches: ReturnType<typeof createCachePurgeActivities>;
  announce: ReturnType<typeof createAnnounceActivities>;
}

export function createRegionReplicationActivities({ config, store, copyBlob, manifests, tags, pullCheck, caches, announce }: RegionReplicationDeps) {
  /** Whether this push should move the tag: the source tag holds our digest (the source's storage decides). */
  async function confirmSourceTag(request: ReplicationRequest, first: ResolvedSource, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<boolean> {
    heartbeat.phase('source-tag');
    let state: { sourceTagDigest: Digest | null } = first;
    for (let check = 1; ; check++) {
      if (state.sourceTagDigest === request.digest) return true;
      if (check >= SOURCE_TAG_CHECKS) return false;
      await sleep(SOURCE_TAG_INTERVAL_MS, undefined, { signal });
      state = await manifests.sourceTagState({ ...sourceOf(request), digest: request.digest! });
    }
  }

  /**
   * Copies the graph's blobs, `blobConcurrency` at a time. The first failure
   * stops the other lanes, and returns only once they settled: nothing is
   * recorded for a region after its failure.
   */
  async function copyBlobs(request: ReplicationRequest, targetRegion: string, graph: ManifestGraph, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<void> {
    heartbeat.startBlobs(graph);
    await forEachLimited(
      graph.blobs,
      request.blobConcurrency,
      async (blob, laneSignal) => {
        await copyBlob(
          { replicationId: request.replicationId, sourceRegion: request.sourceRegion, targetRegion, repository: request.repository, digest: blob.digest, size: blob.size },
          {
            signal: laneSignal,
            resumableUpload: heartbeat.details.uploads[blob.digest] ?? null,
            progress: (update) => heartbeat.blobProgress(blob.digest, blob.size, update),
          },
        );
        heartbeat.blobDone(blob.digest, blob.size);
      },
      signal,
    );
  }

  /** The push's manifest graph, read and verified in the source, and whether its tag may move. */
  async function checkSource(request: ReplicationRequest, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<SourceCheck> {
    const manifestBytes = new Map<Digest, Uint8Array>();
    const resolved = await manifests.resolveSource({ ...sourceOf(request), digest: request.digest! }, manifestBytes);
    const tagConfirmed = request.tag !== null && (await confirmSourceTag(request, resolved, heartbeat, signal));
    return { graph: resolved.graph, manifestBytes, tagConfirmed };
  }

  /**
   * Checking the source is work of the push, not of a region: the region
   * activities of one push in this worker share one run of it while it is in
   * flight (they start together). It is forgotten once settled, so a retry
   * later reads the source afresh.
   */
  const sourceChecks = new SingleFlight<SourceCheck>();
  const checkSourceOnce = (request: ReplicationRequest, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<SourceCheck> =>
    sourceChecks.run(String(request.replicationId), () => checkSource(request, heartbeat, signal));

  /**
   * A referrers or signature tag merged in `targetRegion` lists what the
   * pushed one lacks, so the source lacks it too: the union is recorded as a push
   * from `targetRegion` to every region that takes its pushes, whose workflow
   * replicateChange starts. One per replication and region, however often retried.
   */
  async function recordWidenedReferrers(request: ReplicationRequest, targetRegion: string, merged: { holds: Digest; occurredAt: string }): Promise<ReplicationRequest> {
    const { request: followUp } = await recordObservation(
      store,
      config,
      {
        kind: 'push',
        sourceRegion: targetRegion,
        repository: request.repository,
        tag: request.tag,
        digest: merged.holds,
        mediaType: listingKind(request.tag!) === 'referrers' ? OCI_INDEX_MEDIA_TYPE : OCI_MANIFEST_MEDIA_TYPE,
        eventId: `referrers:${request.replicationId}:${targetRegion}:${merged.holds}`,
        // The later of this change and the one the tag held: the union is no older than either.
        occurredAt: merged.occurredAt,
      },
      undefined,
      // Started by replicateChange as soon as this returns; by the api's sweeper should that never happen.
      { sweep: true },
    );
    return followUp;
  }

  /**
   * Replicates a push; returns the tag to announce (null: the digest only),
   * when a newer change holds the tag in the region, which (null: not known
   * yet), and the push of the referrers or signature listing this one widened.
   */
  async function pushInto(
    request: ReplicationRequest,
    targetRegion: string,
    heartbeat: RegionHeartbeat,
    signal: AbortSignal,
  ): Promise<{ tag: Tag | null; superseded: { by: number | null } | null; followUp?: ReplicationRequest }> {
    const digest = request.digest!;
    const ids = { replicationId: request.replicationId, targetRegion, repository: request.repository };
    heartbeat.phase('resolve');
    const resolved = await checkSourceOnce(request, heartbeat, signal);
    const { tagConfirmed } = resolved;

    await copyBlobs(request, targetRegion, resolved.graph, heartbeat, signal);
    heartbeat.phase('manifests');
    await manifests.writeManifests({ ...ids, sourceRegion: request.sourceRegion, graph: resolved.graph }, resolved.manifestBytes);

    let movedTag: Tag | null = null;
    let referrers: { holds: Digest; widened: boolean; occurredAt: string } | undefined;
    // A tag push whose source tag moved on before it could be confirmed is superseded by that newer push.
    let superseded: { by: number | null } | null = request.tag !== null && !tagConfirmed ? { by: null } : null;
    if (request.tag !== null && tagConfirmed) {
      heartbeat.phase('tag');
      const result = await tags.moveTag({ ...ids, sourceRegion: request.sourceRegion, occurredAt: request.occurredAt, tag: request.tag, digest }, (waitingFor) => heartbeat.waiting(waitingFor));
      if (result.moved) movedTag = request.tag;
      else superseded = { by: result.heldBy };
      referrers = result.referrers;
    }
    heartbeat.phase('purge');
    await caches.purgeCaches({ ...ids, references: movedTag === null ? [digest] : [movedTag, digest] });
    heartbeat.phase('verify');
    const pulled = await pullCheck.verifyPull({ targetRegion, repository: request.repository, tag: movedTag, graph: resolved.graph, tagDigest: referrers?.holds });
    // What a puller gets through the region's caches is what the registry serves (a fill in flight at the PURGE is caught here).
    await caches.confirmCaches({
      targetRegion,
      repository: request.repository,
      references: movedTag === null ? [] : [movedTag],
      ...(movedTag === null || pulled.tagAnswer === undefined ? {} : { registryAnswers: { [movedTag]: pulled.tagAnswer } }),
    });
    // Announce the tag only while it still holds this digest (or the referrers merged with it); a newer push announces its own.
    const followUp = referrers?.widened ? { followUp: await recordWidenedReferrers(request, targetRegion, referrers) } : {};
    return { tag: pulled.tagHoldsDigest ? movedTag : null, superseded, ...followUp };
  }

  async function deleteInto(request: ReplicationRequest, targetRegion: string, heartbeat: RegionHeartbeat): Promise<void> {
    const ids = { replicationId: request.replicationId, targetRegion, repository: request.repository };
    heartbeat.phase('tag');
    const result = await tags.applyDelete(
      { ...ids, sourceRegion: request.sourceRegion, occurredAt: request.occurredAt, tag: request.tag, digest: request.digest },
      (waitingFor) => heartbeat.waiting(waitingFor),
    );
    heartbeat.phase('purge');
    await caches.purgeCaches({ ...ids, references: [...result.removedTags, ...(request.digest === null ? [] : [request.digest])] });
    const removedDigest = request.digest !== null && result.removedManifest ? [request.digest] : [];
    await caches.confirmCaches({ targetRegion, repository: request.repository, references: [...result.removedTags, ...removedDigest] });
  }

  return {
    /** Carries one accepted change into one region, from reading the source to announcing the result. Idempotent. */
    async replicateIntoRegion({ request, targetRegion }: RegionReplication): Promise<RegionOutcome> {
      const context = Context.current();
      const heartbeat = new RegionHeartbeat(context, store, request, targetRegion);
      const message = regionMessageIds(request, targetRegion);
      let outcome: RegionOutcome;
      heartbeat.keepAlive();
      try {
        if (request.kind === 'push') {
          const pushed = await pushInto(request, targetRegion, heartbeat, context.cancellationSignal);
          heartbeat.phase('announce');
          if (pushed.superseded === null) await announce.announceRegion({ ...message, kind: 'replicated', tag: pushed.tag });
          else await announce.announceRegion({ ...message, kind: 'superseded', tag: request.tag, supersededBy: pushed.superseded.by });
          outcome = { region: targetRegion, outcome: 'replicated', failure: null, ...(pushed.followUp === undefined ? {} : { followUp: pushed.followUp }) };
        } else {
          await deleteInto(request, targetRegion, heartbeat);
          heartbeat.phase('announce');
          await announce.announceRegion({ ...message, kind: 'deleted', tag: request.tag });
          outcome = { region: targetRegion, outcome: 'deleted', failure: null };
        }
      } catch (error) {
        if (!(error instanceof ApplicationFailure && error.nonRetryable)) throw error;
        const failure = { code: error.type ?? 'Failed', reason: error.message };
        await announce.announceRegion({ ...message, kind: 'failed', tag: request.tag, failure });
        outcome = { region: targetRegion, outcome: 'failed', failure };
      } finally {
        heartbeat.stopKeepAlive();
      }
      // Kept while the region retries, so a wait still shows the bytes that landed.
      await heartbeat.settle();
      return outcome;
    },
  };
}

function sourceOf(request: ReplicationRequest) {
  return {
    replicationId: request.replicationId,
    occurredAt: request.occurredAt,
    sourceRegion: request.sourceRegion,
    repository: request.repository,
    tag: request.tag,
  };
}
