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
//     after the digest matched. Heartbeats carry the upload id, so a retried
//     attempt continues from the parts already uploaded (ListParts).
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  NoSuchUpload,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { sharesStorageEndpoint } from '../domain/config';
import type { Digest } from '../domain/reference';
import { FailureType } from '../domain/workflow-contract';
import type { CopyMethod } from '../store/events';
import type { EventStore } from '../store/event-store';
import { storageOf, type RegionStorage, type Storages } from './storage';
import type { WorkerMetrics } from './metrics';

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

/** Heartbeat details: enough to resume a multipart upload, and progress for the UI. */
export interface CopyProgress {
  uploadId: string | null;
  bytesDone: number;
  bytesTotal: number;
}

/** S3's limit for one CopyObject; larger blobs take the streamed path. */
const MAX_COPY_OBJECT_BYTES = 5 * 1024 ** 3;

interface CopyDeps {
  storages: Storages;
  store: EventStore;
  partSizeBytes: number;
  metrics: WorkerMetrics;
}

function corrupt(input: CopyBlobInput, actual: string, bytes: number): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `source blob ${input.digest} in ${input.sourceRegion} is corrupt: ${bytes} bytes hash to ${actual}`,
    FailureType.sourceBlobCorrupt,
  );
}

function heartbeat(progress: CopyProgress): void {
  Context.current().heartbeat(progress);
}

/** Keeps heartbeating through one long S3 call (a server-side copy of gigabytes). */
async function heartbeatDuring<T>(work: Promise<T>, progress: CopyProgress): Promise<T> {
  const timer = setInterval(() => heartbeat(progress), 5_000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** Part uploads in flight while the next part is read: reading and uploading overlap. */
const PARTS_IN_FLIGHT = 2;

/**
 * Reads the source once, hashing every byte and handing each part-sized run to
 * `onPart`, with up to `PARTS_IN_FLIGHT` of them running while reading goes on
 * (so memory stays at a few parts, whatever the blob's size).
 */
async function hashInParts(
  stream: Readable,
  partSize: number,
  onPart: (part: Buffer, partNumber: number) => Promise<void>,
): Promise<{ hash: Hash; bytes: number }> {
  const hash = createHash('sha256');
  const inFlight: Array<Promise<void>> = [];
  const hand = async (part: Buffer, partNumber: number): Promise<void> => {
    const running = onPart(part, partNumber);
    // Handled here so a failure while reading goes on is not "unhandled"; awaiting it below still throws.
    running.catch(() => undefined);
    inFlight.push(running);
    if (inFlight.length >= PARTS_IN_FLIGHT) await inFlight.shift();
  };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  let partNumber = 1;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= partSize) {
      const joined = Buffer.concat(pending, pendingBytes);
      await hand(joined.subarray(0, partSize), partNumber++);
      const rest = joined.subarray(partSize);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
    }
  }
  if (pendingBytes > 0 || partNumber === 1) await hand(Buffer.concat(pending, pendingBytes), partNumber);
  await Promise.all(inFlight);
  return { hash, bytes };
}

/** Reads the source once and hashes it, heartbeating progress; keeps no bytes. */
async function hashWhole(stream: Readable, input: CopyBlobInput): Promise<{ hash: Hash; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  let reported = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    if (bytes - reported >= 8 * 1024 * 1024) {
      reported = bytes;
      heartbeat({ uploadId: null, bytesDone: bytes, bytesTotal: input.size });
    }
  }
  return { hash, bytes };
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

async function serverSideCopy(source: RegionStorage, target: RegionStorage, input: CopyBlobInput, signal: AbortSignal): Promise<void> {
  const { stream, etag } = await openSource(source, input, signal);
  const { hash, bytes } = await hashWhole(stream, input);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== input.digest || bytes !== input.size) throw corrupt(input, actual, bytes);
  // The ETag condition makes the copied bytes exactly the bytes just verified.
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
  await heartbeatDuring(copy, { uploadId: null, bytesDone: bytes, bytesTotal: input.size });
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
async function smallStreamedCopy(source: RegionStorage, target: RegionStorage, input: CopyBlobInput, signal: AbortSignal): Promise<number> {
  const { stream } = await openSource(source, input, signal);
  const chunks: Buffer[] = [];
  const { hash, bytes } = await hashInParts(stream, input.size + 1, async (part) => {
    chunks.push(part);
  });
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== input.digest || bytes !== input.size) throw corrupt(input, actual, bytes);
  await target.put(target.layout.blobData(input.digest), Buffer.concat(chunks), signal);
  return bytes;
}

async function streamedCopy(
  source: RegionStorage,
  target: RegionStorage,
  input: CopyBlobInput,
  partSize: number,
  signal: AbortSignal,
): Promise<number> {
  if (input.size <= partSize) return smallStreamedCopy(source, target, input, signal);
  const key = target.layout.blobData(input.digest);
  const resumed = Context.current().info.heartbeatDetails as CopyProgress | undefined;
  let uploadId = resumed?.uploadId ?? null;
  let already = uploadId ? await uploadedParts(target, key, uploadId) : null;
  if (!uploadId || !already) {
    const created = await target.s3.send(
      new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: key, ContentType: 'application/octet-stream' }),
      { abortSignal: signal },
    );
    uploadId = created.UploadId!;
    already = new Map();
  }
  const activeUpload = uploadId;
  heartbeat({ uploadId: activeUpload, bytesDone: 0, bytesTotal: input.size });

  const { stream } = await openSource(source, input, signal);
  const completed: CompletedPart[] = [];
  let bytesSent = 0;
  let bytesDone = 0;
  const { hash, bytes } = await hashInParts(stream, partSize, async (part, partNumber) => {
    const previous = already.get(partNumber);
    if (previous && previous.size === part.length) {
      completed.push({ PartNumber: partNumber, ETag: previous.ETag });
    } else {
      const uploaded = await target.s3.send(
        new UploadPartCommand({ Bucket: target.bucket, Key: key, UploadId: activeUpload, PartNumber: partNumber, Body: part }),
        { abortSignal: signal },
      );
      completed.push({ PartNumber: partNumber, ETag: uploaded.ETag! });
      bytesSent += part.length;
    }
    bytesDone += part.length;
    heartbeat({ uploadId: activeUpload, bytesDone, bytesTotal: input.size });
  });
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== input.digest || bytes !== input.size) {
    await target.s3.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: key, UploadId: activeUpload }));
    throw corrupt(input, actual, bytes);
  }
  completed.sort((a, b) => a.PartNumber! - b.PartNumber!);
  await target.s3.send(
    new CompleteMultipartUploadCommand({ Bucket: target.bucket, Key: key, UploadId: activeUpload, MultipartUpload: { Parts: completed } }),
    { abortSignal: signal },
  );
  return bytesSent;
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

export function createBlobActivities({ storages, store, partSizeBytes, metrics }: CopyDeps) {
  /**
   * Copies running in this worker, by target region and digest. Pushes sharing
   * a base layer arrive together; the first copies it, the others wait for that
   * copy and then find the blob present (or, if it failed, copy it themselves),
   * so a shared layer crosses once per region instead of once per image.
   */
  const inFlight = new Map<string, Promise<CopyBlobResult>>();

  /** One copy attempt: skip what is present, else copy and verify. */
  async function copyOnce(input: CopyBlobInput, signal: AbortSignal): Promise<CopyBlobResult> {
    const source = storageOf(storages, input.sourceRegion);
    const target = storageOf(storages, input.targetRegion);
    const present = await target.head(target.layout.blobData(input.digest), signal);
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
      ? await serverSideCopy(source, target, input, signal).then(() => 0)
      : await streamedCopy(source, target, input, partSizeBytes, signal);
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
    Context.current().log.info('blob copied', { method, bytes: input.size, seconds });
    return { outcome: 'copied', method, bytesSent };
  }

  return {
    /** Makes one blob present and verified in one target region. Idempotent. */
    async copyBlob(input: CopyBlobInput): Promise<CopyBlobResult> {
      const signal = Context.current().cancellationSignal;
      const key = `${input.targetRegion}\u0000${input.digest}`;
      for (let running = inFlight.get(key); running && !signal.aborted; running = inFlight.get(key)) {
        await heartbeatDuring(settledOrAborted(running, signal), { uploadId: null, bytesDone: 0, bytesTotal: input.size });
      }
      if (signal.aborted) throw signal.reason;
      const copy = copyOnce(input, signal);
      inFlight.set(key, copy);
      try {
        return await copy;
      } finally {
        if (inFlight.get(key) === copy) inFlight.delete(key);
      }
    },
  };
}
