// The two ways a blob's bytes cross into a target region. Neither makes
// anything visible under the blob's key before its digest matched.
//
//   streamed:    the worker reads the source once, hashing as it goes, into
//                a multipart upload (one PutObject for a blob of one part);
//                CompleteMultipartUpload runs after the digest matched.
//   server-side: the storage server copies, conditioned on the source's ETag,
//                while the worker hashes the source (or another region's copy
//                in this worker already did): parts are copied with
//                UploadPartCopy during the read, completed once it verified,
//                so the copy costs about one read, not a read and then a copy.
//                A blob of one part: one CopyObject after the verification.
//
//   registry:    into a registry-API region: the worker reads the source
//                once, hashing as it goes, into a blob upload of the target
//                repository (one PUT for a blob of one part, else a PATCH per
//                part), closed under the digest after it matched; the
//                registry checks the digest again before the blob exists.
//                Or no bytes at all: a cross-repository mount of a blob the
//                region already holds in another repository.
//
// Multipart copies report their upload id, so a retried attempt continues
// from the parts already there. A streamed part is reused only when its ETag
// is the MD5 of the source bytes read for it again. A server-side copy starts
// a fresh upload each attempt: its parts are copied inside the server. A
// registry upload reports its Location, and a retried attempt continues at
// the offset the registry holds (the bytes before it are read and hashed
// again, not sent; the registry's digest check covers what was sent before).
import { createHash } from 'node:crypto';
import { forEachLimited } from '../support/concurrency';
import type { ByteBudget } from './byte-budget';
import type { RegionLimits } from './region-limits';
import type { RepositoryName } from '../domain/reference';
import { corruption, headSource, openSource, reportDuring, verifiedEtag, type BlobSource, type CopyBlobInput, type CopyReporter } from './blob-source';
import { hashInParts, readHashed } from './hashing';
import { storageBlobs } from './regions';
import type { UploadCheckpoint } from '../store/registry-blobs';
import type { RegistryRepository, RegistryUploadSession } from './registry-repository';
import type { SourceVerifications } from './source-verifications';
import { isPreconditionFailed, type RegionStorage, type UploadedPart } from './storage';

/** What every copy in a worker shares. */
export interface CopyPathDeps {
  partSize: number;
  /** Blob bytes the worker may hold in memory at once, over every copy. */
  budget: ByteBudget;
  /** Source blobs this worker verified, shared between regions' copies. */
  verifications: SourceVerifications;
  /** Each target region's byte rate, paced before every request that sends blob bytes. */
  limits: RegionLimits;
}

/** Server-side part copies in flight for one blob. */
const PART_COPIES_IN_FLIGHT = 4;
/** A multipart upload holds at most this many parts (S3's limit). */
const MAX_PARTS = 10_000;
/** Server-side parts cost a request each and no worker memory: larger than streamed ones. */
const MIN_COPY_PART_BYTES = 64 * 1024 * 1024;

const unquoted = (etag: string) => etag.replace(/^"|"$/g, '');

/** The upload a retry continues (the heartbeat's, else the newest S3 holds open for the key) with its parts, or a new one. */
async function openUpload(target: RegionStorage, key: string, reporter: CopyReporter): Promise<{ uploadId: string; parts: Map<number, UploadedPart> }> {
  const resumable = reporter.resumableUpload ?? (await target.newestOpenUpload(key, reporter.signal));
  const parts = resumable === null ? null : await target.uploadedParts(key, resumable, reporter.signal);
  if (resumable !== null && parts !== null) return { uploadId: resumable, parts };
  return { uploadId: await target.startUpload(key, reporter.signal), parts: new Map() };
}

/** A blob that fits in one part: read it whole, verify, one PutObject. Returns the bytes sent. */
async function smallStreamedCopy(source: BlobSource, input: CopyBlobInput, deps: CopyPathDeps, reporter: CopyReporter, targetRegion: string, write: (data: Buffer) => Promise<void>): Promise<number> {
  const signal = reporter.signal;
  // Its bytes count against the budget until uploaded.
  const giveBack = await deps.budget.take(input.size, signal);
  const verification = deps.verifications.begin(source.region, input.digest);
  try {
    const { stream, etag } = await openSource(source, input, signal);
    const { hash, bytes, data } = await readHashed(stream, input.size);
    const failure = corruption(input, hash, bytes);
    if (failure) throw failure;
    verification.verified(etag);
    await deps.limits.pace(targetRegion, bytes, signal);
    await write(data);
    reporter.progress({ uploadId: null, bytesDone: bytes });
    return bytes;
  } finally {
    verification.abandoned();
    giveBack();
  }
}

/** Streams the source through the worker into the target. Returns the bytes this attempt sent (less than the size after a resume). */
export async function streamedCopy(source: BlobSource, target: RegionStorage, input: CopyBlobInput, deps: CopyPathDeps, reporter: CopyReporter): Promise<number> {
  if (input.size <= deps.partSize) {
    return smallStreamedCopy(source, input, deps, reporter, target.region.name, (data) => target.put(target.layout.blobData(input.digest), data, reporter.signal));
  }
  const signal = reporter.signal;
  const key = target.layout.blobData(input.digest);
  const { uploadId, parts: already } = await openUpload(target, key, reporter);
  reporter.progress({ uploadId, bytesDone: 0 });

  // This read goes at the target's pace (a slow link, a byte cap): no other region's copy waits
  // for it; its verdict is recorded once reached, for copies that come later.
  const { stream, etag } = await openSource(source, input, signal);
  const completed: UploadedPart[] = [];
  let bytesSent = 0;
  let bytesDone = 0;
  const { hash, bytes } = await hashInParts(stream, deps.partSize, deps.budget, async (part, partNumber) => {
    const previous = already.get(partNumber);
    // Reused only when its ETag is the MD5 of the bytes just read for it (S3's part ETag):
    // an earlier attempt, or anyone, may have left other bytes of the same length there.
    if (previous && previous.size === part.length && unquoted(previous.etag) === createHash('md5').update(part).digest('hex')) {
      completed.push(previous);
    } else {
      await deps.limits.pace(target.region.name, part.length, signal);
      completed.push(await target.uploadPart(key, uploadId, partNumber, part, signal));
      bytesSent += part.length;
    }
    bytesDone += part.length;
    reporter.progress({ uploadId, bytesDone });
  });
  const failure = corruption(input, hash, bytes);
  if (failure) {
    await target.abortUpload(key, uploadId);
    throw failure;
  }
  deps.verifications.record(source.region, input.digest, etag);
  await target.completeUpload(key, uploadId, completed, signal);
  return bytesSent;
}

/** What a copy into a registry-API region did: bytes sent, or a mount that sent none. */
export interface RegistryCopyResult {
  bytesSent: number;
  mounted: boolean;
}

/** Where a registry upload of one blob into one repository was last seen (store/registry-blobs.ts). */
export interface UploadCheckpointStore {
  latest(): Promise<UploadCheckpoint | null>;
  save(checkpoint: UploadCheckpoint): Promise<void>;
  clear(): Promise<void>;
}

/**
 * Copies a blob into a registry-API region's repository: mounted from
 * `mountFrom` (a repository of that registry known to hold it) when the
 * registry agrees, else uploaded from the source; a blob of more than one
 * part resumes the upload last checkpointed, when the registry still has it
 * at that offset.
 */
export async function registryCopy(
  source: BlobSource,
  target: RegistryRepository,
  input: CopyBlobInput,
  deps: CopyPathDeps,
  reporter: CopyReporter,
  { mountFrom, checkpoints }: { mountFrom: RepositoryName | null; checkpoints: UploadCheckpointStore },
): Promise<RegistryCopyResult> {
  const signal = reporter.signal;
  let session: RegistryUploadSession | null = null;
  if (mountFrom !== null && mountFrom !== target.name) {
    const mounted = await target.startUpload(signal, { digest: input.digest, from: mountFrom });
    if (mounted === 'mounted') {
      reporter.progress({ uploadId: null, bytesDone: input.size });
      return { bytesSent: 0, mounted: true };
    }
    // Declined (the blob left that repository since): the upload it opened instead serves.
    session = mounted;
  }
  if (input.size <= deps.partSize) {
    const opened = session ?? (await startUpload(target, signal));
    const bytesSent = await smallStreamedCopy(source, input, deps, reporter, target.region, (data) => target.finishUpload(opened, input.digest, data, signal));
    return { bytesSent, mounted: false };
  }
  if (session === null) {
    const last = (await checkpoints.latest())?.location ?? reporter.resumableUpload;
    session = (last === null ? null : await target.resumeUpload(last, signal)) ?? (await startUpload(target, signal));
  }
  const bytesSent = await chunkedRegistryUpload(source, target, session, input, deps, reporter, checkpoints);
  return { bytesSent, mounted: false };
}

async function startUpload(target: RegistryRepository, signal: AbortSignal): Promise<RegistryUploadSession> {
  const session = await target.startUpload(signal);
  if (session === 'mounted') throw new Error('the registry answered a plain upload as a mount');
  return session;
}

/**
 * The source read once into the upload, a PATCH per part in order (a part's
 * bytes the upload already holds are not sent again), closed under the
 * digest once the read hashed to it; the upload is cancelled when it did not.
 */
async function chunkedRegistryUpload(
  source: BlobSource,
  target: RegistryRepository,
  resumed: RegistryUploadSession,
  input: CopyBlobInput,
  deps: CopyPathDeps,
  reporter: CopyReporter,
  checkpoints: UploadCheckpointStore,
): Promise<number> {
  const signal = reporter.signal;
  let session = resumed;
  reporter.progress({ uploadId: session.location, bytesDone: session.offset });
  const { stream, etag } = await openSource(source, input, signal);
  let bytesSent = 0;
  let read = 0;
  // Parts arrive a few at a time; an upload takes them in order only.
  let previous: Promise<void> = Promise.resolve();
  const send = async (part: Buffer, start: number) => {
    const skip = Math.max(0, Math.min(part.length, session.offset - start));
    if (skip < part.length) {
      if (start + skip !== session.offset) throw new Error(`upload of ${input.digest} into ${target.region} holds ${session.offset} bytes, the copy is at ${start + skip}`);
      await deps.limits.pace(target.region, part.length - skip, signal);
      session = await target.appendChunk(session, part.subarray(skip), signal);
      await checkpoints.save(session);
      bytesSent += part.length - skip;
    }
    reporter.progress({ uploadId: session.location, bytesDone: start + part.length });
  };
  // A failed read or request leaves the upload for the next attempt to resume.
  const { hash, bytes } = await hashInParts(stream, deps.partSize, deps.budget, (part) => {
    const start = read;
    read += part.length;
    previous = previous.then(() => send(part, start));
    return previous;
  });
  const failure = corruption(input, hash, bytes);
  if (failure) {
    await Promise.all([target.cancelUpload(session), checkpoints.clear()]);
    throw failure;
  }
  deps.verifications.record(source.region, input.digest, etag);
  try {
    await target.finishUpload(session, input.digest, undefined, signal);
  } catch (error) {
    // The registry refused the digest (bytes an earlier attempt sent were not these): the next attempt starts afresh.
    await Promise.all([target.cancelUpload(session), checkpoints.clear()]);
    throw error;
  }
  await checkpoints.clear();
  return bytesSent;
}

/** Part boundaries [start, end) for a server-side copy: at least 64 MiB, larger to stay within S3's part count. */
export function copyPartRanges(size: number, partSize: number): Array<{ partNumber: number; start: number; end: number }> {
  const span = Math.max(partSize, MIN_COPY_PART_BYTES, Math.ceil(size / MAX_PARTS));
  const ranges = [];
  for (let start = 0, partNumber = 1; start < size; start += span, partNumber++) ranges.push({ partNumber, start, end: Math.min(size, start + span) });
  return ranges;
}

/** One CopyObject once the source verified; the ETag condition makes the copied bytes exactly the bytes verified. */
async function smallServerSideCopy(source: RegionStorage, target: RegionStorage, input: CopyBlobInput, deps: CopyPathDeps, reporter: CopyReporter): Promise<void> {
  const signal = reporter.signal;
  const etag = await verifiedEtag(storageBlobs(source), input, deps.verifications, (bytesDone) => reporter.progress({ uploadId: null, bytesDone }), signal);
  const sourceKey = source.layout.blobData(input.digest);
  await deps.limits.pace(target.region.name, input.size, signal);
  await reportDuring(target.copyObject(target.layout.blobData(input.digest), { source, sourceKey, ifMatch: etag }, signal), reporter, {
    uploadId: null,
    bytesDone: input.size,
  });
  reporter.progress({ uploadId: null, bytesDone: input.size });
}

/** Copies inside the storage server while the source is hashed; completes only once it verified. */
export async function serverSideCopy(source: RegionStorage, target: RegionStorage, input: CopyBlobInput, deps: CopyPathDeps, reporter: CopyReporter): Promise<void> {
  try {
    if (input.size <= deps.partSize) return await smallServerSideCopy(source, target, input, deps, reporter);
    return await multipartServerSideCopy(source, target, input, deps, reporter);
  } catch (error) {
    // The source object is no longer the one verified: the next attempt reads it again.
    if (isPreconditionFailed(error)) deps.verifications.forget(source.region.name, input.digest);
    throw error;
  }
}

async function multipartServerSideCopy(source: RegionStorage, target: RegionStorage, input: CopyBlobInput, deps: CopyPathDeps, reporter: CopyReporter): Promise<void> {
  const key = target.layout.blobData(input.digest);
  const sourceKey = source.layout.blobData(input.digest);
  // Parts are copied from the object with this ETag only; the hash must be of the same object.
  const etag = await headSource(storageBlobs(source), input, reporter.signal);
  // Parts copied by an earlier attempt cannot be checked without reading them, and copying
  // again costs the worker nothing: a fresh upload each attempt, the earlier one aborted.
  if (reporter.resumableUpload !== null) await target.abortUpload(key, reporter.resumableUpload).catch(() => undefined);
  const uploadId = await target.startUpload(key, reporter.signal);
  const stop = new AbortController();
  const signal = AbortSignal.any([reporter.signal, stop.signal]);
  const completed: UploadedPart[] = [];
  let copied = 0;
  const report = () => reporter.progress({ uploadId, bytesDone: copied });
  report();
  const copying = forEachLimited(
    copyPartRanges(input.size, deps.partSize),
    PART_COPIES_IN_FLIGHT,
    async ({ partNumber, start, end }, partSignal) => {
      await deps.limits.pace(target.region.name, end - start, partSignal);
      completed.push(await target.copyPart(key, uploadId, partNumber, { source, sourceKey, ifMatch: etag, start, end }, partSignal));
      copied += end - start;
      report();
    },
    signal,
  );
  const verifying = verifiedEtag(storageBlobs(source), input, deps.verifications, report, signal);
  // The first to fail stops the other; the failure is that first one, not the abort it caused.
  const stopOnFailure = (error: unknown) => {
    stop.abort(error);
    throw error;
  };
  const [copiedAll, verified] = await Promise.allSettled([copying.catch(stopOnFailure), verifying.catch(stopOnFailure)]);
  if (copiedAll.status === 'rejected' || verified.status === 'rejected') {
    // Server-side parts are never resumed (the next attempt starts afresh): leave no upload behind.
    await target.abortUpload(key, uploadId).catch(() => undefined);
    throw stop.signal.reason;
  }
  if (verified.value !== etag) {
    // The source object was replaced between the HEAD and the read: the parts may hold other bytes.
    await target.abortUpload(key, uploadId);
    throw new Error(`source blob ${input.digest} in ${input.sourceRegion} changed during the copy (ETag ${etag}, then ${verified.value}); copying again`);
  }
  await target.completeUpload(key, uploadId, completed, reporter.signal);
}
