// Periodic repair of what lost notifications left behind (a registry keeps its
// notification queue in memory). Run by the `ferry-reconcile` Temporal
// Schedule, or on demand with `ferry reconcile`. Each repair is an ordinary
// replication workflow, left running on its own.
import { ParentClosePolicy, patched, proxyActivities, startChild } from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { Drift, Repair } from '../domain/drift';
import { CONTROL_TASK_QUEUE, replicationStartOptions } from '../domain/workflow-contract';
import { ONE_ACTIVITY_PER_REGION } from './patches';
import { replicatePush } from './replicate';
import { replicateChange } from './replicate-change';

const control = proxyActivities<Activities>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '10m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

export interface ReconcileReport {
  drifts: number;
  repaired: Array<Repair & { replicationId: number; workflowId: string }>;
  /** Regions whose tags mostly vanished: nothing was done from or into them (absent from reports before it existed). */
  halted?: Array<Extract<Drift, { kind: 'halted' }>>;
}

export interface ReconcileScope {
  /** Only these repositories; every repository when absent. */
  repositories?: string[];
}

export async function reconcile(scope: ReconcileScope = {}): Promise<ReconcileReport> {
  const found = await control.scanForDrift(scope);
  const halted = found.flatMap((drift) => (drift.kind === 'halted' ? [drift] : []));
  const drifts = found.flatMap((drift) => (drift.kind === 'halted' ? [] : [drift]));
  const repaired: ReconcileReport['repaired'] = [];
  for (const drift of drifts) {
    const { request, duplicate } = await control.recordDrift(drift);
    const options = replicationStartOptions(request);
    if (!duplicate) {
      await startChild(patched(ONE_ACTIVITY_PER_REGION) ? replicateChange : replicatePush, {
        ...options,
        taskQueue: CONTROL_TASK_QUEUE,
        args: [request],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
    }
    repaired.push({ ...drift, replicationId: request.replicationId, workflowId: options.workflowId });
  }
  return { drifts: drifts.length, repaired, ...(halted.length === 0 ? {} : { halted }) };
}
