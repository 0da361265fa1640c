// What an operator runs, over HTTP, with an admin token: no database or
// Temporal access needed on the operator's machine (the CLI calls these when
// given --api, cli/api-access.ts).
//
//   GET  /v1/admin/stuck?olderThan=10m    the report `ferry stuck` prints (api/stuck-replications.ts)
//   POST /v1/admin/reconcile              body { repositories?: [names] }: starts a reconcile
//                                         (every repository without a list) and waits for it up
//                                         to RECONCILE_WAIT_SECONDS: 200 with its report, or 202
//                                         while it still runs
//   POST /v1/admin/backfill               body { repositories: [names] } | { all: true }, and
//                                         optionally to: [regions]: starts a backfill, 202 at once
//   GET  /v1/admin/runs?workflowId=&wait= a reconcile or backfill: 202 while it runs (held up to
//                                         `wait` seconds for it to finish), 200 with its report
//                                         or failure once closed
//
// Runs are found by workflow id in a query parameter, not a path segment: a
// backfill's id names its repositories, and the router refuses path segments
// over 100 characters. A run answer names its own URL (`location`, and the
// Location header on a 202). A bad body is a 400 and starts nothing.
import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ResolvedConfig } from '../domain/config';
import { parseDuration } from '../domain/duration';
import { backfillScopeOf, controlRun, InvalidScopeError, outcomeOf, reconcileScopeOf, startBackfill, startReconcile, UnknownRegionError, type ControlRun } from './control-workflows';
import { ApiError } from './ingest';
import { errors } from './openapi';
import { finite, validated } from './status';
import { stuckReport } from './stuck-replications';

/** How long POST /v1/admin/reconcile holds its answer for the report: a reconcile of a few repositories takes seconds. */
export const RECONCILE_WAIT_SECONDS = 30;
const MAX_WAIT_SECONDS = 60;

export interface AdminDeps {
  config: ResolvedConfig;
  temporal: Client;
}

/** The fields of a JSON object body (none when there is no body); a field not in `allowed` is refused. */
function bodyFields(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'INVALID_BODY', 'the body must be a JSON object');
  const unknown = Object.keys(body).filter((field) => !allowed.includes(field));
  if (unknown.length > 0) throw new ApiError(400, 'INVALID_BODY', `unknown field(s) ${unknown.join(', ')}; the body may hold ${allowed.join(', ')}`);
  return body as Record<string, unknown>;
}

/** A scope parser's refusal as the 400 it is: a bad repository name, an unknown region, a malformed list. */
function scopeOf<T>(parse: () => T): T {
  return validated(() => {
    try {
      return parse();
    } catch (error) {
      if (error instanceof UnknownRegionError) throw new ApiError(400, 'UNKNOWN_REGION', error.message);
      if (error instanceof InvalidScopeError) throw new ApiError(400, 'INVALID_BODY', error.message);
      throw error;
    }
  });
}

export function reconcileRequest(body: unknown) {
  return scopeOf(() => reconcileScopeOf(bodyFields(body, ['repositories'])));
}

export function backfillRequest(body: unknown, regions: readonly string[]) {
  const fields = bodyFields(body, ['repositories', 'all', 'to']);
  if (fields.all !== undefined && fields.all !== true) throw new ApiError(400, 'INVALID_BODY', 'all must be true when given');
  if ((fields.all === true) === (fields.repositories !== undefined)) throw new ApiError(400, 'INVALID_BODY', 'give repositories (one or more) or all: true');
  return scopeOf(() => backfillScopeOf(fields, regions));
}

/** Milliseconds of `olderThan` (`90s`, `10m`, `1h30m`). */
export function olderThanOf(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new ApiError(400, 'INVALID_QUERY', `olderThan: ${(error as Error).message}`);
  }
}

export function runLocation(workflowId: string): string {
  return `/v1/admin/runs?${new URLSearchParams({ workflowId })}`;
}

/** A run's answer: 202 with a Location while it runs, 200 once it has closed. */
function answer<T extends object>(reply: FastifyReply, run: ControlRun, extra?: T) {
  const location = runLocation(run.workflowId);
  if (run.status === 'running') void reply.code(202).header('location', location);
  return { ...run, location, ...extra };
}

const nullable = (schema: object) => ({ anyOf: [schema, { type: 'null' }] });

/** A JSON schema: a list of objects with these properties. */
const listOf = (properties: object, description?: string) => ({ type: 'array', ...(description ? { description } : {}), items: { type: 'object', properties } });

const reconcileReportSchema = {
  type: 'object',
  properties: {
    drifts: { type: 'integer', description: 'tags whose regions disagreed with the event store' },
    repaired: listOf(
      {
        kind: { type: 'string', enum: ['push', 'refill', 'delete-tag'] },
        region: { type: 'string', description: 'push: the region whose tag Ferry had not heard of; refill: the region copied from' },
        target: { type: 'string', description: 'refill: the region that lost the tag' },
        repository: { type: 'string' },
        tag: { type: 'string' },
        digest: { type: 'string', description: 'with kind push' },
        occurredAt: { type: 'string', format: 'date-time' },
        replicationId: { type: 'integer' },
        workflowId: { type: 'string' },
      },
      'one replication started per drift: the first 100',
    ),
    more: { type: 'integer', description: 'replications started beyond those listed' },
    halted: listOf(
      { region: { type: 'string' }, missing: { type: 'integer' }, recorded: { type: 'integer' } },
      'regions whose tags mostly vanished (reconcile.haltShare): nothing was done from or into them',
    ),
  },
};

const backfillReportSchema = {
  type: 'object',
  properties: {
    planned: { type: 'integer', description: 'tags to spread' },
    alreadyPresent: { type: 'integer', description: 'tags every region asked already held' },
    replicated: { type: 'integer' },
    failed: listOf({ reference: { type: 'string' }, reason: { type: 'string' } }, 'the first 100 failures'),
    moreFailed: { type: 'integer', description: 'failures beyond those listed' },
    remaining: { type: 'integer' },
  },
};

const runSchema = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: ['reconcile', 'backfill'] },
    workflowId: { type: 'string', description: 'the workflow in the Temporal UI' },
    status: { type: 'string', enum: ['running', 'completed', 'failed'] },
    report: nullable({ oneOf: [reconcileReportSchema, backfillReportSchema] }),
    failure: { type: ['string', 'null'] },
    location: { type: 'string', description: 'where to ask after this run: GET /v1/admin/runs?workflowId=…' },
  },
};

const dateTime = { type: ['string', 'null'], format: 'date-time' };

const stuckActivityProperties = {
  activityType: { type: 'string' },
  attempt: { type: 'integer' },
  maximumAttempts: { type: 'integer', description: '0: without limit' },
  state: { type: 'string' },
  lastFailure: { type: ['string', 'null'] },
  nextRetryAt: dateTime,
  lastHeartbeatAt: dateTime,
  progress: { type: ['object', 'null'], description: 'the region activity heartbeat: phase, blobs and bytes done, blobs moving' },
};

const stuckRegionProperties = {
  region: { type: 'string', description: 'a target region, `<source> (source)` or `control`' },
  workflowId: { type: 'string' },
  phase: { type: ['string', 'null'] },
  lastProgressAt: dateTime,
  note: { type: ['string', 'null'], description: 'why nothing runs when no activity is pending' },
  activities: listOf(stuckActivityProperties),
};

const stuckReportSchema = {
  type: 'object',
  properties: {
    olderThanMs: { type: 'integer' },
    now: { type: 'string', format: 'date-time' },
    replications: listOf(
      {
        workflowId: { type: 'string' },
        reference: { type: 'string' },
        phase: { type: ['string', 'null'] },
        pendingRegions: { type: 'array', items: { type: 'string' } },
        lastProgressAt: dateTime,
        regions: listOf(stuckRegionProperties),
      },
      'oldest progress first',
    ),
  },
};

export async function adminRoutes(app: FastifyInstance, { config, temporal }: AdminDeps): Promise<void> {
  const regions = config.regions.map((region) => region.name);

  app.get<{ Querystring: { olderThan: string } }>(
    '/v1/admin/stuck',
    {
      schema: { querystring: { type: 'object', properties: { olderThan: { type: 'string', default: '10m', description: 'without progress for this long: 90s, 10m, 1h30m, 2d' } } } },
      config: {
        access: 'admin',
        doc: {
          summary: 'running replications without progress for olderThan: the region each waits on, its pending activity, attempt and last failure (`ferry stuck`)',
          responses: { '200': { description: 'the stuck replications', schema: stuckReportSchema }, ...errors(400) },
        },
      },
    },
    async (request) => stuckReport(temporal, olderThanOf(request.query.olderThan)),
  );

  app.post(
    '/v1/admin/reconcile',
    {
      config: {
        access: 'admin',
        doc: {
          summary: `start a reconcile (\`ferry reconcile\`) of the repositories in the JSON body { "repositories": [names] }, of every one without; answers its report, or 202 if it runs over ${RECONCILE_WAIT_SECONDS} s`,
          responses: { '200': { description: 'the reconcile finished (completed or failed)', schema: runSchema }, '202': { description: 'still running: ask at location', schema: runSchema }, ...errors(400) },
        },
      },
    },
    async (request, reply) => {
      const handle = await startReconcile(temporal, reconcileRequest(request.body));
      request.log.info({ workflowId: handle.workflowId }, 'reconcile started');
      return answer(reply, await outcomeOf(temporal, 'reconcile', handle, Date.now() + RECONCILE_WAIT_SECONDS * 1000));
    },
  );

  app.post(
    '/v1/admin/backfill',
    {
      config: {
        access: 'admin',
        doc: {
          summary: 'start a backfill (`ferry backfill`): JSON body { "repositories": [names] } or { "all": true }, and "to": [regions] (default every region)',
          responses: { '202': { description: 'started: the run, and the scope it runs with', schema: { ...runSchema, properties: { ...runSchema.properties, scope: { type: 'object' } } } }, ...errors(400) },
        },
      },
    },
    async (request, reply) => {
      const scope = backfillRequest(request.body, regions);
      const handle = await startBackfill(temporal, scope);
      request.log.info({ workflowId: handle.workflowId }, 'backfill started');
      return answer(reply, { kind: 'backfill', workflowId: handle.workflowId, status: 'running', report: null, failure: null }, { scope });
    },
  );

  app.get<{ Querystring: { workflowId: string; wait: number } }>(
    '/v1/admin/runs',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            workflowId: { type: 'string', description: 'the id a POST answered' },
            wait: { type: 'integer', minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0, description: 'seconds to hold the answer while the run is still going' },
          },
          required: ['workflowId'],
        },
      },
      config: {
        access: 'admin',
        doc: {
          summary: 'a reconcile or backfill: running, or its report or failure',
          responses: { '200': { description: 'closed', schema: runSchema }, '202': { description: 'still running', schema: runSchema }, ...errors(400, 404) },
        },
      },
    },
    async (request, reply) => {
      const { workflowId, wait } = request.query;
      const run = await controlRun(temporal, workflowId, finite('wait', wait) * 1000);
      if (run === null) throw new ApiError(404, 'NOT_FOUND', `no reconcile or backfill has workflow id ${JSON.stringify(workflowId)}`);
      return answer(reply, run);
    },
  );
}
