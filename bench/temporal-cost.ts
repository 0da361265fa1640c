// Temporal's own cost of a scenario (DESIGN.md, "Cost of one push"): the
// workflow executions Ferry ran for the measured repository and what their
// histories hold. Temporal work is paid per image whatever the bytes, so the
// bench counts it beside the wall time. Reading is a thin shell over the
// client; counting is pure and folds one history at a time, so hundreds of
// histories are never held at once.
import type { Client } from '@temporalio/client';
import { forEachLimited } from '../support/concurrency';

/**
 * What the counts look at. An event's kind is told by the `*Attributes` field
 * it carries rather than by its numeric `eventType`: the field names are the
 * API's, the enum's numbers are an encoding. Decoded events hold `null` in the
 * fields they do not carry.
 */
export interface HistoryEvent {
  activityTaskScheduledEventAttributes?: unknown;
  markerRecordedEventAttributes?: unknown;
  upsertWorkflowSearchAttributesEventAttributes?: unknown;
  workflowTaskScheduledEventAttributes?: unknown;
}

export interface TemporalCost {
  /** Workflow executions (runs) whose FerryRepository is the measured repository. */
  executions: number;
  /** Every event of their histories. */
  historyEvents: number;
  /** ActivityTaskScheduled events: activity tasks the server dispatched. */
  activityTasks: number;
  /** MarkerRecorded events: local activities (a patch or side effect would record one too). */
  localActivities: number;
  /** UpsertWorkflowSearchAttributes events: visibility writes after the start. */
  searchAttributeUpserts: number;
  /** WorkflowTaskScheduled events: each one a round trip to the worker's workflow code. */
  workflowTasks: number;
}

export const NO_TEMPORAL_COST: TemporalCost = {
  executions: 0,
  historyEvents: 0,
  activityTasks: 0,
  localActivities: 0,
  searchAttributeUpserts: 0,
  workflowTasks: 0,
};

/** `cost` plus one execution's history: `histories.reduce(countHistory, NO_TEMPORAL_COST)`. */
export function countHistory(cost: TemporalCost, events: readonly HistoryEvent[]): TemporalCost {
  const carrying = (attributes: keyof HistoryEvent) => events.filter((event) => event[attributes] != null).length;
  return {
    executions: cost.executions + 1,
    historyEvents: cost.historyEvents + events.length,
    activityTasks: cost.activityTasks + carrying('activityTaskScheduledEventAttributes'),
    localActivities: cost.localActivities + carrying('markerRecordedEventAttributes'),
    searchAttributeUpserts: cost.searchAttributeUpserts + carrying('upsertWorkflowSearchAttributesEventAttributes'),
    workflowTasks: cost.workflowTasks + carrying('workflowTaskScheduledEventAttributes'),
  };
}

/** Every figure divided by the images pushed (one push each): `executions` becomes executions per push. */
export function perImage(cost: TemporalCost, images: number): TemporalCost {
  return {
    executions: cost.executions / images,
    historyEvents: cost.historyEvents / images,
    activityTasks: cost.activityTasks / images,
    localActivities: cost.localActivities / images,
    searchAttributeUpserts: cost.searchAttributeUpserts / images,
    workflowTasks: cost.workflowTasks / images,
  };
}

const HISTORIES_IN_FLIGHT = 8;
const CLOSE_TIMEOUT_MS = 60_000;

/** Waits a bounded time for the executions to close (the last may still be recording the all-regions outcome); returns how many still run. */
async function runningAfterWait(temporal: Client, query: string): Promise<number> {
  const deadline = Date.now() + CLOSE_TIMEOUT_MS;
  for (;;) {
    const { count } = await temporal.workflow.count(`${query} AND ExecutionStatus = 'Running'`);
    if (count === 0 || Date.now() > deadline) return count;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Counts the histories of every execution the visibility query `FerryRepository = '<repository>'` finds (per-push workflows and any per-region children). */
export async function readTemporalCost(temporal: Client, repository: string): Promise<TemporalCost> {
  const query = `FerryRepository = '${repository}'`;
  const running = await runningAfterWait(temporal, query);
  if (running > 0) console.warn(`bench: ${running} workflow executions of ${repository} still run; their histories count as far as they got`);
  const executions: Array<{ workflowId: string; runId: string }> = [];
  for await (const { workflowId, runId } of temporal.workflow.list({ query })) executions.push({ workflowId, runId });
  let cost = NO_TEMPORAL_COST;
  await forEachLimited(executions, HISTORIES_IN_FLIGHT, async ({ workflowId, runId }) => {
    const history = await temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    cost = countHistory(cost, history.events ?? []);
  });
  return cost;
}
