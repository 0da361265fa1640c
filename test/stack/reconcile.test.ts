// A registry restart loses its queued notifications (Distribution keeps them
// in memory). Reconcile finds the tag Ferry never heard of and replicates it.
import { execFileSync } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureReconcileSchedule, RECONCILE_SCHEDULE_ID } from '../../api/schedules';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { localStackEnv, repoRoot } from '../support/env';
import { connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
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
