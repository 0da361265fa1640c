// Patch ids (patched()) of workflow changes that recorded histories must still replay across.

/** Backfill and reconcile start replicateChange (one activity per region) instead of replicatePush children. */
export const ONE_ACTIVITY_PER_REGION = 'one-activity-per-region';
