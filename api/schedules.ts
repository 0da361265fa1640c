// The Temporal Schedule that runs reconcile periodically. Created (or brought
// up to date, or removed when reconcile.scheduled is off) whenever an api
// process starts, so configuration changes apply.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { ResolvedConfig } from '../domain/config';
import { CONTROL_TASK_QUEUE } from '../domain/workflow-contract';

export const RECONCILE_SCHEDULE_ID = 'ferry-reconcile';

export async function ensureReconcileSchedule(temporal: Client, config: ResolvedConfig): Promise<void> {
  if (!config.reconcile.scheduled) {
    await temporal.schedule.getHandle(RECONCILE_SCHEDULE_ID).delete().catch(() => undefined);
    return;
  }
  const spec = { intervals: [{ every: config.reconcile.every as `${number}m` }] };
  try {
    await temporal.schedule.create({
      scheduleId: RECONCILE_SCHEDULE_ID,
      spec,
      action: { type: 'startWorkflow', workflowType: 'reconcile', taskQueue: CONTROL_TASK_QUEUE, args: [{}] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await temporal.schedule.getHandle(RECONCILE_SCHEDULE_ID).update((previous) => ({ ...previous, spec }));
  }
}
