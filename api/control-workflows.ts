// Reconcile and backfill, the two workflows an operator starts: with `ferry
// reconcile|backfill` straight on Temporal, or through the admin api
// (api/admin.ts), which the CLI calls when it is given one. Defined here once
// for both paths:
//
//   the scope each runs with, read by one parser whether it came from flags or
//   from a JSON body (repository names validated, regions known);
//   how each starts: its workflow id and task queue;
//   what a run is when asked: running, completed with its report, or failed
//   with the reason (failed, terminated, cancelled, timed out).
import { isGrpcDeadlineError, WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { BackfillScope } from '../domain/backfill';
import { parseRepositoryName, type RepositoryName } from '../domain/reference';
import { CONTROL_TASK_QUEUE } from '../domain/workflow-contract';
import type { BackfillProgress } from '../workflows/backfill';
import type { ReconcileReport, ReconcileScope } from '../workflows/reconcile';
import type { backfill, reconcile } from '../workflows/index';

/** A scope that names nothing, or names something in the wrong shape. */
export class InvalidScopeError extends Error {
  override readonly name = 'InvalidScopeError';
}

/** A scope naming a region Ferry is not configured with. */
export class UnknownRegionError extends Error {
  override readonly name = 'UnknownRegionError';
}

/** The workflow types an operator starts, with what each completes with. */
export interface ControlReports {
  reconcile: ReconcileReport;
  backfill: BackfillProgress;
}
export type ControlKind = keyof ControlReports;
const CONTROL_KINDS: readonly string[] = ['reconcile', 'backfill'] satisfies ControlKind[];

/** A reconcile or a backfill as an operator asks after it. */
export interface ControlRun<K extends ControlKind = ControlKind> {
  kind: K;
  workflowId: string;
  status: 'running' | 'completed' | 'failed';
  /** The workflow's result, once completed. */
  report: ControlReports[K] | null;
  /** Why it did not complete: its failure, or that it was terminated, cancelled or timed out. */
  failure: string | null;
}

/** Backfill workflow ids and summaries name this many repositories at most, then how many more. */
const NAMED_REPOSITORIES = 3;

/** A list given as flags or a JSON array: absent stays absent; present, it names something, each entry a string. */
function listOf(value: unknown, field: string, what: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || !value.every((entry) => typeof entry === 'string')) {
    throw new InvalidScopeError(`${field} must be a non-empty list of ${what}`);
  }
  return [...new Set(value)];
}

/** Repository names, each validated (InvalidReferenceError names the first bad one). */
function repositoriesOf(value: unknown): RepositoryName[] | undefined {
  return listOf(value, 'repositories', 'repository names')?.map((name) => parseRepositoryName(name));
}

/** What a reconcile looks at: the repositories named, or every one. */
export function reconcileScopeOf(input: { repositories?: unknown }): ReconcileScope {
  const repositories = repositoriesOf(input.repositories);
  return repositories ? { repositories } : {};
}

/** What a backfill spreads: the repositories named or every one, into the regions named (`regions`, the configured ones) or every one. */
export function backfillScopeOf(input: { repositories?: unknown; to?: unknown }, regions: readonly string[]): BackfillScope {
  const repositories = repositoriesOf(input.repositories);
  const to = listOf(input.to, 'to', 'region names');
  const unknown = to?.filter((region) => !regions.includes(region)) ?? [];
  if (unknown.length > 0) throw new UnknownRegionError(`unknown region(s) ${unknown.join(', ')}; Ferry knows ${regions.join(', ')}`);
  return { ...(repositories ? { repositories } : {}), ...(to ? { to } : {}) };
}

/** `team/a, team/b`, or `team/a, team/b, team/c and 7 more`: ids and summaries stay short however many are named. */
function describeRepositories(repositories: readonly string[] | undefined): string {
  if (!repositories) return 'all repositories';
  const more = repositories.length - NAMED_REPOSITORIES;
  return more > 0 ? `${repositories.slice(0, NAMED_REPOSITORIES).join(', ')} and ${more} more` : repositories.join(', ');
}

export async function startReconcile(temporal: Client, scope: ReconcileScope, now = new Date()): Promise<WorkflowHandle<typeof reconcile>> {
  return temporal.workflow.start<typeof reconcile>('reconcile', {
    workflowId: `reconcile (${scope.recovery === undefined ? 'manual' : 'recover'}) ${now.toISOString()}`,
    taskQueue: CONTROL_TASK_QUEUE,
    args: [scope],
  });
}

export async function startBackfill(temporal: Client, scope: BackfillScope, now = new Date()): Promise<WorkflowHandle<typeof backfill>> {
  const what = describeRepositories(scope.repositories);
  return temporal.workflow.start<typeof backfill>('backfill', {
    workflowId: `backfill ${what}${scope.to ? ` → ${scope.to.join(', ')}` : ''} ${now.toISOString()}`,
    taskQueue: CONTROL_TASK_QUEUE,
    args: [scope],
    staticSummary: `backfill ${what} into ${scope.to?.join(', ') ?? 'every region'}`,
  });
}

/** Why a run did not complete, with the cause Temporal gives (the workflow's error, the termination reason). */
function failureOf(error: WorkflowFailedError): string {
  const cause = error.cause?.message;
  return cause && cause !== error.message ? `${error.message}: ${cause}` : error.message;
}

/**
 * The run behind `handle`, once it has closed; with a `deadline` (ms since the
 * epoch), `running` when it is still open then.
 */
export async function outcomeOf<K extends ControlKind>(temporal: Client, kind: K, handle: WorkflowHandle, deadline?: number): Promise<ControlRun<K>> {
  const run = { kind, workflowId: handle.workflowId };
  const result = () => handle.result() as Promise<ControlReports[K]>;
  try {
    const report = deadline === undefined ? await result() : await temporal.withDeadline(deadline, result);
    return { ...run, status: 'completed', report, failure: null };
  } catch (error) {
    if (deadline !== undefined && isGrpcDeadlineError(error)) return { ...run, status: 'running', report: null, failure: null };
    if (error instanceof WorkflowFailedError) return { ...run, status: 'failed', report: null, failure: failureOf(error) };
    throw error;
  }
}

/** The reconcile or backfill `workflowId`, waiting up to `waitMs` while it runs; null when no workflow of either kind has that id. */
export async function controlRun(temporal: Client, workflowId: string, waitMs: number): Promise<ControlRun | null> {
  // Temporal refuses a request naming an empty id, or one with a lone surrogate (not UTF-8): such an id names no workflow.
  if (workflowId === '' || /[\uD800-\uDFFF]/u.test(workflowId)) return null;
  const handle = temporal.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return null;
    throw error;
  }
  if (!CONTROL_KINDS.includes(description.type)) return null;
  const kind = description.type as ControlKind;
  if (description.status.name !== 'RUNNING') return outcomeOf(temporal, kind, handle);
  if (waitMs <= 0) return { kind, workflowId, status: 'running', report: null, failure: null };
  return outcomeOf(temporal, kind, handle, Date.now() + waitMs);
}
