// A source blob as one copy sees it: what it is asked to copy, where it
// reports, and the reads that judge the source's bytes against the digest.
import { ApplicationFailure } from '@temporalio/common';
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Digest, RepositoryName } from '../domain/reference';
import { FailureType } from '../domain/workflow-contract';
import { hashStream } from './hashing';
import type { SourceVerifications } from './source-verifications';
import type { ObjectHead } from './storage';

export interface CopyBlobInput {
  replicationId: number;
  sourceRegion: string;
  targetRegion: string;
  /** The repository the blob belongs to: where a registry-API region holds it (absent in inputs of the earlier workflow shape). */
  repository?: RepositoryName;
  digest: Digest;
  size: number;
}

/**
 * A region's blobs as a copy reads them: a storage region's data keys
 * (regions.ts storageBlobs), or a registry's blob endpoint. The ETag names the
 * object read, so a server-side copy can be conditioned on the bytes verified.
 */
export interface BlobSource {
  region: string;
  head(digest: Digest, signal: AbortSignal): Promise<ObjectHead | null>;
  open(digest: Digest, signal: AbortSignal): Promise<(ObjectHead & { stream: Readable }) | null>;
}

/** Where one blob copy reports to, and what it resumes from. */
export interface CopyReporter {
  signal: AbortSignal;
  /** The multipart upload an earlier attempt left for this blob, if any. */
  resumableUpload: string | null;
  /** Bytes of this blob verified or uploaded so far, and the upload that holds them. Called often; must be cheap. */
  progress(update: { uploadId: string | null; bytesDone: number }): void;
}

/** The final failure when the bytes read do not hash to the digest or are not its size; null when they are right. */
export function corruption(input: CopyBlobInput, hash: Hash, bytes: number): ApplicationFailure | null {
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual === input.digest && bytes === input.size) return null;
  return ApplicationFailure.nonRetryable(
    `source blob ${input.digest} in ${input.sourceRegion} is corrupt: ${bytes} bytes hash to ${actual}`,
    FailureType.sourceBlobCorrupt,
  );
}

function missing(input: CopyBlobInput): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`source blob ${input.digest} is missing from ${input.sourceRegion}`, FailureType.sourceBlobMissing);
}

function wrongSize(input: CopyBlobInput, size: number): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `source blob ${input.digest} in ${input.sourceRegion} has ${size} bytes, the manifest says ${input.size}`,
    FailureType.sourceBlobCorrupt,
  );
}

/** The source blob's size and ETag, checked against the manifest's size. */
export async function headSource(source: BlobSource, input: CopyBlobInput, signal: AbortSignal): Promise<string> {
  const head = await source.head(input.digest, signal);
  if (head === null) throw missing(input);
  if (head.size !== input.size) throw wrongSize(input, head.size);
  return head.etag;
}

/** Opens the source blob for reading, checked against the manifest's size. */
export async function openSource(source: BlobSource, input: CopyBlobInput, signal: AbortSignal): Promise<{ stream: Readable; etag: string }> {
  const object = await source.open(input.digest, signal);
  if (object === null) throw missing(input);
  if (object.size !== input.size) {
    object.stream.destroy();
    throw wrongSize(input, object.size);
  }
  return { stream: object.stream, etag: object.etag };
}

/**
 * Reads the source whole and hashes it (nothing kept), shared with other
 * regions' copies in this worker as a verification; returns the ETag of the
 * object whose bytes hashed to the digest.
 */
export async function verifySource(source: BlobSource, input: CopyBlobInput, verifications: SourceVerifications, onBytes: (bytes: number) => void, signal: AbortSignal): Promise<string> {
  const verification = verifications.begin(source.region, input.digest);
  try {
    const { stream, etag } = await openSource(source, input, signal);
    let reported = 0;
    const { hash, bytes } = await hashStream(stream, (_chunk, read) => {
      if (read - reported < 8 * 1024 * 1024) return;
      reported = read;
      onBytes(read);
    });
    const failure = corruption(input, hash, bytes);
    if (failure) throw failure;
    verification.verified(etag);
    return etag;
  } finally {
    verification.abandoned();
  }
}

/** The ETag a verification in this worker proved (waiting for one in flight), else this copy's own read's. */
export async function verifiedEtag(source: BlobSource, input: CopyBlobInput, verifications: SourceVerifications, onBytes: (bytes: number) => void, signal: AbortSignal): Promise<string> {
  // Waiting for another copy's read, keep reporting (nothing of ours was read yet).
  const keepAlive = setInterval(() => onBytes(0), 5_000);
  let shared: string | null;
  try {
    shared = await verifications.lookup(source.region, input.digest);
  } finally {
    clearInterval(keepAlive);
  }
  return shared ?? (await verifySource(source, input, verifications, onBytes, signal));
}

/** Keeps reporting through one long S3 call (a server-side copy of gigabytes), so the activity keeps heartbeating. */
export async function reportDuring<T>(work: Promise<T>, reporter: CopyReporter, update: { uploadId: string | null; bytesDone: number }): Promise<T> {
  const timer = setInterval(() => reporter.progress(update), 5_000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
