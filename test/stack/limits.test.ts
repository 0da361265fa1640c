// A per-region byte rate on the real stack (regions[].limits), with the
// worker restarted with southeastasia capped at 2 MB/s. A push that goes to
// southeastasia only (a rule) streams a 20 MB layer there at the cap; while
// it does, a push of another image with the same layer reaches westeurope,
// which copies it server-side at once: the capped region's slow read of the
// source blob is one nobody else waits for (invariant 6: a slow region
// delays only itself).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_REGIONS } from '../../domain/config';
import { parseDigest, parseRepositoryName, type RepositoryName } from '../../domain/reference';
import { regionMessageFilter, type RegionMessage } from '../../domain/subjects';
import type { EventStore } from '../../store/event-store';
import { RULES_FAR_ONLY } from '../support/env';
import { connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage, seededLayer, type OciImage } from '../support/oci-image';
import { restartWorkerWith } from '../support/processes';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const RATE = 2_000_000;
const LAYER_BYTES = 20 * 1024 * 1024;
/** The cap's time for one part: the second part of the layer may not start sooner. */
const PART_SECONDS = config.replication.partSizeBytes / RATE;
let store: EventStore;
let restoreWorker: () => Promise<void>;
const collectors: Array<MessageCollector<RegionMessage>> = [];

beforeAll(async () => {
  store = connectStore(config);
  const regions = LOCAL_REGIONS.map((region) => (region.name === 'southeastasia' ? { ...region, limits: { bytesPerSecond: RATE } } : region));
  restoreWorker = await restartWorkerWith('capped', (current) => ({ ...current, regions }));
});

afterAll(async () => {
  await Promise.all(collectors.map((collector) => collector.stop()));
  await restoreWorker();
  await store.close();
});

/** Pushes `image` into eastus; the returned collector hears its per-region messages. */
async function push(repository: RepositoryName, image: OciImage): Promise<MessageCollector<RegionMessage>> {
  await writeImageBehindRegistry(config, 'eastus', repository, image, null);
  const messages = await MessageCollector.start<RegionMessage>(config.natsUrl, regionMessageFilter('*', repository, { digest: parseDigest(image.manifestDigest) }));
  collectors.push(messages);
  expect((await notify(config, 'eastus', pushNotification(repository, image))).status).toBe(202);
  return messages;
}

const completedAt = (messages: MessageCollector<RegionMessage>, region: string) => Date.parse(messages.messages.find(({ body }) => body.region === region)!.body.completedAt);

describe('a region capped at a byte rate', () => {
  it('is paced to its cap, and delays only itself', async () => {
    const layer = seededLayer(`capped-${Date.now()}`, LAYER_BYTES);
    const [far, everywhere] = [await buildImage({ layers: [layer], tag: 'v1' }), await buildImage({ layers: [layer], tag: 'v1' })];
    const farOnly = await push(parseRepositoryName(`${RULES_FAR_ONLY}/app-${Date.now().toString(36)}`), far);
    // Its first part is on its way to southeastasia; the second waits for the cap.
    await sleep(2_000);
    const both = await push(parseRepositoryName(uniqueRepository('capped')), everywhere);
    await both.waitFor(1, 60_000);
    expect(both.messages[0]!.body.region, 'westeurope first').toBe('westeurope');
    await farOnly.waitFor(1, 120_000);
    await both.waitFor(2, 120_000);

    const copies = await store.pool.query<{ region: string; seconds: string }>(
      `SELECT region, data->>'seconds' AS seconds FROM events WHERE type = 'BlobCopied' AND data->>'digest' = $1`,
      [far.layers[0]!.digest],
    );
    const southeastasia = copies.rows.find((row) => row.region === 'southeastasia')!;
    expect(Number(southeastasia.seconds), 'southeastasia no faster than its cap').toBeGreaterThanOrEqual(PART_SECONDS);
    // westeurope did not wait for southeastasia's paced read of the same source blob.
    expect(completedAt(farOnly, 'southeastasia') - completedAt(both, 'westeurope'), 'westeurope done long before').toBeGreaterThan((PART_SECONDS * 1000) / 2);
  });
});
