// The pull check (activities/pull-check.ts): what "announced ⇒ pullable"
// (invariant 1) rests on. Run outside a worker by the SDK's activity
// environment against westeurope's real registry, over storage this test
// changes behind it: the root is pulled once through the tag when the tag
// serves its bytes, by digest otherwise, and a manifest or blob the registry
// does not serve fails the check.
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createPullCheckActivities } from '../../activities/pull-check';
import { connectRegistries } from '../../activities/region-configs';
import { StorageRepository } from '../../activities/repository';
import { RegionStorage } from '../../activities/storage';
import { resolveManifestGraph } from '../../domain/manifest';
import { parseDigest, parseRepositoryName, parseTag, type Digest, type RepositoryName } from '../../domain/reference';
import { localConfig, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { dockerReference, skopeoCopy } from '../support/registry';

const config = localConfig();
const regions = new Map(config.regions.map((region) => [region.name, region]));
const westeurope = regions.get('westeurope')!;
const storage = RegionStorage.connect(westeurope);
const pull = createPullCheckActivities({ regions, registries: connectRegistries(regions, 10_000) });

async function graphOf(repository: RepositoryName, digest: string) {
  const held = new StorageRepository(storage, repository);
  return resolveManifestGraph(parseDigest(digest), async (child: Digest) => {
    const read = await held.getManifest(child);
    if (read.found !== 'ok') throw new Error(`${child}: ${read.found}`);
    return read.bytes;
  });
}

async function pushed(name: string, tag: string) {
  const repository = parseRepositoryName(uniqueRepository(name));
  const image = await buildImage({ layers: [{ size: 3_000 }, { size: 5_000 }], tag });
  await skopeoCopy(image.reference, dockerReference(westeurope.registryUrl, repository, tag));
  return { repository, image, graph: await graphOf(repository, image.manifestDigest), held: new StorageRepository(storage, repository) };
}

const check = (input: Parameters<typeof pull.verifyPull>[0]) => new MockActivityEnvironment().run(pull.verifyPull, input);

describe('the pull check of a region', () => {
  it('passes an image whose tag serves its root and whose every blob is served, and says what the tag answered', async () => {
    const { repository, image, graph } = await pushed('pull-ok', 'v1');
    const result = await check({ targetRegion: 'westeurope', repository, tag: parseTag('v1'), graph });
    expect(result).toEqual({ tagHoldsDigest: true, tagAnswer: `200 ${image.manifestDigest}` });
    // No tag: the root by digest.
    expect(await check({ targetRegion: 'westeurope', repository, tag: null, graph })).toEqual({ tagHoldsDigest: false });
  });

  it('pulls the root by digest when the tag serves another image, and fails when the registry does not serve that root', async () => {
    const { repository, image, graph, held } = await pushed('pull-moved', 'v1');
    const newer = await buildImage({ layers: [{ size: 4_000 }], tag: 'v2' });
    await skopeoCopy(newer.reference, dockerReference(westeurope.registryUrl, repository, 'v2'));
    // A newer push moved v1 on: this image is announced by digest, once its root is pulled by digest.
    await held.tag(parseTag('v1'), parseDigest(newer.manifestDigest));
    expect(await check({ targetRegion: 'westeurope', repository, tag: parseTag('v1'), graph })).toEqual({
      tagHoldsDigest: false,
      tagAnswer: `200 ${newer.manifestDigest}`,
    });
    await held.unlinkManifest(parseDigest(image.manifestDigest));
    await expect(check({ targetRegion: 'westeurope', repository, tag: parseTag('v1'), graph })).rejects.toThrow(
      new RegExp(`not pullable from westeurope: GET ${repository}@${image.manifestDigest} answered 404`),
    );
  });

  it('fails when the registry does not serve one of the blobs, though the tag serves the root', async () => {
    const { repository, image, graph, held } = await pushed('pull-blob', 'v1');
    await held.unlinkBlob(parseDigest(image.layers[1]!.digest));
    await expect(check({ targetRegion: 'westeurope', repository, tag: parseTag('v1'), graph })).rejects.toThrow(
      new RegExp(`not pullable from westeurope: HEAD blob ${image.layers[1]!.digest} answered 404`),
    );
  });
});
