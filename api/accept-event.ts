// Turning an accepted registry event into a durable record and a running
// workflow. Record (dedupe on the notification id, with a pending-start mark
// in the same transaction), answer, then start: the answer waits for Postgres
// only, never for Temporal. If the start fails, or the api dies first, the
// mark stays and the sweeper starts the workflow (api/sweeper.ts); a resend
// finds the record and (re)starts the same workflow id.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
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
  starts: BackgroundStarts;
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

/**
 * Starts recorded changes' workflows behind ingest's answers, at most
 * `concurrency` at once. A start that fails (Temporal down or slow) is
 * logged and left to the sweeper, which finds its pending-start mark; so is
 * one beyond `maxQueued` waiting here. Starts are idempotent either way.
 */
export class BackgroundStarts {
  private readonly queue: ReplicationRequest[] = [];
  private running = 0;
  private drained: Array<() => void> = [];

  constructor(
    private readonly deps: { store: EventStore; temporal: Client; logger: Logger },
    private readonly concurrency = 8,
    private readonly maxQueued = 10_000,
  ) {}

  enqueue(request: ReplicationRequest): void {
    if (this.queue.length >= this.maxQueued) return;
    this.queue.push(request);
    this.pump();
  }

  /** Resolves once nothing is queued or starting, or after `timeoutMs` (the sweeper has what is left). */
  async drain(timeoutMs: number): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return;
    await Promise.race([new Promise<void>((resolve) => this.drained.push(resolve)), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const request = this.queue.shift()!;
      this.running++;
      void startRecorded(this.deps.store, this.deps.temporal, request)
        .catch((error: unknown) =>
          this.deps.logger.warn({ err: error, replicationId: request.replicationId }, 'starting the workflow of a recorded change failed; the sweeper starts it'),
        )
        .finally(() => {
          this.running--;
          this.pump();
          if (this.running === 0 && this.queue.length === 0) for (const resolve of this.drained.splice(0)) resolve();
        });
    }
  }
}

export async function acceptEvent({ config, store, starts }: ReplicationStarter, sourceRegion: string, event: ActionableEvent): Promise<Accepted> {
  const { request, duplicate } = await recordObservation(store, config, observationOf(sourceRegion, event), undefined, { sweep: true });
  starts.enqueue(request);
  return { replicationId: request.replicationId, workflowId: replicationStartOptions(request).workflowId, duplicate };
}
