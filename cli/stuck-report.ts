// What `ferry stuck` prints: one block per stuck replication, then per stuck
// region its pending activities (attempt, state, next retry, heartbeat
// progress, last failure). The finding is in api/stuck-replications.ts.
import type { StuckActivity, StuckReplication } from '../api/stuck-replications';
import { shortDigest, type Digest } from '../domain/reference';
import type { RegionProgress } from '../domain/workflow-contract';
import { formatDuration } from '../domain/duration';

function ago(date: Date | null, now: Date): string {
  return date === null ? 'never' : `${formatDuration(now.getTime() - date.getTime())} ago (${date.toISOString()})`;
}

const MB = 1_000_000;
const megabytes = (bytes: number): string => (bytes / MB).toFixed(1);

/** `1 of 3 blobs, 12.0 of 35.0 MB; moving sha256:3490ab910a42 12.0 of 30.0 MB` */
export function describeProgress(progress: RegionProgress): string {
  const moving = progress.copying.map((blob) => `${shortDigest(blob.digest as Digest)} ${megabytes(blob.bytesDone)} of ${megabytes(blob.size)} MB`);
  return `${progress.blobsDone} of ${progress.blobs} blobs, ${megabytes(progress.bytesDone)} of ${megabytes(progress.bytesTotal)} MB${moving.length > 0 ? `; moving ${moving.join(', ')}` : ''}`;
}

function activityLines(activity: StuckActivity, now: Date): string[] {
  const limit = activity.maximumAttempts > 0 ? ` of ${activity.maximumAttempts}` : '';
  const retry = activity.nextRetryAt === null ? '' : `, next retry in ${formatDuration(activity.nextRetryAt.getTime() - now.getTime())}`;
  const heartbeat = activity.lastHeartbeatAt === null ? '' : `, last heartbeat ${formatDuration(now.getTime() - activity.lastHeartbeatAt.getTime())} ago`;
  return [
    `    activity ${activity.activityType}: attempt ${activity.attempt}${limit}, ${activity.state}${retry}${heartbeat}`,
    ...(activity.progress && activity.progress.blobs > 0 ? [`      progress: ${describeProgress(activity.progress)}`] : []),
    ...(activity.progress?.waitingFor ? [`      waiting for ${activity.progress.waitingFor}`] : []),
    `      last failure: ${activity.lastFailure ?? '(none yet)'}`,
  ];
}

/** One block per stuck replication: id, reference, age since last progress, then per stuck region what it waits on. */
export function formatStuckReport(replications: StuckReplication[], olderThanMs: number, now: Date): string {
  const window = formatDuration(olderThanMs);
  if (replications.length === 0) return `no replication without progress for ${window} or more`;
  const lines = [`${replications.length} replication(s) without progress for ${window} or more (now ${now.toISOString()})`];
  for (const replication of replications) {
    lines.push(
      '',
      `${replication.workflowId}`,
      `  reference      ${replication.reference}`,
      `  last progress  ${ago(replication.lastProgressAt, now)}`,
      `  phase          ${replication.phase ?? '-'}${replication.pendingRegions.length > 0 ? `, pending ${replication.pendingRegions.join(', ')}` : ''}`,
    );
    for (const region of replication.regions) {
      lines.push(`  stuck on ${region.region}: phase ${region.phase ?? '-'}, no progress for ${region.lastProgressAt ? formatDuration(now.getTime() - region.lastProgressAt.getTime()) : 'ever'} (workflow "${region.workflowId}")`);
      for (const activity of region.activities) lines.push(...activityLines(activity, now));
      if (region.activities.length === 0) lines.push(`    no pending activity${region.note ? `: ${region.note}` : ''}`);
    }
  }
  return lines.join('\n');
}

