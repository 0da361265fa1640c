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
import { localStackEnv, repoRoot } from '../support/env';
import { connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { RegionStorage } from '../../activities/storage';
import { buildImage } from '../support/oci-image';
import { pushBehindRegistry } from '../support/source-writer';
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
