// One repository in one region, with the verbs Distribution's registry/storage
// gives it: link a blob into it (linkedBlobStore), get and put a manifest
// (manifestStore: data, then the revision link), tag, untag and look up tags
// (tagStore). The activities around these verbs only fence, call and record.
//
// Two kinds of region hold repositories: a storage region, whose bucket Ferry
// reads and writes in Distribution's layout (StorageRepository, here: keys
// from the layout, bytes from RegionStorage), and a registry-API region,
// reached through its registry's HTTP API only (registry-repository.ts).
import { digestOf } from '../domain/content-digest';
import { parseTag, type Digest, type RepositoryName, type Tag } from '../domain/reference';
import type { RegionStorage } from './storage';

/** What a manifest read found: its verified bytes, or why there are none. */
export type ManifestRead =
  | { found: 'ok'; bytes: Uint8Array }
  | { found: 'not-linked' | 'no-data' }
  | { found: 'corrupt'; actual: string };

/** The verbs of one repository in one region, whichever way the region is reached. */
export interface RegionRepository {
  readonly name: RepositoryName;
  readonly region: string;
  /** Links a blob (present in the region) into the repository. */
  linkBlob(digest: Digest, signal?: AbortSignal): Promise<void>;
  /** Whether the repository links the blob. */
  linksBlob(digest: Digest, signal?: AbortSignal): Promise<boolean>;
  /** Removes the repository's link to a blob (the blob's data stays). */
  unlinkBlob(digest: Digest): Promise<void>;
  /** Whether the repository holds the manifest. */
  hasManifest(digest: Digest, signal?: AbortSignal): Promise<boolean>;
  /** A manifest of the repository, read and checked against its digest. */
  getManifest(digest: Digest, signal?: AbortSignal): Promise<ManifestRead>;
  /** Puts a manifest; bytes still to be read are read only when the repository lacks it. */
  putManifest(manifest: { digest: Digest; size: number }, bytes: Uint8Array | (() => Promise<Uint8Array>), signal?: AbortSignal): Promise<void>;
  /** Puts a small blob Ferry made (a merged signature manifest's config), linked into the repository. */
  putBlob(blob: { digest: Digest; size: number }, bytes: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** Removes the manifest from the repository. */
  unlinkManifest(digest: Digest): Promise<void>;
  /** The digest the tag points at; null when there is no such tag. */
  tagged(tag: Tag, signal?: AbortSignal): Promise<Digest | null>;
  /** The digest the tag points at and when it was written (null: the region cannot tell); null when there is no such tag. */
  taggedWithTime(tag: Tag, signal?: AbortSignal): Promise<{ digest: Digest; modifiedAt: Date | null } | null>;
  /** Digests the tag was pointed at since `since` (as far as the region can tell), whatever it holds now. */
  taggedSince(tag: Tag, since: Date, signal?: AbortSignal): Promise<Digest[]>;
  /** Points the tag at a digest the repository holds. */
  tag(tag: Tag, digest: Digest, signal?: AbortSignal): Promise<void>;
  /** Removes the tag, judged to point at `judged`; false when it was not removed (judge it again). */
  untag(tag: Tag, judged: Digest | null): Promise<boolean>;
  /** The tags pointing at `digest`. */
  lookup(digest: Digest): Promise<Tag[]>;
}

export class StorageRepository implements RegionRepository {
  constructor(
    readonly storage: RegionStorage,
    readonly name: RepositoryName,
  ) {}

  get region(): string {
    return this.storage.region.name;
  }

  private get layout() {
    return this.storage.layout;
  }

  /** Links a blob (present in the region) into the repository: its _layers link. */
  async linkBlob(digest: Digest, signal?: AbortSignal): Promise<void> {
    await this.storage.writeLink(this.layout.layerLink(this.name, digest), digest, signal);
  }

  /** Whether the repository links the blob. */
  async linksBlob(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return (await this.storage.readLink(this.layout.layerLink(this.name, digest), signal)) !== null;
  }

  /** Removes the repository's link to a blob (the blob's data stays, as Distribution's blob delete does). */
  async unlinkBlob(digest: Digest): Promise<void> {
    await this.storage.deleteKeys([this.layout.layerLink(this.name, digest)]);
  }

  /** Whether the repository holds the manifest: its revision link names the digest. */
  async hasManifest(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return (await this.storage.readLink(this.layout.revisionLink(this.name, digest), signal)) === digest;
  }

  /** A manifest of the repository, read and checked against its digest. */
  async getManifest(digest: Digest, signal?: AbortSignal): Promise<ManifestRead> {
    if ((await this.storage.readLink(this.layout.revisionLink(this.name, digest), signal)) === null) return { found: 'not-linked' };
    const bytes = await this.storage.getSmall(this.layout.blobData(digest), signal);
    if (bytes === null) return { found: 'no-data' };
    const actual = digestOf(bytes);
    return actual === digest ? { found: 'ok', bytes } : { found: 'corrupt', actual };
  }

  /**
   * Puts a manifest: its data, then its revision link, in Distribution's
   * order. Bytes in hand are written whether or not the data is present (a
   * manifest is small and its key is its content address: one PUT costs less
   * than a HEAD and then a PUT for a new manifest, the common case); bytes
   * still to be read are read and written only when the data is absent.
   */
  async putManifest(manifest: { digest: Digest; size: number }, bytes: Uint8Array | (() => Promise<Uint8Array>), signal?: AbortSignal): Promise<void> {
    const dataKey = this.layout.blobData(manifest.digest);
    if (bytes instanceof Uint8Array) await this.storage.put(dataKey, bytes, signal);
    else if ((await this.storage.head(dataKey, signal))?.size !== manifest.size) await this.storage.put(dataKey, await bytes(), signal);
    await this.storage.writeLink(this.layout.revisionLink(this.name, manifest.digest), manifest.digest, signal);
  }

  /** Puts a small blob Ferry made (a merged signature manifest's config): its data unless present with its size, then its link. */
  async putBlob(blob: { digest: Digest; size: number }, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const dataKey = this.layout.blobData(blob.digest);
    if ((await this.storage.head(dataKey, signal))?.size !== blob.size) await this.storage.put(dataKey, bytes, signal);
    await this.linkBlob(blob.digest, signal);
  }

  /** Removes the manifest from the repository: its revision link. */
  async unlinkManifest(digest: Digest): Promise<void> {
    await this.storage.deleteKeys([this.layout.revisionLink(this.name, digest)]);
  }

  /** The digest the tag points at; null when there is no such tag. */
  async tagged(tag: Tag, signal?: AbortSignal): Promise<Digest | null> {
    return this.storage.readLink(this.layout.tagCurrentLink(this.name, tag), signal);
  }

  /** The digest the tag points at and when its current link was written; null when there is no such tag. */
  async taggedWithTime(tag: Tag, signal?: AbortSignal): Promise<{ digest: Digest; modifiedAt: Date | null } | null> {
    return this.storage.readLinkWithTime(this.layout.tagCurrentLink(this.name, tag), signal);
  }

  /**
   * The digests of the tag's index links written in `since`'s second or later
   * (storage times are whole seconds): pushes of the tag since then, whatever
   * its current link says now.
   */
  async taggedSince(tag: Tag, since: Date, signal?: AbortSignal): Promise<Digest[]> {
    const from = Math.floor(since.getTime() / 1000) * 1000;
    const digests: Digest[] = [];
    for await (const objects of this.storage.objectsUnder(this.layout.tagIndexPrefix(this.name, tag))) {
      for (const object of objects) {
        if (object.modifiedAt.getTime() < from) continue;
        const digest = await this.storage.readLink(object.key, signal);
        if (digest !== null) digests.push(digest);
      }
    }
    return digests;
  }

  /** Points the tag at a digest: the index link, then the current link (the write a pull sees). */
  async tag(tag: Tag, digest: Digest, signal?: AbortSignal): Promise<void> {
    await this.storage.writeLink(this.layout.tagIndexLink(this.name, tag, digest), digest, signal);
    await this.storage.writeLink(this.layout.tagCurrentLink(this.name, tag), digest, signal);
  }

  /**
   * Removes the tag, which was judged to point at `judged` (null: absent).
   * The region's own registry writes its tags without Ferry's lock, so a push
   * there may land between the judgement and the removal; it writes its index
   * link, then its current link. So: the current link is removed first, and
   * only while it still holds `judged`; an index link written after it (a
   * later second: storage times are whole seconds) is a push that landed
   * meanwhile, whose current link is put back; and an index link of another
   * digest written in the same second is left, so a push in progress keeps
   * what it wrote. False when the tag was not removed (judge it again).
   */
  async untag(tag: Tag, judged: Digest | null): Promise<boolean> {
    const currentKey = this.layout.tagCurrentLink(this.name, tag);
    const current = await this.storage.readLinkWithTime(currentKey);
    if ((current?.digest ?? null) !== judged) return false;
    if (current !== null) await this.storage.deleteKeys([currentKey]);
    const second = (time: Date | null) => (time === null ? null : Math.floor(time.getTime() / 1000));
    const written = second(current?.modifiedAt ?? null);
    const index: Array<{ key: string; second: number }> = [];
    for await (const objects of this.storage.objectsUnder(this.layout.tagPrefix(this.name, tag))) {
      index.push(...objects.filter((object) => object.key !== currentKey).map((object) => ({ key: object.key, second: second(object.modifiedAt)! })));
    }
    const later = written === null ? [] : index.filter((entry) => entry.second > written).sort((a, b) => b.second - a.second);
    if (later.length > 0) {
      const pushed = await this.storage.readLink(later[0]!.key);
      if (pushed !== null) {
        await this.storage.writeLink(currentKey, pushed);
        return false;
      }
    }
    const ownKey = judged === null ? null : this.layout.tagIndexLink(this.name, tag, judged);
    const removable = index.filter((entry) => written === null || entry.second < written || entry.key === ownKey);
    await this.storage.deleteKeys(removable.map((entry) => entry.key));
    return true;
  }

  /** The tags whose current link points at `digest`. */
  async lookup(digest: Digest): Promise<Tag[]> {
    const tags: Tag[] = [];
    for (const name of await this.storage.listChildren(this.layout.tagsPrefix(this.name))) {
      const tag = parseTag(name);
      if ((await this.tagged(tag)) === digest) tags.push(tag);
    }
    return tags;
  }
}
