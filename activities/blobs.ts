// Copying one blob into one target region: the only place blob bytes move.
//
// Present in the target with the right size: skip (keys are content addresses,
// and nothing unverified is ever written under one). A copy of the same blob
// into the same region already running in this worker is waited for, not
// repeated (pushes sharing a base layer arrive together). Otherwise:
//   - same S3 endpoint and credentials: hash the source, then server-side
//     CopyObject conditioned on the ETag that was hashed;
//   - otherwise: stream the source into a multipart upload, hashing as it goes.
//     The object becomes visible only at CompleteMultipartUpload, which runs
//     after the digest matched. Progress reports carry the upload id, so a
//     retried attempt continues from the parts already uploaded (ListParts).
//
// The copy itself knows no activity: it reports to a CopyReporter. The
// region replication activity aggregates every blob's report into its
// heartbeat; the copyBlob activity (kept for workflows started before one
// activity per region) heartbeats each report as it is.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  NoSuchUpload,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { sharesStorageEndpoint } from '../domain/config';
import type { Digest } from '../domain/reference';
import { FailureType } from '../domain/workflow-contract';
import type { CopyMethod } from '../store/events';
import type { EventStore } from '../store/event-store';
import type { ByteBudget } from './byte-budget';
import { hashInParts, hashStream, readHashed } from './hashing';
import type { SourceVerifications } from './source-verifications';
import type { WorkerMetrics } from './metrics';
import { storageOf, type RegionStorage, type Storages } from './storage';

export interface CopyBlobInput {
  replicationId: number;
  sourceRegion: string;
  targetRegion: string;
  digest: Digest;
  size: number;
}

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

/** Where one blob copy reports to, and what it resumes from. */
export interface CopyReporter {
  signal: AbortSignal;
  /** The multipart upload an earlier attempt left for this blob, if any. */
  resumableUpload: string | null;
  /** Bytes of this blob verified or uploaded so far, and the upload that holds them. Called often; must be cheap. */
  progress(update: { uploadId: string | null; bytesDone: number }): void;
}

/** S3's limit for one CopyObject; larger blobs take the streamed path. */
const MAX_COPY_OBJECT_BYTES = 5 * 1024 ** 3;

interface CopyDeps {
  storages: Storages;
  store: EventStore;
  partSizeBytes: number;
  /** Blob bytes the worker may hold in memory at once, over every copy. */
  partBudget: ByteBudget;
  /** Source blobs this worker verified, shared between regions' copies. */
  verifications: SourceVerifications;
  metrics: WorkerMetrics;
}

function corrupt(input: CopyBlobInput, actual: string, bytes: number): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `source blob ${input.digest} in ${input.sourceRegion} is corrupt: ${bytes} bytes hash to ${actual}`,
    FailureType.sourceBlobCorrupt,
  );
}

/** Keeps reporting through one long S3 call (a server-side copy of gigabytes), so the activity keeps heartbeating. */
async function reportDuring<T>(work: Promise<T>, reporter: CopyReporter, update: { uploadId: string | null; bytesDone: number }): Promise<T> {
  const timer = setInterval(() => reporter.progress(update), 5_000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** Reads the source once and hashes it, reporting progress; keeps no bytes. */
async function hashWhole(stream: Readable, reporter: CopyReporter): Promise<{ hash: Hash; bytes: number }> {
  let reported = 0;
  return hashStream(stream, (_chunk, bytes) => {
    if (bytes - reported < 8 * 1024 * 1024) return;
    reported = bytes;
    reporter.progress({ uploadId: null, bytesDone: bytes });
  });
}

async function openSource(source: RegionStorage, input: CopyBlobInput, signal: AbortSignal): Promise<{ stream: Readable; etag: string }> {
  const object = await source.getStream(source.layout.blobData(input.digest), signal);
  if (object === null) {
    throw ApplicationFailure.nonRetryable(
      `source blob ${input.digest} is missing from ${input.sourceRegion}`,
      FailureType.sourceBlobMissing,
    );
  }
  if (object.size !== input.size) {
    object.stream.destroy();
    throw ApplicationFailure.nonRetryable(
      `source blob ${input.digest} in ${input.sourceRegion} has ${object.size} bytes, the manifest says ${input.size}`,
      FailureType.sourceBlobCorrupt,
    );
  }
  return { stream: object.stream, etag: object.etag };
}

/** The source read and hashed whole (nothing kept), shared as a verification for other regions' copies. */
async function verifySource(source: RegionStorage, input: CopyBlobInput, verifications: SourceVerifications, reporter: CopyReporter): Promise<string> {
  const verification = verifications.begin(source.region.name, input.digest);
  try {
    const { stream, etag } = await openSource(source, input, reporter.signal);
    const { hash, bytes } = await hashWhole(stream, reporter);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== input.digest || bytes !== input.size) throw corrupt(input, actual, bytes);
    verification.verified(etag);
    return etag;
  } finally {
    verification.abandoned();
  }
}

async function serverSideCopy(
  source: RegionStorage,
  target: RegionStorage,
  input: CopyBlobInput,
  verifications: SourceVerifications,
  reporter: CopyReporter,
): Promise<void> {
  const signal = reporter.signal;
  // Another region's copy in this worker may have read (or be reading) this blob already.
  const shared = await reportDuring(verifications.lookup(source.region.name, input.digest), reporter, { uploadId: null, bytesDone: 0 });
  const etag = shared ?? (await verifySource(source, input, verifications, reporter));
  // The ETag condition makes the copied bytes exactly the bytes verified.
  const copy = target.s3.send(
    new CopyObjectCommand({
      Bucket: target.bucket,
      Key: target.layout.blobData(input.digest),
      CopySource: encodeURI(`${source.bucket}/${source.layout.blobData(input.digest)}`),
      CopySourceIfMatch: etag,
      ContentType: 'application/octet-stream',
      MetadataDirective: 'REPLACE',
    }),
    { abortSignal: signal },
  );
  try {
    await reportDuring(copy, reporter, { uploadId: null, bytesDone: input.size });
  } catch (error) {
    // The source object is no longer the one verified: the next attempt reads it again.
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 412) verifications.forget(source.region.name, input.digest);
    throw error;
  }
  reporter.progress({ uploadId: null, bytesDone: input.size });
}

async function uploadedParts(target: RegionStorage, key: string, uploadId: string): Promise<Map<number, CompletedPart & { size: number }> | null> {
  const parts = new Map<number, CompletedPart & { size: number }>();
  let marker: string | undefined;
  try {
    do {
      const page = await target.s3.send(
        new ListPartsCommand({ Bucket: target.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
      );
      for (const part of page.Parts ?? []) {
        parts.set(part.PartNumber!, { PartNumber: part.PartNumber!, ETag: part.ETag!, size: part.Size ?? 0 });
      }
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker);
  } catch (error) {
    if (error instanceof NoSuchUpload) return null;
    throw error;
  }
  return parts;
}

/** A blob that fits in one part: read it whole, verify, one PutObject. */
async function smallStreamedCopy(source: RegionStorage, target: RegionStorage, input: CopyBlobInput, deps: StreamDeps, reporter: CopyReporter): Promise<number> {
  const signal = reporter.signal;
  // Read whole, verified, one PutObject; its bytes count against the budget until uploaded.
  const giveBack = await deps.budget.take(input.size, signal);
  const verification = deps.verifications.begin(source.region.name, input.digest);
  try {
    const { stream, etag } = await openSource(source, input, signal);
    const { hash, bytes, data } = await readHashed(stream);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== input.digest || bytes !== input.size) throw corrupt(input, actual, bytes);
    verification.verified(etag);
    await target.put(target.layout.blobData(input.digest), data, signal);
    reporter.progress({ uploadId: null, bytesDone: bytes });
    return bytes;
  } finally {
    verification.abandoned();
    giveBack();
  }
}

/** What a streamed copy shares with every other copy in the worker. */
interface StreamDeps {
  partSize: number;
  budget: ByteBudget;
  verifications: SourceVerifications;
}

async function streamedCopy(source: RegionStorage, target: RegionStorage, input: CopyBlobInput, deps: StreamDeps, reporter: CopyReporter): Promise<number> {
  if (input.size <= deps.partSize) return smallStreamedCopy(source, target, input, deps, reporter);
  const signal = reporter.signal;
  const key = target.layout.blobData(input.digest);
  // The upload the last heartbeat named; else the newest one S3 holds open for the key (a worker
  // killed before its heartbeat reached the server left it). Parts are content-addressed by
  // (digest, part number), so any open upload of this key holds right bytes or none.
  const resumable = reporter.resumableUpload ?? (await target.newestOpenUpload(key, signal));
  const resumed = resumable === null ? null : await uploadedParts(target, key, resumable);
  const uploadId =
    resumed !== null && resumable !== null
      ? resumable
      : (await target.s3.send(new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: key, ContentType: 'application/octet-stream' }), { abortSignal: signal })).UploadId!;
  const already = resumed ?? new Map<number, CompletedPart & { size: number }>();
  reporter.progress({ uploadId, bytesDone: 0 });

  const verification = deps.verifications.begin(source.region.name, input.digest);
  try {
    const { stream, etag } = await openSource(source, input, signal);
    const completed: CompletedPart[] = [];
    let bytesSent = 0;
    let bytesDone = 0;
    const { hash, bytes } = await hashInParts(stream, deps.partSize, deps.budget, async (part, partNumber) => {
      const previous = already.get(partNumber);
      if (previous && previous.size === part.length) {
        completed.push({ PartNumber: partNumber, ETag: previous.ETag });
      } else {
        const uploaded = await target.s3.send(new UploadPartCommand({ Bucket: target.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: part }), {
          abortSignal: signal,
        });
        completed.push({ PartNumber: partNumber, ETag: uploaded.ETag! });
        bytesSent += part.length;
      }
      bytesDone += part.length;
      reporter.progress({ uploadId, bytesDone });
    });
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== input.digest || bytes !== input.size) {
      await target.s3.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: key, UploadId: uploadId }));
      throw corrupt(input, actual, bytes);
    }
    verification.verified(etag);
    completed.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await target.s3.send(new CompleteMultipartUploadCommand({ Bucket: target.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: completed } }), {
      abortSignal: signal,
    });
    return bytesSent;
  } finally {
    verification.abandoned();
  }
}

/** Resolves when `work` settles, whether it succeeded or not, or when `signal` aborts. */
function settledOrAborted(work: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    void work.then(
      () => resolve(),
      () => resolve(),
    );
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export type BlobCopier = (input: CopyBlobInput, reporter: CopyReporter) => Promise<CopyBlobResult>;

export function createBlobCopier({ storages, store, partSizeBytes, partBudget, verifications, metrics }: CopyDeps): BlobCopier {
  const streamDeps: StreamDeps = { partSize: partSizeBytes, budget: partBudget, verifications };
  /**
   * Copies running in this worker, by target region and digest. Pushes sharing
   * a base layer arrive together; the first copies it, the others wait for that
   * copy and then find the blob present (or, if it failed, copy it themselves),
   * so a shared layer crosses once per region instead of once per image.
   */
  const inFlight = new Map<string, Promise<CopyBlobResult>>();

  /** One copy attempt: skip what is present, else copy and verify. */
  async function copyOnce(input: CopyBlobInput, reporter: CopyReporter): Promise<CopyBlobResult> {
    const source = storageOf(storages, input.sourceRegion);
    const target = storageOf(storages, input.targetRegion);
    const present = await target.head(target.layout.blobData(input.digest), reporter.signal);
    if (present !== null && present.size === input.size) {
      const skipped = await store.append({ type: 'BlobSkipped', replicationId: input.replicationId, region: input.targetRegion, data: { digest: input.digest, size: input.size } });
      if (skipped.recorded) {
        metrics.blobsSkipped.inc({ region: input.targetRegion });
        metrics.blobBytesSkipped.inc({ region: input.targetRegion }, input.size);
      }
      return { outcome: 'skipped', method: null, bytesSent: 0 };
    }
    const started = performance.now();
    const serverSide = sharesStorageEndpoint(source.region, target.region) && input.size <= MAX_COPY_OBJECT_BYTES;
    const bytesSent = serverSide
      ? await serverSideCopy(source, target, input, verifications, reporter).then(() => 0)
      : await streamedCopy(source, target, input, streamDeps, reporter);
    const method: CopyMethod = serverSide ? 'server-side' : 'streamed';
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

  /** Makes one blob present and verified in one target region. Idempotent. */
  return async (input, reporter) => {
    const { signal } = reporter;
    const key = `${input.targetRegion}\u0000${input.digest}`;
    for (let running = inFlight.get(key); running && !signal.aborted; running = inFlight.get(key)) {
      await reportDuring(settledOrAborted(running, signal), reporter, { uploadId: null, bytesDone: 0 });
    }
    if (signal.aborted) throw signal.reason;
    const copy = copyOnce(input, reporter);
    inFlight.set(key, copy);
    try {
      return await copy;
    } finally {
      if (inFlight.get(key) === copy) inFlight.delete(key);
    }
  };
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
