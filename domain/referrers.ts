// Tags that list what is attached to an image, merged across regions rather
// than overwritten. Two conventions, both read-extend-push-back by clients:
//
// - the referrers fallback tag of the OCI distribution spec (1.1, "Referrers
//   Tag Schema"), `sha256-<hex of the subject's digest>`: an OCI image index
//   listing the artifacts (signatures, SBOMs) attached to the subject, kept by
//   clients on a registry without the referrers API (Distribution among them);
// - cosign's signature and attestation tags, `sha256-<hex>.sig` and `.att`: an
//   OCI image manifest whose layers are the signatures (or attestations), one
//   each, the config listing them as its rootfs.
//
// Signed in two regions, each region's tag lists one signature, and the later
// push would overwrite the other everywhere. Ferry merges them instead: a
// region's tag becomes the union of what it held and what arrives, so every
// signature survives in every region. Pure logic; activities/tags.ts applies it.
import { digestOf } from './content-digest';
import { parseDigest, type Digest, type Tag } from './reference';

export const OCI_INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';

/** `referrers`: an index of attached manifests; `signatures`: a manifest whose layers are the signatures. */
export type ListingKind = 'referrers' | 'signatures';

/** What a tag lists when it is one that is merged, never overwritten; null for any other tag. */
export function listingKind(tag: Tag | string): ListingKind | null {
  if (/^sha256-[0-9a-f]{64}$/.test(tag)) return 'referrers';
  if (/^sha256-[0-9a-f]{64}\.(sig|att)$/.test(tag)) return 'signatures';
  return null;
}

type Json = Record<string, unknown>;

function decode(bytes: Uint8Array): Json | null {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  return typeof document === 'object' && document !== null && !Array.isArray(document) ? (document as Json) : null;
}

/**
 * The entries a listing holds, by key: for referrers the manifest's digest;
 * for signatures the whole descriptor, since cosign's signers of one image
 * sign the same payload (one layer digest) and differ only in the signature
 * annotations. Null when the bytes are not that kind of listing.
 */
function entriesOf(kind: ListingKind, bytes: Uint8Array): Map<string, Json> | null {
  const document = decode(bytes);
  if (document === null || document.schemaVersion !== 2) return null;
  const [field, mediaType] = kind === 'referrers' ? ['manifests', OCI_INDEX_MEDIA_TYPE] : ['layers', OCI_MANIFEST_MEDIA_TYPE];
  const list = document[field];
  if (!Array.isArray(list) || (document.mediaType !== undefined && document.mediaType !== mediaType)) return null;
  if (kind === 'signatures' && (document.manifests !== undefined || typeof document.config !== 'object')) return null;
  const entries = new Map<string, Json>();
  for (const entry of list) {
    if (typeof entry !== 'object' || entry === null || typeof (entry as Json).digest !== 'string') return null;
    entries.set(kind === 'referrers' ? ((entry as Json).digest as string) : canonical(entry), entry as Json);
  }
  return entries;
}

/** JSON with every object's keys sorted: one string per value, whatever order its fields came in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Json)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The digests a listing names (an index's manifests, a signature manifest's layers); null when it is no such listing. */
export function listedDigests(kind: ListingKind, bytes: Uint8Array): Digest[] | null {
  const entries = entriesOf(kind, bytes);
  return entries === null ? null : [...new Set([...entries.values()].map((entry) => entry.digest as string))].map(parseDigest);
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** A merged listing's bytes, and for signatures the config blob its manifest names. */
export interface MergedListing {
  holds: 'merged';
  bytes: Uint8Array;
  digest: Digest;
  config?: { bytes: Uint8Array; digest: Digest };
}

/**
 * What a region's tag should hold once `incoming` arrives where it holds
 * `held`: `incoming` when that lists everything `held` does; `held` when it
 * already lists everything `incoming` does (`widened`: it lists more); else a
 * new listing, the union, in a canonical form (entries sorted; no
 * annotations of the listing itself; for signatures a config naming the
 * layers as cosign writes it), so regions merging the same two write the same
 * bytes and converge on one digest. Two listings of the same entries in other
 * bytes resolve to the one with the smaller digest, wherever they meet.
 * `keep(digest)` filters held entries (the caller drops what the region
 * lacks, and referrers deleted since). Null when either is not that kind of
 * listing: the tag is then ordered like any other.
 */
export function mergeListings(
  kind: ListingKind,
  incoming: Uint8Array,
  held: Uint8Array,
  keep: (digest: string) => boolean = () => true,
): { holds: 'incoming' } | { holds: 'held'; widened: boolean } | MergedListing | null {
  const arriving = entriesOf(kind, incoming);
  const holding = entriesOf(kind, held);
  if (arriving === null || holding === null) return null;
  const kept = (key: string) => keep(holding.get(key)!.digest as string);
  const heldOnly = [...holding.keys()].filter((key) => !arriving.has(key));
  const extra = heldOnly.filter(kept);
  const arrivingAllHeld = [...arriving.keys()].every((key) => holding.has(key));
  if (extra.length === 0 && heldOnly.length === 0 && arrivingAllHeld) {
    return digestOf(incoming) <= digestOf(held) ? { holds: 'incoming' } : { holds: 'held', widened: false };
  }
  if (extra.length === 0) return { holds: 'incoming' };
  if (extra.length === heldOnly.length && arrivingAllHeld) return { holds: 'held', widened: true };
  const union = new Map(arriving);
  for (const key of extra) union.set(key, holding.get(key)!);
  // Listed by both with other fields: the smaller serialization, whichever region merges.
  for (const [key, entry] of arriving) {
    const other = holding.get(key);
    if (other !== undefined && JSON.stringify(other) < JSON.stringify(entry)) union.set(key, other);
  }
  const entries = [...union.keys()].sort().map((key) => union.get(key)!);
  if (kind === 'referrers') {
    const bytes = encode({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: entries });
    return { holds: 'merged', bytes, digest: digestOf(bytes) };
  }
  // Cosign's signature layers are uncompressed: each layer's digest is its diff_id.
  const epoch = '0001-01-01T00:00:00Z';
  const configBytes = encode({
    architecture: '',
    created: epoch,
    history: entries.map(() => ({ created: epoch })),
    os: '',
    rootfs: { type: 'layers', diff_ids: entries.map((entry) => entry.digest) },
    config: {},
  });
  const config = { bytes: configBytes, digest: digestOf(configBytes) };
  const bytes = encode({ schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE, config: { mediaType: OCI_CONFIG_MEDIA_TYPE, size: configBytes.byteLength, digest: config.digest }, layers: entries });
  return { holds: 'merged', bytes, digest: digestOf(bytes), config };
}
