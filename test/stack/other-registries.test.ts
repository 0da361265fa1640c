// Harbor and Azure Container Registry webhooks, fed through the real ingest,
// replicate like a Distribution notification: one internal push, whoever sent it.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { bearer, localConfig, MessageCollector, storageRegions, uniqueRepository } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { getManifest } from '../support/registry';
import { writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const collectors: MessageCollector<never>[] = [];
afterAll(() => Promise.all(collectors.map((collector) => collector.stop())));

const fixture = (path: string) => JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8'));

const webhooks: Record<string, (repository: string, image: OciImage) => unknown> = {
  harbor: (repository, image) => {
    const body = fixture('harbor/push-tag.json');
    body.occur_at = Math.floor(Date.now() / 1000);
    body.event_data.repository.repo_full_name = repository;
    Object.assign(body.event_data.resources[0], { digest: image.manifestDigest, tag: image.tag, resource_url: `127.0.0.1:5001/${repository}:${image.tag}` });
    return body;
  },
  acr: (repository, image) => {
    const body = fixture('acr/push.json');
    Object.assign(body, { id: crypto.randomUUID(), timestamp: new Date().toISOString() });
    Object.assign(body.target, { repository, digest: image.manifestDigest, tag: image.tag, size: image.manifestSize, length: image.manifestSize, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    return body;
  },
};

describe('webhooks of other registries', () => {
  it.each(Object.keys(webhooks))('a %s push replicates to every other region', async (format) => {
    const repository = parseRepositoryName(uniqueRepository(format));
    const image = await buildImage({ layers: [{ size: 90_000 }], tag: 'v1' });
    await writeImageBehindRegistry(config, 'eastus', repository, image, null);
    const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(image.manifestDigest)));
    collectors.push(outcome as MessageCollector<never>);
    const response = await fetch(`http://${config.ingest.host}:${config.ingest.port}/v1/notifications/${format}/eastus`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(config, 'ingest-eastus') },
      body: JSON.stringify(webhooks[format]!(repository, image)),
    });
    expect(response.status).toBe(202);
    const [result] = await outcome.waitFor(1, 60_000);
    expect(result!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    for (const region of storageRegions(config)) {
      expect((await getManifest(region.registryUrl, repository, 'v1')).digest, region.name).toBe(image.manifestDigest);
    }
  });
});
