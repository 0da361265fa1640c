// Invariants 3 and 4: concurrent, duplicated and out-of-order notifications
// for one tag converge in every region to the newest push, with one record
// per push, and the projections agree with the storage. Pushes from one
// region are ordered by that region's storage (an older one finds its tag
// moved on); pushes of one tag in two regions at once are ordered by the
// per-tag fence (domain/tag-order.ts), which the last test reaches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRepositoryName, type RepositoryName } from '../../domain/reference';
import type { OutcomeMessage } from '../../domain/subjects';
import type { EventStore } from '../../store/event-store';
import { connectStore, localConfig, MessageCollector, storageRegions, uniqueRepository } from '../support/ferry';
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
  for (const region of storageRegions(config)) {
    const manifest = await getManifest(region.registryUrl, repository, tag);
    expect(manifest.digest, `${region.name} serves the newest push`).toBe(newest.manifestDigest);
  }
  const rows = await store.pool.query<{ region: string; digest: string }>(
    `SELECT region, digest FROM region_tags WHERE repository = $1 AND tag = $2 ORDER BY region`,
    [repository, tag],
  );
  expect(rows.rows).toEqual(storageRegions(config).map((region) => ({ region: region.name, digest: newest.manifestDigest })).sort((a, b) => a.region.localeCompare(b.region)));
}

/** Waits until the push of `image` has moved or been refused `repository`'s tag in `region`. */
async function judgedIn(repository: RepositoryName, image: OciImage, region: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const judged = await store.pool.query(
      `SELECT 1 FROM events e JOIN replications r ON r.id = e.replication_id
       WHERE r.repository = $1 AND r.digest = $2 AND e.region = $3 AND e.type IN ('TagReplicated', 'TagSuperseded')`,
      [repository, image.manifestDigest, region],
    );
    if (judged.rowCount! > 0) return;
    if (Date.now() > deadline) throw new Error(`the push of ${image.manifestDigest} was not judged in ${region} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
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
  it('pushed in two regions at once, announced out of order and twice, are ordered by the per-tag fence: the later push wins everywhere', async () => {
    const repository = parseRepositoryName(uniqueRepository('two-regions'));
    const next = random(seed + 1);
    const [one, other] = shuffled(storageRegions(config).map((region) => region.name), next) as [string, string];
    // Two pushes in each region, their event times interleaved; each region's second overwrites its first there.
    const base = Date.now() - 10_000;
    const pushes = await Promise.all(
      shuffled([one, one, other, other], next).map(async (region, order) => ({
        region,
        at: new Date(base + order * 250),
        image: await buildImage({ layers: [{ size: 40_000 }], tag: 'stable' }),
      })),
    );
    await Promise.all(
      [one, other].map(async (region) => {
        for (const push of pushes.filter((candidate) => candidate.region === region)) await writeImageBehindRegistry(config, region, repository, push.image, null);
      }),
    );
    // What each region's storage holds: its later push. Of those two, the later in time must win in every region.
    const held = [one, other].map((region) => pushes.filter((push) => push.region === region).at(-1)!);
    const [fenced, newest] = held.sort((a, b) => a.at.getTime() - b.at.getTime()) as [(typeof pushes)[number], (typeof pushes)[number]];
    const overwritten = pushes.filter((push) => !held.includes(push));

    const label = (push: (typeof pushes)[number]) => `${push.region}+${push.at.getTime() - base}ms`;
    const envelopes = pushes.map((push) => ({ region: push.region, label: label(push), body: pushNotification(repository, push.image, undefined, push.at) }));
    const deliveries = shuffled([...envelopes, ...envelopes.filter(() => next() < 0.5)], next);
    console.log(`pushes in time order: ${pushes.map(label).join(' ')}; newest ${label(newest)}, fenced ${label(fenced)}`);
    console.log(`delivery order: ${deliveries.map((delivery) => delivery.label).join(' ')}`);
    const finished = await outcomes(repository);
    // The newest push also moves the fenced push's own region; once it has, the fenced push is refused everywhere by
    // its source check, before the fence is asked. Ferry's own lock on that region's tag holds the newest push back
    // until the fenced push has been judged in the newest push's region, so that the fence, not the race, decides.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => (locked = resolve));
    const lock = store.withTagLock(fenced.region, repository, 'stable', async () => {
      locked();
      await released;
    });
    try {
      await holding;
      const responses = await Promise.all(deliveries.map((delivery) => notify(config, delivery.region, delivery.body)));
      expect(responses.map((response) => response.status)).toEqual(deliveries.map(() => 202));
      await judgedIn(repository, fenced.image, newest.region, 120_000);
    } finally {
      release();
      await lock;
    }
    await finished.waitFor(pushes.length, 120_000);
    await expectConverged(repository, 'stable', newest.image);

    const ids = new Map<string, number>();
    for (const row of (await store.pool.query<{ id: string; digest: string }>(`SELECT id, digest FROM replications WHERE repository = $1`, [repository])).rows) {
      ids.set(row.digest, Number(row.id));
    }
    expect(ids.size).toBe(pushes.length);
    const idOf = (push: (typeof pushes)[number]) => ids.get(push.image.manifestDigest)!;
    // The fenced push passed the source check (its region's tag holds it) and met the tag held by the newest push in
    // the newest push's region: only the fence can refuse it there, naming the newer change (the source check names none).
    const tagEvents = await store.pool.query<{ type: string; data: { newerReplicationId?: number | null } }>(
      `SELECT type, data FROM events WHERE replication_id = $1 AND region = $2 AND type IN ('TagReplicated', 'TagSuperseded')`,
      [idOf(fenced), newest.region],
    );
    expect(tagEvents.rows.map((row) => ({ type: row.type, newer: row.data.newerReplicationId }))).toEqual([{ type: 'TagSuperseded', newer: idOf(newest) }]);
    const states = await store.pool.query<{ replication_id: string; region: string; state: string; superseded_by: string | null }>(
      `SELECT replication_id, region, state, superseded_by FROM replication_regions WHERE replication_id = ANY($1::bigint[])`,
      [[...ids.values()]],
    );
    const stateOf = (push: (typeof pushes)[number], region: string) => {
      const row = states.rows.find((candidate) => Number(candidate.replication_id) === idOf(push) && candidate.region === region)!;
      return { state: row.state, supersededBy: row.superseded_by === null ? null : Number(row.superseded_by) };
    };
    expect(stateOf(fenced, newest.region)).toEqual({ state: 'superseded', supersededBy: idOf(newest) });
    for (const region of storageRegions(config).map((r) => r.name).filter((name) => name !== newest.region)) {
      expect(stateOf(newest, region), `the newest push in ${region}`).toEqual({ state: 'replicated', supersededBy: null });
    }
    // The overwritten pushes never reach the fence: their own region's tag moved on.
    for (const push of overwritten) {
      for (const region of storageRegions(config).map((r) => r.name).filter((name) => name !== push.region)) {
        expect(stateOf(push, region), `${label(push)} in ${region}`).toEqual({ state: 'superseded', supersededBy: null });
      }
    }
    expect(await store.diffRebuiltProjections()).toEqual([]);
  });
});
