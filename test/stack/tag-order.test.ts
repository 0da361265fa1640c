// Invariants 3 and 4: concurrent, duplicated and out-of-order notifications
// for one tag converge in every region to the newest push, with one record
// per push, and the projections agree with the storage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRepositoryName, type RepositoryName } from '../../domain/reference';
import type { OutcomeMessage } from '../../domain/subjects';
import type { EventStore } from '../../store/event-store';
import { connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { getManifest, skopeoCopy } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const seed = Number(process.env.FERRY_TEST_SEED ?? Date.now() % 1_000_000);
let store: EventStore;
const collectors: MessageCollector<never>[] = [];

beforeAll(() => {
  store = connectStore(config);
  console.log(`tag-order seed ${seed} (replay with FERRY_TEST_SEED=${seed})`);
});
afterAll(async () => {
  await Promise.all(collectors.map((collector) => collector.stop()));
  await store.close();
});

/** A small deterministic generator, so a failing order can be replayed from its seed. */
function random(start: number): () => number {
  let state = start >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function shuffled<T>(items: T[], next: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

async function outcomes(repository: RepositoryName): Promise<MessageCollector<OutcomeMessage>> {
  const collector = await MessageCollector.start<OutcomeMessage>(config.natsUrl, `ferry.outcome.${repository.replaceAll('.', '%2E')}.>`);
  collectors.push(collector as MessageCollector<never>);
  return collector;
}

async function expectConverged(repository: RepositoryName, tag: string, newest: OciImage): Promise<void> {
  for (const region of config.regions) {
    const manifest = await getManifest(region.registryUrl, repository, tag);
    expect(manifest.digest, `${region.name} serves the newest push`).toBe(newest.manifestDigest);
  }
  const rows = await store.pool.query<{ region: string; digest: string }>(
    `SELECT region, digest FROM region_tags WHERE repository = $1 AND tag = $2 ORDER BY region`,
    [repository, tag],
  );
  expect(rows.rows).toEqual(config.regions.map((region) => ({ region: region.name, digest: newest.manifestDigest })).sort((a, b) => a.region.localeCompare(b.region)));
}

describe('many pushes of one tag', () => {
  it('pushed in quick succession with skopeo, end with every region on the last one', async () => {
    const repository = parseRepositoryName(uniqueRepository('burst'));
    const images = await Promise.all(Array.from({ length: 6 }, () => buildImage({ layers: [{ size: 60_000 }], tag: 'latest' })));
    const finished = await outcomes(repository);
    for (const image of images) await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:latest`);
    await finished.waitFor(images.length, 120_000);
    await expectConverged(repository, 'latest', images.at(-1)!);
  });

  it('announced out of order and duplicated, end with every region on the newest one, recorded once each', async () => {
    const repository = parseRepositoryName(uniqueRepository('reordered'));
    const next = random(seed);
    const images: OciImage[] = [];
    const envelopes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const image = await buildImage({ layers: [{ size: 40_000 }], tag: 'stable' });
      // The registry writes the tag, then notifies; each push later in time than the one before.
      await writeImageBehindRegistry(config, 'eastus', repository, image, null);
      images.push(image);
      envelopes.push(pushNotification(repository, image));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const deliveries = shuffled([...envelopes, ...envelopes.filter(() => next() < 0.5)], next);
    console.log(`delivery order: ${deliveries.map((body) => envelopes.indexOf(body) + 1).join(' ')}`);
    const finished = await outcomes(repository);
    const responses = await Promise.all(deliveries.map((body) => notify(config, 'eastus', body)));
    expect(responses.map((response) => response.status)).toEqual(deliveries.map(() => 202));
    await finished.waitFor(images.length, 120_000);
    await expectConverged(repository, 'stable', images.at(-1)!);

    const recorded = await store.pool.query(`SELECT count(*)::int AS n FROM replications WHERE repository = $1`, [repository]);
    expect(recorded.rows[0].n).toBe(images.length);
    expect(await store.diffRebuiltProjections()).toEqual([]);
  });
});
