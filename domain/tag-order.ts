// Whether a change may move (or remove) a region's tag, given the change that
// holds it now. Changes from one source region are decided by that source's
// storage, read under the tag's lock just before (activities/tags.ts): what
// the source holds now is newer than anything it held before, whatever the
// notifications' times say. Only changes from different source regions (a
// tag pushed in two regions) are ordered by time: the registry's event time,
// bounded by Ferry's clock (event-time.ts), then the replication id, so no
// two changes tie and no future date wins for longer than the allowed skew.
import type { PushOrder } from './workflow-contract';

export interface TagChange extends PushOrder {
  /** The region whose registry made the change; undefined for the earlier workflow shape, which is ordered by time alone. */
  sourceRegion?: string;
}

export interface TagHolder extends PushOrder {
  sourceRegion: string;
}

/** True when (occurredAt, replicationId) of `a` is later than that of `b`. */
export function laterThan(a: PushOrder, b: PushOrder): boolean {
  const at = Date.parse(a.occurredAt) - Date.parse(b.occurredAt);
  return at !== 0 ? at > 0 : a.replicationId > b.replicationId;
}

export function mayChangeTag(change: TagChange, holder: TagHolder | null): boolean {
  if (holder === null || holder.replicationId === change.replicationId) return true;
  if (change.sourceRegion !== undefined && holder.sourceRegion === change.sourceRegion) return true;
  return laterThan(change, holder);
}

/**
 * A change of the tag that the target region's own registry made and Ferry
 * has not recorded: a push or delete there whose notification is still on
 * its way, or was lost. Distribution writes the tag and sends the event
 * separately, so a replication into that region can meet the write first.
 */
export interface UnrecordedChange {
  /** What the target's tag points at now; null when the target has no such tag. */
  digest: string | null;
  /** When the target's storage last wrote the tag's current link (null when there is none). */
  modifiedAt: Date | null;
  /** When this replication first met it. */
  seenAt: number;
}

export type UnrecordedVerdict = 'wait' | 'allowed' | 'refused';

/**
 * Whether `change` may move or remove a tag the target changed on its own.
 * First it waits, up to `waitMs` after the target's write (or after it was
 * first met, for a delete, which leaves no time behind), for the
 * notification: once recorded, the change is ordered against it like any
 * other. A notification that never came is decided by the target's storage:
 * its write time orders the tag written there, and wins ties; a delete with no
 * notification (lost) yields to the change, as the other regions still hold
 * the tag.
 */
export function decideUnrecorded(change: PushOrder, unrecorded: UnrecordedChange, now: number, waitMs: number): UnrecordedVerdict {
  const since = unrecorded.modifiedAt?.getTime() ?? unrecorded.seenAt;
  if (now - since < waitMs) return 'wait';
  if (unrecorded.modifiedAt === null) return 'allowed';
  return laterThan(change, { occurredAt: unrecorded.modifiedAt.toISOString(), replicationId: Number.POSITIVE_INFINITY }) ? 'allowed' : 'refused';
}
