// "Caches told the truth" (issue 11): after the pull check, the region
// activity asks each of the region's caches what a puller gets and PURGEs
// until it agrees with the registry (activities/cache-purge.ts
// confirmCaches). Here a real Varnish holds a stale manifest for a tag whose
// storage moved behind it (as a fill in flight at a PURGE leaves it), and the
// activity, run outside a worker by the SDK's activity environment against
// the real cache and registry, must leave it serving the new one.
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { createCachePurgeActivities } from '../../activities/cache-purge';
import { connectRegistries } from '../../activities/region-configs';
import { StorageRepository } from '../../activities/repository';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';
import { connectStore, localConfig, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { dockerReference, getManifest, skopeoCopy } from '../support/registry';

const config = localConfig();
const store = connectStore(config);
const regions = new Map(config.regions.map((region) => [region.name, region]));
const caches = createCachePurgeActivities({ regions, registries: connectRegistries(regions, 10_000), store });

afterAll(async () => {
  await store.close();
});

describe('a region cache after the pull check', () => {
  it('that still serves the tag’s old manifest is purged until it serves what the registry does', async () => {
    const westeurope = regions.get('westeurope')!;
    const cache = westeurope.cachePurgeUrls[0]!;
    const repository = parseRepositoryName(uniqueRepository('stale-cache'));
    const [old, current] = [await buildImage({ layers: [{ size: 2_000 }], tag: 'v1' }), await buildImage({ layers: [{ size: 2_000 }], tag: 'v2' })];
    await skopeoCopy(old.reference, dockerReference(westeurope.registryUrl, repository, 'v1'));
    await skopeoCopy(current.reference, dockerReference(westeurope.registryUrl, repository, 'v2'));

    // The cache holds v1 → old; then the tag moves in storage, with no PURGE.
    await getManifest(cache, repository, 'v1');
    await new StorageRepository(RegionStorage.connect(westeurope), repository).tag(parseTag('v1'), parseDigest(current.manifestDigest));
    const stale = await getManifest(cache, repository, 'v1');
    expect([stale.cache, stale.digest], 'the cache is stale before the check').toEqual(['HIT', old.manifestDigest]);
    expect((await getManifest(westeurope.registryUrl, repository, 'v1')).digest).toBe(current.manifestDigest);

    await new MockActivityEnvironment().run(caches.confirmCaches, { targetRegion: 'westeurope', repository, references: [parseTag('v1')] });

    const fresh = await getManifest(cache, repository, 'v1');
    expect(fresh.digest).toBe(current.manifestDigest);
  });

  it('takes the pull check’s answer for the registry’s only once: a disagreement asks the registry again', async () => {
    const westeurope = regions.get('westeurope')!;
    const repository = parseRepositoryName(uniqueRepository('answered-cache'));
    const image = await buildImage({ layers: [{ size: 2_000 }], tag: 'v1' });
    await skopeoCopy(image.reference, dockerReference(westeurope.registryUrl, repository, 'v1'));
    // An answer the registry no longer gives (a newer push moved the tag since the pull check):
    // the cache disagrees with it once, then agrees with what the registry answers now.
    const outdated = `200 sha256:${'0'.repeat(64)}`;
    await new MockActivityEnvironment().run(caches.confirmCaches, { targetRegion: 'westeurope', repository, references: [parseTag('v1')], registryAnswers: { v1: outdated } });
    expect((await getManifest(westeurope.cachePurgeUrls[0]!, repository, 'v1')).digest).toBe(image.manifestDigest);
  });

  it('behind a registry that requires a login is asked with it', async () => {
    const southeastasia = regions.get('southeastasia')!;
    const repository = parseRepositoryName(uniqueRepository('login-cache'));
    const image = await buildImage({ layers: [{ size: 2_000 }], tag: 'v1' });
    await skopeoCopy(image.reference, dockerReference(southeastasia.registryUrl, repository, 'v1'));
    // Without the login the cache answers 401, as the registry does: that is no answer to agree on.
    const anonymous = await fetch(`${southeastasia.cachePurgeUrls[0]}/v2/${repository}/manifests/v1`);
    expect(anonymous.status).toBe(401);
    const input = { targetRegion: 'southeastasia', repository, references: [parseTag('v1')] };
    const withoutLogin = new Map([...regions].map(([name, region]) => [name, { ...region, registryCredentials: null }]));
    const blind = createCachePurgeActivities({ regions: withoutLogin, registries: connectRegistries(withoutLogin, 10_000), store });
    await expect(new MockActivityEnvironment().run(blind.confirmCaches, input)).rejects.toThrow(/refused the login \(401\)/);
    // With it, the cache and the registry both answer the image.
    await new MockActivityEnvironment().run(caches.confirmCaches, input);
  });
});
