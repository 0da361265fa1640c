// The local stack serves what a registry user expects: pushes pull back
// byte-identical, directly and through the region's manifest cache, and the
// cache forgets a manifest when purged from loopback.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCAL_REGIONS } from '../../domain/config';
import { buildImage, buildIndex, seededLayer } from '../support/oci-image';
import { dockerReference, getManifest, purge, skopeoCopy, skopeoPull } from '../support/registry';

function localRegion(name: string) {
  const region = LOCAL_REGIONS.find((candidate) => candidate.name === name);
  if (!region?.cachePurgeUrls[0]) throw new Error(`local stack has no region ${name} with a cache`);
  return { registryUrl: region.registryUrl, cacheUrl: region.cachePurgeUrls[0] };
}

const eastus = localRegion('eastus');
const scratch: string[] = [];
const repository = () => `stack-test/${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('local stack', () => {
  it("an image pushed to eastus pulls back with the same digest directly and through eastus's Varnish", async () => {
    const base = seededLayer('stack-test-base', 512 * 1024);
    const amd64 = await buildImage({ layers: [base, { size: 64 * 1024 }], architecture: 'amd64' });
    const arm64 = await buildImage({ layers: [base, { size: 64 * 1024 }], architecture: 'arm64' });
    const index = await buildIndex([amd64, arm64]);
    scratch.push(amd64.layoutDir, arm64.layoutDir, index.layoutDir);
    const repo = repository();

    await skopeoCopy(index.reference, dockerReference(eastus.registryUrl, repo, '1.0'));

    for (const baseUrl of [eastus.registryUrl, eastus.cacheUrl]) {
      expect(await skopeoPull(dockerReference(baseUrl, repo, '1.0')), `pulled from ${baseUrl}`).toBe(index.manifestDigest);
    }
  });

  it('PURGE from loopback empties the cached manifest', async () => {
    const image = await buildImage({ layers: [{ size: 4096 }] });
    scratch.push(image.layoutDir);
    const repo = repository();
    await skopeoCopy(image.reference, dockerReference(eastus.registryUrl, repo, 'latest'));

    const first = await getManifest(eastus.cacheUrl, repo, 'latest');
    const second = await getManifest(eastus.cacheUrl, repo, 'latest');
    expect([first.status, first.cache, first.digest]).toEqual([200, 'MISS', image.manifestDigest]);
    expect([second.status, second.cache, second.digest]).toEqual([200, 'HIT', image.manifestDigest]);

    expect(await purge(eastus.cacheUrl, `/v2/${repo}/manifests/latest`)).toBe(200);

    const afterPurge = await getManifest(eastus.cacheUrl, repo, 'latest');
    expect([afterPurge.status, afterPurge.cache, afterPurge.digest]).toEqual([200, 'MISS', image.manifestDigest]);
  });
});
