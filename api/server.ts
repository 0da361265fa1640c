// The HTTP API: one Fastify instance, route groups as plugins, one error shape
// `{ error: { code, message } }` with a stable code and a human sentence.
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { EventFeed } from '../store/event-feed';
import type { EventStore } from '../store/event-store';
import { adminRoutes } from './admin';
import { installAuth } from './auth';
import { ApiError, ingestRoutes, UNSUPPORTED_MEDIA_TYPE_MESSAGE } from './ingest';
import { metricsRoutes, type ApiMetrics } from './metrics';
import { OpenApiDocument } from './openapi';
import type { ReplicationStarter } from './accept-event';
import { statusRoutes } from './status';
import { waitRoutes } from './wait';

export interface ApiDeps extends ReplicationStarter {
  /** The store on its own small pool, for status, lists and waits: reads never take ingest's connections. */
  reads: EventStore;
  logger: Logger;
  feed: EventFeed;
  metrics: ApiMetrics;
}

function asApiError(error: FastifyError | ApiError | Error): ApiError {
  if (error instanceof ApiError) return error;
  const fastifyError = error as FastifyError;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'BODY_TOO_LARGE', 'the body is larger than ingest.maxBodyBytes');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', UNSUPPORTED_MEDIA_TYPE_MESSAGE);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'MALFORMED_ENVELOPE', 'the body is not valid JSON');
  }
  // A query or path parameter its route's schema refused.
  if (fastifyError.validation) return new ApiError(400, 'INVALID_QUERY', fastifyError.message);
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode < 500) {
    return new ApiError(fastifyError.statusCode, fastifyError.code ?? 'BAD_REQUEST', fastifyError.message);
  }
  // Postgres or Temporal unreachable: the sender should retry, and nothing was acknowledged.
  return new ApiError(503, 'UNAVAILABLE', 'Ferry cannot record this right now; retry');
}

/** The error shape, for a connection Fastify never made a request of (headers too large, a malformed request line). */
function clientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) return;
  const [status, reason, code, message] =
    error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'the request headers are too large'] : [400, 'Bad Request', 'BAD_REQUEST', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export async function buildServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.ingest.maxBodyBytes,
    // A URL the router cannot decode answers in the error shape too.
    frameworkErrors: (error, _request, reply) => void (reply as FastifyReply).code(400).send({ error: { code: 'INVALID_URL', message: error.message } }),
    clientErrorHandler: clientError,
  });
  app.setNotFoundHandler((request, reply) => void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }));
  app.setErrorHandler((error, request, reply) => {
    const apiError = asApiError(error as FastifyError);
    if (apiError.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    void reply.code(apiError.statusCode).send({ error: { code: apiError.code, message: apiError.message } });
  });
  const openApi = new OpenApiDocument();
  app.addHook('onRoute', openApi.onRoute);
  const auth = installAuth(app, deps.config.auth.tokens, deps.config.regions.map((region) => region.name));
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.requests.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/healthz', { config: { access: 'public', doc: { summary: 'liveness', responses: { '200': { description: 'up' } } } } }, async () => ({ ok: true }));
  let document: object | undefined;
  app.get('/v1/openapi.json', { config: { access: 'public', doc: { summary: 'this document', responses: { '200': { description: 'OpenAPI 3.1' } } } } }, async () => (document ??= openApi.build()));
  await app.register(async (scope) => ingestRoutes(scope, deps));
  await app.register(async (scope) => statusRoutes(scope, { store: deps.reads, regions: deps.config.regions.map((region) => region.name) }));
  await app.register(async (scope) => waitRoutes(scope, deps));
  await app.register(async (scope) => metricsRoutes(scope, deps));
  await app.register(async (scope) => adminRoutes(scope, deps));
  await app.ready();
  const undocumented = openApi.undocumented();
  if (undocumented.length > 0) throw new Error(`routes without a doc for /v1/openapi.json: ${undocumented.join(', ')}`);
  const undeclared = auth.undeclared();
  if (undeclared.length > 0) throw new Error(`routes that do not say who may call them (config.access): ${undeclared.join(', ')}`);
  return app;
}
