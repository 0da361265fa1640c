// Copying one blob into one target region: the only place blob bytes move.
//
// Present in the target with the right size: skip (keys are content addresses,
// and nothing unverified is ever written under one). A registry-API region
// holds blobs per repository: there, present means in the pushed repository,
// and a blob the region holds in another repository is mounted from it. A
// copy of the same blob into the same region already running in this worker, or under another
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
import { copyMethod, type CopiedBy } from '../domain/config';
import type { RepositoryName } from '../domain/reference';
import type { BlobClaims } from '../store/blob-claims';
import type { BlobHomes, UploadCheckpoint, UploadCheckpoints } from '../store/registry-blobs';
import type { EventStore } from '../store/event-store';
import { registryCopy, serverSideCopy, streamedCopy, type CopyPathDeps } from './blob-copy-paths';
import type { CopyBlobInput, CopyReporter } from './blob-source';
import type { WorkerMetrics } from './metrics';
import { regionConfigOf } from './region-configs';
import type { Regions } from './regions';
import { SingleFlight } from './single-flight';

export type { CopyBlobInput, CopyReporter } from './blob-source';

export interface CopyBlobResult {
  outcome: 'copied' | 'skipped';
  /** 'mounted': a registry-API region took it from another of its repositories, no bytes sent. */
  method: CopiedBy | null;
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
  regions: Regions;
  store: EventStore;
  claims: BlobClaims;
  homes: BlobHomes;
  uploads: UploadCheckpoints;
  metrics: WorkerMetrics;
}

export type BlobCopier = (input: CopyBlobInput, reporter: CopyReporter) => Promise<CopyBlobResult>;

/** The repository a copy into or out of a registry-API region works in (blobs belong to repositories there). */
function repositoryOf(input: CopyBlobInput): RepositoryName {
  if (input.repository === undefined) throw new Error(`a copy of ${input.digest} into or out of a registry-API region names no repository`);
  return input.repository;
}

export function createBlobCopier({ regions, store, claims, homes, uploads, metrics, ...paths }: CopyDeps): BlobCopier {
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
    // Where a copy into the region would read it back from: its storage, or the pushed repository of its registry.
    const present = await regions.blobSource(input.targetRegion, input.repository).head(input.digest, reporter.signal);
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
    const started = performance.now();
    const { method, bytesSent } = await copyBytes(input, reporter);
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

  /** Moves the bytes by the path the pair of regions takes (blob-copy-paths.ts). */
  async function copyBytes(input: CopyBlobInput, reporter: CopyReporter): Promise<{ method: CopiedBy; bytesSent: number }> {
    const [sourceRegion, targetRegion] = [input.sourceRegion, input.targetRegion];
    const source = regions.blobSource(sourceRegion, input.repository);
    if (regions.isRegistryApi(targetRegion)) {
      const repository = repositoryOf(input);
      const checkpoints = {
        latest: () => uploads.latest(targetRegion, repository, input.digest),
        save: (checkpoint: UploadCheckpoint) => uploads.save(targetRegion, repository, input.digest, checkpoint),
        clear: () => uploads.clear(targetRegion, repository, input.digest),
      };
      const mountFrom = await homes.homeOf(targetRegion, input.digest);
      const copied = await registryCopy(source, regions.registryRepository(targetRegion, repository), input, paths, reporter, { mountFrom, checkpoints });
      await homes.record(targetRegion, input.digest, repository);
      return { method: copied.mounted ? 'mounted' : 'streamed', bytesSent: copied.bytesSent };
    }
    const target = regions.storage(targetRegion);
    if (!regions.isRegistryApi(sourceRegion) && copyMethod(regionConfigOf(regions.configs, sourceRegion), target.region) === 'server-side') {
      await serverSideCopy(regions.storage(sourceRegion), target, input, paths, reporter);
      return { method: 'server-side', bytesSent: 0 };
    }
    return { method: 'streamed', bytesSent: await streamedCopy(source, target, input, paths, reporter) };
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
