// Registry events Ferry acknowledged but could not read: a sha512 digest, a
// name no registry accepts, a field of the wrong type. Rejecting them would
// block the registry's notification queue forever (a registry resends a
// refused envelope, and everything behind it waits), so ingest answers 202
// and keeps each here with its reason, for `ferry dead-letters` and
// ferry_notification_events_total{outcome="dead-lettered"}. Outside the
// event log: nothing was replicated, and nothing is to be rebuilt from them.
import type pg from 'pg';
import { UNPAIRED_SURROGATE } from '../domain/notifications/event';

type Sql = Pick<pg.Pool, 'query'>;

export interface DeadLetter {
  sourceRegion: string;
  /** The notification format: distribution, harbor or acr. */
  format: string;
  eventId: string | null;
  code: string;
  reason: string;
  event: unknown;
}

export interface StoredDeadLetter extends DeadLetter {
  id: number;
  receivedAt: Date;
}

/** How deep a dead letter keeps an event: events are a few levels deep, and one nested thousands deep overflows JSON.stringify. */
const KEPT_DEPTH = 32;

/** NUL, or a surrogate without its pair: text Postgres's JSON cannot hold. */
const UNSTORABLE_TEXT = new RegExp(`\\u0000|${UNPAIRED_SURROGATE.source}`, 'g');

/** An unreadable event as a dead letter can keep it: UNSTORABLE_TEXT as U+FFFD, what is nested beyond KEPT_DEPTH left out. */
function keepable(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.replace(UNSTORABLE_TEXT, '\ufffd');
  if (typeof value !== 'object' || value === null) return value;
  if (depth === KEPT_DEPTH) return `(nested deeper than ${KEPT_DEPTH} levels: not kept)`;
  if (Array.isArray(value)) return Array.from(value, (item) => keepable(item, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [keepable(key), keepable(item, depth + 1)]));
}

/** Keeps `letter`; a redelivery of one already kept (same region, format and event id) changes nothing. */
export async function keepDeadLetter(sql: Sql, letter: DeadLetter): Promise<void> {
  await sql.query(
    `INSERT INTO dead_letters (source_region, format, event_id, code, reason, event) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (source_region, format, event_id) WHERE event_id IS NOT NULL DO NOTHING`,
    [letter.sourceRegion, letter.format, letter.eventId, letter.code, letter.reason, JSON.stringify(keepable(letter.event ?? null))],
  );
}

/** The newest dead letters first, of one source region or all. */
export async function listDeadLetters(sql: Sql, options: { sourceRegion?: string; limit: number }): Promise<StoredDeadLetter[]> {
  const result = await sql.query<{ id: string; source_region: string; format: string; event_id: string | null; code: string; reason: string; event: unknown; received_at: Date }>(
    `SELECT id, source_region, format, event_id, code, reason, event, received_at FROM dead_letters
     WHERE $1::text IS NULL OR source_region = $1 ORDER BY id DESC LIMIT $2`,
    [options.sourceRegion ?? null, options.limit],
  );
  return result.rows.map((row) => ({
    id: Number(row.id),
    sourceRegion: row.source_region,
    format: row.format,
    eventId: row.event_id,
    code: row.code,
    reason: row.reason,
    event: row.event,
    receivedAt: row.received_at,
  }));
}
