// The Distribution HTTP API paths Ferry asks a registry or its cache for
// (https://distribution.github.io/distribution/spec/api/): built in one place.
import type { Digest, RepositoryName, Tag } from './reference';

/** The URL of a manifest by tag or digest, under a registry's or cache's base URL. */
export function manifestUrl(base: string, repository: RepositoryName | string, reference: Tag | Digest | string): string {
  return `${base.replace(/\/$/, '')}/v2/${repository}/manifests/${reference}`;
}

/** The URL of a blob by digest, under a registry's base URL. */
export function blobUrl(base: string, repository: RepositoryName | string, digest: Digest | string): string {
  return `${base.replace(/\/$/, '')}/v2/${repository}/blobs/${digest}`;
}
