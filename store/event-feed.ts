// Hears every event appended to the store, over Postgres LISTEN, so a long
// poll wakes within milliseconds of a change instead of polling the tables.
// One connection per process, its changes handed to subscribers (the api's
// wait hub, api/wait-hub.ts); it reconnects after Postgres restarts, and tells
// every subscriber that anything may have changed (notifications sent
// meanwhile are lost).
import pg from 'pg';
import type { Logger } from 'pino';
import { EVENTS_CHANNEL, type EventChange } from './event-store';

/** Hears each change; null means "anything may have changed" (after a reconnect). */
type Listener = (change: EventChange | null) => void;

const RECONNECT_DELAY_MS = 1000;

export class EventFeed {
  private readonly listeners = new Set<Listener>();
  private client: pg.Client | null = null;
  private closed = false;

  constructor(
    private readonly postgresUrl: string,
    private readonly logger: Logger,
  ) {}

  /** Connects, retrying in the background until it can; never throws. */
  start(): void {
    void this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }

  /** Calls `listener` with every change (null: anything may have changed) until the returned function is called. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(change: EventChange | null): void {
    for (const listener of [...this.listeners]) listener(change);
  }

  private async connect(): Promise<void> {
    while (!this.closed) {
      const client = new pg.Client({ connectionString: this.postgresUrl });
      client.on('notification', (message) => {
        if (message.channel === EVENTS_CHANNEL && message.payload) this.notify(JSON.parse(message.payload) as EventChange);
      });
      client.on('error', (error) => {
        // An error while connecting is the catch below's to handle.
        if (this.client !== client) return;
        this.logger.warn({ err: error }, 'event feed: connection lost; reconnecting');
        this.client = null;
        void client.end().catch(() => undefined);
        if (!this.closed) setTimeout(() => void this.connect(), RECONNECT_DELAY_MS);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${EVENTS_CHANNEL}`);
        this.client = client;
        // Whatever changed while nobody listened: every waiter checks again.
        this.notify(null);
        return;
      } catch (error) {
        this.logger.warn({ err: error }, 'event feed: cannot listen yet; retrying');
        await client.end().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
      }
    }
  }
}
