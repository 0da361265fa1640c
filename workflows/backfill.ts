// Backfill (`ferry backfill`): replicate what the regions already hold, e.g.
// into a region just added. Plans from storage (domain/backfill.ts), then runs
// every tag to spread as an ordinary replication workflow, a few at a time,
// oldest write first. Progress shows in the Temporal UI (current details) and
// answers the `progress` query.
import {
  continueAsNew,
  defineQuery,
  executeChild,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { BackfillItem, BackfillScope } from '../domain/backfill';
import { CONTROL_TASK_QUEUE, replicationStartOptions } from '../domain/workflow-contract';
import { ONE_ACTIVITY_PER_REGION } from './patches';
import { replicatePush } from './replicate';
import { replicateChange } from './replicate-change';

const control = proxyActivities<Activities>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '10m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

/** Replications running at once: enough to overlap, few enough to leave room for live pushes. */
const CONCURRENCY = 4;

export interface BackfillProgress {
  planned: number;
  alreadyPresent: number;
  replicated: number;
  failed: Array<{ reference: string; reason: string }>;
  remaining: number;
}

/** The state a backfill carries across continue-as-new, so a long one keeps a short history. */
export interface BackfillResume {
  items: BackfillItem[];
  progress: BackfillProgress;
}

export const backfillProgressQuery = defineQuery<BackfillProgress>('progress');

function describe(progress: BackfillProgress, running: string[]): string {
  return [
    `**${progress.replicated} of ${progress.planned}** tags replicated, ${progress.failed.length} failed, ${progress.remaining} to go; ${progress.alreadyPresent} already present everywhere`,
    running.length > 0 ? `replicating now: ${running.map((reference) => `\`${reference}\``).join(', ')}` : '',
    ...progress.failed.map((failure) => `failed: \`${failure.reference}\`: ${failure.reason}`),
  ]
    .filter(Boolean)
    .join('\n\n');
}

export async function backfill(scope: BackfillScope, resume?: BackfillResume): Promise<BackfillProgress> {
  let queue: BackfillItem[];
  let progress: BackfillProgress;
  if (resume) {
    ({ items: queue, progress } = resume);
  } else {
    const plan = await control.planBackfill(scope);
    queue = plan.items;
    progress = { planned: plan.items.length, alreadyPresent: plan.alreadyPresent, replicated: 0, failed: [], remaining: plan.items.length };
  }
  queue = [...queue];
  const running = new Set<string>();
  const show = () => setCurrentDetails(describe(progress, [...running]));
  setHandler(backfillProgressQuery, () => progress);
  show();

  const backfillId = workflowInfo().workflowId;
  const replicateOne = async (item: BackfillItem): Promise<void> => {
    const reference = `${item.repository}:${item.tag}`;
    running.add(reference);
    show();
    try {
      const { request } = await control.recordBackfill({ backfillId, item });
      await executeChild(patched(ONE_ACTIVITY_PER_REGION) ? replicateChange : replicatePush, {
        ...replicationStartOptions(request),
        taskQueue: CONTROL_TASK_QUEUE,
        args: [request],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      progress.replicated++;
    } catch (error) {
      progress.failed.push({ reference, reason: error instanceof Error ? (error.cause as Error | undefined)?.message ?? error.message : String(error) });
    } finally {
      running.delete(reference);
      progress.remaining--;
      show();
    }
  };

  const lane = async (): Promise<void> => {
    while (queue.length > 0 && !workflowInfo().continueAsNewSuggested) {
      await replicateOne(queue.shift()!);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  if (queue.length > 0) await continueAsNew<typeof backfill>(scope, { items: queue, progress });
  return progress;
}
