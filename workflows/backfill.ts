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
import { ONE_ACTIVITY_PER_REGION, PAGED_PLANS } from './patches';
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
  /** The first REPORTED_FAILURES failures. */
  failed: Array<{ reference: string; reason: string }>;
  /** Failures beyond those listed (absent when none). */
  moreFailed?: number;
  remaining: number;
}

/**
 * The state a backfill carries across continue-as-new, so a long one keeps a
 * short history: where it stands in its plan (kept in Postgres), or, for a
 * backfill started before plans were paged, the items left.
 */
export type BackfillResume = { items: BackfillItem[]; progress: BackfillProgress } | PagedBackfill;

interface PagedBackfill {
  planId: string;
  next: number;
  count: number;
  pageSize: number;
  pagesPerRun: number;
  progress: BackfillProgress;
}

/** Failures a report names; the rest are counted in `moreFailed`. */
const REPORTED_FAILURES = 100;

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
  if (resume !== undefined ? !('items' in resume) : patched(PAGED_PLANS)) return backfillPaged(scope, resume as PagedBackfill | undefined);
  let queue: BackfillItem[];
  let progress: BackfillProgress;
  if (resume) {
    ({ items: queue, progress } = resume as { items: BackfillItem[]; progress: BackfillProgress });
  } else {
    const plan = await control.planBackfill(scope);
    queue = plan.items;
    progress = { planned: plan.items.length, alreadyPresent: plan.alreadyPresent, replicated: 0, failed: [], remaining: plan.items.length };
  }
  queue = [...queue];
  const { run } = runner(progress);
  await run(queue, () => !workflowInfo().continueAsNewSuggested);
  if (queue.length > 0) await continueAsNew<typeof backfill>(scope, { items: queue, progress });
  return progress;
}

/** A backfill whose plan stays in Postgres (store/plans.ts), taken a page at a time. */
async function backfillPaged(scope: BackfillScope, resume: PagedBackfill | undefined): Promise<BackfillProgress> {
  let state: PagedBackfill;
  if (resume) state = resume;
  else {
    const planId = workflowInfo().workflowId;
    const planned = await control.planBackfillInto({ scope, planId });
    const progress = { planned: planned.count, alreadyPresent: planned.alreadyPresent, replicated: 0, failed: [], remaining: planned.count };
    state = { planId, next: 0, count: planned.count, pageSize: planned.pageSize, pagesPerRun: planned.pagesPerRun, progress };
  }
  const { run } = runner(state.progress);
  for (let pages = 0; state.next < state.count; pages++) {
    if (pages === state.pagesPerRun || workflowInfo().continueAsNewSuggested) await continueAsNew<typeof backfill>(scope, state);
    const page = await control.backfillPage({ planId: state.planId, offset: state.next, limit: state.pageSize });
    if (page.length === 0) break;
    await run([...page], () => true);
    state.next += page.length;
  }
  await control.dropPlan(state.planId);
  return state.progress;
}

/** Runs queued items as replications, CONCURRENCY at a time, while `goOn` says so; progress in the UI and the query. */
function runner(progress: BackfillProgress): { run: (queue: BackfillItem[], goOn: () => boolean) => Promise<void> } {
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
      if (progress.failed.length < REPORTED_FAILURES) progress.failed.push({ reference, reason: error instanceof Error ? (error.cause as Error | undefined)?.message ?? error.message : String(error) });
      else progress.moreFailed = (progress.moreFailed ?? 0) + 1;
    } finally {
      running.delete(reference);
      progress.remaining--;
      show();
    }
  };

  return {
    run: async (queue, goOn) => {
      const lane = async (): Promise<void> => {
        while (queue.length > 0 && goOn()) await replicateOne(queue.shift()!);
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    },
  };
}
