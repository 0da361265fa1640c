// Losing the control plane (issue 14, item 3), on the real stack: Ferry's
// database is dropped while a replication runs and pushes go on (through the
// registries, whose notifications are refused meanwhile and redelivered);
// `ferry recover` rebuilds it, and then every region converges, no tag is
// deleted or moved back, the replication that ran through the loss reports
// its outcome again, and new ids never reuse an old one's.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_REGIONS } from '../../domain/config';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';
import { RegionStorage } from '../../activities/storage';
import type { EventStore } from '../../store/event-store';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { bearer, connectStore, localConfig, MessageCollector, storageRegions, uniqueRepository } from '../support/ferry';
import { buildImage, seededLayer, type OciImage } from '../support/oci-image';
import { localStackEnv, repoRoot, TEST_DATABASE } from '../support/env';
import { restartWorkerWith, waitUntil } from '../support/processes';
import { dockerReference, getManifest, skopeoCopy, skopeoPull } from '../support/registry';

const run = promisify(execFile);
const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const regions = Object.fromEntries(storageRegions(config).map((region) => [region.name, region]));
let store: EventStore;
let restoreWorker: () => Promise<void>;

beforeAll(async () => {
  // southeastasia capped, so one replication is still copying when the database goes.
  const capped = LOCAL_REGIONS.map((region) => (region.name === 'southeastasia' ? { ...region, limits: { bytesPerSecond: 1_000_000 } } : region));
  restoreWorker = await restartWorkerWith('recovery', (current) => ({ ...current, regions: capped }));
});

afterAll(async () => {
  await store?.close();
  await restoreWorker();
});

const push = (image: OciImage, region: string, repository: string, tag: string) => skopeoCopy(image.reference, dockerReference(regions[region]!.registryUrl, repository, tag));

/** The digest each region's registry serves for `tag` (null: none). */
async function tagEverywhere(repository: string, tag: string): Promise<Record<string, string | null>> {
  const answers = await Promise.all(storageRegions(config).map(async (region) => [region.name, (await getManifest(region.registryUrl, repository, tag, 'HEAD')).digest] as const));
  return Object.fromEntries(answers.map(([region, digest]) => [region, digest ?? null]));
}

const everywhere = (digest: string) => Object.fromEntries(storageRegions(config).map((region) => [region.name, digest]));

/** Drops Ferry's database with every connection to it, and creates it empty: the control plane's state is gone. */
async function loseTheDatabase(): Promise<void> {
  const admin = new pg.Client({ connectionString: config.postgresUrl.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE ${TEST_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEST_DATABASE}`);
  } finally {
    await admin.end();
  }
}

describe("losing Ferry's database", () => {
  it('is recovered by `ferry recover`: regions converge, nothing deleted or moved back', async () => {
    const repository = parseRepositoryName(uniqueRepository('recovered'));
    const [kept, after, fresh] = await Promise.all(['kept', 'after', 'fresh'].map((name) => buildImage({ layers: [seededLayer(`recovery-${name}-${Date.now()}`, 200_000)], tag: name })));
    // 24 MB into southeastasia at 1 MB/s: still copying when the database goes.
    const before = await buildImage({ layers: [seededLayer(`recovery-before-${Date.now()}`, 24 * 1024 * 1024)], tag: 'before' });
    const outcomes = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, before.manifestDigest as never));
    try {
      await push(kept!, 'eastus', repository, 'keep');
      await waitUntil('keep replicated', async () => JSON.stringify(await tagEverywhere(repository, 'keep')) === JSON.stringify(everywhere(kept!.manifestDigest)), 90_000);
      store = connectStore(config);
      await push(before, 'eastus', repository, 'stable');
      await waitUntil('stable copying into southeastasia', async () => {
        // Its small blobs landed there, the large layer is on its way.
        const copying = await store.pool.query(
          `SELECT 1 FROM replication_regions rr JOIN replications r ON r.id = rr.replication_id WHERE r.repository = $1 AND r.tag = 'stable' AND rr.region = 'southeastasia' AND rr.state = 'copying'`,
          [repository],
        );
        return (copying.rowCount ?? 0) > 0;
      }, 60_000);
      const highestBefore = Number((await store.pool.query<{ max: string }>(`SELECT max(id) FROM replications`)).rows[0]!.max);
      await store.close();

      await loseTheDatabase();
      // Pushes go on: `stable` moves on in another region, and a new tag arrives. Their notifications are refused (503) and redelivered.
      await push(after!, 'westeurope', repository, 'stable');
      await push(fresh!, 'eastus', repository, 'fresh');
      const refused = await fetch(`${api}/v1/status?repository=${repository}&tag=keep`, { headers: bearer(config, 'reader') });
      expect(refused.status, 'the api cannot read a store that is gone').toBe(503);

      const recovered = await run(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'recover', '--drain-timeout', '3m', '--repository', repository], { cwd: repoRoot, env: localStackEnv(), timeout: 300_000 });
      console.log(recovered.stdout);
      expect(recovered.stdout, 'the replication that ran through the loss recorded again').toMatch(/running in Temporal, [1-9]\d* of them recorded again/);
      expect(recovered.stdout).toMatch(/recover: recovered/);
      store = connectStore(config);

      // Every region converges on the last write of each tag; `keep` is deleted nowhere.
      const expected = { keep: kept!.manifestDigest, stable: after!.manifestDigest, fresh: fresh!.manifestDigest };
      await waitUntil('every region converging', async () => {
        for (const [tag, digest] of Object.entries(expected)) {
          if (JSON.stringify(await tagEverywhere(repository, tag)) !== JSON.stringify(everywhere(digest))) return false;
        }
        return true;
      }, 180_000);
      // Never moved back: in no region was `stable` written with the older push after the newer one.
      const writes = await store.pool.query<{ region: string; digest: string }>(
        `SELECT region, data->>'digest' AS digest FROM events WHERE type = 'TagReplicated' AND data->>'repository' = $1 AND data->>'tag' = 'stable' ORDER BY seq`,
        [repository],
      );
      for (const region of ['eastus', 'southeastasia']) {
        const order = writes.rows.filter((row) => row.region === region).map((row) => row.digest);
        expect(order.at(-1), `${region}'s last write of stable`).toBe(after!.manifestDigest);
        expect(order.slice(order.indexOf(after!.manifestDigest)), `${region}: nothing after the newer push`).toEqual([after!.manifestDigest]);
      }
      expect(await skopeoPull(dockerReference(regions.southeastasia!.registryUrl, repository, 'stable'))).toBe(after!.manifestDigest);
      // `keep`, which every region held and nothing recorded any more, became the record as storage holds it.
      const baseline = await store.pool.query(`SELECT region FROM events WHERE type = 'TagRecovered' AND data->>'repository' = $1 AND data->>'tag' = 'keep' AND data->>'digest' = $2`, [repository, kept!.manifestDigest]);
      expect(baseline.rows.map((row) => row.region).sort()).toEqual(['eastus', 'southeastasia', 'westeurope']);

      // The replication that ran through the loss is known again under its own id, and finished.
      await outcomes.waitFor(1, 120_000);
      const statusOfBefore = async () =>
        (await (await fetch(`${api}/v1/status?repository=${repository}&digest=${before.manifestDigest}`, { headers: bearer(config, 'reader') })).json()) as { replicationId: number; outcome: string };
      expect((await statusOfBefore()).replicationId, 'its own id').toBeLessThanOrEqual(highestBefore);
      await waitUntil('the older push finished in the record', async () => (await statusOfBefore()).outcome !== 'pending', 60_000);
      // Changes recorded since got ids past every one Temporal held.
      const since = await store.pool.query<{ id: string }>(`SELECT id FROM replications WHERE repository = $1 AND tag IN ('stable', 'fresh') AND digest <> $2`, [repository, before.manifestDigest]);
      expect(since.rows.length).toBeGreaterThan(0);
      for (const row of since.rows) expect(Number(row.id)).toBeGreaterThan(highestBefore);
      expect(await store.diffRebuiltProjections(), 'projections fold from the log').toEqual([]);
    } finally {
      await outcomes.stop();
    }
  }, 420_000);

  it('is restored from a backup: `ferry recover` catches the record up with storage and Temporal', async () => {
    const repository = parseRepositoryName(uniqueRepository('restored'));
    const [first, second, other] = await Promise.all(['first', 'second', 'other'].map((name) => buildImage({ layers: [seededLayer(`restore-${name}-${Date.now()}`, 150_000)], tag: name })));
    const replicated = (tag: string, digest: string) => waitUntil(`${tag} replicated`, async () => JSON.stringify(await tagEverywhere(repository, tag)) === JSON.stringify(everywhere(digest)), 90_000);
    await push(first!, 'eastus', repository, 'app');
    await replicated('app', first!.manifestDigest);
    // The nightly backup: pg_dump of Ferry's database.
    const backup = `${repoRoot}.stack/run/recovery-backup.dump`;
    await run('pg_dump', ['--format=custom', `--file=${backup}`, config.postgresUrl]);
    // After the backup: `app` moves on, and a new tag appears.
    await push(second!, 'eastus', repository, 'app');
    await push(other!, 'westeurope', repository, 'other');
    await replicated('app', second!.manifestDigest);
    await replicated('other', other!.manifestDigest);
    // And one still copying into capped southeastasia when the database goes.
    const slow = await buildImage({ layers: [seededLayer(`restore-slow-${Date.now()}`, 24 * 1024 * 1024)], tag: 'slow' });
    await push(slow, 'eastus', repository, 'slow');
    store = connectStore(config);
    let slowId = 0;
    await waitUntil('slow copying into southeastasia', async () => {
      const copying = await store.pool.query<{ id: string }>(
        `SELECT r.id FROM replication_regions rr JOIN replications r ON r.id = rr.replication_id WHERE r.repository = $1 AND r.tag = 'slow' AND rr.region = 'southeastasia' AND rr.state = 'copying'`,
        [repository],
      );
      slowId = Number(copying.rows[0]?.id ?? 0);
      return slowId > 0;
    }, 60_000);
    const highestBefore = Number((await store.pool.query<{ max: string }>(`SELECT max(id) FROM replications`)).rows[0]!.max);
    await store.close();

    // The database is lost and restored from the backup; the running replication goes on recording into it
    // (under the backup's lower sequence) before `ferry recover` runs.
    await loseTheDatabase();
    await run('pg_restore', ['--no-owner', `--dbname=${config.postgresUrl}`, backup]);
    store = connectStore(config);
    await waitUntil('the running replication recording into the restored store', async () => {
      const early = await store.pool.query(`SELECT 1 FROM events WHERE replication_id = $1 AND seq < $1`, [slowId]);
      return (early.rowCount ?? 0) > 0;
    }, 90_000);
    await store.close();
    const recovered = await run(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'recover', '--repository', repository], { cwd: repoRoot, env: localStackEnv(), timeout: 300_000 });
    console.log(recovered.stdout);
    expect(recovered.stdout).toMatch(/recover: recovered/);
    store = connectStore(config);

    // The replication that ran through the restore is known again, with what it recorded before and since.
    await waitUntil('slow replicated everywhere', async () => JSON.stringify(await tagEverywhere(repository, 'slow')) === JSON.stringify(everywhere(slow.manifestDigest)), 120_000);
    await waitUntil('slow finished in the record', async () => {
      const done = await store.pool.query<{ outcome: string }>(`SELECT outcome FROM replications WHERE id = $1`, [slowId]);
      return done.rows[0]?.outcome === 'succeeded';
    }, 60_000);
    // The restored record said `app` was `first` and knew no `other`: storage wins where every region agrees, nothing moves.
    expect(await tagEverywhere(repository, 'app')).toEqual(everywhere(second!.manifestDigest));
    expect(await tagEverywhere(repository, 'other')).toEqual(everywhere(other!.manifestDigest));
    const recorded = await store.pool.query<{ region: string; tag: string; digest: string }>(`SELECT region, tag, digest FROM region_tags WHERE repository = $1 ORDER BY tag, region`, [repository]);
    expect(recorded.rows.filter((row) => row.tag !== 'slow')).toEqual(
      ['app', 'other'].flatMap((tag) => ['eastus', 'southeastasia', 'westeurope'].map((region) => ({ region, tag, digest: tag === 'app' ? second!.manifestDigest : other!.manifestDigest }))),
    );
    // A push after the restore gets an id past every one made since the backup.
    await push(first!, 'westeurope', repository, 'again');
    await replicated('again', first!.manifestDigest);
    const again = await store.pool.query<{ id: string }>(`SELECT id FROM replications WHERE repository = $1 AND tag = 'again'`, [repository]);
    expect(Number(again.rows[0]!.id)).toBeGreaterThan(highestBefore);
    expect(await store.diffRebuiltProjections(), 'projections fold from the log').toEqual([]);
  }, 300_000);

  it('and a bucket restored from an older copy with it: storage shows the region behind, and its old tag spreads nowhere', async () => {
    await store?.close();
    const repository = parseRepositoryName(uniqueRepository('lost-and-restored'));
    const [old, newer] = await Promise.all(['old', 'newer'].map((name) => buildImage({ layers: [seededLayer(`restored-bucket-${name}-${Date.now()}`, 100_000)], tag: name })));
    for (const image of [old!, newer!]) {
      await push(image, 'eastus', repository, 'v1');
      await waitUntil(`v1 at ${image.tag} everywhere`, async () => JSON.stringify(await tagEverywhere(repository, 'v1')) === JSON.stringify(everywhere(image.manifestDigest)), 90_000);
    }
    // Both at once: Ferry's database is lost, and southeastasia's bucket goes back to a copy taken before
    // `newer` (its tag at `old`, no index link of `newer`), written later than anything else.
    await loseTheDatabase();
    const southeastasia = RegionStorage.connect(regions.southeastasia!);
    const v1 = parseTag('v1');
    await southeastasia.writeLink(southeastasia.layout.tagCurrentLink(repository, v1), parseDigest(old!.manifestDigest));
    await southeastasia.deleteKeys([southeastasia.layout.tagIndexLink(repository, v1, parseDigest(newer!.manifestDigest))]);
    await new Promise((resolve) => setTimeout(resolve, (config.reconcile.settleSeconds + 1) * 1000));

    const recovered = await run(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'recover', '--repository', repository], { cwd: repoRoot, env: localStackEnv(), timeout: 300_000 });
    console.log(recovered.stdout);
    expect(recovered.stdout).toMatch(/recover: recovered/);
    expect(recovered.stdout, 'the restored digest is no push').not.toContain(`v1 → ${old!.manifestDigest}`);
    expect(recovered.stdout, 'the newest write of the others is').toContain(`${repository}:v1 → ${newer!.manifestDigest}`);
    await waitUntil('southeastasia serving the newer v1 again', async () => JSON.stringify(await tagEverywhere(repository, 'v1')) === JSON.stringify(everywhere(newer!.manifestDigest)), 120_000);
    store = connectStore(config);
    const movedBack = await store.pool.query(`SELECT region FROM events WHERE type = 'TagReplicated' AND data->>'repository' = $1 AND data->>'digest' = $2`, [repository, old!.manifestDigest]);
    expect(movedBack.rows, 'no region was given the old digest again').toEqual([]);
    for (const region of ['eastus', 'westeurope', 'southeastasia']) {
      expect(await skopeoPull(dockerReference(regions[region]!.registryUrl, repository, 'v1')), region).toBe(newer!.manifestDigest);
    }
  }, 300_000);
});
