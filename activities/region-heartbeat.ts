// A region activity's progress: kept as its heartbeat details (the Temporal
// UI and `ferry stuck` show them; a retried attempt resumes its multipart
// uploads from them), and mirrored, throttled, to Postgres while bytes move
// (`ferry wait` and /v1/status show bytes moving inside a large blob).
import type { Context } from '@temporalio/activity';
import type { ManifestGraph } from '../domain/manifest';
import type { Digest } from '../domain/reference';
import { REGION_PHASES, type RegionPhase, type RegionProgress, type ReplicationRequest } from '../domain/workflow-contract';
import type { EventStore } from '../store/event-store';
import { forgetRegionProgress, saveRegionProgress } from '../store/progress';

/** Bytes in flight reach Postgres at most this often per region. */
const PROGRESS_SAVE_INTERVAL_MS = 1_000;
/** Heartbeats between phase changes at most this often. */
const HEARTBEAT_INTERVAL_MS = 1_000;
/** Heartbeats at least this often while the activity runs (its heartbeat timeout is 20 s). */
const KEEP_ALIVE_MS = 5_000;

/** The region's progress: kept as heartbeat details, mirrored (throttled) to Postgres while bytes move. */
export class RegionHeartbeat {
  readonly details: RegionProgress;
  private savedAt = 0;
  private savedBytes = -1;
  private saving: Promise<void> | null = null;
  /** Whether a progress row was written, and so must be removed at the end. */
  private saved = false;
  private beatAt = 0;
  private beatPhase: RegionPhase | null = null;
  private keepAliveTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly context: Context,
    private readonly store: EventStore,
    private readonly request: ReplicationRequest,
    private readonly region: string,
  ) {
    const resumed = context.info.heartbeatDetails as RegionProgress | undefined;
    // An earlier attempt may have written a progress row.
    this.saved = resumed !== undefined;
    this.details = {
      phase: 'resolve',
      progressAt: resumed?.progressAt ?? new Date().toISOString(),
      reached: resumed?.reached ?? { phase: 'resolve', bytesDone: 0 },
      blobs: 0,
      blobsDone: 0,
      bytesTotal: 0,
      bytesDone: 0,
      copying: [],
      uploads: resumed?.uploads ?? {},
    };
  }

  /**
   * Heartbeats every few seconds until stopped, whatever the activity waits
   * on: the heartbeat says the worker lives, not that bytes move (progressAt
   * says that). A hung request is ended by its own timeout, not by this.
   */
  keepAlive(): void {
    this.keepAliveTimer ??= setInterval(() => {
      if (Date.now() - this.beatAt < KEEP_ALIVE_MS) return;
      this.beatAt = Date.now();
      this.context.heartbeat(this.details);
    }, KEEP_ALIVE_MS / 2);
  }

  stopKeepAlive(): void {
    if (this.keepAliveTimer !== null) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  phase(phase: RegionPhase): void {
    this.details.phase = phase;
    this.details.waitingFor = null;
    this.moved();
  }

  /** The phase waits on something outside it: said in the heartbeat (Temporal UI, `ferry stuck`). */
  waiting(waitingFor: string): void {
    this.details.waitingFor = waitingFor;
    this.beat();
  }

  startBlobs(graph: ManifestGraph): void {
    // The first save only a second into the blobs: a small image lands before it, and writes no row.
    this.savedAt = Date.now();
    this.details.blobs = graph.blobs.length;
    this.details.bytesTotal = graph.totalBlobBytes;
    this.phase('blobs');
  }

  blobProgress(digest: Digest, size: number, update: { uploadId: string | null; bytesDone: number }): void {
    let moving = this.details.copying.find((blob) => blob.digest === digest);
    if (!moving) {
      moving = { digest, bytesDone: 0, size };
      this.details.copying.push(moving);
    }
    const gained = update.bytesDone - moving.bytesDone;
    moving.bytesDone = update.bytesDone;
    if (update.uploadId !== null) this.details.uploads[digest] = update.uploadId;
    this.details.bytesDone += gained;
    if (gained > 0) this.moved();
    else this.beat();
  }

  blobDone(digest: Digest, size: number): void {
    const moving = this.details.copying.find((blob) => blob.digest === digest);
    this.details.copying = this.details.copying.filter((blob) => blob !== moving);
    delete this.details.uploads[digest];
    this.details.bytesDone += size - (moving?.bytesDone ?? 0);
    this.details.blobsDone++;
    this.moved();
  }

  /** Progress counts only beyond the furthest point of every attempt so far. */
  private moved(): void {
    const { phase, bytesDone, reached } = this.details;
    const [now, before] = [REGION_PHASES.indexOf(phase), REGION_PHASES.indexOf(reached.phase)];
    if (now > before || (now === before && bytesDone > reached.bytesDone)) {
      this.details.reached = { phase, bytesDone };
      this.details.progressAt = new Date().toISOString();
    }
    this.beat();
  }

  /**
   * Heartbeats at a phase change and at most once a second in between (the SDK's
   * own throttling did not pass on a stream of heartbeats every few
   * milliseconds); the Postgres mirror is throttled likewise.
   */
  private beat(): void {
    const now = Date.now();
    if (this.details.phase !== this.beatPhase || now - this.beatAt >= HEARTBEAT_INTERVAL_MS) {
      [this.beatPhase, this.beatAt] = [this.details.phase, now];
      this.context.heartbeat(this.details);
    }
    if (this.details.phase !== 'blobs' || this.saving !== null || now - this.savedAt < PROGRESS_SAVE_INTERVAL_MS) return;
    // The row is for bytes inside a blob still moving, which no event records yet; waiting
    // (a claim, a copy slot) or blobs landing whole change nothing a reader cannot see already.
    const partway = this.details.copying.some((blob) => blob.bytesDone > 0 && blob.bytesDone < blob.size);
    if (!partway || this.details.bytesDone === this.savedBytes) return;
    this.savedAt = now;
    this.savedBytes = this.details.bytesDone;
    this.saved = true;
    this.saving = saveRegionProgress(this.store.pool, this.request.replicationId, this.region, this.details.bytesDone)
      // Progress is a courtesy: a failed save must not fail the copy.
      .catch(() => undefined)
      .finally(() => {
        this.saving = null;
      });
  }

  async settle(): Promise<void> {
    await this.saving;
    if (!this.saved) return;
    await forgetRegionProgress(this.store.pool, this.request.replicationId, this.region).catch(() => undefined);
  }
}

