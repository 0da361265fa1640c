// The ingest edge: registries POST their notifications here, one URL per
// source region and format: /v1/notifications/{distribution|harbor|acr}/<region>. Authentication, content type, size and every
// name are checked before anything is written; the token before the body is read (api/auth.ts).
//
//   401 UNAUTHORIZED            no or wrong bearer token
//   403 FORBIDDEN               a token without scope ingest:<region> (another region's, a read token)
//   404 UNKNOWN_REGION/FORMAT   the URL names a region or format Ferry does not know (a configuration
//                               error: loud on purpose, the registry keeps the event and retries)
//   413 BODY_TOO_LARGE          over ingest.maxBodyBytes
//   415 UNSUPPORTED_MEDIA_TYPE  not a Distribution envelope or JSON
//   400 MALFORMED_ENVELOPE      not JSON, or not an envelope (not an object, no events array)
//   409 CONFLICTING_EVENT       an event id Ferry recorded before, now with other content (a
//                               registry bug or a forged notification); nothing of the envelope
//                               is recorded
//   202                         accepted; events Ferry does not act on (blob push, pull, mount,
//                               unknown actions) are acknowledged and ignored, and events it
//                               cannot read (a sha512 digest, an invalid name) are acknowledged
//                               and kept as dead letters (store/dead-letters.ts), because a 4xx
//                               would block the registry's delivery queue forever
//   503 UNAVAILABLE             Postgres or Temporal is down; the registry retries
import type { FastifyInstance, FastifyReply } from 'fastify';
import { regionByName } from '../domain/config';
import { parseAcrWebhook } from '../domain/notifications/acr';
import { readDistributionEnvelope } from '../domain/notifications/distribution';
import { NotificationError, readEvent, type IngestedEvent, type RegistryEvent } from '../domain/notifications/event';
import { isObject } from '../domain/notifications/fields';
import { parseHarborWebhook } from '../domain/notifications/harbor';
import { keepDeadLetter } from '../store/dead-letters';
import { checkNotConflicting, ConflictingEventError } from '../store/observations';
import { errors } from './openapi';
import { acceptEvent, observationOf, type ActionableEvent, type ReplicationStarter } from './accept-event';
import type { ApiMetrics } from './metrics';

/** JSON media types beside application/json that registries send. */
export const NOTIFICATION_MEDIA_TYPES = [
  'application/vnd.docker.distribution.events.v1+json',
  'application/vnd.docker.distribution.events.v2+json',
  'application/cloudevents+json',
];

export const UNSUPPORTED_MEDIA_TYPE_MESSAGE = `send application/json or one of ${NOTIFICATION_MEDIA_TYPES.join(', ')}`;

/** A webhook that is one event: a body that is not an object fails, one Ferry cannot read is an UnreadableEvent. */
const oneEvent = (parse: (body: unknown) => RegistryEvent[]) => (body: unknown) => {
  if (!isObject(body)) throw new NotificationError('MALFORMED_ENVELOPE', 'the webhook body is not a JSON object');
  return readEvent(body, () => parse(body));
};

/** Each registry's notification format, read into the same internal events. */
const PARSERS = new Map<string, (body: unknown) => IngestedEvent[]>([
  ['distribution', readDistributionEnvelope],
  ['harbor', oneEvent(parseHarborWebhook)],
  ['acr', oneEvent(parseAcrWebhook)],
]);

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function isJsonMediaType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || NOTIFICATION_MEDIA_TYPES.includes(mediaType);
}

/** Runs `work`, answering an event id recorded before with other content as 409 CONFLICTING_EVENT. */
async function refuseConflicts<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ConflictingEventError) throw new ApiError(409, 'CONFLICTING_EVENT', error.message);
    throw error;
  }
}

function isActionable(event: IngestedEvent): event is ActionableEvent {
  return event.kind !== 'ignored' && event.kind !== 'unreadable';
}

export async function ingestRoutes(app: FastifyInstance, deps: ReplicationStarter & { metrics: ApiMetrics }): Promise<void> {
  for (const mediaType of NOTIFICATION_MEDIA_TYPES) {
    app.addContentTypeParser(mediaType, { parseAs: 'string', bodyLimit: deps.config.ingest.maxBodyBytes }, (_request, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch {
        done(new ApiError(400, 'MALFORMED_ENVELOPE', 'the body is not valid JSON'), undefined);
      }
    });
  }

  app.post<{ Params: { format: string; region: string } }>(
    '/v1/notifications/:format/:region',
    {
      bodyLimit: deps.config.ingest.maxBodyBytes,
      // Not validated by schema: authentication answers first (401, 403), then the region and format (404).
      schema: {
        params: {
          type: 'object',
          properties: {
            format: { type: 'string', description: `the registry's notification format: ${[...PARSERS.keys()].join(', ')}` },
            region: { type: 'string', description: 'the configured region whose registry sent it' },
          },
        },
      },
      config: {
        doc: {
          summary: 'a registry notification from the registry of <region>',
          responses: { '202': { description: 'recorded and started, or acknowledged and ignored' }, ...errors(400, 404, 409, 413, 415, 503) },
        },
        access: 'ingest',
      },
    },
    async (request, reply: FastifyReply) => {
      if (!isJsonMediaType(request.headers['content-type'])) {
        throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', UNSUPPORTED_MEDIA_TYPE_MESSAGE);
      }
      const region = regionByName(deps.config, request.params.region);
      if (!region) throw new ApiError(404, 'UNKNOWN_REGION', `region "${request.params.region}" is not configured`);
      const parse = PARSERS.get(request.params.format);
      if (!parse) throw new ApiError(404, 'UNKNOWN_FORMAT', `format "${request.params.format}" is not one of ${[...PARSERS.keys()].join(', ')}`);
      let events: IngestedEvent[];
      try {
        events = parse(request.body);
      } catch (error) {
        if (error instanceof NotificationError) throw new ApiError(400, error.code, error.message);
        throw error;
      }
      const actionable = events.filter(isActionable);
      // A refused envelope changes nothing. One event alone is checked by recording it (a conflicting
      // record writes nothing); in an envelope of several, each is checked before any is recorded.
      if (events.length > 1) {
        for (const event of actionable) await refuseConflicts(() => checkNotConflicting(deps.store, observationOf(region.name, event)));
      }
      const deadLettered = [];
      for (const event of events) {
        if (event.kind !== 'unreadable') continue;
        await keepDeadLetter(deps.store.pool, { sourceRegion: region.name, format: request.params.format, ...event });
        request.log.warn({ region: region.name, eventId: event.eventId, code: event.code, reason: event.reason }, 'notification event dead-lettered');
        deadLettered.push({ eventId: event.eventId, code: event.code, reason: event.reason });
      }
      if (deadLettered.length > 0) deps.metrics.notifications.inc({ region: region.name, outcome: 'dead-lettered' }, deadLettered.length);
      const accepted = [];
      for (const event of actionable) {
        const result = await refuseConflicts(() => acceptEvent(deps, region.name, event));
        request.log.info({ replicationId: result.replicationId, workflowId: result.workflowId, duplicate: result.duplicate, region: region.name, digest: 'digest' in event ? event.digest : null }, 'notification accepted');
        deps.metrics.notifications.inc({ region: region.name, outcome: result.duplicate ? 'duplicate' : 'accepted' });
        accepted.push(result);
      }
      const ignored = events.filter((event) => event.kind === 'ignored').map((event) => ({ eventId: event.eventId, reason: event.reason }));
      if (ignored.length > 0) deps.metrics.notifications.inc({ region: region.name, outcome: 'ignored' }, ignored.length);
      return reply.code(202).send({ accepted, ignored, deadLettered });
    },
  );
}
