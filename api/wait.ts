// Waiting for a region over HTTP, as a long poll:
//
//   GET /v1/wait?repository=R&tag=T | &digest=D &regions=a,b [&after=<version>] [&timeout=<seconds>]
//
// answers at once when the reference is replicated in every region asked, or
// failed in one of them, or its status differs from `after` (the version of
// the status the caller last saw, so a client can show progress); otherwise
// it holds the request until one of those happens or `timeout` (1-60 s,
// default 30) passes, and answers the current status. Clients loop until the
// state is not `waiting` (api/client.ts).
import type { FastifyInstance } from 'fastify';
import type { ResolvedConfig } from '../domain/config';
import { formatImageReference, parseDigest, parseRepositoryName, parseTag, type ImageReference } from '../domain/reference';
import { waitStatus, type PushRecord, type RegionState, type WaitStatus } from '../domain/wait';
import type { EventFeed } from '../store/event-feed';
import type { EventStore } from '../store/event-store';
import { ApiError } from './ingest';
import { newestPushOf, pushesOfDigest, regionsOf, type ReplicationRow } from '../store/projection-reads';
import { errors, type ParameterSchema } from './openapi';
import { liveRegionState, referenceQuery, validated } from './status';

const DEFAULT_TIMEOUT_SECONDS = 30;
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
    state: { type: 'string', enum: ['unobserved', 'pending', 'copying', 'replicated', 'failed'] },
    replicationId: { type: ['integer', 'null'] },
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

function parseWaitQuery(config: ResolvedConfig, query: WaitQuery): { reference: ImageReference; regions: string[]; timeoutMs: number } {
  const repository = validated(() => parseRepositoryName(query.repository));
  if ((query.tag === undefined) === (query.digest === undefined)) throw new ApiError(400, 'INVALID_QUERY', 'give exactly one of tag and digest');
  const reference: ImageReference =
    query.tag !== undefined ? { repository, tag: validated(() => parseTag(query.tag)) } : { repository, digest: validated(() => parseDigest(query.digest)) };
  const known = config.regions.map((region) => region.name);
  const regions = [...new Set(query.regions.split(',').filter(Boolean))];
  if (regions.length === 0) throw new ApiError(400, 'INVALID_QUERY', `give regions, a comma-separated list of ${known.join(', ')}`);
  const unknown = regions.filter((region) => !known.includes(region));
  if (unknown.length > 0) throw new ApiError(400, 'UNKNOWN_REGION', `unknown region(s) ${unknown.join(', ')}; Ferry knows ${known.join(', ')}`);
  return { reference, regions, timeoutMs: query.timeout * 1000 };
}

/** The pushes that can satisfy the wait: the newest push of the tag, or every push of the digest. */
async function candidatePushes(store: EventStore, reference: ImageReference): Promise<ReplicationRow[]> {
  if (reference.tag !== undefined) {
    const newest = await newestPushOf(store, reference);
    return newest ? [newest] : [];
  }
  return pushesOfDigest(store, reference.repository, reference.digest);
}

async function pushesOf(store: EventStore, reference: ImageReference): Promise<PushRecord[]> {
  const rows = await candidatePushes(store, reference);
  const regions = await regionsOf(store, rows.map((row) => row.id));
  return rows.map((row) => ({
    replicationId: Number(row.id),
    sourceRegion: row.source_region,
    observedAt: row.observed_at.toISOString(),
    bytesTotal: row.total_blob_bytes === null ? null : Number(row.total_blob_bytes),
    regions: Object.fromEntries(
      (regions.get(row.id) ?? []).map((region) => {
        const { state, bytesDone } = liveRegionState(region);
        return [region.region, { state: state as RegionState, bytesDone, replicatedAt: region.replicated_at?.toISOString() ?? null, failure: region.failure }];
      }),
    ),
  }));
}

export async function waitRoutes(app: FastifyInstance, { config, store, feed }: { config: ResolvedConfig; store: EventStore; feed: EventFeed }): Promise<void> {
  const doc = {
    summary:
      'long poll: answers once repository:tag (its newest push) or repository@digest is replicated in every region asked, fails in one, changes from `after`, or `timeout` passes',
    responses: { '200': { description: 'the status, state waiting when the timeout passed first', schema: waitStatusSchema }, ...errors(400) },
  };
  app.get<{ Querystring: WaitQuery }>('/v1/wait', { schema: { querystring: waitQuery }, config: { doc } }, async (request, reply): Promise<WaitResponse> => {
    const { reference, regions, timeoutMs } = parseWaitQuery(config, request.query);
    const label = formatImageReference(reference);
    const deadline = Date.now() + timeoutMs;
    // The caller hanging up ends the wait early.
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    for (;;) {
      const pushes = await pushesOf(store, reference);
      const status = waitStatus(regions, pushes);
      const remaining = deadline - Date.now();
      if (status.state !== 'waiting' || status.version !== request.query.after || remaining <= 0 || gone.signal.aborted) {
        return { reference: label, ...status };
      }
      const ids = new Set(pushes.map((push) => push.replicationId));
      await feed.next((change) => ids.has(change.replicationId) || change.repository === reference.repository, remaining, gone.signal);
    }
  });
}
