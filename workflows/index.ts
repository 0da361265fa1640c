// Every workflow the control worker runs.
export { reconcile } from './reconcile';
export { replicatePush } from './replicate';
export { replicateToRegion } from './replicate-region';
