// Which running replications made no progress for a while, and why: what
// `GET /v1/admin/stuck` answers (api/admin.ts) and `ferry stuck` prints
// (cli/stuck.ts, which formats it with cli/stuck-report.ts).
//
// Found through Temporal visibility (ExecutionStatus = 'Running' AND
// FerryLastProgressAt < now - older-than). A replicateChange workflow sets
// FerryLastProgressAt at start and at its end, so every one running longer
// than the window matches; describing it gives its pending region activities
// (activity id = region) with what the Temporal UI's Pending Activities tab
// shows: attempt, last failure, next retry, and the heartbeat details
// (RegionProgress: phase, blobs and bytes, when it last moved). A region
// whose last move is older than the window is stuck. Those come from the
// server, so they are readable while the region's workers are down.
//
// Workflows started by earlier code (a replicatePush parent with one
// replicateToRegion child per region, which upsert FerryLastProgressAt at each
// phase) are described the way they were, until they drain.
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  CONTROL_TASK_QUEUE,
  LEGACY_REGION_WORKFLOW as REGION_WORKFLOW,
  LEGACY_REPLICATION_WORKFLOW,
  REGION_ACTIVITY,
  REPLICATION_WORKFLOW,
  searchAttributes,
  type RegionProgress,
} from '../domain/workflow-contract';

export interface StuckActivity {
  activityType: string;
  /** The attempt running or waiting to run; above 1 means earlier attempts failed. */
  attempt: number;
  /** 0: retried without limit. */
  maximumAttempts: number;
  state: string;
  lastFailure: string | null;
  /** When the next attempt starts, while the activity backs off after a failure. */
  nextRetryAt: Date | null;
  /** A blob copy heartbeats after every part it uploads. */
  lastHeartbeatAt: Date | null;
  /** The region activity's last heartbeat details. */
  progress: RegionProgress | null;
}

/** One part of a replication that is not moving: a region's child workflow, or the replication's own step. */
export interface StuckRegion {
  /** The target region, or `<source> (source)` / `control` for the replication's own activities. */
  region: string;
  workflowId: string;
  phase: string | null;
  lastProgressAt: Date | null;
  activities: StuckActivity[];
  /** Why nothing runs when no activity is pending (e.g. a workflow task no worker picks up). */
  note: string | null;
}

export interface StuckReplication {
  workflowId: string;
  /** `repository:tag@digest`, `repository@digest` or `repository:tag` (a tag delete). */
  reference: string;
  phase: string | null;
  pendingRegions: string[];
  /** The latest progress of the replication or any of its running region workflows. */
  lastProgressAt: Date | null;
  regions: StuckRegion[];
}

/** What `ferry stuck` prints and the admin route answers: the window asked, when, and the stuck replications, oldest first. */
export interface StuckReport {
  olderThanMs: number;
  now: Date;
  replications: StuckReplication[];
}

/** Phases in which a replication's own activities run in its source region (resolve, source tag checks). */
const SOURCE_PHASES = new Set(['accepted', 'resolve']);

type Description = WorkflowExecutionDescription;
type PendingActivity = NonNullable<Description['raw']['pendingActivities']>[number];
type Timestamp = PendingActivity['scheduledTime'];

function dateOf(timestamp: Timestamp): Date | null {
  if (!timestamp?.seconds) return null;
  return new Date(Number(String(timestamp.seconds)) * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6));
}

const activityStates: Record<number, string> = { 1: 'scheduled', 2: 'started', 3: 'cancel requested', 4: 'paused', 5: 'pause requested' };

/** A failure's message with the messages of its causes, which often hold the network error. */
function failureText(failure: PendingActivity['lastFailure']): string | null {
  const messages: string[] = [];
  for (let current = failure; current; current = current.cause) {
    if (current.message && !messages.includes(current.message)) messages.push(current.message);
  }
  return messages.length === 0 ? null : messages.join(': ');
}

function heartbeatProgress(activity: PendingActivity): RegionProgress | null {
  const payload = activity.heartbeatDetails?.payloads?.[0];
  if (!payload) return null;
  try {
    return defaultPayloadConverter.fromPayload<RegionProgress>(payload as Payload);
  } catch {
    return null;
  }
}

function pendingActivity(activity: PendingActivity): StuckActivity {
  const state = activityStates[activity.state ?? 0] ?? 'unknown';
  const attempt = activity.attempt ?? 1;
  return {
    progress: activity.activityType?.name === REGION_ACTIVITY ? heartbeatProgress(activity) : null,
    activityType: activity.activityType?.name ?? '(unknown)',
    attempt,
    maximumAttempts: activity.maximumAttempts ?? 0,
    state,
    lastFailure: failureText(activity.lastFailure),
    nextRetryAt: attempt > 1 && state === 'scheduled' ? (dateOf(activity.nextAttemptScheduleTime) ?? dateOf(activity.scheduledTime)) : null,
    lastHeartbeatAt: dateOf(activity.lastHeartbeatTime),
  };
}

/** Why a workflow with no pending activity is not moving, from its pending workflow task. */
function workflowTaskNote(description: Description): string | null {
  const task = description.raw.pendingWorkflowTask;
  if (!task) return null;
  const since = dateOf(task.originalScheduledTime ?? task.scheduledTime);
  return `a workflow task waits for a worker on ${CONTROL_TASK_QUEUE}${since ? ` since ${since.toISOString()}` : ''} (attempt ${task.attempt})`;
}

function progressOf(description: Description): Date | null {
  return description.typedSearchAttributes.get(searchAttributes.lastProgressAt) ?? null;
}

function phaseOf(description: Description): string | null {
  return description.typedSearchAttributes.get(searchAttributes.phase) ?? null;
}

function referenceOf(description: Description): string {
  const attributes = description.typedSearchAttributes;
  const repository = attributes.get(searchAttributes.repository) ?? '(unknown repository)';
  const tag = attributes.get(searchAttributes.tag);
  const digest = attributes.get(searchAttributes.digest);
  return `${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
}

const stalled = (progress: Date | null, cutoff: Date): boolean => progress === null || progress < cutoff;

/** FerryLastProgressAt moves at phase changes only; an activity that heartbeats (a long blob copy) is progress too. */
const heartbeatSince = (activities: StuckActivity[], cutoff: Date): boolean =>
  activities.some((activity) => activity.lastHeartbeatAt !== null && activity.lastHeartbeatAt >= cutoff);

/** The region a running replicateToRegion child replicates into (its FerryPendingRegions, set when the parent starts it). */
function regionOf(child: Description): string {
  return child.typedSearchAttributes.get(searchAttributes.pendingRegions)?.[0] ?? child.workflowId.split(' → ').pop()!;
}

/** A replicateChange workflow: each pending region activity whose last move is older than the cutoff. */
function stuckRegionsOfChange(replication: Description, cutoff: Date): { regions: StuckRegion[]; lastProgressAt: Date | null; pendingRegions: string[] } {
  const pending = replication.raw.pendingActivities ?? [];
  const started = replication.startTime;
  const regions: StuckRegion[] = [];
  const moves: Date[] = [];
  for (const raw of pending) {
    const activity = pendingActivity(raw);
    const movedAt = activity.progress ? new Date(activity.progress.progressAt) : (dateOf(raw.scheduledTime) ?? started);
    moves.push(movedAt);
    if (movedAt >= cutoff) continue;
    regions.push({
      region: raw.activityId ?? '(unknown region)',
      workflowId: replication.workflowId,
      phase: activity.progress?.phase ?? null,
      lastProgressAt: movedAt,
      activities: [activity],
      note: null,
    });
  }
  if (pending.length === 0 && started < cutoff) {
    regions.push({ region: 'control', workflowId: replication.workflowId, phase: phaseOf(replication), lastProgressAt: started, activities: [], note: workflowTaskNote(replication) });
  }
  const lastProgressAt = moves.length === 0 ? started : new Date(Math.max(...moves.map((date) => date.getTime())));
  return { regions, lastProgressAt, pendingRegions: pending.map((raw) => raw.activityId ?? '') };
}

async function describeReplication(temporal: Client, workflowId: string, cutoff: Date): Promise<StuckReplication | null> {
  const replication = await temporal.workflow.getHandle(workflowId).describe();
  if (replication.status.name !== 'RUNNING') return null;
  if (replication.type === REPLICATION_WORKFLOW) {
    const { regions, lastProgressAt, pendingRegions } = stuckRegionsOfChange(replication, cutoff);
    if (regions.length === 0) return null;
    return { workflowId, reference: referenceOf(replication), phase: phaseOf(replication), pendingRegions, lastProgressAt, regions };
  }
  const children = await Promise.all(
    (replication.raw.pendingChildren ?? [])
      .filter((child) => child.workflowTypeName === REGION_WORKFLOW)
      .map((child) => temporal.workflow.getHandle(child.workflowId ?? '', child.runId || undefined).describe()),
  );
  const running = children.filter((child) => child.status.name === 'RUNNING');

  const regions: StuckRegion[] = [];
  for (const child of running) {
    const activities = (child.raw.pendingActivities ?? []).map(pendingActivity);
    if (!stalled(progressOf(child), cutoff) || heartbeatSince(activities, cutoff)) continue;
    regions.push({
      region: regionOf(child),
      workflowId: child.workflowId,
      phase: phaseOf(child),
      lastProgressAt: progressOf(child),
      activities,
      note: activities.length === 0 ? workflowTaskNote(child) : null,
    });
  }

  // The replication's own activities: reading the source, or announcing the outcome once every region finished.
  const ownActivities = (replication.raw.pendingActivities ?? []).map(pendingActivity);
  const phase = phaseOf(replication);
  if (stalled(progressOf(replication), cutoff) && (ownActivities.length > 0 || running.length === 0)) {
    const sourceRegion = replication.typedSearchAttributes.get(searchAttributes.sourceRegion);
    regions.unshift({
      region: phase !== null && SOURCE_PHASES.has(phase) && sourceRegion ? `${sourceRegion} (source)` : 'control',
      workflowId: replication.workflowId,
      phase,
      lastProgressAt: progressOf(replication),
      activities: ownActivities,
      note: ownActivities.length === 0 ? workflowTaskNote(replication) : null,
    });
  }
  if (regions.length === 0) return null;

  const progress = [replication, ...running].map(progressOf).filter((date): date is Date => date !== null);
  return {
    workflowId: replication.workflowId,
    reference: referenceOf(replication),
    phase,
    pendingRegions: replication.typedSearchAttributes.get(searchAttributes.pendingRegions) ?? [],
    lastProgressAt: progress.length === 0 ? null : new Date(Math.max(...progress.map((date) => date.getTime()))),
    regions,
  };
}

/** The visibility query for workflows whose FerryLastProgressAt is older than `cutoff`. */
export function stuckQuery(cutoff: Date): string {
  return `ExecutionStatus = 'Running' AND ${searchAttributes.lastProgressAt.name} < '${cutoff.toISOString()}'`;
}

/** Running replications with a part (a region, or their own step) that made no progress since `now - olderThanMs`, oldest first. */
export async function stuckReport(temporal: Client, olderThanMs: number, now = new Date()): Promise<StuckReport> {
  const cutoff = new Date(now.getTime() - olderThanMs);
  const replicationIds = new Set<string>();
  for await (const execution of temporal.workflow.list({ query: stuckQuery(cutoff) })) {
    if (execution.type === REPLICATION_WORKFLOW || execution.type === LEGACY_REPLICATION_WORKFLOW) replicationIds.add(execution.workflowId);
    else if (execution.type === REGION_WORKFLOW && execution.parentExecution?.workflowId) replicationIds.add(execution.parentExecution.workflowId);
  }
  const replications = await Promise.all([...replicationIds].map((workflowId) => describeReplication(temporal, workflowId, cutoff)));
  return {
    olderThanMs,
    now,
    replications: replications
      .filter((replication): replication is StuckReplication => replication !== null)
      .sort((a, b) => (a.lastProgressAt?.getTime() ?? 0) - (b.lastProgressAt?.getTime() ?? 0)),
  };
}
