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
