import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { listedDigests, listingKind, mergeListings, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE } from '../../domain/referrers';

const mergeReferrers = (incoming: Uint8Array, held: Uint8Array, keep?: (digest: string) => boolean) => mergeListings('referrers', incoming, held, keep);
const listedReferrers = (bytes: Uint8Array) => listedDigests('referrers', bytes);

const digestOf = (seed: string) => `sha256:${createHash('sha256').update(seed).digest('hex')}`;
const signature = (seed: string, annotations: Record<string, string> = {}) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: digestOf(seed),
  size: 500,
  artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  ...(Object.keys(annotations).length === 0 ? {} : { annotations }),
});
const index = (...manifests: object[]) => new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests }));
const [a, b, c] = [signature('signed in eastus'), signature('signed in westeurope'), signature('signed in southeastasia')];

function merged(incoming: Uint8Array, held: Uint8Array, keep?: (digest: string) => boolean) {
  const result = mergeReferrers(incoming, held, keep);
  if (result?.holds !== 'merged') throw new Error(`expected a merge, got ${JSON.stringify(result)}`);
  return result;
}

describe('the referrers fallback tag', () => {
  it('is sha256- and the 64 hex digits of the subject; cosign adds .sig or .att; nothing else is merged', () => {
    expect(listingKind(`sha256-${'a'.repeat(64)}`)).toBe('referrers');
    expect([listingKind(`sha256-${'a'.repeat(64)}.sig`), listingKind(`sha256-${'a'.repeat(64)}.att`)]).toEqual(['signatures', 'signatures']);
    for (const tag of [`sha256-${'a'.repeat(64)}.sbom`, `sha256-${'A'.repeat(64)}`, `sha256-${'a'.repeat(63)}`, 'latest', `sha512-${'a'.repeat(64)}`]) {
      expect(listingKind(tag), tag).toBeNull();
    }
  });

  it('keeps the arriving index when it lists everything the region did, and the region\'s when that lists everything arriving', () => {
    expect(mergeReferrers(index(a, b), index(a))).toEqual({ holds: 'incoming' });
    expect(mergeReferrers(index(a), index(b, a))).toEqual({ holds: 'held', widened: true });
  });

  it('resolves the same entries in other bytes to the smaller digest, wherever they meet', () => {
    const [ab, ba] = [index(a, b), index(b, a)];
    const smaller = digestOf(Buffer.from(ab).toString()) < digestOf(Buffer.from(ba).toString()) ? ab : ba;
    const larger = smaller === ab ? ba : ab;
    expect(mergeReferrers(smaller, larger)).toEqual({ holds: 'incoming' });
    expect(mergeReferrers(larger, smaller)).toEqual({ holds: 'held', widened: false });
  });

  it('merges two indexes into their union, the same bytes whichever region merges', () => {
    const here = merged(index(a), index(b));
    const there = merged(index(b), index(a));
    expect(Buffer.from(here.bytes).toString()).toBe(Buffer.from(there.bytes).toString());
    expect(here.digest).toBe(there.digest);
    expect(here.digest).toBe(digestOf(Buffer.from(here.bytes).toString()));
    const document = JSON.parse(Buffer.from(here.bytes).toString());
    expect(document.mediaType).toBe(OCI_INDEX_MEDIA_TYPE);
    expect(document.manifests).toEqual([a, b].sort((x, y) => (x.digest < y.digest ? -1 : 1)));
    // Merged again with either side, the union stays: the regions converge on one digest.
    expect(mergeReferrers(here.bytes, index(a))).toEqual({ holds: 'incoming' });
    expect(mergeReferrers(index(b), here.bytes)).toEqual({ holds: 'held', widened: true });
    expect(listedReferrers(merged(index(c), here.bytes).bytes)?.sort()).toEqual([a.digest, b.digest, c.digest].sort());
  });

  it('picks one descriptor for a referrer both list differently, whichever region merges', () => {
    const annotated = signature('signed in eastus', { 'org.opencontainers.image.created': '2026-11-25T00:00:00Z' });
    expect(Buffer.from(merged(index(a, b), index(annotated, c)).bytes).toString()).toBe(Buffer.from(merged(index(annotated, c), index(a, b)).bytes).toString());
  });

  it('leaves out a referrer the region lists but lacks the manifest of', () => {
    const present = (digest: string) => digest !== c.digest;
    expect(mergeReferrers(index(a), index(a, c), present)).toEqual({ holds: 'incoming' });
    const result = merged(index(a), index(a, b, c), present);
    expect(listedReferrers(result.bytes)?.sort()).toEqual([a.digest, b.digest].sort());
  });

  it('is no merge when either side is no OCI index: the tag is then ordered like any other', () => {
    const image = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: a, layers: [] }));
    const dockerList = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [a] }));
    expect(mergeReferrers(index(a), image)).toBeNull();
    expect(mergeReferrers(image, index(a))).toBeNull();
    expect(mergeReferrers(dockerList, index(a))).toBeNull();
    expect(mergeReferrers(new TextEncoder().encode('{"schemaVersion":2,"manifests":[{"size":1}]}'), index(a))).toBeNull();
    expect(mergeReferrers(new Uint8Array([0xff]), index(a))).toBeNull();
  });
});

describe('a cosign signature tag', () => {
  const layer = (payload: string, signature: string) => ({
    mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
    digest: digestOf(payload),
    size: payload.length,
    annotations: { 'dev.cosignproject.cosign/signature': signature },
  });
  const signed = (...layers: Array<ReturnType<typeof layer>>) =>
    new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE, config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: 1, digest: digestOf('config') }, layers }),
    );
  const [east, west] = [layer('{"critical":{"image":"east"}}', 'MEUCIQ-east'), layer('{"critical":{"image":"west"}}', 'MEUCIQ-west')];

  it('merges the signature layers into one manifest, its config naming them as cosign writes it', () => {
    const result = mergeListings('signatures', signed(east), signed(west));
    if (result?.holds !== 'merged') throw new Error(`expected a merge, got ${JSON.stringify(result)}`);
    const manifest = JSON.parse(Buffer.from(result.bytes).toString());
    const layers = [east, west].sort((x, y) => (x.digest < y.digest ? -1 : 1));
    expect(manifest.layers).toEqual(layers);
    expect(manifest.config).toEqual({ mediaType: 'application/vnd.oci.image.config.v1+json', size: result.config!.bytes.byteLength, digest: result.config!.digest });
    const config = JSON.parse(Buffer.from(result.config!.bytes).toString());
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: layers.map((entry) => entry.digest) });
    expect(config.history).toHaveLength(2);
    expect(result.config!.digest).toBe(digestOf(Buffer.from(result.config!.bytes).toString()));
    // The same bytes whichever region merges; merged again, nothing changes.
    const other = mergeListings('signatures', signed(west), signed(east));
    expect(other?.holds === 'merged' && other.digest).toBe(result.digest);
    expect(mergeListings('signatures', result.bytes, signed(east))).toEqual({ holds: 'incoming' });
    expect(mergeListings('signatures', signed(west), result.bytes)).toEqual({ holds: 'held', widened: true });
  });

  it('keeps two signers of the same payload: one layer digest, two signatures', () => {
    const payload = '{"critical":{"image":"same"}}';
    const [first, second] = [layer(payload, 'MEUCIQ-first'), layer(payload, 'MEUCIQ-second')];
    const result = mergeListings('signatures', signed(first), signed(second));
    if (result?.holds !== 'merged') throw new Error(`expected a merge, got ${JSON.stringify(result)}`);
    const signatures = JSON.parse(Buffer.from(result.bytes).toString()).layers.map((entry: { annotations: Record<string, string> }) => entry.annotations['dev.cosignproject.cosign/signature']);
    expect(signatures.sort()).toEqual(['MEUCIQ-first', 'MEUCIQ-second']);
    expect(listedDigests('signatures', result.bytes)).toEqual([first.digest]);
  });

  it('is no merge with an index or a signature tag of another shape', () => {
    expect(mergeListings('signatures', signed(east), index(a))).toBeNull();
    expect(mergeListings('referrers', signed(east), index(a))).toBeNull();
    expect(mergeListings('signatures', new TextEncoder().encode('{"schemaVersion":2,"layers":[]}'), signed(east))).toBeNull();
  });
});
