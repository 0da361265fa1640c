// Images that are not plain layers and a config (issue 13, "every artifact"),
// on the real stack. A Windows-style image names a foreign layer (`urls`):
// its registry never receives that blob, pullers fetch it from the URL. Ferry
// copies the image's other blobs and manifest, never looks for the foreign
// one, and announces the image replicated in every region. An OCI artifact
// (artifactType, the empty config, a subject) attached to an image under a
// cosign-style tag replicates like any manifest.
import { describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName, type RepositoryName } from '../../domain/reference';
import { localConfig, uniqueRepository } from '../support/ferry';
import { buildArtifact, buildImage, OCI_EMPTY, type OciImage } from '../support/oci-image';
import { getManifest, registryFetch } from '../support/registry';
import { pushBehindRegistry } from '../support/source-writer';

const config = localConfig();
const pushAndReplicate = (repository: RepositoryName, image: OciImage) => pushBehindRegistry(config, 'eastus', repository, image);

describe('an image with a foreign layer', () => {
  it('replicates everywhere without the foreign blob, which no region is given', async () => {
    const repository = parseRepositoryName(uniqueRepository('windows'));
    const image = await buildImage({
      os: 'windows',
      layers: [{ size: 20_000, foreignUrl: 'https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:0' }, { size: 30_000 }],
      tag: 'ltsc2022',
    });
    const [foreign, app] = image.layers;
    expect(foreign!.urls).toHaveLength(1);
    const outcome = await pushAndReplicate(repository, image);
    expect(outcome.failed).toEqual([]);
    expect([...outcome.succeeded].sort()).toEqual(['southeastasia', 'westeurope']);
    for (const name of ['westeurope', 'southeastasia']) {
      const region = config.regions.find((candidate) => candidate.name === name)!;
      const manifest = await getManifest(region.registryUrl, repository, image.tag);
      expect([manifest.status, manifest.digest], name).toEqual([200, image.manifestDigest]);
      expect(JSON.parse(manifest.body.toString()).layers[0].urls, name).toEqual(foreign!.urls);
      const layer = await registryFetch(new URL(`/v2/${repository}/blobs/${app!.digest}`, region.registryUrl).href, { method: 'HEAD' });
      expect(layer.status, `${name}: the plain layer is served`).toBe(200);
      const storage = RegionStorage.connect(region);
      expect(await storage.head(storage.layout.blobData(parseDigest(foreign!.digest))), `${name}: no foreign blob`).toBeNull();
    }
  });
});

describe('an OCI artifact attached to an image', () => {
  it('replicates with its empty config and subject, under the tag cosign gives a signature', async () => {
    const repository = parseRepositoryName(uniqueRepository('signed'));
    const image = await buildImage({ layers: [{ size: 10_000 }], tag: 'v1' });
    expect((await pushAndReplicate(repository, image)).succeeded).toHaveLength(2);
    const signature = await buildArtifact(image, { artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json', payload: 'signed by eastus' });
    expect(signature.tag).toBe(`${image.manifestDigest.replace(':', '-')}.sig`);
    const outcome = await pushAndReplicate(repository, signature);
    expect([[...outcome.succeeded].sort(), outcome.failed]).toEqual([['southeastasia', 'westeurope'], []]);
    for (const name of ['westeurope', 'southeastasia']) {
      const region = config.regions.find((candidate) => candidate.name === name)!;
      const manifest = await getManifest(region.registryUrl, repository, signature.tag);
      expect([manifest.status, manifest.digest], name).toEqual([200, signature.manifestDigest]);
      const document = JSON.parse(manifest.body.toString());
      expect([document.artifactType, document.config.mediaType, document.subject.digest], name).toEqual(['application/vnd.dev.cosign.simplesigning.v1+json', OCI_EMPTY, image.manifestDigest]);
      const payload = await registryFetch(new URL(`/v2/${repository}/blobs/${signature.layers[0]!.digest}`, region.registryUrl).href);
      expect(await payload.json(), name).toBe('signed by eastus');
    }
  });
});
