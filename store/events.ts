// The domain events Ferry records. The `events` table is the record of truth;
// each event carries the key that makes appending it idempotent.
import type { CopiedBy } from '../domain/config';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import type { RegionChange } from '../domain/workflow-contract';

export type { CopyMethod } from '../domain/config';

/** A change as noticed: from a registry's notification, or found by reconcile. */
export interface Observation extends RegionChange {
  mediaType: string | null;
  /** The notification's own id (or the drift's): a redelivery records nothing new. */
  eventId: string;
}

export interface ReplicationObservedData extends Observation {
  targetRegions: string[];
  /** The registry's own event time when it was later than Ferry allows; `occurredAt` is then the bound. */
  reportedAt?: string | null;
}

interface RegionEvent<T extends string, D> {
  type: T;
  replicationId: number;
  region: string;
  data: D;
}

export type FerryEvent =
  | { type: 'ReplicationObserved'; data: ReplicationObservedData }
  | { type: 'SourceResolved'; replicationId: number; data: { manifests: number; blobs: number; totalBlobBytes: number } }
  | RegionEvent<'BlobCopied', { digest: Digest; size: number; method: CopiedBy; seconds: number; bytesSent: number }>
  | RegionEvent<'BlobSkipped', { digest: Digest; size: number }>
  | RegionEvent<'ManifestsWritten', { repository: RepositoryName; digests: Digest[] }>
  /** `digest`: what the region's tag holds now. `mergedWith`, on a referrers or signature tag merged rather than moved: what the tag held, merged with (domain/referrers.ts). */
  | RegionEvent<'TagReplicated', { repository: RepositoryName; tag: Tag; digest: Digest; occurredAt: string; mergedWith?: Digest }>
  | RegionEvent<'TagSuperseded', { repository: RepositoryName; tag: Tag; newerReplicationId: number | null }>
  | RegionEvent<'CachePurged', { urls: string[] }>
  | RegionEvent<'CompletionPublished', { subject: string; digest: Digest | null; supersededBy?: number | null }>
  | RegionEvent<'DeleteApplied', { repository: RepositoryName; digest: Digest | null; removedTags: Tag[]; occurredAt: string; skipped?: string | null }>
  | RegionEvent<'RegionFailed', { code: string; reason: string }>
  | { type: 'ReplicationFinished'; replicationId: number; data: { succeeded: string[]; failed: string[] } }
  /**
   * What a region's storage held when `ferry recover` rebuilt the record,
   * where every region agreed (store/recovery.ts); `asOf`: when the record
   * it replaces was read, so a tag recorded since keeps its newer record.
   */
  | { type: 'TagRecovered'; region: string; data: { recovery: string; asOf?: string; repository: RepositoryName; tag: Tag; digest: Digest | null } };

export type FerryEventType = FerryEvent['type'];

/** The identity of an event's effect: appending a second event with the same key is a no-op. */
export function dedupeKey(event: FerryEvent): string {
  switch (event.type) {
    case 'ReplicationObserved':
      return `observed:${event.data.sourceRegion}:${event.data.eventId}`;
    case 'BlobCopied':
    case 'BlobSkipped':
      return `blob:${event.replicationId}:${event.region}:${event.data.digest}`;
    case 'ManifestsWritten':
      return `manifests:${event.replicationId}:${event.region}`;
    case 'TagReplicated':
    case 'TagSuperseded':
      return `tag:${event.replicationId}:${event.region}`;
    case 'CachePurged':
      return `purge:${event.replicationId}:${event.region}`;
    case 'CompletionPublished':
      return `published:${event.replicationId}:${event.region}`;
    case 'DeleteApplied':
      return `delete:${event.replicationId}:${event.region}`;
    case 'RegionFailed':
      return `failed:${event.replicationId}:${event.region}`;
    case 'ReplicationFinished':
      return `finished:${event.replicationId}`;
    case 'SourceResolved':
      return `resolved:${event.replicationId}`;
    case 'TagRecovered':
      return `recovered:${event.data.recovery}:${event.region}:${event.data.repository}:${event.data.tag}`;
  }
}

/** A stored event, as read back from the table. */
export interface RecordedEvent {
  seq: number;
  type: FerryEventType;
  replicationId: number | null;
  region: string | null;
  data: Record<string, unknown>;
  recordedAt: Date;
}
