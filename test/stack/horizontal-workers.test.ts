// Workers that scale out (issue 14, item 1), on the real stack: the run's
// worker keeps only the control queue, and two more workers each poll every
// region queue, as a deployment with two workers per region runs. A burst of
// pushes sharing one base layer lands on both; southeastasia is capped so the
// base's streamed copy takes seconds, and whichever worker holds the claim on
// it there (store/blob-claims.ts) is killed with SIGKILL mid-copy. The other
// takes the claim over once its lease runs out, and then:
// - every image lands in every region, and is announced once per region;
// - the base crossed once per region (one BlobCopied each, the rest skipped).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_REGIONS } from '../../domain/config';
import { parseRepositoryName } from '../../domain/reference';
import { regionMessageFilter, type RegionMessage } from '../../domain/subjects';
import { CONTROL_TASK_QUEUE, regionTaskQueue } from '../../domain/workflow-contract';
import { BlobClaims } from '../../store/blob-claims';
import type { EventStore } from '../../store/event-store';
import { connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage, seededLayer, type OciImage } from '../support/oci-image';
import { configVariant, pidOf, startExtraWorker, startFerry, stopExtraWorker, stopExtraWorkers, stopFerry, waitUntil } from '../support/processes';
import { dockerReference, getManifest, skopeoPull } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const IMAGES = 6;
const BASE_BYTES = 40 * 1024 * 1024;
/** southeastasia's cap: the base's streamed copy takes about 10 s, long enough to be killed in. */
const RATE = 4_000_000;
const CLAIM_SECONDS = 4;
const WORKERS = ['a', 'b'] as const;
const REGION_QUEUES = LOCAL_REGIONS.map((region) => regionTaskQueue(region.name));
const TARGETS = ['westeurope', 'southeastasia'];
let store: EventStore;
let messages: MessageCollector<RegionMessage>;
let pids: Record<string, number>;

beforeAll(async () => {
  store = connectStore(config);
  const regions = LOCAL_REGIONS.map((region) => (region.name === 'southeastasia' ? { ...region, limits: { bytesPerSecond: RATE } } : region));
  const path = configVariant('scaled-out', (current) => ({ ...current, regions, replication: { claimSeconds: CLAIM_SECONDS } }));
  await stopFerry('worker');
  startFerry('worker', { FERRY_CONFIG: path, FERRY_WORKER_QUEUES: CONTROL_TASK_QUEUE });
  pids = Object.fromEntries(WORKERS.map((name, index) => [name, startExtraWorker(name, REGION_QUEUES, [9470 + 2 * index, 9471 + 2 * index], { FERRY_CONFIG: path })]));
  // Each worker is up once it serves its metrics.
  await waitUntil('both region workers serving metrics', async () => {
    const answers = await Promise.all(WORKERS.map((_, index) => fetch(`http://127.0.0.1:${9470 + 2 * index}/metrics`).then((r) => r.ok, () => false)));
    return answers.every(Boolean);
  }, 60_000);
});

afterAll(async () => {
  await messages?.stop();
  await stopExtraWorkers();
  await stopFerry('worker');
  startFerry('worker');
  await store.close();
});

describe('two workers on every region queue', () => {
  it('copy a shared base once per region, and survive one killed mid-copy', async () => {
    const repository = parseRepositoryName(uniqueRepository('scaled-out'));
    const base = seededLayer(`scaled-out-base-${Date.now()}`, BASE_BYTES);
    const images: OciImage[] = [];
    for (let index = 0; index < IMAGES; index += 1) {
      images.push(await buildImage({ layers: [base, seededLayer(`scaled-out-${Date.now()}-${index}`, 4096)], tag: `v${index}` }));
    }
    const baseDigest = images[0]!.layers[0]!.digest;
    messages = await MessageCollector.start<RegionMessage>(config.natsUrl, regionMessageFilter('*', repository));
    for (const image of images) await writeImageBehindRegistry(config, 'eastus', repository, image, null);
    await Promise.all(images.map(async (image) => expect((await notify(config, 'eastus', pushNotification(repository, image))).status).toBe(202)));

    // Whoever claimed the base's copy into southeastasia dies with it.
    const claims = new BlobClaims(store, CLAIM_SECONDS);
    const claimOnBase = async () => (await claims.live()).find((claim) => claim.region === 'southeastasia' && claim.digest === baseDigest);
    let first: string | undefined;
    await waitUntil('a worker claiming the base into southeastasia', async () => (first = (await claimOnBase())?.holder) !== undefined, 60_000);
    const victim = WORKERS.find((name) => first!.includes(`/${pids[name]}/`));
    expect(victim, `the claim's holder ${first} is one of the region workers (${JSON.stringify(pids)})`).toBeDefined();
    // Well into the copy: a part uploaded, the rest under way.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await stopExtraWorker(victim!, 'SIGKILL');
    const survivor = WORKERS.find((name) => name !== victim)!;

    // The survivor takes the claim over once the dead holder's lease runs out.
    let taker: string | undefined;
    await waitUntil('the survivor taking over the base', async () => (taker = (await claimOnBase())?.holder)?.includes(`/${pids[survivor]}/`) === true, 60_000);
    expect(taker).not.toBe(first);

    await messages.waitFor(IMAGES * TARGETS.length, 180_000);
    // Late duplicates would arrive now.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const announced = messages.messages.map(({ body }) => `${body.tag} ${body.region}`).sort();
    const expected = images.flatMap((image) => TARGETS.map((region) => `${image.tag} ${region}`)).sort();
    expect(announced, 'each image announced once per target region').toEqual(expected);
    expect(pidOf('worker'), 'the control worker kept running').not.toBeNull();

    const copies = await store.pool.query<{ region: string; type: string; n: string }>(
      `SELECT region, type, count(*) AS n FROM events WHERE type IN ('BlobCopied', 'BlobSkipped') AND data->>'digest' = $1 GROUP BY region, type ORDER BY region, type`,
      [baseDigest],
    );
    const count = (region: string, type: string) => Number(copies.rows.find((row) => row.region === region && row.type === type)?.n ?? 0);
    for (const region of TARGETS) {
      expect(count(region, 'BlobCopied'), `the base crossed into ${region} once`).toBe(1);
      expect(count(region, 'BlobCopied') + count(region, 'BlobSkipped'), `every image accounted for the base in ${region}`).toBe(IMAGES);
    }
    expect((await claims.live()).filter((claim) => claim.digest === baseDigest), 'no claim left behind').toEqual([]);

    // Served through each region's cache, and pullable in full by a real client.
    for (const region of config.regions.filter((r) => TARGETS.includes(r.name))) {
      for (const image of images) {
        const manifest = await getManifest(region.cachePurgeUrls[0]!, repository, image.tag);
        expect(manifest.status, `${image.tag} in ${region.name}`).toBe(200);
        expect(manifest.digest).toBe(image.manifestDigest);
      }
      expect(await skopeoPull(dockerReference(region.registryUrl, repository, images[0]!.tag))).toBe(images[0]!.manifestDigest);
    }
  }, 300_000);
});
