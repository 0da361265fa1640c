// Where a replication stands, served from the Postgres projections:
//
//   GET /v1/status?repository=R&tag=T | &digest=D   the newest push of that reference, region by region
//   GET /v1/replications?repository=&state=&region=&limit=&before=
//                                                   replications, newest first, paginated by id
//   GET /v1/replications/:id/events                 the event history of one replication
import type { FastifyInstance } from 'fastify';
import { formatImageReference, InvalidReferenceError, parseDigest, parseRepositoryName, parseTag, type ImageReference } from '../domain/reference';
import type { EventStore } from '../store/event-store';
import { newestPushOf, regionsOf, replicationsPage, type RegionRow, type ReplicationRow } from '../store/projection-reads';
import { ApiError } from './ingest';

const REGION_STATES = ['pending', 'copying', 'replicated', 'failed'] as const;

/** A region's state and bytes done: what landed, or more while a large blob is moving (then it is copying). */
export function liveRegionState(row: RegionRow): { state: string; bytesDone: number } {
  const landed = Number(row.bytes_copied) + Number(row.bytes_skipped);
  const running = row.state === 'pending' || row.state === 'copying';
  const moving = running ? Number(row.bytes_in_flight ?? 0) : 0;
  return { state: running && moving > 0 ? 'copying' : row.state, bytesDone: Math.max(landed, moving) };
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
    bytesDone,
    bytesTotal: replication.total_blob_bytes === null ? null : Number(replication.total_blob_bytes),
    tagMoved: row.tag_moved,
    replicatedAt: row.replicated_at?.toISOString() ?? null,
    lagSeconds: row.replicated_at ? (row.replicated_at.getTime() - replication.observed_at.getTime()) / 1000 : null,
    failure: row.failure,
  };
}

function replicationView(replication: ReplicationRow, regions: RegionRow[]) {
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
  };
}

export async function statusRoutes(app: FastifyInstance, { store }: { store: EventStore }): Promise<void> {
  app.get<{ Querystring: { repository?: string; tag?: string; digest?: string } }>('/v1/status', async (request) => {
    const { tag, digest } = request.query;
    const repository = validated(() => parseRepositoryName(request.query.repository));
    if ((tag === undefined) === (digest === undefined)) {
      throw new ApiError(400, 'INVALID_QUERY', 'give exactly one of tag and digest');
    }
    const reference: ImageReference = tag !== undefined ? { repository, tag: validated(() => parseTag(tag)) } : { repository, digest: validated(() => parseDigest(digest)) };
    const replication = await newestPushOf(store, reference);
    if (!replication) throw new ApiError(404, 'NOT_FOUND', `no push of ${formatImageReference(reference)} was observed`);
    return replicationView(replication, (await regionsOf(store, [replication.id])).get(replication.id) ?? []);
  });

  app.get<{ Querystring: { repository?: string; state?: string; region?: string; limit?: string; before?: string } }>('/v1/replications', async (request) => {
    const { state, region } = request.query;
    const repository = request.query.repository === undefined ? null : validated(() => parseRepositoryName(request.query.repository));
    if (state !== undefined && !(REGION_STATES as readonly string[]).includes(state)) {
      throw new ApiError(400, 'INVALID_QUERY', `state must be one of ${REGION_STATES.join(', ')}`);
    }
    const limit = Number(request.query.limit ?? 50);
    const before = Number(request.query.before ?? Number.MAX_SAFE_INTEGER);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ApiError(400, 'INVALID_QUERY', 'limit must be an integer from 1 to 500');
    if (!Number.isSafeInteger(before)) throw new ApiError(400, 'INVALID_QUERY', 'before must be a replication id');
    const found = await replicationsPage(store, { repository, state: state ?? null, region: region ?? null, before, limit });
    const regions = await regionsOf(store, found.map((row) => row.id));
    const items = found.map((row) => replicationView(row, regions.get(row.id) ?? []));
    const last = items.at(-1);
    const query = Object.entries({ ...request.query, before: String(last?.replicationId) }).filter((entry): entry is [string, string] => entry[1] !== undefined);
    return { items, next: items.length === limit ? `/v1/replications?${new URLSearchParams(query)}` : null };
  });

  app.get<{ Params: { id: string } }>('/v1/replications/:id/events', async (request) => {
    const id = Number(request.params.id);
    if (!Number.isSafeInteger(id) || id < 1) throw new ApiError(400, 'INVALID_QUERY', 'the replication id must be a positive integer');
    const events = await store.eventsOf(id);
    if (events.length === 0) throw new ApiError(404, 'NOT_FOUND', `replication ${id} does not exist`);
    return { replicationId: id, events: events.map((event) => ({ seq: event.seq, type: event.type, region: event.region, data: event.data, recordedAt: event.recordedAt.toISOString() })) };
  });
}
