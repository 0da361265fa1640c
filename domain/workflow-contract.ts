// What the API, the workers, the CLI and workflow code agree on: task queues,
// search attributes, and the payloads that cross the Temporal boundary.
// Imported by workflow code, so it must stay free of Node built-ins.
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import { shortDigest, type Digest, type RepositoryName, type Tag } from './reference';

export const CONTROL_TASK_QUEUE = 'ferry-control';

/**
 * The workflow type of one replication, a push or a delete: one execution per
 * accepted change, one activity per target region (workflows/replicate-change.ts).
 */
export const REPLICATION_WORKFLOW = 'replicateChange';
/**
 * Types started by code before one activity per region: a parent per push and
 * a child per region. Still registered, so executions already running finish.
 */
export const LEGACY_REPLICATION_WORKFLOW = 'replicatePush';
export const LEGACY_REGION_WORKFLOW = 'replicateToRegion';
/** The activity that carries one replication into one region, every phase in order. */
export const REGION_ACTIVITY = 'replicateIntoRegion';

export const REGION_QUEUE_PREFIX = 'ferry-region-';

/** Activities that touch a region's storage, registry and caches run on that region's queue. */
export function regionTaskQueue(region: string): string {
  return `${REGION_QUEUE_PREFIX}${region}`;
}

export const searchAttributes = {
  repository: defineSearchAttributeKey('FerryRepository', SearchAttributeType.KEYWORD),
  tag: defineSearchAttributeKey('FerryTag', SearchAttributeType.KEYWORD),
  digest: defineSearchAttributeKey('FerryDigest', SearchAttributeType.KEYWORD),
  sourceRegion: defineSearchAttributeKey('FerrySourceRegion', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('FerryPhase', SearchAttributeType.KEYWORD),
  pendingRegions: defineSearchAttributeKey('FerryPendingRegions', SearchAttributeType.KEYWORD_LIST),
  failedRegions: defineSearchAttributeKey('FerryFailedRegions', SearchAttributeType.KEYWORD_LIST),
  /** The replication's id in the event store (its `#N`); sorts replications in the order Ferry recorded them. */
  replicationId: defineSearchAttributeKey('FerryReplicationId', SearchAttributeType.INT),
  /**
   * The earlier name of FerryReplicationId (it held the replication id, not a push
   * sequence). Set only by replicateToRegion children of workflows started before
   * the rename; stays registered until they have closed (README "Upgrading").
   */
  legacyPushSeq: defineSearchAttributeKey('FerryPushSeq', SearchAttributeType.INT),
  lastProgressAt: defineSearchAttributeKey('FerryLastProgressAt', SearchAttributeType.DATETIME),
} as const;

/** What every NATS message about one region of a replication names: the replication, the region, its source and digest. */
export function regionMessageIds(request: ReplicationRequest, region: string) {
  return {
    replicationId: request.replicationId,
    region,
    sourceRegion: request.sourceRegion,
    repository: request.repository,
    digest: request.digest,
    observedAt: request.observedAt,
  };
}

/** `temporal server start-dev --search-attribute` values, e.g. `FerryRepository=Keyword`. */
export function searchAttributeFlags(): string[] {
  const typeNames: Record<string, string> = {
    [SearchAttributeType.KEYWORD]: 'Keyword',
    [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
    [SearchAttributeType.INT]: 'Int',
    [SearchAttributeType.DATETIME]: 'Datetime',
  };
  return Object.values(searchAttributes).map((key) => `${key.name}=${typeNames[key.type]}`);
}

/** Failure types an activity raises as non-retryable: retrying cannot fix them. */
export const FailureType = {
  sourceBlobMissing: 'SourceBlobMissing',
  sourceBlobCorrupt: 'SourceBlobCorrupt',
  sourceManifestMissing: 'SourceManifestMissing',
  sourceManifestCorrupt: 'SourceManifestCorrupt',
  invalidManifest: 'InvalidManifest',
} as const;

export type ReplicationKind = 'push' | 'delete-digest' | 'delete-tag';

/** One change a source region made: a push, or a delete of a digest or a tag. */
export interface RegionChange {
  kind: ReplicationKind;
  sourceRegion: string;
  repository: RepositoryName;
  tag: Tag | null;
  digest: Digest | null;
  /** The source registry's event time: with the replication id, the push order of a tag. */
  occurredAt: string;
}

/** What a replication workflow runs with: one accepted change and where it goes. */
export interface ReplicationRequest extends RegionChange {
  replicationId: number;
  targetRegions: string[];
  observedAt: string;
  blobConcurrency: number;
}

/** What the region activity runs with: the change, and the one region it goes into. */
export interface RegionReplication {
  request: ReplicationRequest;
  targetRegion: string;
}

/** The phases of a region activity, in the order they run (a delete runs tag, purge, announce). */
export const REGION_PHASES = ['resolve', 'source-tag', 'blobs', 'manifests', 'tag', 'purge', 'verify', 'announce'] as const;
export type RegionPhase = (typeof REGION_PHASES)[number];

/**
 * The region activity's heartbeat details: what the Temporal UI shows of a
 * running or retrying region, and what a retried attempt resumes from.
 */
export interface RegionProgress {
  phase: RegionPhase;
  /**
   * When the region last got further than ever before, over all attempts: a
   * later phase began, or more bytes landed. A retried attempt that only
   * repeats earlier work does not move it. `ferry stuck` reads it.
   */
  progressAt: string;
  /** The furthest any attempt got: what `progressAt` measures against. */
  reached: { phase: RegionPhase; bytesDone: number };
  blobs: number;
  blobsDone: number;
  bytesTotal: number;
  /** Bytes of landed blobs plus bytes of blobs still moving. */
  bytesDone: number;
  /** Blobs moving now: digest, bytes so far, size. */
  copying: Array<{ digest: Digest; bytesDone: number; size: number }>;
  /** Multipart uploads in progress, by blob digest: a retried attempt continues them. */
  uploads: Record<string, string>;
  /** What the phase is waiting for, when it waits on something other than its own work (a notification of the target's registry). */
  waitingFor?: string | null;
}

export interface RegionOutcome {
  region: string;
  outcome: 'replicated' | 'deleted' | 'failed';
  failure: { code: string; reason: string } | null;
  /** A change this one led to, recorded already, whose workflow the replication starts: a referrers index widened in the region. */
  followUp?: ReplicationRequest;
}

/** Which of two pushes of a tag is newer: registry event time first, then acceptance order. */
export interface PushOrder {
  replicationId: number;
  occurredAt: string;
}

/** Phases shown in the FerryPhase search attribute. */
export type ReplicationPhase = 'accepted' | 'resolve' | 'replicate' | 'blobs' | 'manifests' | 'tag' | 'purge' | 'verify' | 'announce' | 'done' | 'failed';

function describeReference(request: Pick<ReplicationRequest, 'repository' | 'tag' | 'digest'>): string {
  if (request.digest === null) return `${request.repository}:${request.tag}`;
  const tagged = request.tag === null ? `${request.repository}@` : `${request.repository}:${request.tag} `;
  return `${tagged}${shortDigest(request.digest)}`;
}

/** A workflow id an operator can read: kind, reference, short digest, replication id. */
export function replicationWorkflowId(request: Pick<ReplicationRequest, 'kind' | 'repository' | 'tag' | 'digest' | 'replicationId'>): string {
  const verb = request.kind === 'push' ? 'push' : 'delete';
  return `${verb} ${describeReference(request)} #${request.replicationId}`;
}

/** The one-line summary in the Temporal UI's workflow list. */
export function replicationSummary(request: ReplicationRequest): string {
  const verb = request.kind === 'push' ? '' : 'delete ';
  return `${verb}${describeReference(request)} ${request.sourceRegion} → ${request.targetRegions.join(', ')}`;
}

/** Id, UI summary and details, and search attributes of a replication workflow, however it is started. */
export function replicationStartOptions(request: ReplicationRequest) {
  return {
    workflowId: replicationWorkflowId(request),
    staticSummary: replicationSummary(request),
    staticDetails: [
      `**${request.kind}** of \`${request.repository}\`${request.tag ? ` tag \`${request.tag}\`` : ''}`,
      request.digest ? `digest \`${request.digest}\`` : '',
      `from **${request.sourceRegion}** to ${request.targetRegions.map((region) => `**${region}**`).join(', ')}`,
      `observed ${request.observedAt}, replication #${request.replicationId}`,
    ]
      .filter(Boolean)
      .join('\n\n'),
    typedSearchAttributes: [
      { key: searchAttributes.repository, value: request.repository },
      ...(request.tag ? [{ key: searchAttributes.tag, value: request.tag }] : []),
      ...(request.digest ? [{ key: searchAttributes.digest, value: request.digest }] : []),
      { key: searchAttributes.sourceRegion, value: request.sourceRegion },
      { key: searchAttributes.phase, value: 'replicate' },
      { key: searchAttributes.pendingRegions, value: request.targetRegions },
      { key: searchAttributes.replicationId, value: request.replicationId },
      { key: searchAttributes.lastProgressAt, value: new Date(request.observedAt) },
    ] as SearchAttributePair[],
  };
}
