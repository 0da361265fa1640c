// A push to any region reaches every other region, and "replicated" is
// announced only when a pull there succeeds. Real skopeo pushes and pulls,
// real registries over S3, Varnish, Temporal, Postgres and NATS JetStream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRepositoryName, type Digest, type RepositoryName } from '../../domain/reference';
import { outcomeFilter, regionMessageFilter, type OutcomeMessage, type RegionMessage } from '../../domain/subjects';
import type { EventStore } from '../../store/event-store';
import { connectStore, localConfig, MessageCollector, uniqueRepository, type ReceivedMessage } from '../support/ferry';
import { buildImage, buildIndex, seededLayer, type OciImage } from '../support/oci-image';
import { getManifest, skopeoCopy, skopeoPull } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const region = Object.fromEntries(config.regions.map((r) => [r.name, r]));
const cacheOf = (name: string) => region[name]!.cachePurgeUrls[0]!;
const hostOf = (url: string) => new URL(url).host;
const REPLICATION_TIMEOUT = 90_000;

let store: EventStore;
const collectors: MessageCollector[] = [];

beforeAll(() => {
  store = connectStore(config);
});

afterAll(async () => {
  await Promise.all(collectors.map((collector) => collector.stop()));
  await store.close();
});

async function watch<T = RegionMessage>(filter: string, onMessage?: (message: ReceivedMessage<T>) => void): Promise<MessageCollector<T>> {
  const collector = await MessageCollector.start<T>(config.natsUrl, filter, onMessage);
  collectors.push(collector as MessageCollector);
  return collector;
}

/** Resolves with the all-regions outcome of one pushed digest. */
async function outcomeOf(repository: RepositoryName, digest: string): Promise<OutcomeMessage> {
  const outcomes = await watch<OutcomeMessage>(outcomeFilter(repository, digest as Digest));
  const [outcome] = await outcomes.waitFor(1, REPLICATION_TIMEOUT);
  return outcome!.body;
}

async function push(image: { reference: string }, regionName: string, repository: string, tag: string): Promise<void> {
  await skopeoCopy(image.reference, `docker://${hostOf(region[regionName]!.registryUrl)}/${repository}:${tag}`);
}


async function replicationOf(digest: Digest, repository: string): Promise<number> {
  const result = await store.pool.query<{ id: string }>(`SELECT id FROM replications WHERE repository = $1 AND digest = $2 ORDER BY id DESC LIMIT 1`, [repository, digest]);
  return Number(result.rows[0]!.id);
}

async function copiedBlobs(replicationId: number): Promise<Array<{ region: string; type: string; digest: string; method?: string }>> {
  return (await store.eventsOf(replicationId))
    .filter((event) => event.type === 'BlobCopied' || event.type === 'BlobSkipped')
    .map((event) => ({ region: event.region!, type: event.type, digest: event.data.digest as string, method: event.data.method as string | undefined }));
}

async function expectPullable(repository: string, reference: string, digest: string, regions: string[]): Promise<void> {
  for (const name of regions) {
    const direct = await getManifest(region[name]!.registryUrl, repository, reference);
    expect(direct.status, `${name} direct`).toBe(200);
    expect(direct.digest, `${name} direct`).toBe(digest);
    const cached = await getManifest(cacheOf(name), repository, reference);
    expect(cached.status, `${name} through Varnish`).toBe(200);
    expect(cached.digest, `${name} through Varnish`).toBe(digest);
    expect(await skopeoPull(`docker://${hostOf(region[name]!.registryUrl)}/${repository}:${reference}`), `${name} full pull`).toBe(digest);
  }
}

describe('replicating a push from eastus', () => {
  const repository = parseRepositoryName(uniqueRepository('app'));
  let base: OciImage;

  it('makes a single-arch image pullable in westeurope and southeastasia, announcing each region once, after a pull works', async () => {
    base = await buildImage({ layers: [seededLayer(`${repository}-base`, 3_000_000), { size: 400_000 }], tag: 'v1' });
    const pullsOnArrival: Array<Promise<string>> = [];
    const replicated = await watch(regionMessageFilter('*', repository), (message) => {
      // A deploy pipeline pulls the moment it hears "replicated".
      pullsOnArrival.push(skopeoPull(`docker://${hostOf(region[message.body.region]!.registryUrl)}/${repository}:v1`));
    });
    await push(base, 'eastus', repository, 'v1');
    const outcome = await outcomeOf(repository, base.manifestDigest);
    expect(outcome.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    await replicated.waitFor(2, REPLICATION_TIMEOUT);
    expect(replicated.messages.map((m) => m.body.region).sort()).toEqual(['southeastasia', 'westeurope']);
    expect(replicated.messages.every((m) => m.body.digest === base.manifestDigest && m.body.tag === 'v1')).toBe(true);
    expect(await Promise.all(pullsOnArrival)).toEqual([base.manifestDigest, base.manifestDigest]);
    await expectPullable(repository, 'v1', base.manifestDigest, ['westeurope', 'southeastasia']);
  });

  it('copies eastus → westeurope server-side and eastus → southeastasia by streaming', async () => {
    const blobs = await copiedBlobs(await replicationOf(base.manifestDigest as Digest, repository));
    const methods = (name: string) => new Set(blobs.filter((b) => b.region === name && b.type === 'BlobCopied').map((b) => b.method));
    expect(methods('westeurope')).toEqual(new Set(['server-side']));
    expect(methods('southeastasia')).toEqual(new Set(['streamed']));
  });

  it('copies a layer of several parts server-side part by part while verifying it, and it pulls whole', async () => {
    // 150 MB: three part copies inside versitygw into westeurope, overlapping the hash of the source.
    const large = await buildImage({ layers: [{ size: 150_000_000 }], tag: 'large' });
    await push(large, 'eastus', repository, 'large');
    await outcomeOf(repository, large.manifestDigest);
    const layer = large.layers[0]!.digest;
    const copies = (await copiedBlobs(await replicationOf(large.manifestDigest as Digest, repository))).filter((blob) => blob.digest === layer);
    expect(copies.map((blob) => `${blob.region} ${blob.method}`).sort()).toEqual(['southeastasia streamed', 'westeurope server-side']);
    await expectPullable(repository, 'large', large.manifestDigest, ['westeurope']);
  });

  it('does not copy a shared base layer a second time', async () => {
    const sibling = await buildImage({ layers: [seededLayer(`${repository}-base`, 3_000_000), { size: 300_000 }], tag: 'sibling' });
    await push(sibling, 'eastus', repository, 'sibling');
    await outcomeOf(repository, sibling.manifestDigest);
    const sharedLayer = base.layers[0]!.digest;
    expect(sibling.layers[0]!.digest).toBe(sharedLayer);
    const blobs = await copiedBlobs(await replicationOf(sibling.manifestDigest as Digest, repository));
    for (const name of ['westeurope', 'southeastasia']) {
      expect(blobs.filter((b) => b.region === name && b.digest === sharedLayer)).toEqual([{ region: name, type: 'BlobSkipped', digest: sharedLayer, method: undefined }]);
      expect(blobs.filter((b) => b.region === name && b.digest === sibling.layers[1]!.digest).map((b) => b.type)).toEqual(['BlobCopied']);
    }
    await expectPullable(repository, 'sibling', sibling.manifestDigest, ['westeurope', 'southeastasia']);
  });

  it('copies a base layer once per region when images sharing it arrive at once', async () => {
    const shared = seededLayer(`${repository}-burst-base`, 20_000_000);
    const images = await Promise.all(['b1', 'b2', 'b3', 'b4'].map((tag) => buildImage({ layers: [shared, { size: 100_000 }], tag })));
    const baseDigest = images[0]!.layers[0]!.digest;
    for (const image of images) await writeImageBehindRegistry(config, 'eastus', repository, image, null);
    const outcomes = Promise.all(images.map((image) => outcomeOf(repository, image.manifestDigest)));
    const responses = await Promise.all(images.map((image) => notify(config, 'eastus', pushNotification(repository, image))));
    expect(responses.map((response) => response.status)).toEqual([202, 202, 202, 202]);
    expect((await outcomes).map((outcome) => outcome.failed)).toEqual([[], [], [], []]);
    const events = await store.pool.query<{ region: string; type: string }>(
      `SELECT region, type FROM events WHERE type IN ('BlobCopied', 'BlobSkipped') AND data->>'digest' = $1
         AND replication_id IN (SELECT id FROM replications WHERE repository = $2 AND tag LIKE 'b_')`,
      [baseDigest, repository],
    );
    for (const name of ['westeurope', 'southeastasia']) {
      const types = events.rows.filter((row) => row.region === name).map((row) => row.type).sort();
      expect(types, name).toEqual(['BlobCopied', 'BlobSkipped', 'BlobSkipped', 'BlobSkipped']);
    }
  });

  it('replicates a multi-arch OCI index with every child and its layers', async () => {
    const amd64 = await buildImage({ layers: [{ size: 200_000 }], architecture: 'amd64' });
    const arm64 = await buildImage({ layers: [{ size: 200_000 }], architecture: 'arm64' });
    const index = await buildIndex([amd64, arm64], { tag: 'multi' });
    await push(index, 'eastus', repository, 'multi');
    await outcomeOf(repository, index.manifestDigest);
    for (const name of ['westeurope', 'southeastasia']) {
      for (const child of [amd64, arm64]) {
        const manifest = await getManifest(region[name]!.registryUrl, repository, child.manifestDigest);
        expect(manifest.status, `${name} child ${child.platform.architecture}`).toBe(200);
      }
    }
    await expectPullable(repository, 'multi', index.manifestDigest, ['westeurope', 'southeastasia']);
  });

  it('serves the new digest through a target cache right after an overwritten tag is announced', async () => {
    const tag = 'moving';
    const first = await buildImage({ layers: [{ size: 100_000 }], tag });
    await push(first, 'eastus', repository, tag);
    await outcomeOf(repository, first.manifestDigest);
    await getManifest(cacheOf('westeurope'), repository, tag);
    const cached = await getManifest(cacheOf('westeurope'), repository, tag);
    expect(cached.cache).toBe('HIT');
    expect(cached.digest).toBe(first.manifestDigest);

    const second = await buildImage({ layers: [{ size: 100_000 }], tag });
    const seenThroughCache: Array<Promise<string | null>> = [];
    const announced = await watch(regionMessageFilter('westeurope', repository, { digest: second.manifestDigest as Digest }), () => {
      seenThroughCache.push(getManifest(cacheOf('westeurope'), repository, tag).then((response) => response.digest));
    });
    await push(second, 'eastus', repository, tag);
    await outcomeOf(repository, second.manifestDigest);
    // The outcome is published after the region message, but this collector is its own consumer
    // and may deliver later than the one outcomeOf used: wait for it rather than race it.
    await announced.waitFor(1, REPLICATION_TIMEOUT);
    expect(await Promise.all(seenThroughCache)).toEqual([second.manifestDigest]);
  });

  it('removes a manifest deleted in eastus from the other regions and their caches', async () => {
    const doomed = await buildImage({ layers: [{ size: 50_000 }], tag: 'doomed' });
    await push(doomed, 'eastus', repository, 'doomed');
    await outcomeOf(repository, doomed.manifestDigest);
    for (const name of ['westeurope', 'southeastasia']) {
      expect((await getManifest(cacheOf(name), repository, 'doomed')).status).toBe(200);
    }
    const deleted = await fetch(`${region.eastus!.registryUrl}/v2/${repository}/manifests/${doomed.manifestDigest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    const deletes = await watch(regionMessageFilter('*', repository, undefined, 'deleted'));
    // The registry sends a digest delete and a tag delete: two replications, each to two regions.
    await deletes.waitFor(4, REPLICATION_TIMEOUT);
    for (const name of ['westeurope', 'southeastasia']) {
      for (const reference of ['doomed', doomed.manifestDigest]) {
        expect((await getManifest(region[name]!.registryUrl, repository, reference)).status, `${name} ${reference}`).toBe(404);
        expect((await getManifest(cacheOf(name), repository, reference)).status, `${name} cache ${reference}`).toBe(404);
      }
    }
  });
});

describe('replicating a push from westeurope', () => {
  it('reaches eastus and southeastasia', async () => {
    const repository = parseRepositoryName(uniqueRepository('from-westeurope'));
    const image = await buildImage({ layers: [{ size: 250_000 }], tag: 'v1' });
    await push(image, 'westeurope', repository, 'v1');
    const outcome = await outcomeOf(repository, image.manifestDigest);
    expect(outcome.sourceRegion).toBe('westeurope');
    expect(outcome.succeeded.sort()).toEqual(['eastus', 'southeastasia']);
    await expectPullable(repository, 'v1', image.manifestDigest, ['eastus', 'southeastasia']);
  });
});

describe('the event store', () => {
  it('rebuilds projections equal to the live ones', async () => {
    const replications = await store.pool.query(`SELECT count(*)::int AS n FROM replications`);
    expect(replications.rows[0].n).toBeGreaterThan(0);
    expect(await store.diffRebuiltProjections()).toEqual([]);
    await store.rebuildProjections();
    expect(await store.diffRebuiltProjections()).toEqual([]);
  });
});
