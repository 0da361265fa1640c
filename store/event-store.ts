// The event store: append-only events plus projections folded in the same
// transaction. Every write in Ferry's domain history goes through `append`.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { PoolClient } from 'pg';
import type { TagHolder } from '../domain/tag-order';
import { dedupeKey, type FerryEvent, type RecordedEvent, type ReplicationObservedData } from './events';
import { fold, foldOwnRows, PROJECTION_TABLES } from './projections';

const schemaSql = readFileSync(new URL('./schema.sql', import.meta.url), 'utf8');

export interface Appended {
  seq: number;
  recordedAt: Date;
  /** False when an event with the same dedupe key was already recorded; nothing changed. */
  recorded: boolean;
  /** The data stored under that key: this event's, or the earlier one's when `recorded` is false. */
  data: Record<string, unknown>;
}

type Sql = Pick<PoolClient, 'query'>;

/** The Postgres NOTIFY channel every appended event is announced on, with an EventChange payload. */
export const EVENTS_CHANNEL = 'ferry_events';

export interface EventChange {
  replicationId: number;
  /** Set when a replication was observed, so a wait for a reference not seen before can wake. */
  repository: string | null;
}

export interface EventRow {
  seq: string;
  type: RecordedEvent['type'];
  replication_id: string | null;
  region: string | null;
  data: Record<string, unknown>;
  recorded_at: Date;
}

export function toRecorded(row: EventRow): RecordedEvent {
  return {
    seq: Number(row.seq),
    type: row.type,
    replicationId: row.replication_id === null ? null : Number(row.replication_id),
    region: row.region,
    data: row.data,
    recordedAt: row.recorded_at,
  };
}

export class EventStore {
  constructor(readonly pool: pg.Pool) {}

  /** `name` is the connections' application_name (pg_stat_activity shows who holds what). */
  static connect(postgresUrl: string, { poolSize = 10, name }: { poolSize?: number; name?: string } = {}): EventStore {
    const pool = new pg.Pool({ connectionString: postgresUrl, max: poolSize, ...(name === undefined ? {} : { application_name: name }) });
    // An idle connection dropped by a Postgres restart is discarded by the pool; without
    // a listener its 'error' event would end the process. Callers see errors on their queries.
    pool.on('error', () => undefined);
    return new EventStore(pool);
  }

  /**
   * Creates or updates the schema, and floors the event sequence at
   * `sequenceFloor` (the highest replication id Temporal knows,
   * store/recovery.ts), so a store that was lost or restored from a backup
   * never hands out an id an existing workflow already carries.
   */
  async migrate(sequenceFloor: number): Promise<void> {
    // Serialize concurrent starts (api and workers) creating the schema.
    await this.transaction(async (sql) => {
      await sql.query(`SELECT pg_advisory_xact_lock(hashtext('ferry-schema'))`);
      await sql.query(schemaSql);
      await sql.query(
        `SELECT setval('events_seq_seq', $1::bigint, true)
         WHERE $1::bigint > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM events_seq_seq)`,
        [sequenceFloor],
      );
    });
  }

  /** Throws, naming the way out, when the schema does not exist (a command that only reads must not create it). */
  async requireSchema(): Promise<void> {
    const found = await this.pool.query<{ events: string | null }>(`SELECT to_regclass('events') AS events`);
    if (found.rows[0]?.events == null) {
      throw new Error("Ferry's event store has no tables in this database: start the api (a new install), or run `ferry recover` (a lost one)");
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async transaction<T>(work: (sql: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out client whose connection drops (a Postgres restart) emits
    // 'error'; unheard, it would end the process. The failing query rejects anyway.
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken = error;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.off('error', onError);
      // A broken connection is destroyed instead of returned to the pool.
      client.release(broken);
    }
  }

  /** Appends an event and folds it, in the caller's transaction or a new one. */
  async append(event: FerryEvent, sql?: Sql): Promise<Appended> {
    if (!sql) return this.transaction((client) => this.append(event, client));
    const replicationId = 'replicationId' in event ? event.replicationId : null;
    const region = 'region' in event ? event.region : null;
    // Inserted and, in the same statement, announced on EVENTS_CHANNEL (delivered at commit, to
    // api/wait.ts long polls): which replication changed. A duplicate returns no row and notifies nobody.
    const inserted = await sql.query<EventRow>(
      `WITH inserted AS (
         INSERT INTO events (type, replication_id, region, data, dedupe_key)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING seq, type, replication_id, region, data, recorded_at)
       SELECT inserted.*, pg_notify($6, json_build_object('replicationId', coalesce(replication_id, seq), 'repository', $7::text)::text)
       FROM inserted`,
      [event.type, replicationId, region, JSON.stringify(event.data), dedupeKey(event), EVENTS_CHANNEL, event.type === 'ReplicationObserved' ? event.data.repository : null],
    );
    const row = inserted.rows[0];
    if (!row) {
      const existing = await sql.query<{ seq: string; recorded_at: Date; data: Record<string, unknown> }>(
        `SELECT seq, recorded_at, data FROM events WHERE dedupe_key = $1`,
        [dedupeKey(event)],
      );
      const earlier = existing.rows[0]!;
      return { seq: Number(earlier.seq), recordedAt: earlier.recorded_at, recorded: false, data: earlier.data };
    }
    await fold(sql, toRecorded(row));
    return { seq: Number(row.seq), recordedAt: row.recorded_at, recorded: true, data: row.data };
  }

  /**
   * Runs `work` holding the lock of one (region, repository, tag), and the
   * repository's lock shared, so the check of region_tags, the storage writes
   * and the event commit happen as one step with respect to every other
   * change of that tag, and to a digest delete in that repository.
   */
  async withTagLock<T>(region: string, repository: string, tag: string, work: (sql: PoolClient) => Promise<T>): Promise<T> {
    return this.transaction(async (sql) => {
      await sql.query(`SELECT pg_advisory_xact_lock_shared(hashtext($1))`, [`repository:${region}:${repository}`]);
      await sql.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`tag:${region}:${repository}:${tag}`]);
      return work(sql);
    });
  }

  /** Runs `work` holding a repository's lock exclusively: no tag of it changes meanwhile (a digest delete). */
  async withRepositoryLock<T>(region: string, repository: string, work: (sql: PoolClient) => Promise<T>): Promise<T> {
    return this.transaction(async (sql) => {
      await sql.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`repository:${region}:${repository}`]);
      return work(sql);
    });
  }

  /** The change that last moved or removed a region's tag, with its source region and the digest it left (null: removed); null when none did. */
  async tagHolder(sql: Sql, region: string, repository: string, tag: string): Promise<(TagHolder & { digest: string | null }) | null> {
    const result = await sql.query<{ replication_id: string; occurred_at: Date; source_region: string; digest: string | null }>(
      `SELECT t.replication_id, t.occurred_at, r.source_region, t.digest FROM region_tags t JOIN replications r ON r.id = t.replication_id
       WHERE t.region = $1 AND t.repository = $2 AND t.tag = $3`,
      [region, repository, tag],
    );
    const row = result.rows[0];
    return row ? { replicationId: Number(row.replication_id), occurredAt: row.occurred_at.toISOString(), sourceRegion: row.source_region, digest: row.digest } : null;
  }

  /**
   * Of `digests`, those whose last recorded change in `repository` (any
   * region) is a delete of the digest, with the region whose registry
   * deleted it (whose storage confirms it): a referrer a client removed,
   * which a merged listing must not bring back (activities/tags.ts).
   */
  async deletedDigests(repository: string, digests: readonly string[]): Promise<Map<string, string>> {
    if (digests.length === 0) return new Map();
    const rows = await this.pool.query<{ digest: string; kind: string; source_region: string }>(
      `SELECT DISTINCT ON (digest) digest, kind, source_region FROM replications
       WHERE repository = $1 AND digest = ANY($2) AND kind IN ('push', 'delete-digest')
       ORDER BY digest, id DESC`,
      [repository, digests],
    );
    return new Map(rows.rows.filter((row) => row.kind === 'delete-digest').map((row) => [row.digest, row.source_region]));
  }

  /**
   * What the last push or tag delete of `tag` that a region's own registry
   * reported left there: its digest, null for a delete; undefined when it
   * reported none.
   */
  async lastOwnTagChange(sql: Sql, region: string, repository: string, tag: string): Promise<string | null | undefined> {
    const result = await sql.query<{ digest: string | null }>(
      `SELECT digest FROM replications WHERE source_region = $1 AND repository = $2 AND tag = $3 AND kind IN ('push', 'delete-tag') ORDER BY id DESC LIMIT 1`,
      [region, repository, tag],
    );
    return result.rows.length === 0 ? undefined : result.rows[0]!.digest;
  }

  /** The observation recorded under a source region's event id, or null. */
  async observed(sourceRegion: string, eventId: string): Promise<ReplicationObservedData | null> {
    const key = dedupeKey({ type: 'ReplicationObserved', data: { sourceRegion, eventId } as ReplicationObservedData });
    const result = await this.pool.query<{ data: ReplicationObservedData }>(`SELECT data FROM events WHERE dedupe_key = $1`, [key]);
    return result.rows[0]?.data ?? null;
  }

  async eventsOf(replicationId: number): Promise<RecordedEvent[]> {
    const result = await this.pool.query<EventRow>(
      `SELECT seq, type, replication_id, region, data, recorded_at FROM events
       WHERE replication_id = $1 OR (type = 'ReplicationObserved' AND seq = $1) ORDER BY seq`,
      [replicationId],
    );
    return result.rows.map(toRecorded);
  }

  /** Folds every event, in order, into whichever projection tables `sql` resolves first. */
  private async foldAll(sql: PoolClient): Promise<number> {
    let folded = 0;
    let after = 0;
    // Replications that recorded events before their observation: ones that ran on while the store was
    // lost, whose observation `ferry recover` recorded again under their own, higher id (store/recovery.ts).
    const reinstated = await sql.query<{ replication_id: string }>(`SELECT DISTINCT replication_id FROM events WHERE replication_id IS NOT NULL AND seq < replication_id`);
    const earlyEvents = new Set(reinstated.rows.map((row) => Number(row.replication_id)));
    for (;;) {
      const batch = await sql.query<EventRow>(
        `SELECT seq, type, replication_id, region, data, recorded_at FROM events WHERE seq > $1 ORDER BY seq LIMIT 1000`,
        [after],
      );
      for (const row of batch.rows) {
        const event = toRecorded(row);
        await fold(sql, event);
        // As the recovery did: what it recorded before its observation, folded onto its rows now.
        if (event.type === 'ReplicationObserved' && earlyEvents.has(event.seq)) {
          const early = await sql.query<EventRow>(`SELECT seq, type, replication_id, region, data, recorded_at FROM events WHERE replication_id = $1 AND seq < $1 ORDER BY seq`, [event.seq]);
          for (const earlier of early.rows) await foldOwnRows(sql, toRecorded(earlier));
        }
      }
      folded += batch.rows.length;
      const last = batch.rows.at(-1);
      if (!last) return folded;
      after = Number(last.seq);
    }
  }

  /** Drops the projections and folds every event again, in one transaction. */
  async rebuildProjections(): Promise<number> {
    return this.transaction(async (sql) => {
      await sql.query(`LOCK TABLE events IN SHARE MODE`);
      await sql.query(`TRUNCATE ${PROJECTION_TABLES.join(', ')}`);
      return this.foldAll(sql);
    });
  }

  /**
   * Folds the whole log into temporary copies of the projections (pg_temp is
   * searched first, so the same fold writes there) and lists every row that
   * differs from the live tables. Appends wait meanwhile, so both see one log.
   */
  async diffRebuiltProjections(): Promise<Array<{ table: string; onlyLive: unknown[]; onlyRebuilt: unknown[] }>> {
    return this.transaction(async (sql) => {
      await sql.query(`LOCK TABLE events IN SHARE MODE`);
      const differences = [];
      for (const table of PROJECTION_TABLES) {
        await sql.query(`CREATE TEMP TABLE ${table} (LIKE public.${table} INCLUDING ALL) ON COMMIT DROP`);
      }
      await this.foldAll(sql);
      for (const table of PROJECTION_TABLES) {
        const onlyLive = await sql.query(`SELECT * FROM public.${table} EXCEPT SELECT * FROM pg_temp.${table}`);
        const onlyRebuilt = await sql.query(`SELECT * FROM pg_temp.${table} EXCEPT SELECT * FROM public.${table}`);
        if (onlyLive.rows.length > 0 || onlyRebuilt.rows.length > 0) {
          differences.push({ table, onlyLive: onlyLive.rows, onlyRebuilt: onlyRebuilt.rows });
        }
      }
      return differences;
    });
  }
}
