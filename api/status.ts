// Where a replication stands, served from the Postgres projections:
//
//   GET /v1/status?repository=R&tag=T | &digest=D   the newest push of that reference, region by region
//   GET /v1/replications?repository=&state=&region=&limit=&before=
//                                                   replications, newest first, paginated by id
//   GET /v1/replications/:id/events                 the event history of one replication
//
// Each needs a read token (api/auth.ts): a repository outside its prefixes
// answers 403, the same whether or not it was ever pushed; lists hold only
// the token's repositories; another team's replication id answers 404, as if
// it did not exist.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { formatImageReference, InvalidReferenceError, parseDigest, parseRepositoryName, parseTag, type ImageReference, type RepositoryName } from '../domain/reference';
import type { EventStore } from '../store/event-store';
import { newestPushOf, regionsOf, replicationsByIds, replicationsPage, type RegionRow, type ReplicationRow } from '../store/projection-reads';
import { readGrantOf } from './auth';
import { ApiError } from './ingest';
import { errors, type ParameterSchema } from './openapi';

const REGION_STATES = ['pending', 'copying', 'replicated', 'superseded', 'failed'] as const;

const regionStatusSchema = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: REGION_STATES },
    blobsCopied: { type: 'integer' },
    blobsSkipped: { type: 'integer' },
    bytesCopied: { type: 'integer', description: 'bytes of the blobs this replication copied into the region' },
    bytesSkipped: { type: 'integer', description: 'bytes of the blobs the region already held' },
    bytesDone: { type: 'integer', description: 'copied and skipped, or more while a large blob is moving' },
    bytesTotal: { type: ['integer', 'null'] },
    tagMoved: { type: 'boolean' },
    supersededBy: { type: ['integer', 'null'], description: 'with state superseded (the digest landed, a newer change holds the tag here): that change, when known' },
    replicatedAt: { type: ['string', 'null'], format: 'date-time' },
    lagSeconds: { type: ['number', 'null'], description: 'push observed → replicated in this region' },
    failure: { type: ['string', 'null'] },
  },
};

const replicationSchema = {
  type: 'object',
  properties: {
    replicationId: { type: 'integer' },
    kind: { type: 'string', enum: ['push', 'delete-digest', 'delete-tag'] },
    repository: { type: 'string' },
    tag: { type: ['string', 'null'] },
    digest: { type: ['string', 'null'] },
    sourceRegion: { type: 'string' },
    workflowId: { type: 'string', description: 'the workflow in the Temporal UI' },
    observedAt: { type: 'string', format: 'date-time' },
    outcome: { type: 'string', enum: ['pending', 'succeeded', 'partial', 'failed'] },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    regions: { type: 'object', additionalProperties: regionStatusSchema },
    notReplicatedInto: {
      type: 'array',
      items: { type: 'string' },
      description: "configured regions this change is not replicated into: a replication rule or the region's sources keep it out (or the region was added since); a backfill brings it once they let it in",
    },
  },
};

/** repository with exactly one of tag and digest: the query of /v1/status and /v1/wait. */
export const referenceQuery = {
  repository: { type: 'string', description: 'repository name' },
  tag: { type: 'string', description: 'a tag (or give digest)' },
  digest: { type: 'string', description: 'a digest (or give tag)' },
} as const;

const replicationsQuery: ParameterSchema = {
  type: 'object',
  properties: {
    repository: { type: 'string', description: 'only this repository' },
    state: { type: 'string', enum: REGION_STATES, description: 'only those with a region in this state' },
    region: { type: 'string', description: 'only those with this target region' },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50, description: 'page size' },
    before: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'page cursor: replication id' },
  },
};

/** A region's state and bytes done: what landed, or more while a large blob is moving (then it is copying). */
export function liveRegionState(row: RegionRow): { state: string; bytesDone: number } {
  const landed = Number(row.bytes_copied) + Number(row.bytes_skipped);
  const running = row.state === 'pending' || row.state === 'copying';
  const moving = running ? Number(row.bytes_in_flight ?? 0) : 0;
  return { state: running && moving > 0 ? 'copying' : row.state, bytesDone: Math.max(landed, moving) };
}

/** The repository, refused (403) when the request's token may not read it. */
export function readable(request: FastifyRequest, repository: RepositoryName): RepositoryName {
  if (!readGrantOf(request).covers(repository)) throw new ApiError(403, 'FORBIDDEN', `token "${request.token!.name}" may not read ${repository}`);
  return repository;
}

/**
 * A number a route's schema admitted, refused unless finite: Ajv coerces "Infinity" and "1e999" to
 * Infinity and then skips minimum and maximum (ajv-validator/ajv#2212, fastify/fastify#6718).
 */
export function finite(name: string, value: number): number {
  if (!Number.isFinite(value)) throw new ApiError(400, 'INVALID_QUERY', `${name} must be a finite number`);
  return value;
}

export function validated<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InvalidReferenceError) throw new ApiError(400, 'INVALID_REFERENCE', error.message);
    throw error;
  }
}

function regionStatus(replication: ReplicationRow, row: RegionRow) {
  const { state, bytesDone } = liveRegionState(row);
  return {
    state,
    blobsCopied: row.blobs_copied,
    blobsSkipped: row.blobs_skipped,
    bytesCopied: Number(row.bytes_copied),
    bytesSkipped: Number(row.bytes_skipped),
    bytesDone,
    bytesTotal: replication.total_blob_bytes === null ? null : Number(replication.total_blob_bytes),
    tagMoved: row.tag_moved,
    supersededBy: row.superseded_by === null ? null : Number(row.superseded_by),
    replicatedAt: row.replicated_at?.toISOString() ?? null,
    lagSeconds: row.replicated_at ? (row.replicated_at.getTime() - replication.observed_at.getTime()) / 1000 : null,
    failure: row.failure,
  };
}

function replicationView(replication: ReplicationRow, regions: RegionRow[], configured: readonly string[]) {
  const targeted = new Set([replication.source_region, ...regions.map((row) => row.region)]);
  return {
    replicationId: Number(replication.id),
    kind: replication.kind,
    repository: replication.repository,
    tag: replication.tag,
    digest: replication.digest,
    sourceRegion: replication.source_region,
    workflowId: replication.workflow_id,
    observedAt: replication.observed_at.toISOString(),
    outcome: replication.outcome,
    finishedAt: replication.finished_at?.toISOString() ?? null,
    regions: Object.fromEntries(regions.map((row) => [row.region, regionStatus(replication, row)])),
    notReplicatedInto: configured.filter((region) => !targeted.has(region)),
  };
}

/** `regions`: the configured regions' names. */
export async function statusRoutes(app: FastifyInstance, { store, regions: configured }: { store: EventStore; regions: readonly string[] }): Promise<void> {
  app.get<{ Querystring: { repository: string; tag?: string; digest?: string } }>(
    '/v1/status',
    {
      schema: { querystring: { type: 'object', properties: referenceQuery, required: ['repository'] } },
      config: {
        doc: {
          summary: 'the newest push of repository:tag or repository@digest, region by region',
          responses: { '200': { description: 'status', schema: replicationSchema }, ...errors(400, 404) },
        },
        access: 'read',
      },
    },
    async (request) => {
      const { tag, digest } = request.query;
      const repository = readable(request, validated(() => parseRepositoryName(request.query.repository)));
      if ((tag === undefined) === (digest === undefined)) {
        throw new ApiError(400, 'INVALID_QUERY', 'give exactly one of tag and digest');
      }
      const reference: ImageReference = tag !== undefined ? { repository, tag: validated(() => parseTag(tag)) } : { repository, digest: validated(() => parseDigest(digest)) };
      const replication = await newestPushOf(store, reference);
      if (!replication) throw new ApiError(404, 'NOT_FOUND', `no push of ${formatImageReference(reference)} was observed`);
      return replicationView(replication, (await regionsOf(store, [replication.id])).get(replication.id) ?? [], configured);
    },
  );

  app.get<{ Querystring: { repository?: string; state?: (typeof REGION_STATES)[number]; region?: string; limit: number; before?: number } }>(
    '/v1/replications',
    {
      schema: { querystring: replicationsQuery },
      config: {
        doc: {
          summary: 'replications, newest first',
          responses: {
            '200': { description: 'a page', schema: { type: 'object', properties: { items: { type: 'array', items: replicationSchema }, next: { type: ['string', 'null'] } } } },
            ...errors(400),
          },
        },
        access: 'read',
      },
    },
    async (request) => {
      const { state, region } = request.query;
      const limit = finite('limit', request.query.limit);
      // Unknown here, as in /v1/wait, rather than a filter matching nothing: it is a mistake, and one Postgres may refuse (a NUL).
      if (region !== undefined && !configured.includes(region)) throw new ApiError(400, 'UNKNOWN_REGION', `unknown region ${JSON.stringify(region)}; Ferry knows ${configured.join(', ')}`);
      const repository = request.query.repository === undefined ? null : readable(request, validated(() => parseRepositoryName(request.query.repository)));
      const before = request.query.before === undefined ? Number.MAX_SAFE_INTEGER : finite('before', request.query.before);
      const found = await replicationsPage(store, { repository, state: state ?? null, region: region ?? null, before, limit, readable: readGrantOf(request).sqlFilter() });
      const regions = await regionsOf(store, found.map((row) => row.id));
      const items = found.map((row) => replicationView(row, regions.get(row.id) ?? [], configured));
      const last = items.at(-1);
      const query = Object.entries({ ...request.query, before: last?.replicationId })
        .filter((entry) => entry[1] !== undefined)
        .map(([key, value]): [string, string] => [key, String(value)]);
      return { items, next: items.length === limit ? `/v1/replications?${new URLSearchParams(query)}` : null };
    },
  );

  app.get<{ Params: { id: number } }>(
    '/v1/replications/:id/events',
    {
      schema: { params: { type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'the replication id' } }, required: ['id'] } },
      config: { access: 'read', doc: { summary: 'the event history of one replication', responses: { '200': { description: 'events in order' }, ...errors(400, 404) } } },
    },
    async (request) => {
      const id = finite('id', request.params.id);
      // Another team's replication is answered like one that does not exist: ids are sequential, and walking them says nothing.
      const [replication] = await replicationsByIds(store, [String(id)]);
      const events = replication !== undefined && readGrantOf(request).covers(replication.repository) ? await store.eventsOf(id) : [];
      if (events.length === 0) {
        throw new ApiError(404, 'NOT_FOUND', `replication ${id} does not exist`);
      }
      return { replicationId: id, events: events.map((event) => ({ seq: event.seq, type: event.type, region: event.region, data: event.data, recordedAt: event.recordedAt.toISOString() })) };
    },
  );
}
