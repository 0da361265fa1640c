// A registry restart loses its queued notifications (Distribution keeps them
// in memory). Reconcile finds the tag Ferry never heard of and replicates it.
// A region that lost a tag gets it back from the others, never a delete for
// them; a region whose tags mostly vanished (an emptied bucket) halts
// reconcile for that region instead.
import { execFileSync } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureReconcileSchedule, RECONCILE_SCHEDULE_ID } from '../../api/schedules';
import { parseDigest, parseRepositoryName, parseTag, type RepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { localStackEnv, PLAN_PAGE_SIZE, PLAN_PAGES_PER_RUN, repoRoot } from '../support/env';
import { connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { RegionStorage } from '../../activities/storage';
import { buildImage } from '../support/oci-image';
import { pushBehindRegistry, writeImageBehindRegistry } from '../support/source-writer';
import { portOpen, startFerry, stopFerry, waitUntil } from '../support/processes';
import { skopeoCopy, skopeoPull } from '../support/registry';
import { temporalConnectOptions } from '../../domain/config';

const config = localConfig();
const store = connectStore(config);
afterAll(() => store.close());

function ferry(...args: string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', ...args], { cwd: repoRoot, env: localStackEnv(), encoding: 'utf8' });
}

describe('reconcile', () => {
  it('replicates a push whose notification a registry restart lost, and records the repair', async () => {
    const repository = parseRepositoryName(uniqueRepository('lost'));
    const image = await buildImage({ layers: [{ size: 150_000 }], tag: 'v1' });
    const digest = parseDigest(image.manifestDigest);

    await stopFerry('api');
    await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:v1`);
    // The notification now waits in eastus's in-memory queue; a restart drops it.
    execFileSync('bash', ['stack/stack.sh', 'stop', 'registry-eastus'], { cwd: repoRoot });
    execFileSync('bash', ['stack/stack.sh', 'up'], { cwd: repoRoot });
    startFerry('api');
    await waitUntil('the api answering again', () => portOpen(config.ingest.port), 60_000);
    const recorded = await store.pool.query(`SELECT 1 FROM replications WHERE repository = $1`, [repository]);
    expect(recorded.rows, 'the notification was lost').toHaveLength(0);

    const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, digest));
    try {
      await new Promise((resolve) => setTimeout(resolve, config.reconcile.settleSeconds * 1000 + 500));
      const report = ferry('reconcile', '--repository', repository);
      console.log(report.trim());
      expect(report).toContain('reconcile: 1 drift(s) found');
      expect(report).toContain(`eastus: ${repository}:v1 → ${digest}`);

      const [result] = await outcome.waitFor(1, 90_000);
      expect(result!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
      for (const port of [5002, 5003]) expect(await skopeoPull(`docker://127.0.0.1:${port}/${repository}:v1`)).toBe(digest);

      const repair = await store.pool.query<{ data: { eventId: string } }>(
        `SELECT data FROM events WHERE type = 'ReplicationObserved' AND data->>'repository' = $1`,
        [repository],
      );
      expect(repair.rows.map((row) => row.data.eventId)).toEqual([expect.stringMatching(/^reconcile:eastus:/)]);
      expect(ferry('reconcile', '--repository', repository)).toContain('reconcile: 0 drift(s) found');
    } finally {
      await outcome.stop();
    }
  });
});

/** Pushes tags v1..vN of new images into eastus through Ferry; resolves once each is replicated everywhere. */
async function replicatedTags(repository: RepositoryName, count: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const image = await buildImage({ layers: [{ size: 8_000 }], tag: `v${index + 1}` });
      expect((await pushBehindRegistry(config, 'eastus', repository, image)).succeeded).toHaveLength(2);
      return image.manifestDigest;
    }),
  );
}

/** `ferry reconcile --repository R` after the settle time: its output and exit code. */
async function reconcileRepository(repository: string): Promise<{ code: number; output: string }> {
  await new Promise((resolve) => setTimeout(resolve, config.reconcile.settleSeconds * 1000 + 500));
  try {
    return { code: 0, output: ferry('reconcile', '--repository', repository) };
  } catch (error) {
    const failed = error as { status: number; stdout: string };
    return { code: failed.status, output: failed.stdout };
  }
}

const storage = (name: string) => RegionStorage.connect(config.regions.find((region) => region.name === name)!);
const tagCount = async (repository: string) =>
  Number((await store.pool.query<{ n: string }>(`SELECT count(*) AS n FROM events WHERE type = 'ReplicationObserved' AND data->>'repository' = $1`, [repository])).rows[0]!.n);

describe('a reconcile of more tags than a page', () => {
  it('keeps its plan in Postgres, records it a page at a time and continues as new, and reports every repair', async () => {
    const repository = parseRepositoryName(uniqueRepository('paged'));
    const TAGS = PLAN_PAGE_SIZE * PLAN_PAGES_PER_RUN + 2;
    // Pushed behind eastus's registry with no notification: a drift each.
    const image = await buildImage({ layers: [{ size: 6_000 }], tag: 'p0' });
    await writeImageBehindRegistry(config, 'eastus', repository, image, null);
    const eastus = storage('eastus');
    for (let index = 1; index < TAGS; index += 1) await eastus.writeLink(eastus.layout.tagCurrentLink(repository, parseTag(`p${index}`)), parseDigest(image.manifestDigest));
    const { code, output } = await reconcileRepository(repository);
    expect([code, output]).toEqual([0, expect.stringContaining(`reconcile: ${TAGS} drift(s) found`)]);
    for (let index = 0; index < TAGS; index += 1) expect(output).toContain(`eastus: ${repository}:p${index} → ${image.manifestDigest}`);

    // One reconcile workflow, over several runs (continue-as-new); its plan dropped at the end.
    const connection = await Connection.connect(temporalConnectOptions(config));
    try {
      const temporal = new Client({ connection });
      const runs = new Map<string, number>();
      const since = new Date(Date.now() - 60_000).toISOString();
      for await (const execution of temporal.workflow.list({ query: `WorkflowType = 'reconcile' AND StartTime > '${since}'` })) runs.set(execution.workflowId, (runs.get(execution.workflowId) ?? 0) + 1);
      const [paged, count] = [...runs].sort((a, b) => b[1] - a[1])[0]!;
      expect(count, `${paged} continued as new`).toBe(Math.ceil(TAGS / PLAN_PAGE_SIZE / PLAN_PAGES_PER_RUN));
      const plan = await store.pool.query(`SELECT count(*)::int AS n FROM plan_items WHERE plan_id = $1`, [paged]);
      expect(plan.rows[0].n, 'its plan dropped when it ended').toBe(0);
    } finally {
      await connection.close();
    }
    await waitUntil(`all ${TAGS} replicated`, async () => {
      const done = await store.pool.query(`SELECT count(*)::int AS n FROM replications WHERE repository = $1 AND outcome = 'succeeded'`, [repository]);
      return done.rows[0].n === TAGS;
    }, 120_000);
    expect((await reconcileRepository(repository)).output).toContain('reconcile: 0 drift(s) found');
  });
});

describe('a region that lost tags', () => {
  it('gets a lost tag back from the others, never a delete for them', async () => {
    const repository = parseRepositoryName(uniqueRepository('lost-tag'));
    const [v1] = await replicatedTags(repository, 3);
    const westeurope = storage('westeurope');
    await westeurope.deletePrefix(westeurope.layout.tagPrefix(repository, parseTag('v1')));
    const { code, output } = await reconcileRepository(repository);
    // Copied from whichever region wrote the tag last (eastus, or southeastasia's later replica: storage times are to the second).
    expect([code, output]).toEqual([0, expect.stringMatching(new RegExp(`(eastus|southeastasia): ${repository}:v1 → ${v1}, back into westeurope, which lost it`))]);
    const refill = await store.pool.query<{ data: { targetRegions: string[]; kind: string } }>(
      `SELECT data FROM events WHERE type = 'ReplicationObserved' AND data->>'repository' = $1 AND data->>'eventId' LIKE 'reconcile:%'`,
      [repository],
    );
    expect(refill.rows.map((row) => [row.data.kind, row.data.targetRegions])).toEqual([['push', ['westeurope']]]);
    await waitUntil('westeurope serving v1 again', async () => (await skopeoPull(`docker://127.0.0.1:5002/${repository}:v1`).catch(() => null)) === v1, 60_000);
    for (const port of [5001, 5003]) expect(await skopeoPull(`docker://127.0.0.1:${port}/${repository}:v1`)).toBe(v1);
  });

  it('puts back a region restored from an older copy, and spreads its old tags nowhere', async () => {
    const repository = parseRepositoryName(uniqueRepository('restored-bucket'));
    const [old] = await replicatedTags(repository, 4);
    // v1 moves on everywhere; then southeastasia's bucket is restored from a copy taken before that, and without v4.
    const newer = await buildImage({ layers: [{ size: 9_000 }], tag: 'v1' });
    expect((await pushBehindRegistry(config, 'eastus', repository, newer)).succeeded).toHaveLength(2);
    const southeastasia = storage('southeastasia');
    await southeastasia.writeLink(southeastasia.layout.tagCurrentLink(repository, parseTag('v1')), parseDigest(old!));
    await southeastasia.deletePrefix(southeastasia.layout.tagPrefix(repository, parseTag('v4')));
    const { code, output } = await reconcileRepository(repository);
    expect(code, output).toBe(0);
    expect(output).toMatch(new RegExp(`: ${repository}:v1 → ${newer.manifestDigest}, back into southeastasia`));
    expect(output).toMatch(new RegExp(`: ${repository}:v4 → sha256:[0-9a-f]{64}, back into southeastasia`));
    expect(output, 'the restored digest is no push').not.toContain(`v1 → ${old}`);
    await waitUntil('southeastasia serving the newer v1 again', async () => (await skopeoPull(`docker://127.0.0.1:5003/${repository}:v1`).catch(() => null)) === newer.manifestDigest, 60_000);
    await waitUntil('southeastasia serving v4 again', async () => (await southeastasia.head(southeastasia.layout.tagCurrentLink(repository, parseTag('v4')))) !== null, 60_000);
    for (const port of [5001, 5002]) expect(await skopeoPull(`docker://127.0.0.1:${port}/${repository}:v1`), 'not moved back').toBe(newer.manifestDigest);
    // Once both refills landed, the record and every region agree.
    await waitUntil('both refills finished', async () => {
      const open = await store.pool.query(`SELECT 1 FROM replications WHERE repository = $1 AND outcome = 'pending'`, [repository]);
      return open.rowCount === 0;
    }, 60_000);
    const again = await reconcileRepository(repository);
    expect(again.output, again.output).toContain('reconcile: 0 drift(s) found');
  });

  it('halts reconcile for a region whose tags mostly vanished, and says so', async () => {
    const repository = parseRepositoryName(uniqueRepository('emptied'));
    const digests = await replicatedTags(repository, 3);
    const southeastasia = storage('southeastasia');
    await southeastasia.deletePrefix(southeastasia.layout.tagsPrefix(repository));
    const before = await tagCount(repository);
    const { code, output } = await reconcileRepository(repository);
    expect(code, output).toBe(3);
    expect(output).toContain('southeastasia: HALTED, 3 of its 3 recorded tags are gone from its storage');
    expect(await tagCount(repository), 'nothing recorded').toBe(before);
    // Nothing was deleted anywhere, nor written into southeastasia.
    for (const [index, digest] of digests.entries()) expect(await skopeoPull(`docker://127.0.0.1:5002/${repository}:v${index + 1}`)).toBe(digest);
    expect(await southeastasia.head(southeastasia.layout.tagCurrentLink(repository, parseTag('v1')))).toBeNull();
    const metrics = await (await fetch(`http://${config.worker.metrics.host}:${config.worker.metrics.port}/metrics`)).text();
    expect(metrics).toContain('ferry_reconcile_halted{region="southeastasia"} 1');
  });
});

describe('the reconcile schedule', () => {
  it('is created with the configured interval, updated on change, and removed when turned off', async () => {
    const connection = await Connection.connect(temporalConnectOptions(config));
    const temporal = new Client({ connection });
    try {
      const every = async () => {
        const schedule = await temporal.schedule.getHandle(RECONCILE_SCHEDULE_ID).describe();
        expect(schedule.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconcile' });
        return schedule.spec.intervals?.[0]?.every;
      };
      await ensureReconcileSchedule(temporal, { ...config, reconcile: { ...config.reconcile, scheduled: true, every: '10m' } });
      expect(await every()).toBe(10 * 60 * 1000);
      await ensureReconcileSchedule(temporal, { ...config, reconcile: { ...config.reconcile, scheduled: true, every: '1h' } });
      expect(await every()).toBe(60 * 60 * 1000);
      await ensureReconcileSchedule(temporal, config);
      await expect(temporal.schedule.getHandle(RECONCILE_SCHEDULE_ID).describe()).rejects.toThrow();
    } finally {
      await temporal.schedule.getHandle(RECONCILE_SCHEDULE_ID).delete().catch(() => undefined);
      await connection.close();
    }
  });
});
