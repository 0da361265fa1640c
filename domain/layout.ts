// The CNCF Distribution storage layout (2.8 and v3 write the same tree), and
// the only place in Ferry that builds a storage key or a link file's bytes.
// Mirrors registry/storage/paths.go and the S3 driver's key mapping.
//
//   <rootdirectory>/docker/registry/v2/
//     blobs/sha256/<hh>/<hex>/data                                  blob bytes (layers, configs, manifests)
//     repositories/<name>/
//       _layers/sha256/<hex>/link                                   repository may serve blob <hex>
//       _manifests/revisions/sha256/<hex>/link                      repository may serve manifest <hex>
//       _manifests/tags/<tag>/current/link                          tag -> manifest; written LAST
//       _manifests/tags/<tag>/index/sha256/<hex>/link               tag history entry
//       _uploads/...                                                never replicated
//
// A link file holds exactly the digest string, 71 ASCII bytes for sha256, with
// no trailing newline (a newline makes the registry answer 500, not 404).
//
// No Node built-ins: workflow code may import these helpers' types.
import { digestHex, InvalidReferenceError, parseDigest, parseRepositoryName, parseTag, type Digest, type RepositoryName, type Tag } from './reference';

const LAYOUT_ROOT = 'docker/registry/v2';

/** The storage layout of one bucket, rooted at a region's `rootdirectory`. */
export class StorageLayout {
  private readonly base: string;

  constructor(rootDirectory: string) {
    // s3Path(p) = TrimLeft(TrimRight(rootdirectory, "/") + p, "/"): S3 keys never start with '/'.
    const root = rootDirectory.replace(/\/+$/, '');
    this.base = `${root}/${LAYOUT_ROOT}`.replace(/^\/+/, '');
  }

  blobData(digest: Digest): string {
    const hex = digestHex(digest);
    return `${this.base}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
  }

  layerLink(repository: RepositoryName, digest: Digest): string {
    return `${this.repository(repository)}/_layers/sha256/${digestHex(digest)}/link`;
  }

  revisionLink(repository: RepositoryName, digest: Digest): string {
    return `${this.repository(repository)}/_manifests/revisions/sha256/${digestHex(digest)}/link`;
  }

  /** Every key of a tag share this prefix (with a trailing slash, so `v1` never matches `v10`). */
  tagPrefix(repository: RepositoryName, tag: Tag): string {
    return `${this.repository(repository)}/_manifests/tags/${tag}/`;
  }

  tagCurrentLink(repository: RepositoryName, tag: Tag): string {
    return `${this.tagPrefix(repository, tag)}current/link`;
  }

  tagIndexLink(repository: RepositoryName, tag: Tag, digest: Digest): string {
    return `${this.tagPrefix(repository, tag)}${TAG_INDEX}sha256/${digestHex(digest)}/link`;
  }

  /** Where the tag's index links lie: one per digest it ever pointed at. */
  tagIndexPrefix(repository: RepositoryName, tag: Tag): string {
    return `${this.tagPrefix(repository, tag)}${TAG_INDEX}`;
  }

  /** Prefix under which every tag directory of a repository lives. */
  tagsPrefix(repository: RepositoryName): string {
    return `${this.repository(repository)}/_manifests/tags/`;
  }

  /** Prefix under which every repository lives (for a walk of the whole registry). */
  repositoriesPrefix(): string {
    return `${this.base}/repositories/`;
  }

  /** The repository and tag a `tags/<tag>/current/link` key belongs to; null for any other key. */
  parseTagCurrentLink(key: string): { repository: RepositoryName; tag: Tag } | null {
    const prefix = this.repositoriesPrefix();
    const match = key.startsWith(prefix) ? /^(.+)\/_manifests\/tags\/([^/]+)\/current\/link$/.exec(key.slice(prefix.length)) : null;
    if (!match) return null;
    try {
      return { repository: parseRepositoryName(match[1]), tag: parseTag(match[2]) };
    } catch (error) {
      if (error instanceof InvalidReferenceError) return null;
      throw error;
    }
  }

  /** The digest a tag index link (`tags/<tag>/index/sha256/<hex>/link`) names; null for any other key. */
  parseTagIndexLink(key: string): Digest | null {
    const match = /\/_manifests\/tags\/[^/]+\/index\/sha256\/([0-9a-f]{64})\/link$/.exec(key);
    return match ? parseDigest(`sha256:${match[1]}`) : null;
  }

  private repository(repository: RepositoryName): string {
    return `${this.base}/repositories/${repository}`;
  }
}

/** The exact bytes of a link file pointing at `digest`. */
export function linkFileBytes(digest: Digest): Uint8Array {
  return new TextEncoder().encode(digest);
}

/**
 * Reads a link file's bytes the way the registry does (digest.Parse of the
 * whole content): anything but a bare canonical digest is corrupt.
 */
const TAG_INDEX = 'index/';

export function parseLinkFile(bytes: Uint8Array): Digest | null {
  // ignoreBOM: a leading byte-order mark is kept, so it fails the pattern as it fails go-digest.
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  return /^sha256:[a-f0-9]{64}$/.test(text) ? (text as Digest) : null;
}
