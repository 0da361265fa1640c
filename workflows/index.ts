// Every workflow the control worker runs.
export { backfill } from './backfill';
export { reconcile } from './reconcile';
export { replicatePush } from './replicate';
export { replicateToRegion } from './replicate-region';
