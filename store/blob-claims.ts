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
    const taken = await this.store.pool.query(
      `INSERT INTO blob_claims (region, digest, holder, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))
       ON CONFLICT (region, digest) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, taken_over = blob_claims.holder
       WHERE blob_claims.expires_at < now()
       RETURNING holder`,
      [region, digest, holder, this.leaseSeconds],
    );
    if (taken.rowCount === 0) return null;
    // Claims whose holders died and that nobody asked for again: cleared now and then.
    if (++this.taken % 200 === 0) await this.store.pool.query(`DELETE FROM blob_claims WHERE expires_at < now() - interval '1 hour'`);
    return this.lease(region, digest, holder);
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

  private lease(region: string, digest: string, holder: string): BlobClaim {
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
      get held() {
        return held;
      },
      async release() {
        clearInterval(renewal);
        // A claim that cannot be removed (Postgres unreachable) expires on its own.
        await store.pool.query(`DELETE FROM blob_claims WHERE region = $1 AND digest = $2 AND holder = $3`, [region, digest, holder]).catch(() => undefined);
      },
    };
  }
}
