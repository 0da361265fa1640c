// Every workflow the control worker runs.
export { replicatePush } from './replicate';
export { replicateToRegion } from './replicate-region';
