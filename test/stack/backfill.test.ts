// `ferry backfill` spreads what the regions already hold (written behind the
// registries, as content from before Ferry ran would be): into regions that
// lack it, skipping what is present, and never moving a tag to an older push.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicationObservedData } from '../../store/events';
import type { EventStore } from '../../store/event-store';
import { backfillProgressQuery } from '../../workflows/backfill';
import { localStackEnv, repoRoot } from '../support/env';
import { connectStore, ferryCli, localConfig, storageRegions, uniqueRepository } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { skopeoPull } from '../support/registry';
import { writeImageBehindRegistry } from '../support/source-writer';
import { temporalConnectOptions } from '../../domain/config';

const config = localConfig();
const registryHost = (name: string) => new URL(config.regions.find((region) => region.name === name)!.registryUrl).host;
const ALL = storageRegions(config).map((region) => region.name);

let store: EventStore;
let connection: Connection;
beforeAll(async () => {
  store = connectStore(config);
  connection = await Connection.connect(temporalConnectOptions(config));
});
afterAll(async () => {
  await store.close();
  await connection.close();
});

const ferryBackfill = (args: string[]) => ferryCli(['backfill', ...args]);

async function image(tag: string): Promise<OciImage> {
  return buildImage({ layers: [{ size: 150_000 }, { size: 60_000 }], tag });
}

/** The targets of each backfill replication of `repository`, by tag. */
async function backfillTargets(repository: string): Promise<Record<string, string[]>> {
  const rows = await store.pool.query<{ data: ReplicationObservedData }>(
    `SELECT data FROM events WHERE type = 'ReplicationObserved' AND data->>'repository' = $1 AND data->>'eventId' LIKE 'backfill:%' ORDER BY seq`,
    [repository],
  );
  return Object.fromEntries(rows.rows.map((row) => [row.data.tag!, row.data.targetRegions]));
}

async function expectPullable(repository: string, tag: string, digest: string, regions: string[]): Promise<void> {
  for (const region of regions) {
    expect(await skopeoPull(`docker://${registryHost(region)}/${repository}:${tag}`), `${region} ${repository}:${tag}`).toBe(digest);
  }
}

describe('ferry backfill', () => {
  it('replicates existing tags into the regions that lack them, and a second run finds everything present', async () => {
    const repository = uniqueRepository('backfill');
    const [v1, v2] = [await image('v1'), await image('v2')];
    await writeImageBehindRegistry(config, 'eastus', repository, v1, null);
    await writeImageBehindRegistry(config, 'eastus', repository, v2, null);
    // westeurope already holds v1: only southeastasia needs it.
    await writeImageBehindRegistry(config, 'westeurope', repository, v1, null);

    const run = await ferryBackfill(['--repository', repository]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^backfill started: workflow "backfill it-.*" \(follow it in the Temporal UI\)$/m);
    expect(run.stdout).toContain('backfill: 2 of 2 tag(s) replicated, 0 failed, 0 already present everywhere');
    expect(await backfillTargets(repository)).toEqual({ v1: ['southeastasia'], v2: ['westeurope', 'southeastasia'] });
    await expectPullable(repository, 'v1', v1.manifestDigest, ALL);
    await expectPullable(repository, 'v2', v2.manifestDigest, ALL);

    // The progress the UI shows, read through the workflow's query.
    const workflowId = /workflow "([^"]+)"/.exec(run.stdout)![1]!;
    const progress = await new Client({ connection }).workflow.getHandle(workflowId).query(backfillProgressQuery);
    expect(progress).toEqual({ planned: 2, alreadyPresent: 0, replicated: 2, failed: [], remaining: 0 });

    const again = await ferryBackfill(['--repository', repository]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('backfill: 0 of 0 tag(s) replicated, 0 failed, 2 already present everywhere');
  });

  it('spreads the newest write of a tag and never moves a tag back; --to limits the regions', async () => {
    const repository = uniqueRepository('backfill-order');
    const [older, newer] = [await image('v1'), await image('v1')];
    await writeImageBehindRegistry(config, 'eastus', repository, older, null);
    // S3 keeps modification times to the second: make the westeurope write strictly later.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await writeImageBehindRegistry(config, 'westeurope', repository, newer, null);

    const run = await ferryBackfill(['--repository', repository, '--to', 'southeastasia']);
    expect(run.code).toBe(0);
    expect(await backfillTargets(repository)).toEqual({ v1: ['southeastasia'] });
    await expectPullable(repository, 'v1', newer.manifestDigest, ['southeastasia', 'westeurope']);
    await expectPullable(repository, 'v1', older.manifestDigest, ['eastus']);

    // Backfilling eastus too brings it forward to the newer push, never the reverse.
    expect((await ferryBackfill(['--repository', repository])).code).toBe(0);
    await expectPullable(repository, 'v1', newer.manifestDigest, ALL);
  });

  it('refuses bad usage with exit code 2 and starts nothing', async () => {
    for (const [args, message] of [
      [[], 'give --repository (one or more) or --all'],
      [['--all', '--repository', 'team/app'], 'give --repository (one or more) or --all'],
      [['--all', '--to', 'mars'], 'unknown region(s) mars'],
      [['--repository', 'Team/App'], 'invalid repository "Team/App"'],
    ] as const) {
      const run = await ferryBackfill([...args]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain(message);
    }
  });
});
