// What a worker tells its operators: structured JSON logs (pino) with the
// push, region and digest on every activity line, and Prometheus metrics on
// /metrics: Ferry's own (activities/metrics.ts) followed by the Temporal
// SDK's runtime metrics, which the SDK serves on a loopback port of its own.
import { createServer, type Server } from 'node:http';
import type { Context } from '@temporalio/activity';
import { DefaultLogger, Runtime, makeTelemetryFilterString, type ActivityInterceptors, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { WorkerMetrics } from '../activities/metrics';
import type { ResolvedConfig } from '../domain/config';

const pinoLevel: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** Routes the SDK's logs (and core's WARN and above) into pino, and turns on its Prometheus exporter. */
export function installRuntime(config: ResolvedConfig, logger: Logger): void {
  Runtime.install({
    logger: new DefaultLogger('INFO', ({ level, message, meta }) => logger[pinoLevel[level]](meta ?? {}, message)),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      // Loopback only: the worker's own /metrics serves these to the world.
      metrics: { prometheus: { bindAddress: `127.0.0.1:${config.worker.metrics.runtimePort}`, useSecondsForDurations: true } },
    },
  });
}

/** The fields of an activity's input that say which push, region and digest it works on. */
export function logAttributesOf(input: unknown): Record<string, unknown> {
  if (typeof input !== 'object' || input === null) return {};
  const fields = input as Record<string, unknown>;
  const request = (typeof fields.request === 'object' && fields.request !== null ? fields.request : {}) as Record<string, unknown>;
  const attributes = {
    replicationId: fields.replicationId ?? request.replicationId,
    region: fields.targetRegion ?? fields.region,
    sourceRegion: fields.sourceRegion ?? request.sourceRegion,
    repository: fields.repository ?? request.repository,
    digest: fields.digest ?? request.digest,
  };
  return Object.fromEntries(Object.entries(attributes).filter(([, value]) => value !== undefined && value !== null));
}

/** A short, bounded label for why an attempt failed: a failure type, a system error code, or the error's name. */
export function failureReason(error: unknown): string {
  const seen = error as { type?: unknown; code?: unknown; name?: unknown; cause?: { code?: unknown } } | null;
  const reason = seen?.type ?? seen?.code ?? seen?.cause?.code ?? seen?.name;
  return typeof reason === 'string' && /^[\w.-]{1,64}$/.test(reason) ? reason : 'Error';
}

/** Per activity execution: log attributes, failure and in-flight metrics. */
export function activityInterceptors(metrics: WorkerMetrics): (context: Context) => ActivityInterceptors {
  return (context) => {
    let attributes: Record<string, unknown> = {};
    const activity = context.info.activityType;
    return {
      inbound: {
        async execute(input, next) {
          attributes = logAttributesOf(input.args[0]);
          metrics.activitiesInFlight.inc({ activity });
          try {
            return await next(input);
          } catch (error) {
            metrics.activityFailures.inc({ activity, reason: failureReason(error) });
            throw error;
          } finally {
            metrics.activitiesInFlight.dec({ activity });
          }
        },
      },
      outbound: {
        // The task token is an opaque blob of base64 on every line; the workflow and activity ids say the same.
        getLogAttributes: (input, next) => Object.fromEntries(Object.entries(next({ ...input, ...attributes })).filter(([key]) => key !== 'taskToken')),
      },
    };
  };
}

/** GET /metrics: Ferry's metrics, then the SDK's (absent, with a comment, while its exporter is not up). */
export function startMetricsServer(config: ResolvedConfig, metrics: WorkerMetrics, logger: Logger): Server {
  const { host, port, runtimePort } = config.worker.metrics;
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/metrics') {
      response.writeHead(404).end('only GET /metrics here\n');
      return;
    }
    void (async () => {
      const ours = await metrics.registry.metrics();
      const runtime = await fetch(`http://127.0.0.1:${runtimePort}/metrics`)
        .then((answer) => answer.text())
        .catch((error: Error) => `# Temporal runtime metrics unavailable: ${error.message}\n`);
      response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(`${ours}\n${runtime}`);
    })();
  });
  // A taken port costs the metrics, not the replications this worker runs.
  server.once('error', (error) => logger.error({ err: error }, `cannot serve metrics on ${host}:${port}; replicating without them`));
  server.listen(port, host, () => logger.info({ address: `http://${host}:${port}/metrics` }, 'metrics served'));
  return server;
}
