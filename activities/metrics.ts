// The worker's Prometheus metrics, served on /metrics by workers/telemetry.ts
// beside the Temporal SDK's own runtime metrics. Counted where the work is
// recorded, and only when the event store took the event as new, so a retried
// activity never counts twice.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Push observed → region announced: seconds, from a small image on an idle stack to a slow multi-GB layer. */
const LAG_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 900, 3600];

export function createWorkerMetrics() {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    replicationLag: new Histogram({
      name: 'ferry_replication_lag_seconds',
      help: 'Push observed by Ferry until the region was announced replicated (pull checked, caches purged)',
      labelNames: ['region'],
      buckets: LAG_BUCKETS,
      registers,
    }),
    blobsCopied: new Counter({ name: 'ferry_blobs_copied_total', help: 'Blobs copied into a region', labelNames: ['region', 'method'], registers }),
    blobBytesCopied: new Counter({ name: 'ferry_blob_bytes_copied_total', help: 'Bytes of blobs copied into a region', labelNames: ['region', 'method'], registers }),
    blobClaimWaits: new Counter({
      name: 'ferry_blob_claim_waits_total',
      help: 'Blob copies that waited for another worker copying the same blob into the same region',
      labelNames: ['region'],
      registers,
    }),
    blobsSkipped: new Counter({ name: 'ferry_blobs_skipped_total', help: 'Blobs already present in the region, not copied', labelNames: ['region'], registers }),
    blobBytesSkipped: new Counter({ name: 'ferry_blob_bytes_skipped_total', help: 'Bytes of blobs already present, not copied', labelNames: ['region'], registers }),
    regionFailures: new Counter({
      name: 'ferry_replication_failures_total',
      help: 'Replications that failed for good in a region, by reason (the failure type)',
      labelNames: ['region', 'reason'],
      registers,
    }),
    activityFailures: new Counter({
      name: 'ferry_activity_failures_total',
      help: 'Failed activity attempts (each retry counts), by activity and reason (error code or type)',
      labelNames: ['activity', 'reason'],
      registers,
    }),
    activitiesInFlight: new Gauge({ name: 'ferry_activities_in_flight', help: 'Activities running in this worker', labelNames: ['activity'], registers }),
    reconcileHalted: new Gauge({
      name: 'ferry_reconcile_halted',
      help: "1 while the last reconcile scan found too many of a region's tags gone (an emptied or wrong bucket) and did nothing from or into it",
      labelNames: ['region'],
      registers,
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
