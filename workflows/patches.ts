// Patch ids (patched()) of workflow changes that recorded histories must still replay across.

/** Backfill and reconcile start replicateChange (one activity per region) instead of replicatePush children. */
export const ONE_ACTIVITY_PER_REGION = 'one-activity-per-region';

/** Reconcile and backfill keep their plans in Postgres and page through them, instead of carrying them in payloads. */
export const PAGED_PLANS = 'paged-plans';
