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

/** A registry's `WWW-Authenticate` challenge: how to log in before asking again. */
export type AuthChallenge = { scheme: 'basic'; realm: string | null } | { scheme: 'bearer'; realm: string; service: string | null; scope: string | null };

/**
 * Parses the first challenge of a `WWW-Authenticate` header (RFC 7235:
 * `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"`).
 * Null when there is none Ferry can answer: no header, another scheme, or a
 * Bearer challenge without a realm to ask for a token.
 */
export function parseAuthChallenge(header: string | null): AuthChallenge | null {
  const match = header === null ? null : /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (match === null) return null;
  const params: Record<string, string> = {};
  const param = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,\s*|$)/gy;
  const rest = match[2]!;
  for (let found = param.exec(rest); found !== null && found[0] !== ''; found = param.exec(rest)) {
    params[found[1]!.toLowerCase()] = found[2] !== undefined ? found[2].replace(/\\(.)/g, '$1') : found[3]!;
  }
  const scheme = match[1]!.toLowerCase();
  if (scheme === 'basic') return { scheme, realm: params.realm ?? null };
  if (scheme === 'bearer' && params.realm !== undefined) return { scheme, realm: params.realm, service: params.service ?? null, scope: params.scope ?? null };
  return null;
}

/** The pull scope of a repository, asked for when a challenge names none. */
export function pullScope(repository: RepositoryName | string): string {
  return `repository:${repository}:pull`;
}
