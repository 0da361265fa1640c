// One repository in a registry-API region: a region Ferry reaches only
// through its registry's HTTP API (OCI distribution spec v1.1), with the
// region's login (registry-client.ts: Basic, or the Bearer token flow). The
// same verbs as a storage region's repository (repository.ts), spoken as
// requests: HEAD and GET to read, blob uploads (monolithic, chunked, or a
// cross-repository mount) and manifest PUTs to write, DELETE to remove.
//
// What the API cannot tell, it does not pretend to: a tag has no write time
// here (taggedWithTime answers null, so a change the region's own registry
// made and never notified yields once its wait is over, domain/tag-order.ts),
// and only the tag's current digest is known, not its history. The registry
// itself keeps the order Distribution's storage keeps: it refuses a manifest
// naming a blob or child the repository lacks, and takes an upload under a
// digest only once the bytes hash to it.
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { digestOf } from '../domain/content-digest';
import { MANIFEST_ACCEPT, parseManifest } from '../domain/manifest';
import { parseDigest, parseTag, type Digest, type RepositoryName, type Tag } from '../domain/reference';
import { blobUploadUrl, blobUrl, manifestUrl, tagListUrl, uploadedUpTo, uploadUrl, type RegistryAccess } from '../domain/registry-api';
import type { ObjectHead } from './storage';
import type { RegionRepository, ManifestRead } from './repository';
import type { RegistryClient, RegistryRequest } from './registry-client';

/** Tags asked for per page of a tag list. */
const TAG_PAGE = 1000;
const OCTETS = 'application/octet-stream';

/** A registry answered what the request cannot use: retried, with the registry's own error in the message. */
async function unexpected(what: string, response: Response): Promise<Error> {
  const body = (await response.text().catch(() => '')).slice(0, 300).trim();
  return new Error(`${what}: the registry answered ${response.status}${body === '' ? '' : ` ${body}`}`);
}

/** Where a chunked upload stands: the URL of its next request, and the bytes it holds. */
export interface RegistryUploadSession {
  location: string;
  offset: number;
}

export class RegistryRepository implements RegionRepository {
  constructor(
    readonly region: string,
    private readonly base: string,
    private readonly client: RegistryClient,
    readonly name: RepositoryName,
  ) {}

  private send(url: string, access: RegistryAccess, init: Omit<RegistryRequest, 'repository' | 'signal' | 'access'> & { signal?: AbortSignal | undefined }): Promise<Response> {
    const { signal, ...rest } = init;
    return this.client.fetch(url, { ...rest, access, repository: this.name, signal: signal ?? new AbortController().signal });
  }

  /** The response, when its status is one of `expected` (its body left to the caller); else the registry's error. */
  private async ok(response: Response, what: string, expected: number[]): Promise<Response> {
    if (expected.includes(response.status)) return response;
    throw await unexpected(`${what} in ${this.name} in ${this.region}`, response);
  }

  /** As `ok`, for an answer whose body nobody reads: drained once the status is known, so an error keeps the registry's reason. */
  private async settled(response: Response, what: string, expected: number[]): Promise<Response> {
    await this.ok(response, what, expected);
    await response.arrayBuffer();
    return response;
  }

  /** A blob's size in the repository; null when it does not hold it. */
  async blobHead(digest: Digest, signal?: AbortSignal): Promise<ObjectHead | null> {
    const response = await this.send(blobUrl(this.base, this.name, digest), 'pull', { method: 'HEAD', signal });
    if (response.status === 404) return null;
    await this.ok(response, `HEAD blob ${digest}`, [200]);
    return { size: Number(response.headers.get('content-length') ?? -1), etag: digest };
  }

  /**
   * The blob's bytes, as a stream that fails when the registry stops sending
   * for `idleMs`; null when the repository does not hold it. Its ETag is its
   * digest: the registry serves content by address.
   */
  async openBlob(digest: Digest, idleMs: number, signal: AbortSignal): Promise<{ stream: Readable; size: number; etag: string } | null> {
    const response = await this.send(blobUrl(this.base, this.name, digest), 'pull', { signal, streaming: true });
    if (response.status === 404) {
      await response.arrayBuffer();
      return null;
    }
    await this.ok(response, `GET blob ${digest}`, [200]);
    const stream = Readable.fromWeb(response.body! as import('node:stream/web').ReadableStream<Uint8Array>);
    const timer = setTimeout(() => stream.destroy(new Error(`GET blob ${digest} from ${this.region}: nothing received for ${idleMs} ms`)), idleMs);
    stream.on('data', () => timer.refresh());
    stream.once('close', () => clearTimeout(timer));
    return { stream, size: Number(response.headers.get('content-length') ?? -1), etag: digest };
  }

  /** The registry links a blob by its upload or mount into the repository, and refuses a manifest naming one it lacks: nothing to write. */
  async linkBlob(): Promise<void> {}

  async linksBlob(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return (await this.blobHead(digest, signal)) !== null;
  }

  async unlinkBlob(digest: Digest): Promise<void> {
    const response = await this.send(blobUrl(this.base, this.name, digest), 'delete', { method: 'DELETE' });
    await this.settled(response, `DELETE blob ${digest}`, [202, 404]);
  }

  async hasManifest(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return (await this.headManifest(digest, signal)) === digest;
  }

  /** The digest a manifest reference (tag or digest) resolves to; null when there is none. */
  private async headManifest(reference: string, signal?: AbortSignal): Promise<Digest | null> {
    const response = await this.send(manifestUrl(this.base, this.name, reference), 'pull', { method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT }, signal });
    if (response.status === 404) return null;
    await this.ok(response, `HEAD manifest ${reference}`, [200]);
    const digest = response.headers.get('docker-content-digest');
    if (digest === null) throw new Error(`HEAD manifest ${reference} in ${this.name} in ${this.region}: no Docker-Content-Digest in the answer`);
    return parseDigest(digest);
  }

  async getManifest(digest: Digest, signal?: AbortSignal): Promise<ManifestRead> {
    const response = await this.send(manifestUrl(this.base, this.name, digest), 'pull', { headers: { Accept: MANIFEST_ACCEPT }, signal });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status === 404) return { found: 'not-linked' };
    if (response.status !== 200) throw new Error(`GET manifest ${digest} in ${this.name} in ${this.region}: the registry answered ${response.status}`);
    const actual = digestOf(bytes);
    return actual === digest ? { found: 'ok', bytes } : { found: 'corrupt', actual };
  }

  /** PUTs manifest bytes under `reference` (a digest, or a tag: the tag's write), as the media type they declare. */
  private async writeManifest(reference: string, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const response = await this.send(manifestUrl(this.base, this.name, reference), 'push', {
      method: 'PUT',
      headers: { 'Content-Type': parseManifest(bytes).mediaType },
      body: bytes,
      signal,
    });
    // Refused: a manifest naming a blob or child the repository lacks (the copies before it did not all land; retried).
    await this.settled(response, `PUT manifest ${reference}`, [201]);
  }

  async putManifest(manifest: { digest: Digest; size: number }, bytes: Uint8Array | (() => Promise<Uint8Array>), signal?: AbortSignal): Promise<void> {
    if (bytes instanceof Uint8Array) return this.writeManifest(manifest.digest, bytes, signal);
    if (await this.hasManifest(manifest.digest, signal)) return;
    await this.writeManifest(manifest.digest, await bytes(), signal);
  }

  async putBlob(blob: { digest: Digest; size: number }, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    if ((await this.blobHead(blob.digest, signal))?.size === blob.size) return;
    const session = await this.startUpload(signal);
    if (session === 'mounted') return;
    await this.finishUpload(session, blob.digest, bytes, signal);
  }

  async unlinkManifest(digest: Digest): Promise<void> {
    const response = await this.send(manifestUrl(this.base, this.name, digest), 'delete', { method: 'DELETE' });
    await this.settled(response, `DELETE manifest ${digest}`, [202, 404]);
  }

  async tagged(tag: Tag, signal?: AbortSignal): Promise<Digest | null> {
    return this.headManifest(tag, signal);
  }

  async taggedWithTime(tag: Tag, signal?: AbortSignal): Promise<{ digest: Digest; modifiedAt: Date | null } | null> {
    const digest = await this.tagged(tag, signal);
    return digest === null ? null : { digest, modifiedAt: null };
  }

  /** The API keeps no tag history: what the tag holds now. */
  async taggedSince(tag: Tag, _since: Date, signal?: AbortSignal): Promise<Digest[]> {
    const digest = await this.tagged(tag, signal);
    return digest === null ? [] : [digest];
  }

  /** Points the tag at a manifest of the repository: its bytes PUT under the tag. */
  async tag(tag: Tag, digest: Digest, signal?: AbortSignal): Promise<void> {
    const read = await this.getManifest(digest, signal);
    if (read.found !== 'ok') throw new Error(`cannot tag ${this.name}:${tag} in ${this.region}: manifest ${digest} is ${read.found === 'corrupt' ? 'corrupt' : 'not there'}`);
    await this.writeManifest(tag, read.bytes, signal);
  }

  /**
   * Removes the tag while it still points at `judged` (OCI distribution spec
   * v1.1: DELETE of a manifest by tag). Between the look and the delete the
   * region's own registry may move the tag: the API offers no condition to
   * close that gap (the look is kept as near the delete as it can be).
   */
  async untag(tag: Tag, judged: Digest | null): Promise<boolean> {
    const current = await this.tagged(tag);
    if (current !== judged) return false;
    if (current === null) return true;
    const response = await this.send(manifestUrl(this.base, this.name, tag), 'delete', { method: 'DELETE' });
    if (response.status === 202 || response.status === 404) {
      await response.arrayBuffer();
      return true;
    }
    if (response.status === 400 || response.status === 405) {
      const error = await unexpected(`DELETE tag ${tag} in ${this.name} in ${this.region}`, response);
      throw ApplicationFailure.nonRetryable(`${error.message}: this registry cannot delete a tag through its API`, 'TagDeleteUnsupported');
    }
    throw await unexpected(`DELETE tag ${tag} in ${this.name} in ${this.region}`, response);
  }

  /** The repository's tags, page by page. */
  async tags(signal?: AbortSignal): Promise<Tag[]> {
    const tags: Tag[] = [];
    for (let last: string | undefined; ; ) {
      const response = await this.send(tagListUrl(this.base, this.name, TAG_PAGE, last), 'pull', { signal });
      if (response.status === 404) {
        await response.arrayBuffer();
        return tags;
      }
      await this.ok(response, 'GET tags/list', [200]);
      const page = ((await response.json()) as { tags?: string[] | null }).tags ?? [];
      tags.push(...page.map((tag) => parseTag(tag)));
      if (page.length === 0 || response.headers.get('link') === null) return tags;
      last = page.at(-1);
    }
  }

  async lookup(digest: Digest): Promise<Tag[]> {
    const found: Tag[] = [];
    for (const tag of await this.tags()) if ((await this.tagged(tag)) === digest) found.push(tag);
    return found;
  }

  /**
   * Starts a blob upload, or mounts the blob from `mountFrom` (another
   * repository of the registry that holds it): 'mounted' when the registry
   * mounted it, else the upload session (it may decline the mount and open
   * an upload instead, as the spec allows).
   */
  async startUpload(signal?: AbortSignal, mount?: { digest: Digest; from: RepositoryName }): Promise<RegistryUploadSession | 'mounted'> {
    const url = blobUploadUrl(this.base, this.name, mount);
    const response = await this.send(url, 'push', { method: 'POST', signal, ...(mount === undefined ? {} : { from: mount.from }) });
    await this.settled(response, mount === undefined ? 'POST blob upload' : `mount ${mount.digest} from ${mount.from}`, mount === undefined ? [202] : [201, 202]);
    if (response.status === 201) return 'mounted';
    return { location: this.location(url, response), offset: 0 };
  }

  /**
   * The upload an earlier attempt left at `location`, with the bytes it holds
   * and the Location of its next request (a registry may sign the offset into
   * it: Distribution refuses a PATCH at a Location behind the upload, but
   * answers this GET with the current offset and a fresh Location); null
   * when the registry will not continue it, and a new upload is the way on.
   */
  async resumeUpload(location: string, signal?: AbortSignal): Promise<RegistryUploadSession | null> {
    const response = await this.send(location, 'push', { signal });
    await this.settled(response, 'GET blob upload', [204, 400, 404, 416]);
    if (response.status !== 204) return null;
    return { location: response.headers.get('location') === null ? location : this.location(location, response), offset: uploadedUpTo(response.headers.get('range')) };
  }

  /** Appends `chunk` at the session's offset (PATCH with Content-Range); the session moves on. */
  async appendChunk(session: RegistryUploadSession, chunk: Uint8Array, signal?: AbortSignal): Promise<RegistryUploadSession> {
    const response = await this.send(session.location, 'push', {
      method: 'PATCH',
      headers: { 'Content-Type': OCTETS, 'Content-Range': `${session.offset}-${session.offset + chunk.byteLength - 1}` },
      body: chunk,
      signal,
    });
    await this.settled(response, 'PATCH blob upload', [202]);
    return { location: this.location(session.location, response), offset: session.offset + chunk.byteLength };
  }

  /** Closes the upload under `digest`, with its last bytes if any: the registry checks the digest before the blob exists. */
  async finishUpload(session: RegistryUploadSession, digest: Digest, last: Uint8Array | undefined, signal?: AbortSignal): Promise<void> {
    const response = await this.send(uploadUrl(session.location, session.location, { digest }), 'push', {
      method: 'PUT',
      headers: { 'Content-Type': OCTETS },
      ...(last === undefined ? {} : { body: last }),
      signal,
    });
    await this.settled(response, `PUT blob upload ${digest}`, [201]);
  }

  /** Abandons an upload (its bytes are dropped); an upload already gone is fine. */
  async cancelUpload(session: { location: string }): Promise<void> {
    const response = await this.send(session.location, 'push', { method: 'DELETE' }).catch(() => null);
    await response?.arrayBuffer();
  }

  private location(requestUrl: string, response: Response): string {
    const location = response.headers.get('location');
    if (location === null) throw new Error(`blob upload in ${this.name} in ${this.region}: the registry named no Location`);
    return uploadUrl(requestUrl, location);
  }
}
