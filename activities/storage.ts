// One region's bucket, seen through the Distribution layout. Activities get
// keys from `layout` (domain/layout.ts) and bytes through these calls: every
// S3 request Ferry makes is here, multipart and pagination included.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  NoSuchKey,
  NoSuchUpload,
  NotFound,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type { RegionConfig } from '../domain/config';
import { StorageLayout, linkFileBytes, parseLinkFile } from '../domain/layout';
import type { Digest } from '../domain/reference';

const DEFAULT_REQUEST_IDLE_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;

/** Distribution reads small objects (links, manifests) with this limit; so do we. */
export const MAX_SMALL_OBJECT_BYTES = 4 * 1024 * 1024;

export type ObjectHead = { size: number; etag: string };
/** A part of a multipart upload: its number, ETag and size. */
export type UploadedPart = { partNumber: number; etag: string; size: number };
export type ListedObject = { key: string; size: number; modifiedAt: Date };

/** 412: a copy's source no longer has the ETag it was conditioned on. */
export function isPreconditionFailed(error: unknown): boolean {
  return error instanceof S3ServiceException && error.$metadata.httpStatusCode === 412;
}

export class CorruptLinkError extends Error {
  constructor(readonly key: string) {
    super(`link file ${key} does not hold a bare sha256 digest`);
    this.name = 'CorruptLinkError';
  }
}

function isMissing(error: unknown): boolean {
  return error instanceof NoSuchKey || error instanceof NotFound || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404);
}

export class RegionStorage {
  readonly layout: StorageLayout;
  readonly bucket: string;

  constructor(
    readonly region: RegionConfig,
    readonly s3: S3Client,
  ) {
    if (region.s3 === null) throw new Error(`region ${region.name} is reached through its registry's API: it has no storage`);
    this.layout = new StorageLayout(region.s3.rootDirectory);
    this.bucket = region.s3.bucket;
  }

  /** `requestIdleMs`: a request that sends or receives nothing for this long fails (config replication.requestIdleSeconds). */
  static connect(region: RegionConfig, requestIdleMs = DEFAULT_REQUEST_IDLE_MS): RegionStorage {
    if (region.s3 === null) throw new Error(`region ${region.name} is reached through its registry's API: it has no storage`);
    if (region.s3.credentials === null) throw new Error(`this process holds no S3 credentials for region ${region.name}`);
    const s3 = new S3Client({
      endpoint: region.s3.endpoint,
      region: region.s3.signingRegion,
      forcePathStyle: true,
      credentials: region.s3.credentials,
      // S3-compatible servers differ in flexible-checksum support; Ferry verifies sha256 itself.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1, // Temporal owns retries, so attempts are visible to operators.
      // Expect: 100-continue (bodies ≥ 2 MiB) costs each part a new connection and a round trip.
      expectContinueHeader: false,
      // A hung connection fails the attempt instead of holding the region (and its locks) forever;
      // idle, not total, so a large part on a slow link is not cut while its bytes still flow.
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: requestIdleMs },
    });
    return new RegionStorage(region, s3);
  }

  async head(key: string, abortSignal?: AbortSignal): Promise<ObjectHead | null> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal });
      return { size: head.ContentLength ?? 0, etag: head.ETag ?? '' };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /** Reads a small object whole; null when absent. */
  async getSmall(key: string, abortSignal?: AbortSignal): Promise<Uint8Array | null> {
    return (await this.getSmallWithTime(key, abortSignal))?.bytes ?? null;
  }

  /** Reads a small object whole, with when it was last written; null when absent. */
  async getSmallWithTime(key: string, abortSignal?: AbortSignal): Promise<{ bytes: Uint8Array; modifiedAt: Date | null } | null> {
    const object = await this.getStream(key, abortSignal);
    if (object === null) return null;
    if (object.size > MAX_SMALL_OBJECT_BYTES) {
      object.stream.destroy();
      throw new Error(`${key} is larger than ${MAX_SMALL_OBJECT_BYTES} bytes`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of object.stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return { bytes: Buffer.concat(chunks), modifiedAt: object.modifiedAt };
  }

  /** Opens an object for reading, with its size and ETag from the same response; null when absent. */
  async getStream(key: string, abortSignal?: AbortSignal): Promise<(ObjectHead & { stream: Readable; modifiedAt: Date | null }) | null> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal });
      return { stream: object.Body as Readable, size: object.ContentLength ?? 0, etag: object.ETag ?? '', modifiedAt: object.LastModified ?? null };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async put(key: string, bytes: Uint8Array, abortSignal?: AbortSignal): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentType: 'application/octet-stream' }),
      { abortSignal },
    );
  }

  async readLink(key: string, abortSignal?: AbortSignal): Promise<Digest | null> {
    return (await this.readLinkWithTime(key, abortSignal))?.digest ?? null;
  }

  /** A link file's digest and when it was last written; null when absent. */
  async readLinkWithTime(key: string, abortSignal?: AbortSignal): Promise<{ digest: Digest; modifiedAt: Date | null } | null> {
    const object = await this.getSmallWithTime(key, abortSignal);
    if (object === null) return null;
    const digest = parseLinkFile(object.bytes);
    if (digest === null) throw new CorruptLinkError(key);
    return { digest, modifiedAt: object.modifiedAt };
  }

  async writeLink(key: string, digest: Digest, abortSignal?: AbortSignal): Promise<void> {
    await this.put(key, linkFileBytes(digest), abortSignal);
  }

  /** ListObjectsV2 page by page: the one pagination loop over a bucket's keys. */
  private async *pages(prefix: string, delimiter?: string): AsyncGenerator<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
      yield page;
      token = page.NextContinuationToken;
    } while (token);
  }

  /** Every object under a prefix, a listing page (up to 1000) at a time. */
  async *objectsUnder(prefix: string): AsyncGenerator<ListedObject[]> {
    for await (const page of this.pages(prefix)) {
      yield (page.Contents ?? []).map((object) => ({ key: object.Key!, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) }));
    }
  }

  /** Immediate sub-"directory" names under a prefix (S3 common prefixes). */
  async listChildren(prefix: string): Promise<string[]> {
    const names: string[] = [];
    for await (const page of this.pages(prefix, '/')) {
      for (const common of page.CommonPrefixes ?? []) names.push(common.Prefix!.slice(prefix.length, -1));
    }
    return names;
  }

  /** Deletes every key under a prefix, like the S3 driver's Delete of a directory. */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    for await (const objects of this.objectsUnder(prefix)) {
      await this.deleteKeys(objects.map((object) => object.key));
      deleted += objects.length;
    }
    return deleted;
  }

  /** Deletes the given keys, up to 1000 a request (S3's limit); a key S3 could not delete fails the call (DeleteObjects answers 200 regardless). */
  async deleteKeys(keys: readonly string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000).map((Key) => ({ Key }));
      const { Errors: failed = [] } = await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } }));
      const first = failed[0];
      if (first) throw new Error(`${this.region.name}: ${failed.length} key(s) not deleted, first ${first.Key}: ${first.Code} ${first.Message ?? ''}`.trim());
    }
  }

  /** The newest multipart upload still open for exactly this key, if any. */
  async newestOpenUpload(key: string, abortSignal?: AbortSignal): Promise<string | null> {
    let newest: { id: string; at: number } | null = null;
    let keyMarker: string | undefined;
    let uploadMarker: string | undefined;
    do {
      const page = await this.s3.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadMarker }),
        { abortSignal },
      );
      for (const upload of page.Uploads ?? []) {
        const at = upload.Initiated?.getTime() ?? 0;
        if (upload.Key === key && upload.UploadId && (newest === null || at >= newest.at)) newest = { id: upload.UploadId, at };
      }
      [keyMarker, uploadMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
    } while (keyMarker);
    return newest?.id ?? null;
  }

  /** Opens a multipart upload; the object appears only when it is completed. */
  async startUpload(key: string, abortSignal?: AbortSignal): Promise<string> {
    const created = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' }), { abortSignal });
    return created.UploadId!;
  }

  /** The parts an open upload holds, by part number; null when the upload is gone (completed or aborted). */
  async uploadedParts(key: string, uploadId: string, abortSignal?: AbortSignal): Promise<Map<number, UploadedPart> | null> {
    const parts = new Map<number, UploadedPart>();
    let marker: string | undefined;
    try {
      do {
        const page = await this.s3.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }), { abortSignal });
        for (const part of page.Parts ?? []) parts.set(part.PartNumber!, { partNumber: part.PartNumber!, etag: part.ETag!, size: part.Size ?? 0 });
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (error) {
      if (error instanceof NoSuchUpload || isMissing(error)) return null;
      throw error;
    }
    return parts;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, bytes: Uint8Array, abortSignal?: AbortSignal): Promise<UploadedPart> {
    const uploaded = await this.s3.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: bytes }), {
      abortSignal,
    });
    return { partNumber, etag: uploaded.ETag!, size: bytes.length };
  }

  /**
   * Copies bytes [start, end) of `source`'s object `sourceKey` into a part, inside
   * the storage server, only while that object still has ETag `ifMatch`.
   */
  async copyPart(
    key: string,
    uploadId: string,
    partNumber: number,
    from: { source: RegionStorage; sourceKey: string; ifMatch: string; start: number; end: number },
    abortSignal?: AbortSignal,
  ): Promise<UploadedPart> {
    const copied = await this.s3.send(
      new UploadPartCopyCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        CopySource: from.source.copySource(from.sourceKey),
        CopySourceRange: `bytes=${from.start}-${from.end - 1}`,
        CopySourceIfMatch: from.ifMatch,
      }),
      { abortSignal },
    );
    return { partNumber, etag: copied.CopyPartResult!.ETag!, size: from.end - from.start };
  }

  /** Makes the upload's object visible, assembled from `parts` in part order. */
  async completeUpload(key: string, uploadId: string, parts: readonly UploadedPart[], abortSignal?: AbortSignal): Promise<void> {
    const ordered = [...parts].sort((a, b) => a.partNumber - b.partNumber).map((part) => ({ PartNumber: part.partNumber, ETag: part.etag }));
    await this.s3.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: ordered } }), {
      abortSignal,
    });
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
  }

  /** Copies `source`'s object `sourceKey` whole (up to 5 GiB) inside the storage server, only while it still has ETag `ifMatch`. */
  async copyObject(key: string, from: { source: RegionStorage; sourceKey: string; ifMatch: string }, abortSignal?: AbortSignal): Promise<void> {
    await this.s3.send(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: key,
        CopySource: from.source.copySource(from.sourceKey),
        CopySourceIfMatch: from.ifMatch,
        ContentType: 'application/octet-stream',
        MetadataDirective: 'REPLACE',
      }),
      { abortSignal },
    );
  }

  /** The x-amz-copy-source naming one of this bucket's objects. */
  private copySource(key: string): string {
    return encodeURI(`${this.bucket}/${key}`);
  }
}

/** The storage of every region this process holds credentials for (domain/config.ts processNeeds), by name. */
export type Storages = ReadonlyMap<string, RegionStorage>;

export function connectStorages(regions: RegionConfig[], requestIdleMs?: number): Storages {
  return new Map(regions.filter((region) => region.s3 !== null && region.s3.credentials !== null).map((region) => [region.name, RegionStorage.connect(region, requestIdleMs)]));
}

export function storageOf(storages: Storages, region: string): RegionStorage {
  const storage = storages.get(region);
  if (!storage) {
    throw new Error(
      `this worker holds no storage credentials for region ${region}: a worker holds those of the regions its queues serve and of their sources (regions[].sources)`,
    );
  }
  return storage;
}
