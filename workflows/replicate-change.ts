// One execution per accepted change (a push, or a delete of a tag or a
// digest): one activity per target region, on that region's task queue, which
// runs every phase in order (activities/region-replication.ts), then the
// all-regions outcome, recorded and published by a local activity.
//
// The shape is the cost (DESIGN.md "Cost of one push"): an image into two
// regions is 16 to 19 history events, whatever its blob count. Search
// attributes are set at start and upserted once, when the outcome is known.
// A region that cannot make progress keeps its activity pending (retried
// without limit, invariant 6), where the Temporal UI and `ferry stuck` show
// its attempt, last failure and heartbeat: phase, blobs moving, bytes done.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ApplicationFailure,
  ParentClosePolicy,
  proxyActivities,
  proxyLocalActivities,
  startChild,
  upsertSearchAttributes,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import { regionTaskQueue, replicationStartOptions, searchAttributes, type RegionOutcome, type ReplicationRequest } from '../domain/workflow-contract';

const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

function regionActivity(region: string) {
  return proxyActivities<Activities>({
    taskQueue: regionTaskQueue(region),
    // Generous: a region's whole image, several GB streamed; a dead worker is noticed by its heartbeat.
    startToCloseTimeout: '6h',
    heartbeatTimeout: '20s',
    // No attempt limit: a region that is down is waited for, not given up on.
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  }).replicateIntoRegion;
}

function summaryOf(request: ReplicationRequest, region: string): string {
  return `${request.kind === 'push' ? 'replicate' : 'delete'} into ${region}`;
}

/**
 * Starts the replication a region's outcome led to (a referrers or signature
 * listing widened there, activities/region-replication.ts) as soon as that
 * region is done, then clears its mark for the api's sweeper.
 */
async function startFollowUp(followUp: ReplicationRequest): Promise<void> {
  await startChild(replicateChange, {
    ...replicationStartOptions(followUp),
    args: [followUp],
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
  }).catch((error: unknown) => {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  });
  await local.forgetPendingStart(followUp.replicationId);
}

export async function replicateChange(request: ReplicationRequest): Promise<{ succeeded: string[]; failed: string[] }> {
  const outcomes: RegionOutcome[] = await Promise.all(
    request.targetRegions.map(async (region) => {
      // The activity id is the region: the UI's Pending Activities and `ferry stuck` name it.
      const outcome = await regionActivity(region).executeWithOptions({ activityId: region, summary: summaryOf(request, region) }, [{ request, targetRegion: region }]);
      if (outcome.followUp !== undefined) await startFollowUp(outcome.followUp);
      return outcome;
    }),
  );
  const succeeded = outcomes.filter((outcome) => outcome.failure === null).map((outcome) => outcome.region);
  const failed = outcomes.flatMap((outcome) => (outcome.failure === null ? [] : [{ region: outcome.region, reason: outcome.failure.reason }]));

  await local.announceOutcome({
    replicationId: request.replicationId,
    kind: request.kind === 'push' ? 'push' : 'delete',
    repository: request.repository,
    tag: request.tag,
    digest: request.digest,
    sourceRegion: request.sourceRegion,
    succeeded,
    failed,
  });
  upsertSearchAttributes([
    { key: searchAttributes.phase, value: failed.length === 0 ? 'done' : 'failed' },
    { key: searchAttributes.pendingRegions, value: [] },
    { key: searchAttributes.failedRegions, value: failed.map((failure) => failure.region) },
    { key: searchAttributes.lastProgressAt, value: new Date() },
  ]);
  if (failed.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `replication failed in ${failed.map((failure) => `${failure.region} (${failure.reason})`).join(', ')}`,
      'ReplicationFailed',
    );
  }
  return { succeeded, failed: [] };
}
