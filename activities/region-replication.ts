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
// attempt resumes. A failure retrying cannot fix (a corrupt source blob) is
// recorded and announced here, and returned, not thrown: the workflow only
// collects outcomes.
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ManifestGraph } from '../domain/manifest';
import type { Digest, Tag } from '../domain/reference';
import { REGION_PHASES, type RegionOutcome, type RegionPhase, type RegionProgress, type RegionReplication, type ReplicationRequest } from '../domain/workflow-contract';
import type { EventStore } from '../store/event-store';
import { forgetRegionProgress, saveRegionProgress } from '../store/progress';
import type { createAnnounceActivities } from './announce';
import type { BlobCopier } from './blobs';
import type { createManifestActivities, ResolvedSource } from './manifests';
import type { createRegistryCheckActivities } from './registry-checks';
import type { createTagActivities } from './tags';

/** The registry notifies before it writes the tag (distribution#2625): give the tag this long to appear. */
const SOURCE_TAG_CHECKS = 10;
const SOURCE_TAG_INTERVAL_MS = 1_000;
/** Bytes in flight reach Postgres (for `ferry wait` and /v1/status) at most this often per region. */
const PROGRESS_SAVE_INTERVAL_MS = 1_000;
/** Heartbeats between phase changes at most this often. */
const HEARTBEAT_INTERVAL_MS = 1_000;

interface SourceCheck {
  graph: ManifestGraph;
  /** The source tag holds the pushed digest and no newer push of the tag exists: the tag may move. */
  tagConfirmed: boolean;
}

export interface RegionReplicationDeps {
  store: EventStore;
  copyBlob: BlobCopier;
  manifests: ReturnType<typeof createManifestActivities>;
  tags: ReturnType<typeof createTagActivities>;
  checks: ReturnType<typeof createRegistryCheckActivities>;
  announce: ReturnType<typeof createAnnounceActivities>;
}

/** The region's progress: kept as heartbeat details, mirrored (throttled) to Postgres while bytes move. */
class RegionHeartbeat {
  readonly details: RegionProgress;
  private savedAt = 0;
  private saving: Promise<void> | null = null;
  /** Whether a progress row was written, and so must be removed at the end. */
  private saved = false;
  private beatAt = 0;
  private beatPhase: RegionPhase | null = null;

  constructor(
    private readonly context: Context,
    private readonly store: EventStore,
    private readonly request: ReplicationRequest,
    private readonly region: string,
  ) {
    const resumed = context.info.heartbeatDetails as RegionProgress | undefined;
    // An earlier attempt may have written a progress row.
    this.saved = resumed !== undefined;
    this.details = {
      phase: 'resolve',
      progressAt: resumed?.progressAt ?? new Date().toISOString(),
      reached: resumed?.reached ?? { phase: 'resolve', bytesDone: 0 },
      blobs: 0,
      blobsDone: 0,
      bytesTotal: 0,
      bytesDone: 0,
      copying: [],
      uploads: resumed?.uploads ?? {},
    };
  }

  phase(phase: RegionPhase): void {
    this.details.phase = phase;
    this.moved();
  }

  startBlobs(graph: ManifestGraph): void {
    // The first save only a second into the blobs: a small image lands before it, and writes no row.
    this.savedAt = Date.now();
    this.details.blobs = graph.blobs.length;
    this.details.bytesTotal = graph.totalBlobBytes;
    this.phase('blobs');
  }

  blobProgress(digest: Digest, size: number, update: { uploadId: string | null; bytesDone: number }): void {
    let moving = this.details.copying.find((blob) => blob.digest === digest);
    if (!moving) {
      moving = { digest, bytesDone: 0, size };
      this.details.copying.push(moving);
    }
    const gained = update.bytesDone - moving.bytesDone;
    moving.bytesDone = update.bytesDone;
    if (update.uploadId !== null) this.details.uploads[digest] = update.uploadId;
    this.details.bytesDone += gained;
    if (gained > 0) this.moved();
    else this.beat();
  }

  blobDone(digest: Digest, size: number): void {
    const moving = this.details.copying.find((blob) => blob.digest === digest);
    this.details.copying = this.details.copying.filter((blob) => blob !== moving);
    delete this.details.uploads[digest];
    this.details.bytesDone += size - (moving?.bytesDone ?? 0);
    this.details.blobsDone++;
    this.moved();
  }

  /** Progress counts only beyond the furthest point of every attempt so far. */
  private moved(): void {
    const { phase, bytesDone, reached } = this.details;
    const [now, before] = [REGION_PHASES.indexOf(phase), REGION_PHASES.indexOf(reached.phase)];
    if (now > before || (now === before && bytesDone > reached.bytesDone)) {
      this.details.reached = { phase, bytesDone };
      this.details.progressAt = new Date().toISOString();
    }
    this.beat();
  }

  /**
   * Heartbeats at a phase change and at most once a second in between (the SDK's
   * own throttling did not pass on a stream of heartbeats every few
   * milliseconds); the Postgres mirror is throttled likewise.
   */
  private beat(): void {
    const now = Date.now();
    if (this.details.phase !== this.beatPhase || now - this.beatAt >= HEARTBEAT_INTERVAL_MS) {
      [this.beatPhase, this.beatAt] = [this.details.phase, now];
      this.context.heartbeat(this.details);
    }
    if (this.details.phase !== 'blobs' || this.saving !== null || now - this.savedAt < PROGRESS_SAVE_INTERVAL_MS) return;
    this.savedAt = now;
    this.saved = true;
    this.saving = saveRegionProgress(this.store.pool, this.request.replicationId, this.region, this.details.bytesDone)
      // Progress is a courtesy: a failed save must not fail the copy.
      .catch(() => undefined)
      .finally(() => {
        this.saving = null;
      });
  }

  async settle(): Promise<void> {
    await this.saving;
    if (!this.saved) return;
    await forgetRegionProgress(this.store.pool, this.request.replicationId, this.region).catch(() => undefined);
  }
}

export function createRegionReplicationActivities({ store, copyBlob, manifests, tags, checks, announce }: RegionReplicationDeps) {
  /** Whether this push should move the tag: the source tag holds our digest, and no newer push of it exists. */
  async function confirmSourceTag(request: ReplicationRequest, first: ResolvedSource, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<boolean> {
    heartbeat.phase('source-tag');
    let state: { sourceTagDigest: Digest | null; supersededBy: number | null } = first;
    for (let check = 1; ; check++) {
      if (state.supersededBy !== null) return false;
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
  async function copyBlobs(request: ReplicationRequest, targetRegion: string, graph: ManifestGraph, heartbeat: RegionHeartbeat, activitySignal: AbortSignal): Promise<void> {
    heartbeat.startBlobs(graph);
    const stop = new AbortController();
    const signal = AbortSignal.any([activitySignal, stop.signal]);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < graph.blobs.length && !signal.aborted) {
        const blob = graph.blobs[next++]!;
        await copyBlob(
          { replicationId: request.replicationId, sourceRegion: request.sourceRegion, targetRegion, digest: blob.digest, size: blob.size },
          {
            signal,
            resumableUpload: heartbeat.details.uploads[blob.digest] ?? null,
            progress: (update) => heartbeat.blobProgress(blob.digest, blob.size, update),
          },
        );
        heartbeat.blobDone(blob.digest, blob.size);
      }
    };
    const lanes = Array.from({ length: Math.min(request.blobConcurrency, graph.blobs.length) }, () =>
      lane().catch((error: unknown) => {
        stop.abort(error);
        throw error;
      }),
    );
    const settled = await Promise.allSettled(lanes);
    const failure = settled.find((result) => result.status === 'rejected');
    // The first failure, not the aborts it caused in the other lanes.
    if (failure) throw stop.signal.reason ?? failure.reason;
  }

  /** The push's manifest graph, read and verified in the source, and whether its tag may move. */
  async function checkSource(request: ReplicationRequest, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<SourceCheck> {
    const resolved = await manifests.resolveSource({ ...sourceOf(request), digest: request.digest! });
    const tagConfirmed = request.tag !== null && (await confirmSourceTag(request, resolved, heartbeat, signal));
    return { graph: resolved.graph, tagConfirmed };
  }

  /**
   * Checking the source is work of the push, not of a region: the region
   * activities of one push in this worker share one run of it while it is in
   * flight (they start together). It is forgotten once settled, so a retry
   * later reads the source afresh.
   */
  const sourceChecks = new Map<number, Promise<SourceCheck>>();
  function checkSourceOnce(request: ReplicationRequest, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<SourceCheck> {
    const running = sourceChecks.get(request.replicationId);
    if (running) return running;
    const check = checkSource(request, heartbeat, signal);
    sourceChecks.set(request.replicationId, check);
    const forget = () => {
      if (sourceChecks.get(request.replicationId) === check) sourceChecks.delete(request.replicationId);
    };
    check.then(forget, forget);
    return check;
  }

  /** Replicates a push; returns the tag to announce (null: announce the digest only). */
  async function pushInto(request: ReplicationRequest, targetRegion: string, heartbeat: RegionHeartbeat, signal: AbortSignal): Promise<Tag | null> {
    const digest = request.digest!;
    const ids = { replicationId: request.replicationId, targetRegion, repository: request.repository };
    heartbeat.phase('resolve');
    const resolved = await checkSourceOnce(request, heartbeat, signal);
    const { tagConfirmed } = resolved;

    await copyBlobs(request, targetRegion, resolved.graph, heartbeat, signal);
    heartbeat.phase('manifests');
    await manifests.writeManifests({ ...ids, sourceRegion: request.sourceRegion, graph: resolved.graph });

    let movedTag: Tag | null = null;
    if (request.tag !== null && tagConfirmed) {
      heartbeat.phase('tag');
      const result = await tags.moveTag({ ...ids, occurredAt: request.occurredAt, tag: request.tag, digest });
      if (result.moved) movedTag = request.tag;
    }
    heartbeat.phase('purge');
    await checks.purgeCaches({ ...ids, references: movedTag === null ? [digest] : [movedTag, digest] });
    heartbeat.phase('verify');
    const pulled = await checks.verifyPull({ targetRegion, repository: request.repository, tag: movedTag, graph: resolved.graph });
    // Announce the tag only while it still holds this digest; a newer push announces its own.
    return pulled.tagHoldsDigest ? movedTag : null;
  }

  async function deleteInto(request: ReplicationRequest, targetRegion: string, heartbeat: RegionHeartbeat): Promise<void> {
    const ids = { replicationId: request.replicationId, targetRegion, repository: request.repository };
    heartbeat.phase('tag');
    const result = await tags.applyDelete({ ...ids, occurredAt: request.occurredAt, tag: request.tag, digest: request.digest });
    heartbeat.phase('purge');
    await checks.purgeCaches({ ...ids, references: [...result.removedTags, ...(request.digest === null ? [] : [request.digest])] });
  }

  return {
    /** Carries one accepted change into one region, from reading the source to announcing the result. Idempotent. */
    async replicateIntoRegion({ request, targetRegion }: RegionReplication): Promise<RegionOutcome> {
      const context = Context.current();
      const heartbeat = new RegionHeartbeat(context, store, request, targetRegion);
      const message = {
        replicationId: request.replicationId,
        region: targetRegion,
        sourceRegion: request.sourceRegion,
        repository: request.repository,
        digest: request.digest,
        observedAt: request.observedAt,
      };
      let outcome: RegionOutcome;
      try {
        if (request.kind === 'push') {
          const tag = await pushInto(request, targetRegion, heartbeat, context.cancellationSignal);
          heartbeat.phase('announce');
          await announce.announceRegion({ ...message, kind: 'replicated', tag });
          outcome = { region: targetRegion, outcome: 'replicated', failure: null };
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
