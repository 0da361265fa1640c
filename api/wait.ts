// Waiting for a region over HTTP, as a long poll:
//
//   GET /v1/wait?repository=R&tag=T | &digest=D &regions=a,b [&after=<version>] [&timeout=<seconds>]
//
// answers at once when the reference is replicated in every region asked, or
// failed in one of them, or its status differs from `after` (the version of
// the status the caller last saw, so a client can show progress); otherwise
// it holds the request until one of those happens or `timeout` (1-60 s,
// default 30) passes, and answers the current status. Clients loop until the
// state is not `waiting` (api/client.ts). Waiters of one reference share one
// read per change (api/wait-hub.ts); beyond ingest.waits limits a wait is
// refused with 429 and Retry-After.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ResolvedConfig } from '../domain/config';
import { formatImageReference, parseDigest, parseRepositoryName, parseTag, type ImageReference } from '../domain/reference';
import { waitStatus, type PushRecord, type RegionState, type WaitStatus } from '../domain/wait';
import type { EventFeed } from '../store/event-feed';
import type { EventStore } from '../store/event-store';
import { ApiError } from './ingest';
import type { ApiMetrics } from './metrics';
import { RETRY_AFTER_SECONDS, TooManyWaitsError, WaitHub } from './wait-hub';
import { newestPushOf, pushesOfDigest, regionsOf, replicationsByIds, type RegionRow, type ReplicationRow } from '../store/projection-reads';
import { errors, type ParameterSchema } from './openapi';
import { finite, liveRegionState, readable, referenceQuery, validated } from './status';

const DEFAULT_TIMEOUT_SECONDS = 30;
/** How many supersessions a tag wait follows in one region; more is a tag changing faster than anyone can wait on. */
const MAX_FOLLOWED = 8;
const MAX_TIMEOUT_SECONDS = 60;

export interface WaitQuery {
  repository: string;
  tag?: string;
  digest?: string;
  regions: string;
  after?: string;
  timeout: number;
}

const waitQuery: ParameterSchema = {
  type: 'object',
  properties: {
    ...referenceQuery,
    regions: { type: 'string', description: 'comma-separated regions' },
    after: { type: 'string', description: 'the version last seen: hold until the status differs' },
    timeout: { type: 'number', minimum: 0, maximum: MAX_TIMEOUT_SECONDS, default: DEFAULT_TIMEOUT_SECONDS, description: 'seconds to hold the request' },
  },
  required: ['repository', 'regions'],
};

const regionProgressSchema = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['unobserved', 'excluded', 'pending', 'copying', 'replicated', 'superseded', 'failed'] },
    replicationId: { type: ['integer', 'null'], description: 'the change whose progress this is: the newest push, or the change that superseded it here' },
    supersededBy: { type: ['integer', 'null'], description: 'with state superseded: the change holding the tag here, when known' },
    via: { type: 'array', items: { type: 'integer' }, description: 'pushes of the tag passed over here, each superseded by the next' },
    bytesDone: { type: 'integer' },
    bytesTotal: { type: ['integer', 'null'] },
    replicatedAt: { type: ['string', 'null'], format: 'date-time' },
    lagSeconds: { type: ['number', 'null'] },
    failure: { type: ['string', 'null'] },
  },
};

const waitStatusSchema = {
  type: 'object',
  properties: {
    reference: { type: 'string' },
    state: { type: 'string', enum: ['waiting', 'replicated', 'failed'] },
    version: { type: 'string', description: 'pass as `after` to hold the next request until something changes' },
    regions: { type: 'object', additionalProperties: regionProgressSchema },
  },
};

export interface WaitResponse extends WaitStatus {
  reference: string;
}

function parseWaitQuery(config: ResolvedConfig, request: FastifyRequest<{ Querystring: WaitQuery }>): { reference: ImageReference; regions: string[]; timeoutMs: number } {
  const query = request.query;
  const repository = readable(request, validated(() => parseRepositoryName(query.repository)));
  if ((query.tag === undefined) === (query.digest === undefined)) throw new ApiError(400, 'INVALID_QUERY', 'give exactly one of tag and digest');
  const reference: ImageReference =
    query.tag !== undefined ? { repository, tag: validated(() => parseTag(query.tag)) } : { repository, digest: validated(() => parseDigest(query.digest)) };
  const known = config.regions.map((region) => region.name);
  const regions = [...new Set(query.regions.split(',').filter(Boolean))];
  if (regions.length === 0) throw new ApiError(400, 'INVALID_QUERY', `give regions, a comma-separated list of ${known.join(', ')}`);
  const unknown = regions.filter((region) => !known.includes(region));
  if (unknown.length > 0) throw new ApiError(400, 'UNKNOWN_REGION', `unknown region(s) ${unknown.join(', ')}; Ferry knows ${known.join(', ')}`);
  return { reference, regions, timeoutMs: finite('timeout', query.timeout) * 1000 };
}

/**
 * The changes that can satisfy the wait, with their regions: every push of
 * the digest; or the newest push of the tag, then the changes its superseded
 * regions name, and theirs, up to MAX_FOLLOWED rounds.
 */
async function candidates(store: EventStore, reference: ImageReference): Promise<{ rows: ReplicationRow[]; regions: Map<string, RegionRow[]> }> {
  if (reference.tag === undefined) {
    const rows = await pushesOfDigest(store, reference.repository, reference.digest);
    return { rows, regions: await regionsOf(store, rows.map((row) => row.id)) };
  }
  const newest = await newestPushOf(store, reference);
  const rows = newest ? [newest] : [];
  const regions = await regionsOf(store, rows.map((row) => row.id));
  for (let round = 0; round < MAX_FOLLOWED; round++) {
    const known = new Set(rows.map((row) => row.id));
    const named = [...regions.values()].flat().flatMap((region) => (region.superseded_by !== null && !known.has(region.superseded_by) ? [region.superseded_by] : []));
    if (named.length === 0) break;
    const found = await replicationsByIds(store, [...new Set(named)]);
    rows.push(...found);
    for (const [id, rowsOfRegion] of await regionsOf(store, found.map((row) => row.id))) regions.set(id, rowsOfRegion);
    if (found.length === 0) break;
  }
  return { rows, regions };
}

async function pushesOf(store: EventStore, reference: ImageReference): Promise<PushRecord[]> {
  const { rows, regions } = await candidates(store, reference);
  return rows.map((row) => ({
    replicationId: Number(row.id),
    kind: row.kind as PushRecord['kind'],
    sourceRegion: row.source_region,
    observedAt: row.observed_at.toISOString(),
    bytesTotal: row.total_blob_bytes === null ? null : Number(row.total_blob_bytes),
    regions: Object.fromEntries(
      (regions.get(row.id) ?? []).map((region) => {
        const { state, bytesDone } = liveRegionState(region);
        const supersededBy = region.superseded_by === null ? null : Number(region.superseded_by);
        return [region.region, { state: state as RegionState, bytesDone, replicatedAt: region.replicated_at?.toISOString() ?? null, failure: region.failure, supersededBy }];
      }),
    ),
  }));
}

export async function waitRoutes(
  app: FastifyInstance,
  { config, reads, feed, metrics }: { config: ResolvedConfig; reads: EventStore; feed: EventFeed; metrics: ApiMetrics },
): Promise<void> {
  const hub = new WaitHub(
    feed,
    (reference) => {
      metrics.waitReads.inc();
      return pushesOf(reads, reference);
    },
    config.ingest.waits,
    (held) => metrics.waitsHeld.set(held),
  );
  app.addHook('onClose', async () => hub.close());
  const doc = {
    summary:
      'long poll: answers once repository:tag (its newest push) or repository@digest is replicated in every region asked, fails in one, changes from `after`, or `timeout` passes',
    responses: {
      '200': { description: 'the status, state waiting when the timeout passed first', schema: waitStatusSchema },
      ...errors(400, 429),
    },
  };
  app.get<{ Querystring: WaitQuery }>('/v1/wait', { schema: { querystring: waitQuery }, config: { doc, access: 'read' } }, async (request, reply): Promise<WaitResponse> => {
    const { reference, regions, timeoutMs } = parseWaitQuery(config, request);
    const label = formatImageReference(reference);
    const deadline = Date.now() + timeoutMs;
    const { after } = request.query;
    // The caller hanging up ends the wait early.
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    try {
      return await hub.hold(request.token!.name, reference, async (watch) => {
        for (;;) {
          const status = waitStatus(regions, await watch.current(), reference.tag !== undefined ? 'tag' : 'digest');
          const remaining = deadline - Date.now();
          // Without `after`, only an outcome answers before the timeout; with it, any change does.
          const changed = after !== undefined && status.version !== after;
          if (status.state !== 'waiting' || changed || remaining <= 0 || gone.signal.aborted) return { reference: label, ...status };
          await watch.changed(remaining, gone.signal);
        }
      });
    } catch (error) {
      if (error instanceof TooManyWaitsError) {
        metrics.waitsRefused.inc();
        void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      }
      throw error;
    }
  });
}
