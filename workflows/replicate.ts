// One workflow per accepted push or delete. It resolves the manifest graph in
// the source region, confirms the source tag, then runs one child workflow per
// target region in parallel and announces the all-regions outcome.
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  executeChild,
  proxyActivities,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import type { Activities, ResolvedSource, SourceTagState } from '../activities/index';
import type { ManifestGraph } from '../domain/manifest';
import {
  CONTROL_TASK_QUEUE,
  regionTaskQueue,
  searchAttributes,
  type ReplicationRequest,
} from '../domain/workflow-contract';
import { regionWorkflowId, replicateToRegion } from './replicate-region';

/** The registry notifies before it writes the tag (distribution#2625): give the tag this long to appear. */
const SOURCE_TAG_CHECKS = 10;
const SOURCE_TAG_INTERVAL = '1s';

const control = proxyActivities<Activities>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

function sourceActivities(region: string) {
  return proxyActivities<Activities>({
    taskQueue: regionTaskQueue(region),
    startToCloseTimeout: '5m',
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });
}

/** Whether this push should move the tag: the source tag holds our digest, and no newer push of it exists. */
async function confirmSourceTag(request: ReplicationRequest, first: SourceTagState): Promise<boolean> {
  const source = sourceActivities(request.sourceRegion);
  let state = first;
  for (let check = 1; ; check++) {
    if (state.supersededBy !== null) return false;
    if (state.sourceTagDigest === request.digest) return true;
    if (check >= SOURCE_TAG_CHECKS) return false;
    await sleep(SOURCE_TAG_INTERVAL);
    state = await source.sourceTagState({ ...request, digest: request.digest!, tag: request.tag });
  }
}

function failureReason(error: unknown): string {
  if (error instanceof ChildWorkflowFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** The source could not be read for good: every region failed, and says so. */
async function failEverywhere(request: ReplicationRequest, error: unknown): Promise<void> {
  if (!(error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.nonRetryable)) return;
  const failure = { code: error.cause.type ?? 'Failed', reason: error.cause.message };
  for (const region of request.targetRegions) {
    await control.announceRegion({
      kind: 'failed',
      replicationId: request.replicationId,
      region,
      sourceRegion: request.sourceRegion,
      repository: request.repository,
      tag: request.tag,
      digest: request.digest,
      observedAt: request.observedAt,
      failure,
    });
  }
  await control.announceOutcome({
    replicationId: request.replicationId,
    kind: 'push',
    repository: request.repository,
    tag: request.tag,
    digest: request.digest,
    sourceRegion: request.sourceRegion,
    succeeded: [],
    failed: request.targetRegions.map((region) => ({ region, reason: failure.reason })),
  });
  upsertSearchAttributes([
    { key: searchAttributes.phase, value: 'failed' },
    { key: searchAttributes.failedRegions, value: request.targetRegions },
  ]);
}

export async function replicatePush(request: ReplicationRequest): Promise<{ succeeded: string[]; failed: string[] }> {
  let graph: ManifestGraph | null = null;
  let tagConfirmed = false;
  if (request.kind === 'push') {
    upsertSearchAttributes([{ key: searchAttributes.phase, value: 'resolve' }]);
    let resolved: ResolvedSource;
    try {
      resolved = await sourceActivities(request.sourceRegion).resolveSource({
        replicationId: request.replicationId,
        occurredAt: request.occurredAt,
        sourceRegion: request.sourceRegion,
        repository: request.repository,
        digest: request.digest!,
        tag: request.tag,
      });
    } catch (error) {
      await failEverywhere(request, error);
      throw error;
    }
    graph = resolved.graph;
    tagConfirmed = request.tag !== null && (await confirmSourceTag(request, resolved));
  }

  const pending = new Set(request.targetRegions);
  const succeeded: string[] = [];
  const failed: Array<{ region: string; reason: string }> = [];
  const showProgress = (): void =>
    upsertSearchAttributes([
      { key: searchAttributes.phase, value: pending.size > 0 ? 'replicate' : 'announce' },
      { key: searchAttributes.pendingRegions, value: [...pending] },
      { key: searchAttributes.failedRegions, value: failed.map((failure) => failure.region) },
      { key: searchAttributes.lastProgressAt, value: new Date() },
    ]);
  showProgress();

  await Promise.all(
    request.targetRegions.map(async (targetRegion) => {
      try {
        await executeChild(replicateToRegion, {
          workflowId: regionWorkflowId(targetRegion),
          taskQueue: CONTROL_TASK_QUEUE,
          args: [{ request, targetRegion, graph, tagConfirmed }],
          staticSummary: `${request.kind === 'push' ? 'replicate' : 'delete'} into ${targetRegion}`,
          typedSearchAttributes: [
            { key: searchAttributes.repository, value: request.repository },
            ...(request.tag ? [{ key: searchAttributes.tag, value: request.tag }] : []),
            ...(request.digest ? [{ key: searchAttributes.digest, value: request.digest }] : []),
            { key: searchAttributes.sourceRegion, value: request.sourceRegion },
            { key: searchAttributes.pendingRegions, value: [targetRegion] },
            { key: searchAttributes.legacyPushSeq, value: request.replicationId },
            // Set at start, so a child whose first task never runs (control worker down) still shows in `ferry stuck`.
            { key: searchAttributes.lastProgressAt, value: new Date() },
          ] as SearchAttributePair[],
        });
        succeeded.push(targetRegion);
      } catch (error) {
        failed.push({ region: targetRegion, reason: failureReason(error) });
      } finally {
        pending.delete(targetRegion);
        showProgress();
      }
    }),
  );

  await control.announceOutcome({
    replicationId: request.replicationId,
    kind: request.kind === 'push' ? 'push' : 'delete',
    repository: request.repository,
    tag: request.tag,
    digest: request.digest,
    sourceRegion: request.sourceRegion,
    succeeded,
    failed,
  });
  upsertSearchAttributes([{ key: searchAttributes.phase, value: failed.length === 0 ? 'done' : 'failed' }]);
  if (failed.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `replication failed in ${failed.map((failure) => `${failure.region} (${failure.reason})`).join(', ')}`,
      'ReplicationFailed',
    );
  }
  return { succeeded, failed: [] };
}
