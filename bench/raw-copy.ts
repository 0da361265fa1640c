// The raw limit: the scenario's blob objects copied from eastus's bucket to a
// target bucket with the AWS SDK alone — no hashing, no links, no manifests
// parsed, no tag, no pull check, no events. What no replicator can beat on
// this machine.
//
//   same endpoint and credentials: server-side CopyObject, one request per blob;
//   otherwise: GetObject streamed into a multipart upload (Ferry's part size),
//   several parts in flight per blob (as @aws-sdk/lib-storage's Upload does).
// Both copy as many blobs at once as Ferry does (replication.blobConcurrency).
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { copyMethod as methodBetween, type CopyMethod } from '../domain/config';
import { blobKey, type RegionBucket } from './buckets';
import type { Blob } from './images';
import { forEachLimited } from '../support/concurrency';

export type { CopyMethod } from '../domain/config';

export interface RawCopyOptions {
  blobConcurrency: number;
  partSizeBytes: number;
  /** Parts of one blob uploading at once on the streamed path. */
  partsInFlight: number;
}

export function copyMethod(source: RegionBucket, target: RegionBucket): CopyMethod {
  return methodBetween(source.region, target.region);
}

/** Copies every blob into `target`; resolves when the last one is there. */
export async function rawCopy(source: RegionBucket, target: RegionBucket, blobs: Blob[], options: RawCopyOptions): Promise<void> {
  const method = copyMethod(source, target);
  await forEachLimited(blobs, options.blobConcurrency, async (blob) => {
    if (method === 'server-side') await copyServerSide(source, target, blob);
    else await copyStreamed(source, target, blob, options);
  });
}

async function copyServerSide(source: RegionBucket, target: RegionBucket, blob: Blob): Promise<void> {
  await target.s3.send(
    new CopyObjectCommand({
      Bucket: target.region.s3!.bucket,
      Key: blobKey(target, blob.digest),
      CopySource: encodeURI(`${source.region.s3!.bucket}/${blobKey(source, blob.digest)}`),
    }),
  );
}

async function copyStreamed(source: RegionBucket, target: RegionBucket, blob: Blob, options: RawCopyOptions): Promise<void> {
  const key = blobKey(target, blob.digest);
  const object = await source.s3.send(new GetObjectCommand({ Bucket: source.region.s3!.bucket, Key: blobKey(source, blob.digest) }));
  const stream = object.Body as Readable;
  if (blob.size <= options.partSizeBytes) {
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    await target.s3.send(new PutObjectCommand({ Bucket: target.region.s3!.bucket, Key: key, Body: Buffer.concat(chunks) }));
    return;
  }
  const { UploadId } = await target.s3.send(new CreateMultipartUploadCommand({ Bucket: target.region.s3!.bucket, Key: key }));
  const parts: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  const upload = (body: Buffer, partNumber: number): void => {
    const sending: Promise<void> = target.s3
      .send(new UploadPartCommand({ Bucket: target.region.s3!.bucket, Key: key, UploadId, PartNumber: partNumber, Body: body }))
      .then(({ ETag }) => {
        parts.push({ PartNumber: partNumber, ETag });
      })
      .finally(() => inFlight.delete(sending));
    // A failed part surfaces where the copy awaits the in-flight set, not as an unhandled rejection.
    sending.catch(() => undefined);
    inFlight.add(sending);
  };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let partNumber = 1;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= options.partSizeBytes) {
      const joined = Buffer.concat(pending, pendingBytes);
      upload(joined.subarray(0, options.partSizeBytes), partNumber++);
      const rest = joined.subarray(options.partSizeBytes);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
      while (inFlight.size >= options.partsInFlight) await Promise.race(inFlight);
    }
  }
  if (pendingBytes > 0) upload(Buffer.concat(pending, pendingBytes), partNumber);
  await Promise.all(inFlight);
  parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
  await target.s3.send(
    new CompleteMultipartUploadCommand({ Bucket: target.region.s3!.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
  );
}
