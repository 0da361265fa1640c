// Images that are not plain layers and a config (issue 13, "every artifact"),
// on the real stack. A Windows-style image names a foreign layer (`urls`):
// its registry never receives that blob, pullers fetch it from the URL. Ferry
// copies the image's other blobs and manifest, never looks for the foreign
// one, and announces the image replicated in every region.
import { afterAll, describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { getManifest, registryFetch } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const collectors: Array<MessageCollector<OutcomeMessage>> = [];
afterAll(() => Promise.all(collectors.map((collector) => collector.stop())));

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
    await writeImageBehindRegistry(config, 'eastus', repository, image, null);
    const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(image.manifestDigest)));
    collectors.push(outcome);
    expect((await notify(config, 'eastus', pushNotification(repository, image))).status).toBe(202);

    const [message] = await outcome.waitFor(1, 90_000);
    expect(message!.body.failed).toEqual([]);
    expect([...message!.body.succeeded].sort()).toEqual(['southeastasia', 'westeurope']);
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
