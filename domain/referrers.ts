// The referrers fallback tag of the OCI distribution spec (1.1, "Referrers
// Tag Schema"): on a registry without the referrers API, a client that
// attaches an artifact to a manifest (a signature, an SBOM) reads the tag
// `sha256-<hex of the subject's digest>`, an image index listing the
// artifacts, adds its own and pushes it back. Signed in two regions, the two
// indexes each list one signature, and the later push would overwrite the
// other everywhere. Ferry merges them instead: a region's referrers index
// becomes the union of what it held and what arrives, so every signature
// survives in every region. Pure logic; activities/tags.ts applies it.
import { createHash } from 'node:crypto';
import { parseDigest, type Digest, type Tag } from './reference';

const REFERRERS_TAG = /^sha256-[0-9a-f]{64}$/;
export const OCI_INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

/** Whether `tag` is a referrers fallback tag (`sha256-<64 hex>`): merged, never overwritten. */
export function isReferrersTag(tag: Tag | string): boolean {
  return REFERRERS_TAG.test(tag);
}

type Json = Record<string, unknown>;

/** The descriptors of an OCI image index, each by its digest; null when the bytes are no OCI index. */
function referrersOf(bytes: Uint8Array): Map<string, Json> | null {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return null;
  const index = document as Json;
  if (index.schemaVersion !== 2 || !Array.isArray(index.manifests)) return null;
  if (index.mediaType !== undefined && index.mediaType !== OCI_INDEX_MEDIA_TYPE) return null;
  const descriptors = new Map<string, Json>();
  for (const entry of index.manifests) {
    if (typeof entry !== 'object' || entry === null || typeof (entry as Json).digest !== 'string') return null;
    descriptors.set((entry as Json).digest as string, entry as Json);
  }
  return descriptors;
}

/** The digests an OCI image index lists; null when the bytes are no OCI index. */
export function listedReferrers(bytes: Uint8Array): Digest[] | null {
  const listed = referrersOf(bytes);
  return listed === null ? null : [...listed.keys()].map(parseDigest);
}

/**
 * What a region's referrers tag should hold once `incoming` arrives where it
 * holds `held`: `incoming` when that lists everything `held` does; `held`
 * when it already lists everything `incoming` does; else a new index, the
 * union, in a canonical form (descriptors sorted by digest, no index
 * annotations), so regions merging the same two indexes write the same
 * bytes and converge on one digest. `keep` filters held descriptors (the
 * caller drops any whose manifest the region lacks). Null when either is
 * not an OCI index: then the tag is ordered like any other.
 */
export function mergeReferrers(
  incoming: Uint8Array,
  held: Uint8Array,
  keep: (digest: string) => boolean = () => true,
): { holds: 'incoming' } | { holds: 'held' } | { holds: 'merged'; bytes: Uint8Array; digest: Digest } | null {
  const arriving = referrersOf(incoming);
  const holding = referrersOf(held);
  if (arriving === null || holding === null) return null;
  const heldOnly = [...holding.keys()].filter((digest) => !arriving.has(digest));
  const extra = heldOnly.filter(keep);
  if (extra.length === 0) return { holds: 'incoming' };
  if (extra.length === heldOnly.length && [...arriving.keys()].every((digest) => holding.has(digest))) return { holds: 'held' };
  const union = new Map(arriving);
  for (const digest of extra) union.set(digest, holding.get(digest)!);
  // Listed by both with other fields: the smaller serialization, whichever region merges.
  for (const [digest, descriptor] of arriving) {
    const other = holding.get(digest);
    if (other !== undefined && JSON.stringify(other) < JSON.stringify(descriptor)) union.set(digest, other);
  }
  const manifests = [...union.keys()].sort().map((digest) => union.get(digest)!);
  const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests }));
  return { holds: 'merged', bytes, digest: parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`) };
}
