// Long polls, bounded. Every waiter on one reference shares one watch: the
// pushes that can satisfy it are read once per change that concerns them,
// however many pipelines wait (each then applies its own regions, which is
// arithmetic). The hub hears the event feed once for all watches. It admits
// at most `maxWaits` waits at a time, and `maxWaitsPerToken` per token;
// beyond that a wait is refused with 429 and Retry-After, so a fleet of
// waiters cannot starve ingest of the api's time or of Postgres connections
// (reads use their own pool, api/main.ts).
import { formatImageReference, type ImageReference } from '../domain/reference';
import type { PushRecord } from '../domain/wait';
import type { EventChange } from '../store/event-store';
import type { EventFeed } from '../store/event-feed';
import { ApiError } from './ingest';

export interface WaitLimits {
  maxWaits: number;
  maxWaitsPerToken: number;
}

/** Seconds a refused waiter is told to wait before asking again. */
export const RETRY_AFTER_SECONDS = 2;

export class TooManyWaitsError extends ApiError {
  constructor(message: string) {
    super(429, 'TOO_MANY_WAITS', message);
  }
}

class Watch {
  pushes: PushRecord[] | null = null;
  /** Set by a change that may concern the watch; the next read computes again. */
  stale = true;
  users = 0;
  private computing: Promise<PushRecord[]> | null = null;
  private readonly wakers = new Set<() => void>();

  constructor(
    readonly reference: ImageReference,
    private readonly read: (reference: ImageReference) => Promise<PushRecord[]>,
  ) {}

  concerns(change: EventChange | null): boolean {
    if (change === null || change.repository === this.reference.repository) return true;
    return this.pushes?.some((push) => push.replicationId === change.replicationId) ?? false;
  }

  /** The pushes, read again only when a change concerned them since the last read; one read in flight for all. */
  async current(): Promise<PushRecord[]> {
    while (this.stale || this.pushes === null) {
      if (this.computing === null) {
        this.stale = false;
        this.computing = this.read(this.reference)
          .catch((error: unknown) => {
            // What was read before the failure may be outdated: the next caller reads again.
            this.stale = true;
            throw error;
          })
          .finally(() => (this.computing = null));
        this.pushes = await this.computing;
      } else {
        await this.computing;
      }
    }
    return this.pushes;
  }

  /** Resolves at the next change that concerns the watch, after `timeoutMs`, or when `signal` aborts. */
  changed(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.wakers.add(done);
      signal.addEventListener('abort', done);
    });
  }

  wake(): void {
    this.stale = true;
    for (const waker of [...this.wakers]) waker();
  }
}

export class WaitHub {
  private readonly watches = new Map<string, Watch>();
  private readonly perToken = new Map<string, number>();
  private total = 0;
  private readonly unsubscribe: () => void;

  constructor(
    feed: Pick<EventFeed, 'subscribe'>,
    private readonly read: (reference: ImageReference) => Promise<PushRecord[]>,
    private readonly limits: WaitLimits,
    private readonly onHeld: (waits: number) => void = () => undefined,
  ) {
    this.unsubscribe = feed.subscribe((change) => {
      for (const watch of this.watches.values()) if (watch.concerns(change)) watch.wake();
    });
  }

  /** Waits now held, and the references watched (for metrics and tests). */
  get size(): { waits: number; watches: number } {
    return { waits: this.total, watches: this.watches.size };
  }

  close(): void {
    this.unsubscribe();
  }

  /**
   * Admits one wait of `token`, or refuses it (429) when the api or the token
   * holds its maximum; then runs `wait` with the reference's shared watch.
   */
  async hold<T>(token: string, reference: ImageReference, wait: (watch: Pick<Watch, 'current' | 'changed'>) => Promise<T>): Promise<T> {
    const ofToken = this.perToken.get(token) ?? 0;
    if (this.total >= this.limits.maxWaits) throw new TooManyWaitsError(`the api holds its maximum of ${this.limits.maxWaits} waits; retry after ${RETRY_AFTER_SECONDS} s`);
    if (ofToken >= this.limits.maxWaitsPerToken) {
      throw new TooManyWaitsError(`token "${token}" holds its maximum of ${this.limits.maxWaitsPerToken} waits; retry after ${RETRY_AFTER_SECONDS} s`);
    }
    this.total++;
    this.onHeld(this.total);
    this.perToken.set(token, ofToken + 1);
    const key = formatImageReference(reference);
    let watch = this.watches.get(key);
    if (watch === undefined) {
      watch = new Watch(reference, this.read);
      this.watches.set(key, watch);
    }
    watch.users++;
    try {
      return await wait(watch);
    } finally {
      this.total--;
      this.onHeld(this.total);
      const left = (this.perToken.get(token) ?? 1) - 1;
      if (left === 0) this.perToken.delete(token);
      else this.perToken.set(token, left);
      if (--watch.users === 0) this.watches.delete(key);
    }
  }
}
