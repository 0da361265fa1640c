// Turning an accepted registry event into a durable record and a running
// workflow. Record first (dedupe on the notification id), start second, answer
// last: a crash before the answer makes the registry resend, and the resend
// finds the record and (re)starts the same workflow id.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { ResolvedConfig } from '../domain/config';
import type { DeleteDigestEvent, DeleteTagEvent, PushEvent } from '../domain/notifications/event';
import {
  CONTROL_TASK_QUEUE,
  replicationSummary,
  replicationWorkflowId,
  searchAttributes,
  type ReplicationRequest,
} from '../domain/workflow-contract';
import type { EventStore } from '../store/event-store';
import type { ReplicationObservedData } from '../store/events';
import type { replicatePush } from '../workflows/index';

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

function observation(config: ResolvedConfig, sourceRegion: string, event: ActionableEvent): ReplicationObservedData {
  return {
    kind: event.kind,
    sourceRegion,
    targetRegions: config.regions.map((region) => region.name).filter((name) => name !== sourceRegion),
    repository: event.repository,
    tag: event.kind === 'delete-digest' ? null : event.tag,
    digest: event.kind === 'delete-tag' ? null : event.digest,
    mediaType: event.kind === 'push' ? event.mediaType : null,
    eventId: event.eventId,
    occurredAt: event.occurredAt,
  };
}

export async function startReplication(temporal: Client, request: ReplicationRequest): Promise<string> {
  const workflowId = replicationWorkflowId(request);
  try {
    await temporal.workflow.start<typeof replicatePush>('replicatePush', {
      workflowId,
      taskQueue: CONTROL_TASK_QUEUE,
      args: [request],
      // A redelivered notification finds the running (or finished) workflow instead of starting another.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      staticSummary: replicationSummary(request),
      staticDetails: [
        `**${request.kind}** of \`${request.repository}\`${request.tag ? ` tag \`${request.tag}\`` : ''}`,
        request.digest ? `digest \`${request.digest}\`` : '',
        `from **${request.sourceRegion}** to ${request.targetRegions.map((region) => `**${region}**`).join(', ')}`,
        `observed ${request.observedAt}, replication #${request.replicationId}`,
      ]
        .filter(Boolean)
        .join('\n\n'),
      typedSearchAttributes: [
        { key: searchAttributes.repository, value: request.repository },
        ...(request.tag ? [{ key: searchAttributes.tag, value: request.tag }] : []),
        ...(request.digest ? [{ key: searchAttributes.digest, value: request.digest }] : []),
        { key: searchAttributes.sourceRegion, value: request.sourceRegion },
        { key: searchAttributes.phase, value: 'accepted' },
        { key: searchAttributes.pendingRegions, value: request.targetRegions },
        { key: searchAttributes.pushSeq, value: request.replicationId },
        { key: searchAttributes.lastProgressAt, value: new Date(request.observedAt) },
      ],
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  return workflowId;
}

export async function acceptEvent({ config, store, temporal }: ReplicationStarter, sourceRegion: string, event: ActionableEvent): Promise<Accepted> {
  const data = observation(config, sourceRegion, event);
  const appended = await store.append({ type: 'ReplicationObserved', data });
  const recorded = await store.pool.query<{ observed_at: Date }>(`SELECT observed_at FROM replications WHERE id = $1`, [appended.seq]);
  const request: ReplicationRequest = {
    ...data,
    replicationId: appended.seq,
    observedAt: recorded.rows[0]!.observed_at.toISOString(),
    blobConcurrency: config.replication.blobConcurrency,
  };
  const workflowId = await startReplication(temporal, request);
  return { replicationId: appended.seq, workflowId, duplicate: !appended.recorded };
}
