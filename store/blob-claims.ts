// Claims on copying one blob into one region, shared by every worker of a
// deployment (schema.sql blob_claims). Pushes sharing a base layer arrive
// together and their region activities land on whichever worker polls first;
// a claim makes the layer cross once per region however many workers serve
// that region's queue. A claim is a lease: its holder renews it while it
// copies and removes it when done; one whose holder died (SIGKILL, a lost
// machine) expires, and the next claimant takes it over.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { EventStore } from './event-store';

/** One held claim: renewed in the background until released. */
export interface BlobClaim {
  readonly holder: string;
  /** False once a renewal found the claim taken over (this holder stalled past its lease): the copy goes on, but may be doubled. */
  readonly held: boolean;
  /**
   * True when nobody claimed the blob into the region before (in the last hour
   * or more: released claims stay an hour): no copy by anyone can have
   * finished since the caller last looked, so it need not look again.
   */
  readonly first: boolean;
  release(): Promise<void>;
}

/** Who holds the claims of this process: host and pid (so an operator can find it), then a per-claim id. */
export const WORKER_IDENTITY = `${hostname()}/${process.pid}`;

export class BlobClaims {
  private taken = 0;

  constructor(
    private readonly store: EventStore,
    /** How long a claim lives without renewal. */
    private readonly leaseSeconds: number,
    private readonly identity = WORKER_IDENTITY,
    private readonly pollMs = 250,
  ) {}

  /** Takes the claim on `digest` into `region`, or returns null while another holder's lease is live. */
  async take(region: string, digest: string): Promise<BlobClaim | null> {
    const holder = `${this.identity}/${randomUUID()}`;
    // xmax = 0: the row was inserted, not an earlier claim's row taken over.
    const taken = await this.store.pool.query<{ first: boolean }>(
      `INSERT INTO blob_claims (region, digest, holder, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))
       ON CONFLICT (region, digest) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, released_at = NULL,
         taken_over = CASE WHEN blob_claims.released_at IS NULL THEN blob_claims.holder END
       WHERE blob_claims.expires_at < now()
       RETURNING (xmax = 0) AS first`,
      [region, digest, holder, this.leaseSeconds],
    );
    if (taken.rowCount === 0) return null;
    // Claims released or whose holders died, and that nobody asked for again: cleared now and then.
    if (++this.taken % 200 === 0) await this.store.pool.query(`DELETE FROM blob_claims WHERE expires_at < now() - interval '1 hour'`);
    return this.lease(region, digest, holder, taken.rows[0]!.first);
  }

  /** Resolves once nobody holds a live claim on `digest` into `region` (released, or its lease ran out), or `signal` aborts. */
  async released(region: string, digest: string, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const live = await this.store.pool.query(`SELECT 1 FROM blob_claims WHERE region = $1 AND digest = $2 AND expires_at >= now()`, [region, digest]);
      if (live.rowCount === 0) return;
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  /** The holders of live claims, by region and digest: for tests and operators. */
  async live(): Promise<{ region: string; digest: string; holder: string }[]> {
    const rows = await this.store.pool.query<{ region: string; digest: string; holder: string }>(
      `SELECT region, digest, holder FROM blob_claims WHERE expires_at >= now() ORDER BY region, digest`,
    );
    return rows.rows;
  }

  private lease(region: string, digest: string, holder: string, first: boolean): BlobClaim {
    const store = this.store;
    let held = true;
    // Renewed three times per lease, so one slow renewal does not lose it.
    const renewal = setInterval(() => {
      void store.pool
        .query(`UPDATE blob_claims SET expires_at = now() + make_interval(secs => $4) WHERE region = $1 AND digest = $2 AND holder = $3`, [region, digest, holder, this.leaseSeconds])
        .then((renewed) => {
          if (renewed.rowCount === 0) held = false;
        })
        .catch(() => undefined); // Postgres unreachable for a moment: the next renewal tries again.
    }, (this.leaseSeconds * 1000) / 3);
    renewal.unref();
    return {
      holder,
      first,
      get held() {
        return held;
      },
      async release() {
        clearInterval(renewal);
        // Expired at once but kept: whoever claims it next knows a copy may have finished meanwhile.
        // A claim that cannot be released (Postgres unreachable) expires on its own.
        await store.pool
          .query(`UPDATE blob_claims SET expires_at = now() - interval '1 millisecond', released_at = now() WHERE region = $1 AND digest = $2 AND holder = $3`, [
            region,
            digest,
            holder,
          ])
          .catch(() => undefined);
      },
    };
  }
}
