// The api's Prometheus metrics on GET /metrics: requests by route and status,
// notification events by outcome, and the replications in flight per region,
// read from the projections at scrape time (so any api replica reports the
// whole fleet). The workers serve their own: lag, bytes, skips, failures.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ResolvedConfig } from '../domain/config';
import type { EventStore } from '../store/event-store';
import { inFlightByRegion } from '../store/projection-reads';

export function createApiMetrics({ config, store }: { config: ResolvedConfig; store: EventStore }) {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  /** A gauge per configured region, read from the projections' replications in flight at scrape time. */
  const inFlightGauge = (name: string, help: string, pick: (region: { count: number; stalestSeconds: number }) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['region'],
      registers,
      async collect() {
        const regions = await inFlightByRegion(store);
        for (const region of config.regions) {
          const found = regions.get(region.name);
          this.set({ region: region.name }, found === undefined ? 0 : pick(found));
        }
      },
    });
  inFlightGauge('ferry_replications_in_flight', 'Replications not yet replicated or failed in a region (pending or copying), from the projections', (region) => region.count);
  inFlightGauge(
    'ferry_replication_stalest_progress_seconds',
    'Seconds since the stalest replication in flight in a region recorded progress (a blob landed, a phase passed); 0 with none in flight',
    (region) => region.stalestSeconds,
  );
  return {
    registry,
    notifications: new Counter({
      name: 'ferry_notification_events_total',
      help: 'Registry events received, by source region and outcome (accepted, duplicate, ignored)',
      labelNames: ['region', 'outcome'],
      registers,
    }),
    waitReads: new Counter({
      name: 'ferry_wait_reads_total',
      help: 'Reads of the store for long polls: one per change to a watched reference, shared by all its waiters',
      registers,
    }),
    waitsHeld: new Gauge({ name: 'ferry_waits_held', help: 'Long polls (GET /v1/wait) held now', registers }),
    waitsRefused: new Counter({ name: 'ferry_waits_refused_total', help: 'Long polls refused with 429 (the api or the token at its maximum)', registers }),
    requests: new Histogram({
      name: 'ferry_http_request_duration_seconds',
      help: 'API requests by route and status code (long polls included)',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60],
      registers,
    }),
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;

export async function metricsRoutes(app: FastifyInstance, { metrics }: { metrics: ApiMetrics }): Promise<void> {
  app.get('/metrics', { config: { access: 'metrics', doc: { summary: 'Prometheus metrics (text exposition format)', responses: { '200': { description: 'metrics' } } } } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
