// One replication into one target region. Its activities run on the region's
// task queue, so a slow or unreachable region holds up only this workflow, and
// retries until the region is back (invariant 6).
//
// Order (the heart of invariants 1, 2 and 5):
//   blobs  →  _layers links + manifests (children first)  →  tag, last
//   →  purge the region's caches  →  pull check  →  announce on NATS
import {
  ActivityFailure,
  ApplicationFailure,
  patched,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { ManifestGraph } from '../domain/manifest';
import type { Digest, Tag } from '../domain/reference';
import { regionMessageIds, regionTaskQueue, searchAttributes, type ReplicationPhase, type ReplicationRequest } from '../domain/workflow-contract';

export interface RegionReplicationInput {
  request: ReplicationRequest;
  targetRegion: string;
  /** The manifest graph, for pushes. */
  graph: ManifestGraph | null;
  /** False when the source tag has moved on: replicate the digest, leave the tag to the newer push. */
  tagConfirmed: boolean;
}

const MIB = 1024 * 1024;

/**
 * Progress shown between phases (`ferry stuck` reads FerryLastProgressAt) and a
 * phase of its own for the cache purge. Behind a patch: histories recorded
 * before it replay without these upserts.
 */
const FINER_PROGRESS_PATCH = 'finer-progress';
/** At most one progress upsert per this much workflow time while blobs copy, to keep histories short. */
const PROGRESS_EVERY_MS = 30_000;

function regionActivities(region: string) {
  return proxyActivities<Activities>({
    taskQueue: regionTaskQueue(region),
    startToCloseTimeout: '2h',
    // A blob copy heartbeats after every part; a worker that died is noticed within this.
    heartbeatTimeout: '20s',
    // No attempt limit: a region that is down is waited for, not given up on.
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  });
}

function setPhase(phase: ReplicationPhase): void {
  upsertSearchAttributes([
    { key: searchAttributes.phase, value: phase },
    { key: searchAttributes.lastProgressAt, value: new Date() },
  ]);
}

/** The application failure behind an activity failure, if the activity gave up for good. */
function permanentCause(error: unknown): ApplicationFailure | null {
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.nonRetryable) return error.cause;
  return null;
}

async function copyBlobs(input: RegionReplicationInput, graph: ManifestGraph, acts: ReturnType<typeof regionActivities>): Promise<void> {
  const { request, targetRegion } = input;
  let next = 0;
  let progressShownAt = Date.now();
  const lane = async (): Promise<void> => {
    while (next < graph.blobs.length) {
      const blob = graph.blobs[next++]!;
      await acts.copyBlob.executeWithOptions(
        { summary: `copy ${blob.digest.slice(0, 19)}… ${(blob.size / MIB).toFixed(1)} MB → ${targetRegion}` },
        [{ replicationId: request.replicationId, sourceRegion: request.sourceRegion, targetRegion, digest: blob.digest, size: blob.size }],
      );
      if (patched(FINER_PROGRESS_PATCH) && Date.now() - progressShownAt >= PROGRESS_EVERY_MS) {
        progressShownAt = Date.now();
        upsertSearchAttributes([{ key: searchAttributes.lastProgressAt, value: new Date(progressShownAt) }]);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(request.blobConcurrency, graph.blobs.length) }, lane));
}

async function replicatePushInto(input: RegionReplicationInput, acts: ReturnType<typeof regionActivities>): Promise<Tag | null> {
  const { request, targetRegion } = input;
  const graph = input.graph!;
  const digest = request.digest!;
  const ids = { replicationId: request.replicationId, targetRegion, repository: request.repository };
  const order = { occurredAt: request.occurredAt };

  setPhase('blobs');
  await copyBlobs(input, graph, acts);
  setPhase('manifests');
  await acts.writeManifests({ ...ids, sourceRegion: request.sourceRegion, graph });

  let movedTag: Tag | null = null;
  if (request.tag !== null && input.tagConfirmed) {
    setPhase('tag');
    const result = await acts.moveTag({ ...ids, ...order, tag: request.tag, digest });
    if (result.moved) movedTag = request.tag;
  }
  const references: Array<Tag | Digest> = movedTag === null ? [digest] : [movedTag, digest];
  if (patched(FINER_PROGRESS_PATCH)) setPhase('purge');
  await acts.purgeCaches({ ...ids, references });
  setPhase('verify');
  const pulled = await acts.verifyPull({ targetRegion, repository: request.repository, tag: movedTag, graph });
  // Announce the tag only while it still holds this digest; a newer push announces its own.
  return pulled.tagHoldsDigest ? movedTag : null;
}

async function replicateDeleteInto(input: RegionReplicationInput, acts: ReturnType<typeof regionActivities>): Promise<void> {
  const { request, targetRegion } = input;
  const ids = { replicationId: request.replicationId, targetRegion, repository: request.repository };
  setPhase('tag');
  const result = await acts.applyDelete({ ...ids, occurredAt: request.occurredAt, tag: request.tag, digest: request.digest });
  const references: Array<Tag | Digest> = [...result.removedTags, ...(request.digest === null ? [] : [request.digest])];
  if (patched(FINER_PROGRESS_PATCH)) setPhase('purge');
  await acts.purgeCaches({ ...ids, references });
}

export async function replicateToRegion(input: RegionReplicationInput): Promise<void> {
  const { request, targetRegion } = input;
  const acts = regionActivities(targetRegion);
  const message = regionMessageIds(request, targetRegion);
  try {
    if (request.kind === 'push') {
      const movedTag = await replicatePushInto(input, acts);
      setPhase('announce');
      await acts.announceRegion({ ...message, kind: 'replicated', tag: movedTag });
    } else {
      await replicateDeleteInto(input, acts);
      setPhase('announce');
      await acts.announceRegion({ ...message, kind: 'deleted', tag: request.tag });
    }
    setPhase('done');
  } catch (error) {
    const cause = permanentCause(error);
    if (cause === null) throw error;
    setPhase('failed');
    const failure = { code: cause.type ?? 'Failed', reason: cause.message };
    await acts.announceRegion({ ...message, kind: 'failed', tag: request.tag, failure });
    throw ApplicationFailure.nonRetryable(`${targetRegion}: ${cause.message}`, cause.type ?? 'Failed');
  }
}

/** Used by the parent to name children: `<parent id> → <region>`. */
export function regionWorkflowId(region: string): string {
  return `${workflowInfo().workflowId} → ${region}`;
}
