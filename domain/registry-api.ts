// The Distribution HTTP API paths Ferry asks a registry or its cache for
// (https://distribution.github.io/distribution/spec/api/): built in one place.
import type { Digest, RepositoryName, Tag } from './reference';

/** A repository's `/v2/<name>` under a registry's or cache's base URL: every path below is under it. */
function repositoryUrl(base: string, repository: RepositoryName | string): string {
  return `${base.replace(/\/$/, '')}/v2/${repository}`;
}

/** The URL of a manifest by tag or digest, under a registry's or cache's base URL. */
export function manifestUrl(base: string, repository: RepositoryName | string, reference: Tag | Digest | string): string {
  return `${repositoryUrl(base, repository)}/manifests/${reference}`;
}

/** The URL of a blob by digest, under a registry's base URL. */
export function blobUrl(base: string, repository: RepositoryName | string, digest: Digest | string): string {
  return `${repositoryUrl(base, repository)}/blobs/${digest}`;
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

/**
 * The User-Agent of every request Ferry makes to a registry. Distribution and
 * ACR report it in the notification of the change (`request.useragent`): a
 * push or delete Ferry made itself in a registry-API region is told from a
 * user's by it, and not replicated back (domain/notifications/fields.ts).
 */
export const FERRY_USER_AGENT = 'ferry-replicator/1';

/** Whether a notification's `request.useragent` is Ferry's own: the change is Ferry's write, an echo. */
export function isFerryUserAgent(userAgent: unknown): boolean {
  return typeof userAgent === 'string' && userAgent.split(' ')[0] === FERRY_USER_AGENT;
}

/** The pull scope of a repository, asked for when a challenge names none. */
export function pullScope(repository: RepositoryName | string): string {
  return `repository:${repository}:pull`;
}

/** What a request does in a repository, as a token must grant it. */
export type RegistryAccess = 'pull' | 'push' | 'delete';

/**
 * The token scopes of a request (Docker token spec, "Token Scope"): pull; a
 * push, which reads too (HEAD before upload); or a delete. A cross-repository
 * mount also pulls from the repository it mounts from.
 */
export function repositoryScopes(repository: RepositoryName | string, access: RegistryAccess, from?: string): string[] {
  const actions = access === 'pull' ? 'pull' : access === 'push' ? 'pull,push' : 'delete';
  return [`repository:${repository}:${actions}`, ...(from === undefined ? [] : [pullScope(from)])];
}

/** The URL that starts a blob upload, or mounts `mount` from `from` (OCI distribution spec, "Pushing blobs"). */
export function blobUploadUrl(base: string, repository: RepositoryName | string, mount?: { digest: Digest | string; from: string }): string {
  const start = `${repositoryUrl(base, repository)}/blobs/uploads/`;
  return mount === undefined ? start : `${start}?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}`;
}

/** The URL of the repository's tag list, a page of `n` after `last` (OCI distribution spec, "Listing tags"). */
export function tagListUrl(base: string, repository: RepositoryName | string, n: number, last?: string): string {
  return `${repositoryUrl(base, repository)}/tags/list?n=${n}${last === undefined ? '' : `&last=${encodeURIComponent(last)}`}`;
}

/**
 * An upload's Location (relative or absolute, RFC 9110) with `params` added:
 * the URL of the upload's next request.
 */
export function uploadUrl(requestUrl: string, location: string, params: Record<string, string> = {}): string {
  const url = new URL(location, requestUrl);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

/** The end of the bytes an upload holds, from its `Range: 0-<last>` header: the next offset (0 when none). */
export function uploadedUpTo(range: string | null): number {
  const match = range === null ? null : /^(?:bytes=)?0-(\d+)$/.exec(range.trim());
  // Distribution answers `0-0` for an empty upload as for one byte: taken as empty (a wrong guess is a 416, and a new upload).
  return match === null || match[1] === '0' ? 0 : Number(match[1]) + 1;
}
