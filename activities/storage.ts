// One region's bucket, seen through the Distribution layout. Activities get
// keys from `layout` (domain/layout.ts) and bytes through these few calls.
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type { RegionConfig } from '../domain/config';
import { StorageLayout, linkFileBytes, parseLinkFile } from '../domain/layout';
import type { Digest } from '../domain/reference';

/** Distribution reads small objects (links, manifests) with this limit; so do we. */
export const MAX_SMALL_OBJECT_BYTES = 4 * 1024 * 1024;

export interface ObjectHead {
  size: number;
  etag: string;
}

export class CorruptLinkError extends Error {
  constructor(readonly key: string) {
    super(`link file ${key} does not hold a bare sha256 digest`);
    this.name = 'CorruptLinkError';
  }
}

function isMissing(error: unknown): boolean {
  return (
    error instanceof NoSuchKey ||
    error instanceof NotFound ||
    (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)
  );
}

export class RegionStorage {
  readonly layout: StorageLayout;
  readonly bucket: string;

  constructor(
    readonly region: RegionConfig,
    readonly s3: S3Client,
  ) {
    this.layout = new StorageLayout(region.s3.rootDirectory);
    this.bucket = region.s3.bucket;
  }

  static connect(region: RegionConfig): RegionStorage {
    const s3 = new S3Client({
      endpoint: region.s3.endpoint,
      region: region.s3.signingRegion,
      forcePathStyle: true,
      credentials: region.s3.credentials,
      // S3-compatible servers differ in flexible-checksum support; Ferry verifies sha256 itself.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1, // Temporal owns retries, so attempts are visible to operators.
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
    const object = await this.getStream(key, abortSignal);
    if (object === null) return null;
    if (object.size > MAX_SMALL_OBJECT_BYTES) {
      object.stream.destroy();
      throw new Error(`${key} is larger than ${MAX_SMALL_OBJECT_BYTES} bytes`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of object.stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** Opens an object for reading, with its size and ETag from the same response; null when absent. */
  async getStream(key: string, abortSignal?: AbortSignal): Promise<(ObjectHead & { stream: Readable }) | null> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal });
      return { stream: object.Body as Readable, size: object.ContentLength ?? 0, etag: object.ETag ?? '' };
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
    const bytes = await this.getSmall(key, abortSignal);
    if (bytes === null) return null;
    const digest = parseLinkFile(bytes);
    if (digest === null) throw new CorruptLinkError(key);
    return digest;
  }

  async writeLink(key: string, digest: Digest, abortSignal?: AbortSignal): Promise<void> {
    await this.put(key, linkFileBytes(digest), abortSignal);
  }

  /** Immediate sub-"directory" names under a prefix (S3 common prefixes). */
  async listChildren(prefix: string): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      );
      for (const common of page.CommonPrefixes ?? []) names.push(common.Prefix!.slice(prefix.length, -1));
      token = page.NextContinuationToken;
    } while (token);
    return names;
  }

  /** Deletes every key under a prefix, like the S3 driver's Delete of a directory. */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((object) => ({ Key: object.Key! }));
      if (keys.length > 0) {
        await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }));
        deleted += keys.length;
      }
      token = page.NextContinuationToken;
    } while (token);
    return deleted;
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

  async deleteKey(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: [{ Key: key }], Quiet: true } }));
  }
}

/** The storage of every configured region, by name. */
export type Storages = ReadonlyMap<string, RegionStorage>;

export function connectStorages(regions: RegionConfig[]): Storages {
  return new Map(regions.map((region) => [region.name, RegionStorage.connect(region)]));
}

export function storageOf(storages: Storages, region: string): RegionStorage {
  const storage = storages.get(region);
  if (!storage) throw new Error(`region ${region} is not configured`);
  return storage;
}
