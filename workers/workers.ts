// Builds Ferry's Temporal workers: one on the control queue (workflows and
// the announce activities) and one per region queue (that region's storage,
// registry and cache work). Production runs the region workers near their
// region (config `worker.queues`); locally one process serves every queue.
import { NativeConnection, Worker, type WorkflowBundlePath } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index';
import { CONTROL_TASK_QUEUE, regionTaskQueue } from '../domain/workflow-contract';
import { workflowBundlePath } from './bundle';
import { activityInterceptors } from './telemetry';

let bundle: Promise<WorkflowBundlePath> | undefined;

/** The workflow bundle built by `npm run build:workflows`, rebuilt once per process if stale (workers/bundle.ts). */
export function workflowBundle(): Promise<WorkflowBundlePath> {
  bundle ??= workflowBundlePath().then((codePath) => ({ codePath }));
  return bundle;
}

export interface WorkerOptions {
  connection: NativeConnection;
  /** Task queues to poll; default: control plus every configured region. */
  queues?: string[];
  /** How long in-flight activities may finish on shutdown. */
  shutdownGraceTime?: string;
}

export function allQueues(deps: ActivityDeps): string[] {
  return [CONTROL_TASK_QUEUE, ...deps.config.regions.map((region) => regionTaskQueue(region.name))];
}

export async function createWorkers(deps: ActivityDeps, options: WorkerOptions): Promise<Worker[]> {
  const activities = createActivities(deps);
  const queues = options.queues ?? allQueues(deps);
  return Promise.all(
    queues.map(async (taskQueue) =>
      Worker.create({
        connection: options.connection,
        namespace: deps.config.temporal.namespace,
        taskQueue,
        activities,
        ...(taskQueue === CONTROL_TASK_QUEUE ? { workflowBundle: await workflowBundle(), maxCachedWorkflows: deps.config.worker.maxCachedWorkflows } : {}),
        interceptors: { activity: [activityInterceptors(deps.metrics)] },
        shutdownGraceTime: options.shutdownGraceTime ?? '10s',
        maxConcurrentActivityTaskExecutions: 32,
        // A region activity's heartbeat carries the multipart uploads a retry resumes: it must
        // reach the server within seconds, not the default 80 % of the 20 s heartbeat timeout.
        // Heartbeats are RPCs, not history events.
        maxHeartbeatThrottleInterval: '2s',
      }),
    ),
  );
}
