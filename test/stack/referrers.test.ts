// Signatures attached to one image in two regions, the two ways clients do it
// on a registry without the OCI referrers API: the referrers index, and
// cosign's own `.sig` tag. For the index,
// each region's client pushes the signature and then the `sha256-<hex>` referrers index listing it, over
// the registry API as cosign and oras do (the image itself with skopeo); the
// registries notify Ferry. Every region must end up listing both signatures, under one digest,
// served through its cache, every listed signature pullable there.
import { afterAll, describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';
import type { EventStore } from '../../store/event-store';
import { connectStore, localConfig, storageRegions, uniqueRepository } from '../support/ferry';
import { buildArtifact, buildCosignSignature, buildImage, buildReferrersIndex, type OciImage } from '../support/oci-image';
import { waitUntil } from '../support/processes';
import { dockerReference, getManifest, pushWithApi, registryFetch, skopeoCopy } from '../support/registry';

const config = localConfig();
const store: EventStore = connectStore(config);
afterAll(() => store.close());
const SIGNATURE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const region = (name: string) => config.regions.find((candidate) => candidate.name === name)!;
const push = (image: { reference: string }, name: string, repository: string, tag: string) => skopeoCopy(image.reference, dockerReference(region(name).registryUrl, repository, tag));

/** The digests the region's referrers tag lists, and the digest it holds; null while it has none. */
async function listed(base: string, repository: string, tag: string): Promise<{ digest: string; referrers: string[] } | null> {
  const manifest = await getManifest(base, repository, tag);
  if (manifest.status !== 200) return null;
  const document = JSON.parse(manifest.body.toString()) as { manifests: Array<{ digest: string }> };
  return { digest: manifest.digest!, referrers: document.manifests.map((entry) => entry.digest).sort() };
}

/** Waits until every region's referrers tag lists exactly `expected`; returns the digest each holds. */
async function untilEveryRegionLists(repository: string, tag: string, expected: string[]): Promise<Record<string, string>> {
  const holds: Record<string, string> = {};
  for (const { name, registryUrl } of storageRegions(config)) {
    await waitUntil(`${name} listing ${expected.length} signature(s)`, async () => {
      const found = await listed(registryUrl, repository, tag);
      if (found === null || found.referrers.join() !== [...expected].sort().join()) return false;
      holds[name] = found.digest;
      return true;
    }, 90_000);
  }
  return holds;
}

/** An image pushed with skopeo in eastus and replicated everywhere, and the signatures of it that `signers` make. */
async function signedImage(repository: string, signers: string[]): Promise<{ image: OciImage; signatures: Record<string, OciImage> }> {
  const image = await buildImage({ layers: [{ size: 12_000 }], tag: 'v1' });
  await push(image, 'eastus', repository, 'v1');
  for (const name of ['westeurope', 'southeastasia']) {
    await waitUntil(`v1 in ${name}`, async () => (await getManifest(region(name).registryUrl, repository, 'v1')).digest === image.manifestDigest, 60_000);
  }
  const signatures: Record<string, OciImage> = {};
  for (const name of signers) signatures[name] = await buildArtifact(image, { artifactType: SIGNATURE, payload: `signed in ${name}`, tag: `signature-${name}` });
  return { image, signatures };
}

describe('signatures attached to one image in two regions', () => {
  it('are both listed by every region\'s referrers tag, merged rather than overwritten', async () => {
    const repository = parseRepositoryName(uniqueRepository('referrers'));
    // Each region's signer pushes its signature, then the referrers index it read (empty) with its own added.
    const { image, signatures } = await signedImage(repository, ['eastus', 'westeurope']);
    const [east, west] = await Promise.all([
      buildReferrersIndex(image, [signatures.eastus!], SIGNATURE),
      buildReferrersIndex(image, [signatures.westeurope!], SIGNATURE),
    ]);
    const tag = east.tag;
    expect(tag).toBe(image.manifestDigest.replace(':', '-'));
    await Promise.all([pushWithApi(region('eastus').registryUrl, repository, east, tag), pushWithApi(region('westeurope').registryUrl, repository, west, tag)]);

    const both = [signatures.eastus!.manifestDigest, signatures.westeurope!.manifestDigest].sort();
    const holds = await untilEveryRegionLists(repository, tag, both);
    expect(new Set(Object.values(holds)).size, `one digest everywhere: ${JSON.stringify(holds)}`).toBe(1);
    const [merged] = Object.values(holds);
    expect(merged).not.toBe(east.manifestDigest);
    expect(merged).not.toBe(west.manifestDigest);

    for (const name of ['eastus', 'westeurope', 'southeastasia']) {
      // What a verifier reads: the tag through the region's cache, then every signature it lists, and its payload.
      const cache = region(name).cachePurgeUrls[0]!;
      expect(await listed(cache, repository, tag), `${name}'s cache`).toEqual({ digest: merged, referrers: both });
      for (const [signer, signature] of Object.entries(signatures)) {
        expect((await getManifest(cache, repository, signature.manifestDigest)).digest, `${signer}'s signature in ${name}`).toBe(signature.manifestDigest);
        const payload = await registryFetch(new URL(`/v2/${repository}/blobs/${signature.layers[0]!.digest}`, region(name).registryUrl).href);
        expect(await payload.json(), `${signer}'s payload in ${name}`).toBe(`signed in ${signer}`);
      }
    }
    // The merge is on the record: each region holds the merged index there too.
    const recorded = await store.pool.query<{ region: string; digest: string }>(`SELECT region, digest FROM region_tags WHERE repository = $1 AND tag = $2 ORDER BY region`, [repository, tag]);
    expect(recorded.rows.map((row) => [row.region, row.digest])).toEqual([
      ['eastus', merged],
      ['southeastasia', merged],
      ['westeurope', merged],
    ]);
  });

  it('puts back a signature a region\'s signer overwrote there, having read the tag before it arrived', async () => {
    const repository = parseRepositoryName(uniqueRepository('referrers-overwritten'));
    const { image, signatures } = await signedImage(repository, ['eastus', 'westeurope']);
    const east = await buildReferrersIndex(image, [signatures.eastus!], SIGNATURE);
    await pushWithApi(region('eastus').registryUrl, repository, east, east.tag);
    await untilEveryRegionLists(repository, east.tag, [signatures.eastus!.manifestDigest]);
    // westeurope's signer read the tag before eastus's signature reached it: its index lists only its own.
    const west = await buildReferrersIndex(image, [signatures.westeurope!], SIGNATURE);
    await pushWithApi(region('westeurope').registryUrl, repository, west, west.tag);
    // eastus and southeastasia merge what arrives; westeurope gets the union back from them.
    const holds = await untilEveryRegionLists(repository, east.tag, [signatures.eastus!.manifestDigest, signatures.westeurope!.manifestDigest]);
    expect(new Set(Object.values(holds)).size, `one digest everywhere: ${JSON.stringify(holds)}`).toBe(1);
    const sentBack = await store.pool.query(`SELECT 1 FROM events WHERE type = 'ReplicationObserved' AND data->>'repository' = $1 AND data->>'eventId' LIKE 'referrers:%'`, [repository]);
    expect(sentBack.rowCount, 'the union sent on from a region that merged').toBeGreaterThan(0);
  });

  it('keeps a referrer removed as the spec says (its manifest deleted, then the index pushed without it) out of every region', async () => {
    const repository = parseRepositoryName(uniqueRepository('referrers-removed'));
    const { image, signatures } = await signedImage(repository, ['eastus', 'westeurope']);
    const [kept, removed] = [signatures.eastus!, signatures.westeurope!];
    const both = await buildReferrersIndex(image, [kept, removed], SIGNATURE);
    await pushWithApi(region('eastus').registryUrl, repository, both, both.tag);
    await untilEveryRegionLists(repository, both.tag, [kept.manifestDigest, removed.manifestDigest]);

    // westeurope's copy of the removed referrer must outlast its listing's merge there, as a delete still on its way
    // would: a tag westeurope's own registry pointed at it (no notification) holds the delete back for
    // replication.awaitNotificationSeconds. Only the recorded delete, which eastus's storage confirms, keeps it out.
    const westeurope = RegionStorage.connect(region('westeurope'));
    const pin = parseTag('pin');
    await westeurope.writeLink(westeurope.layout.tagIndexLink(repository, pin, parseDigest(removed.manifestDigest)), parseDigest(removed.manifestDigest));
    await westeurope.writeLink(westeurope.layout.tagCurrentLink(repository, pin), parseDigest(removed.manifestDigest));
    const deleted = await registryFetch(new URL(`/v2/${repository}/manifests/${removed.manifestDigest}`, region('eastus').registryUrl).href, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    await pushWithApi(region('eastus').registryUrl, repository, await buildReferrersIndex(image, [kept], SIGNATURE), both.tag);
    await waitUntil('westeurope listing only the kept referrer', async () => (await listed(region('westeurope').registryUrl, repository, both.tag))?.referrers.join() === kept.manifestDigest, 60_000);
    expect((await getManifest(region('westeurope').registryUrl, repository, removed.manifestDigest, 'HEAD')).status, 'the removed referrer still in westeurope then').toBe(200);
    const holds = await untilEveryRegionLists(repository, both.tag, [kept.manifestDigest]);
    expect(new Set(Object.values(holds)).size, `one digest everywhere: ${JSON.stringify(holds)}`).toBe(1);
    for (const { name, registryUrl } of storageRegions(config)) {
      await waitUntil(`the removed referrer gone from ${name}`, async () => (await getManifest(registryUrl, repository, removed.manifestDigest, 'HEAD')).status === 404, 60_000);
    }
    // Nothing brings it back: every replication of the repository done, the listings and manifests as they were.
    await waitUntil('every replication done', async () => (await store.pool.query(`SELECT 1 FROM replications WHERE repository = $1 AND outcome = 'pending'`, [repository])).rowCount === 0, 60_000);
    for (const { name, registryUrl } of storageRegions(config)) {
      expect((await listed(registryUrl, repository, both.tag))?.referrers, name).toEqual([kept.manifestDigest]);
      expect((await getManifest(registryUrl, repository, removed.manifestDigest, 'HEAD')).status, name).toBe(404);
    }
  });
});

describe('cosign signatures made in two regions', () => {
  it('are both on every region\'s .sig tag, one manifest everywhere', async () => {
    const repository = parseRepositoryName(uniqueRepository('cosign'));
    const { image } = await signedImage(repository, []);
    const [east, west] = await Promise.all([buildCosignSignature(image, 'eastus'), buildCosignSignature(image, 'westeurope')]);
    expect(east.tag).toBe(`${image.manifestDigest.replace(':', '-')}.sig`);
    await Promise.all([pushWithApi(region('eastus').registryUrl, repository, east, east.tag), pushWithApi(region('westeurope').registryUrl, repository, west, west.tag)]);

    // One payload, two signatures: what tells them apart is the annotation.
    const signatureOf = (layer: { annotations: Record<string, string> }) => Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64').toString();
    const both = ['signature by eastus', 'signature by westeurope'];
    const holds: Record<string, string> = {};
    for (const { name, registryUrl } of storageRegions(config)) {
      await waitUntil(`${name}'s .sig holding both signatures`, async () => {
        const manifest = await getManifest(registryUrl, repository, east.tag);
        if (manifest.status !== 200) return false;
        const document = JSON.parse(manifest.body.toString()) as { layers: Array<{ annotations: Record<string, string> }> };
        if (document.layers.map(signatureOf).sort().join() !== both.join()) return false;
        holds[name] = manifest.digest!;
        return true;
      }, 90_000);
    }
    expect(new Set(Object.values(holds)).size, `one digest everywhere: ${JSON.stringify(holds)}`).toBe(1);
    const payloadDigest = east.layers[0]!.digest;
    expect(west.layers[0]!.digest, 'the same payload signed twice').toBe(payloadDigest);
    for (const name of ['eastus', 'westeurope', 'southeastasia']) {
      // What cosign verify reads: the .sig manifest (through the cache), each layer's signature and payload, and the config it names.
      const manifest = await getManifest(region(name).cachePurgeUrls[0]!, repository, east.tag);
      expect(manifest.digest, `${name}'s cache`).toBe(holds.eastus);
      const document = JSON.parse(manifest.body.toString()) as { config: { digest: string }; layers: Array<{ digest: string; annotations: Record<string, string> }> };
      expect(document.layers.map(signatureOf).sort(), name).toEqual(both);
      const payload = await registryFetch(new URL(`/v2/${repository}/blobs/${payloadDigest}`, region(name).registryUrl).href);
      expect(((await payload.json()) as { critical: { image: Record<string, string> } }).critical.image['docker-manifest-digest'], name).toBe(image.manifestDigest);
      const configBlob = await registryFetch(new URL(`/v2/${repository}/blobs/${document.config.digest}`, region(name).registryUrl).href);
      expect(((await configBlob.json()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids, `${name}: the config names both layers`).toEqual([payloadDigest, payloadDigest]);
    }
  });
});
