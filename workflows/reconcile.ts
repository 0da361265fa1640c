// Periodic repair of what lost notifications left behind (a registry keeps its
// notification queue in memory). Run by the `ferry-reconcile` Temporal
// Schedule, or on demand with `ferry reconcile`. Each repair is an ordinary
// replication workflow, left running on its own. The plan stays in Postgres
// and is recorded a page at a time, continuing as new every few pages, so
// neither a payload nor the history grows with the number of tags.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { continueAsNew, ParentClosePolicy, patched, proxyActivities, startChild, WorkflowIdReusePolicy, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { Drift, Repair } from '../domain/drift';
import { CONTROL_TASK_QUEUE, replicationStartOptions } from '../domain/workflow-contract';
import { ONE_ACTIVITY_PER_REGION, PAGED_PLANS } from './patches';
import { replicatePush } from './replicate';
import { replicateChange } from './replicate-change';

const control = proxyActivities<Activities>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '10m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

export interface ReconcileReport {
  drifts: number;
  /** The replications started, one per drift: the first REPORTED_REPAIRS of them, `more` counting the rest. */
  repaired: Array<Repair & { replicationId: number; workflowId: string }>;
  /** Repairs started beyond those listed in `repaired` (absent when none). */
  more?: number;
  /** Regions whose tags mostly vanished: nothing was done from or into them (absent from reports before it existed). */
  halted?: Array<Extract<Drift, { kind: 'halted' }>>;
}

export interface ReconcileScope {
  /** Only these repositories; every repository when absent. */
  repositories?: string[];
  /** Set by `ferry recover` (its run's name): first record what storage holds where every region agrees. */
  recovery?: string;
}

/** Repairs a report lists by name; the rest are counted. */
const REPORTED_REPAIRS = 100;

/** Where a paged reconcile stands, carried across continue-as-new. */
export interface ReconcileResume {
  planId: string;
  /** The plan's next repair to record. */
  next: number;
  count: number;
  pageSize: number;
  pagesPerRun: number;
  report: ReconcileReport;
}

export async function reconcile(scope: ReconcileScope = {}, resume?: ReconcileResume): Promise<ReconcileReport> {
  if (resume === undefined && !patched(PAGED_PLANS)) return reconcileWhole(scope);
  const state = resume ?? (await plan(scope));
  for (let pages = 0; state.next < state.count; pages++) {
    // A long plan keeps each run's history short.
    if (pages === state.pagesPerRun || workflowInfo().continueAsNewSuggested) await continueAsNew<typeof reconcile>(scope, state);
    const page = await control.recordDriftPage({ planId: state.planId, offset: state.next, limit: state.pageSize });
    if (page.length === 0) break;
    // A page recorded again after a failed attempt finds its first repairs recorded already: their
    // children are started too, unless they already ran (a workflow id is never reused).
    await Promise.all(
      page.map(({ request, duplicate }) =>
        startChild(replicateChange, {
          ...replicationStartOptions(request),
          taskQueue: CONTROL_TASK_QUEUE,
          args: [request],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        }).catch((error: unknown) => {
          if (!(duplicate && error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        }),
      ),
    );
    for (const { drift, request } of page) {
      if (state.report.repaired.length < REPORTED_REPAIRS) state.report.repaired.push({ ...drift, replicationId: request.replicationId, workflowId: replicationStartOptions(request).workflowId });
      else state.report.more = (state.report.more ?? 0) + 1;
    }
    state.next += page.length;
  }
  await control.dropPlan(state.planId);
  return state.report;
}

/** Scans and keeps the plan in Postgres, named after this workflow (store/plans.ts): only its size travels. */
async function plan(scope: ReconcileScope): Promise<ReconcileResume> {
  const planId = workflowInfo().workflowId;
  const planned = await control.planDrift({ ...scope, planId });
  const report: ReconcileReport = { drifts: planned.count, repaired: [], ...(planned.halted.length === 0 ? {} : { halted: planned.halted }) };
  return { planId, next: 0, count: planned.count, pageSize: planned.pageSize, pagesPerRun: planned.pagesPerRun, report };
}

/** Reconciles started before plans were paged: the whole plan in one payload, one child at a time. */
async function reconcileWhole(scope: ReconcileScope): Promise<ReconcileReport> {
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
