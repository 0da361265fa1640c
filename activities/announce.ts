// Telling the world: per-region messages and the all-regions outcome on NATS
// JetStream. Each is recorded first, then published, so whoever hears a
// message finds the status API already agreeing. A retried activity records
// nothing twice (dedupe keys) and republishes with the same message id, which
// the stream keeps one copy of (invariant 4, "effect once").
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nanos, type ConnectionOptions, type JetStreamClient, type NatsConnection } from 'nats';
import type { ResolvedConfig } from '../domain/config';
import {
  STREAM_NAME,
  STREAM_SUBJECTS,
  deletedSubject,
  failedSubject,
  messageId,
  outcomeSubject,
  replicatedSubject,
  supersededSubject,
  type OutcomeMessage,
  type RegionMessage,
} from '../domain/subjects';
import type { EventStore } from '../store/event-store';
import type { WorkerMetrics } from './metrics';

/** How long JetStream remembers message ids; retries of one publish fall well inside it. */
const DUPLICATE_WINDOW_MS = 60 * 60 * 1000;
const RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export interface Announcer {
  nats: NatsConnection;
  jetstream: JetStreamClient;
}

/** How Ferry connects to NATS: the URL, a token or a .creds file (JWT and NKey seed), and TLS with the configured CA and client pair. */
export function natsConnectOptions(config: Pick<ResolvedConfig, 'natsUrl' | 'nats'>): ConnectionOptions {
  const { token, credsFile, tls } = config.nats;
  return {
    servers: config.natsUrl,
    ...(token === undefined ? {} : { token }),
    ...(credsFile === undefined ? {} : { authenticator: credsAuthenticator(readFileSync(credsFile)) }),
    ...(tls === undefined ? {} : { tls: { ...tls } }),
  };
}

/** Connects and makes sure the FERRY stream exists with its dedupe window. Idempotent. */
export async function connectAnnouncer(ferry: Pick<ResolvedConfig, 'natsUrl' | 'nats'>): Promise<Announcer> {
  const nats = await connect({ ...natsConnectOptions(ferry), name: 'ferry', maxReconnectAttempts: -1 });
  const manager = await nats.jetstreamManager();
  const config = { subjects: STREAM_SUBJECTS, duplicate_window: nanos(DUPLICATE_WINDOW_MS), max_age: nanos(RETENTION_MS) };
  try {
    await manager.streams.info(STREAM_NAME);
    await manager.streams.update(STREAM_NAME, config);
  } catch {
    await manager.streams.add({ name: STREAM_NAME, ...config });
  }
  return { nats, jetstream: nats.jetstream() };
}

function regionSubject(message: RegionMessage): string {
  switch (message.kind) {
    case 'replicated':
      return replicatedSubject(message.region, message.repository, message.tag, message.digest!);
    case 'superseded':
      return supersededSubject(message.region, message.repository, message.tag!, message.digest!);
    case 'deleted':
      return deletedSubject(message.region, message.repository, message.tag, message.digest);
    case 'failed':
      return failedSubject(message.region, message.repository, message.tag, message.digest);
  }
}

export function createAnnounceActivities({ announcer, store, metrics }: { announcer: Announcer; store: EventStore; metrics: WorkerMetrics }) {
  async function publish(subject: string, id: string, body: unknown): Promise<void> {
    await announcer.jetstream.publish(subject, new TextEncoder().encode(JSON.stringify(body)), { msgID: id });
  }

  return {
    /** Records a region's completion (or failure), then publishes it. */
    async announceRegion(message: Omit<RegionMessage, 'completedAt'>): Promise<string> {
      const full: RegionMessage = { ...message, completedAt: new Date().toISOString() };
      const subject = regionSubject(full);
      const base = { replicationId: message.replicationId, region: message.region };
      if (message.kind === 'failed') {
        const recorded = await store.append({ type: 'RegionFailed', ...base, data: message.failure! });
        if (recorded.recorded) metrics.regionFailures.inc({ region: message.region, reason: message.failure!.code });
      } else {
        const superseded = message.kind === 'superseded' ? { supersededBy: message.supersededBy ?? null } : {};
        const recorded = await store.append({ type: 'CompletionPublished', ...base, data: { subject, digest: message.digest, ...superseded } });
        if (recorded.recorded && (message.kind === 'replicated' || message.kind === 'superseded')) {
          metrics.replicationLag.observe({ region: message.region }, (recorded.recordedAt.getTime() - Date.parse(message.observedAt)) / 1000);
        }
      }
      await publish(subject, messageId(message, message.region), full);
      if (message.kind === 'superseded') {
        // The digest is pullable there all the same: said where digest waiters listen.
        const digestOnly: RegionMessage = { ...full, kind: 'replicated', tag: null, supersededBy: undefined };
        await publish(replicatedSubject(message.region, message.repository, null, message.digest!), messageId(digestOnly, message.region), digestOnly);
      }
      return subject;
    },

    /** Records, then publishes, which regions succeeded and which failed, once every region finished. */
    async announceOutcome(outcome: OutcomeMessage): Promise<void> {
      await store.append({
        type: 'ReplicationFinished',
        replicationId: outcome.replicationId,
        data: { succeeded: outcome.succeeded, failed: outcome.failed.map((failure) => failure.region) },
      });
      await publish(outcomeSubject(outcome.repository, outcome.tag, outcome.digest), messageId(outcome, 'outcome'), outcome);
    },
  };
}
