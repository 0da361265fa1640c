// Turning an accepted registry event into a durable record and a running
// workflow. Record first (dedupe on the notification id), start second, answer
// last: a crash before the answer makes the registry resend, and the resend
// finds the record and (re)starts the same workflow id.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { ResolvedConfig } from '../domain/config';
import type { DeleteDigestEvent, DeleteTagEvent, PushEvent } from '../domain/notifications/event';
import { CONTROL_TASK_QUEUE, REPLICATION_WORKFLOW, replicationStartOptions, type ReplicationRequest } from '../domain/workflow-contract';
import type { EventStore } from '../store/event-store';
import type { Observation } from '../store/events';
import { recordObservation } from '../store/observations';
import { forgetPendingStart } from '../store/pending-starts';
import type { replicateChange } from '../workflows/index';

export type ActionableEvent = PushEvent | DeleteDigestEvent | DeleteTagEvent;

export interface Accepted {
  replicationId: number;
  workflowId: string;
  /** True when this notification had been accepted before (a redelivery). */
  duplicate: boolean;
}

export interface ReplicationStarter {
  config: ResolvedConfig;
  store: EventStore;
  temporal: Client;
}

async function startReplication(temporal: Client, request: ReplicationRequest): Promise<string> {
  const options = replicationStartOptions(request);
  try {
    await temporal.workflow.start<typeof replicateChange>(REPLICATION_WORKFLOW, {
      ...options,
      taskQueue: CONTROL_TASK_QUEUE,
      args: [request],
      // A redelivered notification finds the running (or finished) workflow instead of starting another.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  return options.workflowId;
}

/** Starts a recorded change's workflow, then drops its pending-start mark: the sweeper has nothing left to do for it. */
export async function startRecorded(store: EventStore, temporal: Client, request: ReplicationRequest): Promise<string> {
  const workflowId = await startReplication(temporal, request);
  await forgetPendingStart(store, request.replicationId);
  return workflowId;
}

/** What a registry's event says, as Ferry records it. */
export function observationOf(sourceRegion: string, event: ActionableEvent): Observation {
  return {
    kind: event.kind,
    sourceRegion,
    repository: event.repository,
    tag: event.kind === 'delete-digest' ? null : event.tag,
    digest: event.kind === 'delete-tag' ? null : event.digest,
    mediaType: event.kind === 'push' ? event.mediaType : null,
    eventId: event.eventId,
    occurredAt: event.occurredAt,
  };
}

export async function acceptEvent({ config, store, temporal }: ReplicationStarter, sourceRegion: string, event: ActionableEvent): Promise<Accepted> {
  const { request, duplicate } = await recordObservation(store, config, observationOf(sourceRegion, event), undefined, { sweep: true });
  const workflowId = await startRecorded(store, temporal, request);
  return { replicationId: request.replicationId, workflowId, duplicate };
}
