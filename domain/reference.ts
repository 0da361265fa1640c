// The three names that end up in storage keys: repository, tag, digest.
// Each is created by one parser, here, at the edge. Past the edge, code takes
// the branded types and never re-validates or builds keys from raw strings.
// No Node built-ins: workflow code imports these types.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type RepositoryName = Brand<string, 'RepositoryName'>;
export type Tag = Brand<string, 'Tag'>;
/** A canonical sha256 digest, `sha256:` + 64 lowercase hex characters. */
export type Digest = Brand<string, 'Digest'>;

// Distribution's reference grammar (distribution/reference/regexp.go): a path
// component starts and ends with [a-z0-9] and separates runs of them with one
// '.', one or two '_', or any number of '-'. So '..', uppercase, and reserved
// names such as '_layers' or '_manifests' can never be a component.
const pathComponent = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const repositoryPattern = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const digestPattern = /^sha256:[a-f0-9]{64}$/;
const MAX_REPOSITORY_LENGTH = 255;

export class InvalidReferenceError extends Error {
  constructor(
    readonly field: 'repository' | 'tag' | 'digest',
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${reason}`);
    this.name = 'InvalidReferenceError';
  }
}

export function parseRepositoryName(value: unknown): RepositoryName {
  if (typeof value !== 'string') throw new InvalidReferenceError('repository', value, 'must be a string');
  if (value.length > MAX_REPOSITORY_LENGTH) {
    throw new InvalidReferenceError('repository', value, `longer than ${MAX_REPOSITORY_LENGTH} characters`);
  }
  if (!repositoryPattern.test(value)) {
    throw new InvalidReferenceError(
      'repository',
      value,
      'must be lowercase path components of [a-z0-9] separated by ".", "_", "__" or "-", joined by "/"',
    );
  }
  return value as RepositoryName;
}

export function parseTag(value: unknown): Tag {
  if (typeof value !== 'string') throw new InvalidReferenceError('tag', value, 'must be a string');
  if (!tagPattern.test(value)) {
    throw new InvalidReferenceError('tag', value, 'must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}');
  }
  return value as Tag;
}

export function parseDigest(value: unknown): Digest {
  if (typeof value !== 'string') throw new InvalidReferenceError('digest', value, 'must be a string');
  if (!digestPattern.test(value)) {
    throw new InvalidReferenceError('digest', value, 'must be sha256: followed by 64 lowercase hex characters');
  }
  return value as Digest;
}

/** The 64 hex characters of a digest. */
export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

/** `sha256:ab12cd34ef56`, for names an operator reads. */
export function shortDigest(digest: Digest): string {
  return digest.slice(0, 'sha256:'.length + 12);
}

/** What a deploy pipeline names: `repository:tag` or `repository@digest`. */
export type ImageReference = { repository: RepositoryName; tag: Tag; digest?: undefined } | { repository: RepositoryName; digest: Digest; tag?: undefined };

export function parseImageReference(value: string): ImageReference {
  const at = value.indexOf('@');
  if (at >= 0) return { repository: parseRepositoryName(value.slice(0, at)), digest: parseDigest(value.slice(at + 1)) };
  const colon = value.lastIndexOf(':');
  if (colon < 0 || value.indexOf('/', colon) >= 0) {
    throw new InvalidReferenceError('tag', value, 'give repository:tag or repository@digest');
  }
  return { repository: parseRepositoryName(value.slice(0, colon)), tag: parseTag(value.slice(colon + 1)) };
}

export function formatImageReference(reference: ImageReference): string {
  return reference.tag !== undefined ? `${reference.repository}:${reference.tag}` : `${reference.repository}@${reference.digest}`;
}
