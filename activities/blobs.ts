// Copying one blob into one target region: the only place blob bytes move.
//
// Present in the target with the right size: skip (keys are content addresses,
// and nothing unverified is ever written under one). A copy of the same blob
// into the same region already running in this worker, or under another
// worker's claim (store/blob-claims.ts), is waited for, not repeated (pushes
// sharing a base layer arrive together). Otherwise the copy
// takes the path domain/config.ts `copyMethod` names (activities/blob-copy-paths.ts)
// and is recorded.
//
// The copy itself knows no activity: it reports to a CopyReporter. The
// region replication activity aggregates every blob's report into its
// heartbeat; the copyBlob activity (kept for workflows started before one
// activity per region) heartbeats each report as it is.
import { Context } from '@temporalio/activity';
import { copyMethod, type CopyMethod } from '../domain/config';
import type { BlobClaims } from '../store/blob-claims';
import type { EventStore } from '../store/event-store';
import { serverSideCopy, streamedCopy, type CopyPathDeps } from './blob-copy-paths';
import type { CopyBlobInput, CopyReporter } from './blob-source';
import type { WorkerMetrics } from './metrics';
import { SingleFlight } from './single-flight';
import { storageOf, type Storages } from './storage';

export type { CopyBlobInput, CopyReporter } from './blob-source';

export interface CopyBlobResult {
  outcome: 'copied' | 'skipped';
  method: CopyMethod | null;
  /** Bytes the final attempt uploaded (0 for skips and server-side copies; less than the size after a resume). */
  bytesSent: number;
}

/** Heartbeat details of copyBlob: enough to resume a multipart upload, and progress for the UI. */
export interface CopyProgress {
  uploadId: string | null;
  bytesDone: number;
  bytesTotal: number;
}

interface CopyDeps extends CopyPathDeps {
  storages: Storages;
  store: EventStore;
  claims: BlobClaims;
  metrics: WorkerMetrics;
}

export type BlobCopier = (input: CopyBlobInput, reporter: CopyReporter) => Promise<CopyBlobResult>;

export function createBlobCopier({ storages, store, claims, metrics, ...paths }: CopyDeps): BlobCopier {
  /**
   * Copies running in this worker, by target region and digest. Pushes sharing
   * a base layer arrive together; the first copies it, the others wait for that
   * copy and then find the blob present (or, if it failed, copy it themselves),
   * so a shared layer crosses once per region instead of once per image. Across
   * workers, the claim in Postgres does the same (store/blob-claims.ts).
   */
  const copies = new SingleFlight<CopyBlobResult>();

  /** Skips a blob the target holds with the right size (recorded); false when it must be copied. */
  async function skipIfPresent(input: CopyBlobInput, reporter: CopyReporter): Promise<boolean> {
    const target = storageOf(storages, input.targetRegion);
    const present = await target.head(target.layout.blobData(input.digest), reporter.signal);
    if (present === null || present.size !== input.size) return false;
    const skipped = await store.append({ type: 'BlobSkipped', replicationId: input.replicationId, region: input.targetRegion, data: { digest: input.digest, size: input.size } });
    if (skipped.recorded) {
      metrics.blobsSkipped.inc({ region: input.targetRegion });
      metrics.blobBytesSkipped.inc({ region: input.targetRegion }, input.size);
    }
    return true;
  }

  /** Copies and verifies the blob by the path its regions take, and records the copy. */
  async function copyAndRecord(input: CopyBlobInput, reporter: CopyReporter): Promise<CopyBlobResult> {
    const source = storageOf(storages, input.sourceRegion);
    const target = storageOf(storages, input.targetRegion);
    const started = performance.now();
    const method = copyMethod(source.region, target.region);
    const bytesSent =
      method === 'server-side' ? await serverSideCopy(source, target, input, paths, reporter).then(() => 0) : await streamedCopy(source, target, input, paths, reporter);
    const seconds = (performance.now() - started) / 1000;
    const copied = await store.append({
      type: 'BlobCopied',
      replicationId: input.replicationId,
      region: input.targetRegion,
      data: { digest: input.digest, size: input.size, method, seconds, bytesSent },
    });
    if (copied.recorded) {
      metrics.blobsCopied.inc({ region: input.targetRegion, method });
      metrics.blobBytesCopied.inc({ region: input.targetRegion, method }, input.size);
    }
    Context.current().log.info('blob copied', { method, bytes: input.size, seconds, digest: input.digest, region: input.targetRegion });
    return { outcome: 'copied', method, bytesSent };
  }

  /**
   * Skip what is present; else copy under the deployment-wide claim. While
   * another worker holds the claim, wait for it to end and judge again (most
   * likely: skip). A claim whose holder died expires and is taken over; the
   * taker resumes the dead holder's multipart upload (blob-copy-paths.ts).
   */
  async function copyOnce(input: CopyBlobInput, reporter: CopyReporter): Promise<CopyBlobResult> {
    for (;;) {
      if (await skipIfPresent(input, reporter)) return { outcome: 'skipped', method: null, bytesSent: 0 };
      const claim = await claims.take(input.targetRegion, input.digest);
      if (claim === null) {
        metrics.blobClaimWaits.inc({ region: input.targetRegion });
        await keepingAlive(reporter, () => claims.released(input.targetRegion, input.digest, reporter.signal));
        reporter.signal.throwIfAborted();
        continue;
      }
      try {
        // An earlier holder may have finished between the look above and the claim; with none, nobody did.
        if (!claim.first && (await skipIfPresent(input, reporter))) return { outcome: 'skipped', method: null, bytesSent: 0 };
        const release = await paths.limits.copySlot(input.targetRegion, reporter.signal);
        try {
          return await copyAndRecord(input, reporter);
        } finally {
          release();
        }
      } finally {
        await claim.release();
      }
    }
  }

  /** Makes one blob present and verified in one target region. Idempotent. */
  return async (input, reporter) => {
    const key = `${input.targetRegion}\u0000${input.digest}`;
    // Wait out another copy of this blob into this region, then judge for ourselves (most likely: skip).
    // Several may be waiting on one copy: the first to wake starts its own, the others wait again.
    // Never joined: a joined flight's result is the other replication's, with nothing recorded for this one.
    for (;;) {
      if (!copies.running(key)) return copies.run(key, () => copyOnce(input, reporter));
      await keepingAlive(reporter, () => copies.idle(key, reporter.signal));
      reporter.signal.throwIfAborted();
    }
  };
}

/** Reports (no) progress every 5 s while `wait` runs, so a copy waiting on another is not taken for a stalled one. */
async function keepingAlive(reporter: CopyReporter, wait: () => Promise<void>): Promise<void> {
  const keepAlive = setInterval(() => reporter.progress({ uploadId: null, bytesDone: 0 }), 5_000);
  try {
    await wait();
  } finally {
    clearInterval(keepAlive);
  }
}

/** The copyBlob activity of workflows started before one activity per region: one blob, its own heartbeats. */
export function createBlobActivities(copy: BlobCopier) {
  return {
    async copyBlob(input: CopyBlobInput): Promise<CopyBlobResult> {
      const context = Context.current();
      const resumed = context.info.heartbeatDetails as CopyProgress | undefined;
      return copy(input, {
        signal: context.cancellationSignal,
        resumableUpload: resumed?.uploadId ?? null,
        progress: ({ uploadId, bytesDone }) => context.heartbeat({ uploadId, bytesDone, bytesTotal: input.size }),
      });
    },
  };
}
