// Every workflow the control worker runs.
export { backfill } from './backfill';
export { reconcile } from './reconcile';
export { replicateChange } from './replicate-change';
// Started by earlier code; registered until their executions drain.
export { replicatePush } from './replicate';
export { replicateToRegion } from './replicate-region';
