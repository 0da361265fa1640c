// centralus, the registry-API region (issue 13, "regions reached through the
// registry API"), on the real stack: a Distribution registry whose bucket
// Ferry holds no credentials for, behind the Docker token flow. Ferry pushes
// into it through the API (chunked uploads for a layer larger than a part, a
// cross-repository mount for a layer it already holds), and reads from it as
// a source when a user pushes there with skopeo; single images and multi-arch
// indexes, both ways, each checked with a real pull. The run's rules send
// only it-api/** there (test/support/env.ts).
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName, parseTag, type RepositoryName } from '../../domain/reference';
import { outcomeFilter, regionMessageFilter, type OutcomeMessage } from '../../domain/subjects';
import { API_PREFIX, API_REGION } from '../support/env';
import { connectStore, localConfig, MessageCollector } from '../support/ferry';
import { buildImage, buildIndex, seededLayer, type OciImage, type OciIndex } from '../support/oci-image';
import { dockerReference, skopeoCopy, skopeoInspectDigest, skopeoPull } from '../support/registry';
import { startFerry, stopFerry, waitUntil } from '../support/processes';
import { deleteNotification, notify, pushBehindRegistry, pushNotification, writeImageBehindRegistry, writeIndexBehindRegistry } from '../support/source-writer';

const config = localConfig();
const store = connectStore(config);
const run = randomBytes(4).toString('hex');
const registry = (name: string) => config.regions.find((region) => region.name === name)!.registryUrl;
const repositoryNamed = (name: string): RepositoryName => parseRepositoryName(`${API_PREFIX}/${name}-${run}`);
const STORAGE_REGIONS = ['eastus', 'westeurope', 'southeastasia'];

afterAll(async () => {
  await store.close();
});

/** Waits for the outcome Ferry announces for `digest` of `repository`, after `act` (which makes the change). */
async function outcomeOf(repository: RepositoryName, digest: string, act: () => Promise<void>, timeoutMs = 120_000): Promise<OutcomeMessage> {
  const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(digest)));
  try {
    await act();
    const [message] = await outcome.waitFor(1, timeoutMs);
    return message!.body;
  } finally {
    await outcome.stop();
  }
}

/** How Ferry recorded each copy of `digest` into centralus: 'streamed' or 'mounted', in order. */
async function copiesIntoApiRegion(digest: string): Promise<string[]> {
  const { rows } = await store.pool.query<{ method: string }>(
    `SELECT data->>'method' AS method FROM events WHERE type = 'BlobCopied' AND region = $1 AND data->>'digest' = $2 ORDER BY seq`,
    [API_REGION, digest],
  );
  return rows.map((row) => row.method);
}

/** Pushes an image or index into `region`'s registry with skopeo, as a user there does (centralus's login included). */
async function skopeoPush(region: string, repository: RepositoryName, pushed: OciImage | OciIndex, tag: string): Promise<void> {
  await skopeoCopy(`oci:${pushed.layoutDir}:${tag}`, dockerReference(registry(region), repository, tag));
}

describe('a region reached through its registry API only', () => {
  it('has no storage in Ferry’s configuration: only a registry URL and a login', () => {
    const region = config.regions.find((candidate) => candidate.name === API_REGION)!;
    expect(region.s3).toBeNull();
    expect(region.registryCredentials).not.toBeNull();
  });

  it('receives a push from eastus through the API: a chunked layer, a mounted shared layer, a real pull', async () => {
    // One layer larger than a part (16 MiB): uploaded in chunks; a shared base, mounted into the second repository.
    const base = seededLayer(`api-base-${run}`, 40_000);
    const first = repositoryNamed('app');
    const image = await buildImage({ layers: [base, { size: 17 * 1024 * 1024 }], tag: 'v1' });
    const outcome = await pushBehindRegistry(config, 'eastus', first, image, 180_000);
    expect(outcome.failed).toEqual([]);
    expect([...outcome.succeeded].sort()).toEqual([API_REGION, 'southeastasia', 'westeurope']);
    expect(await skopeoPull(dockerReference(registry(API_REGION), first, 'v1'))).toBe(image.manifestDigest);
    const large = image.layers.at(-1)!;
    expect(await copiesIntoApiRegion(large.digest), 'the large layer crossed once, streamed').toEqual(['streamed']);

    const second = repositoryNamed('sibling');
    const sibling = await buildImage({ layers: [base, { size: 10_000 }], tag: 'v1' });
    const siblingOutcome = await pushBehindRegistry(config, 'eastus', second, sibling);
    expect(siblingOutcome.succeeded).toContain(API_REGION);
    expect(await skopeoPull(dockerReference(registry(API_REGION), second, 'v1'))).toBe(sibling.manifestDigest);
    // The base crossed into centralus once; the second repository mounted it from the first.
    expect(await copiesIntoApiRegion(image.layers[0]!.digest)).toEqual(['streamed', 'mounted']);
    // centralus's registry notified Ferry of Ferry's own writes there (sent at once; given a second to land):
    // acknowledged, never replicated back out.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const { rows } = await store.pool.query(`SELECT id FROM replications WHERE repository = ANY($1) AND source_region = $2`, [[first, second], API_REGION]);
    expect(rows, 'no echo').toEqual([]);
  });

  it('receives a multi-arch index from eastus: children first, then the index under its tag', async () => {
    const repository = repositoryNamed('multi');
    const children = [await buildImage({ layers: [{ size: 12_000 }], architecture: 'amd64', tag: 'v1' }), await buildImage({ layers: [{ size: 13_000 }], architecture: 'arm64', tag: 'v1' })];
    const index = await buildIndex(children, { tag: 'v1' });
    const outcome = await outcomeOf(repository, index.manifestDigest, async () => {
      await writeIndexBehindRegistry(config, 'eastus', repository, index);
      const response = await notify(config, 'eastus', pushNotification(repository, { manifestDigest: index.manifestDigest, manifestSize: index.manifestSize, tag: 'v1' }));
      expect(response.status).toBe(202);
    });
    expect([...outcome.succeeded].sort()).toEqual([API_REGION, 'southeastasia', 'westeurope']);
    // skopeo copies every platform (--all): each child and its blobs are served, digests unchanged.
    expect(await skopeoPull(dockerReference(registry(API_REGION), repository, 'v1'))).toBe(index.manifestDigest);
  });

  it('is a source: a skopeo push into it, single and multi-arch, reaches every storage region', async () => {
    const repository = repositoryNamed('from-api');
    const image = await buildImage({ layers: [{ size: 30_000 }, { size: 18 * 1024 * 1024 }], tag: 'v1' });
    const outcome = await outcomeOf(repository, image.manifestDigest, () => skopeoPush(API_REGION, repository, image, 'v1'), 180_000);
    expect(outcome.failed).toEqual([]);
    expect([...outcome.succeeded].sort()).toEqual(STORAGE_REGIONS.sort());
    for (const region of ['eastus', 'southeastasia']) expect(await skopeoPull(dockerReference(registry(region), repository, 'v1')), region).toBe(image.manifestDigest);

    const children = [await buildImage({ layers: [{ size: 9_000 }], architecture: 'amd64', tag: 'v2' }), await buildImage({ layers: [{ size: 9_500 }], architecture: 'arm64', tag: 'v2' })];
    const index = await buildIndex(children, { tag: 'v2' });
    const indexOutcome = await outcomeOf(repository, index.manifestDigest, () => skopeoPush(API_REGION, repository, index, 'v2'));
    expect([...indexOutcome.succeeded].sort()).toEqual(STORAGE_REGIONS.sort());
    expect(await skopeoPull(dockerReference(registry('westeurope'), repository, 'v2'))).toBe(index.manifestDigest);
  });

  it('resumes a chunked upload after its worker is killed, from the bytes the registry holds', async () => {
    const repository = repositoryNamed('resume');
    const image = await buildImage({ layers: [{ size: 150_000_000 }], tag: 'v1' });
    const layer = image.layers[0]!;
    const partSize = config.replication.partSizeBytes;
    let heldAtKill = 0;
    const outcome = await outcomeOf(
      repository,
      image.manifestDigest,
      async () => {
        await writeImageBehindRegistry(config, 'eastus', repository, image, null);
        expect((await notify(config, 'eastus', pushNotification(repository, image))).status).toBe(202);
        // The upload's checkpoint: what the registry acknowledged, chunk by chunk.
        await waitUntil('4 chunks uploaded to centralus', async () => {
          const { rows } = await store.pool.query<{ offset: string }>(`SELECT "offset" FROM registry_uploads WHERE region = $1 AND repository = $2 AND digest = $3`, [API_REGION, repository, layer.digest]);
          heldAtKill = Number(rows[0]?.offset ?? 0);
          return heldAtKill >= 4 * partSize;
        }, 120_000);
        await stopFerry('worker', 'SIGKILL');
        startFerry('worker');
      },
      180_000,
    );
    expect(outcome.succeeded).toContain(API_REGION);
    const copies = (await store.eventsOf(outcome.replicationId)).filter((event) => event.type === 'BlobCopied' && event.region === API_REGION && event.data.digest === layer.digest);
    expect(copies).toHaveLength(1);
    const bytesSent = copies[0]!.data.bytesSent as number;
    console.log(`registry resume: ${heldAtKill} bytes held by centralus's upload at the kill; the new worker sent ${bytesSent} of ${layer.size}`);
    expect(bytesSent).toBeLessThanOrEqual(layer.size - heldAtKill);
    expect(await skopeoPull(dockerReference(registry(API_REGION), repository, 'v1'))).toBe(image.manifestDigest);
  });

  it('has a tag removed through the API once its source deleted it', async () => {
    const repository = repositoryNamed('deleted');
    const image = await buildImage({ layers: [{ size: 8_000 }], tag: 'gone' });
    expect((await pushBehindRegistry(config, 'eastus', repository, image)).succeeded).toContain(API_REGION);
    expect(await skopeoInspectDigest(dockerReference(registry(API_REGION), repository, 'gone'))).toBe(image.manifestDigest);

    const deleted = await fetch(`${registry('eastus')}/v2/${repository}/manifests/gone`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    const removal = await MessageCollector.start(config.natsUrl, regionMessageFilter(API_REGION, repository, { tag: parseTag('gone') }, 'deleted'));
    try {
      expect((await notify(config, 'eastus', deleteNotification(repository, { tag: 'gone' }))).status).toBe(202);
      await removal.waitFor(1, 60_000);
    } finally {
      await removal.stop();
    }
    await expect(skopeoInspectDigest(dockerReference(registry(API_REGION), repository, 'gone'))).rejects.toThrow(/manifest unknown|not found/i);
    // The manifest stays, by digest, as a tag delete in the source leaves it.
    expect(await skopeoInspectDigest(dockerReference(registry(API_REGION), repository, image.manifestDigest))).toBe(image.manifestDigest);
  });
});
