// A 200-child index through backfill and reconcile: written behind eastus's
// registry (content from before Ferry ran), spread by `ferry backfill`, lost
// from westeurope's storage and put back by `ferry reconcile`. Each change
// stays one small workflow whatever the number of children: the graph
// travels inside the region activity, never through Temporal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import { parseRepositoryName, parseTag } from '../../domain/reference';
import type { EventStore } from '../../store/event-store';
import { connectStore, connectTemporal, ferryCli, localConfig, uniqueRepository } from '../support/ferry';
import { buildImage, buildIndex, seededLayer, type OciImage } from '../support/oci-image';
import { waitUntil } from '../support/processes';
import { getManifest, skopeoPull } from '../support/registry';
import { writeIndexBehindRegistry } from '../support/source-writer';

const config = localConfig();
const CHILDREN = 200;
const region = (name: string) => config.regions.find((candidate) => candidate.name === name)!;

const store: EventStore = connectStore(config);
let temporal: Awaited<ReturnType<typeof connectTemporal>>;
beforeAll(async () => {
  temporal = await connectTemporal(config);
});
afterAll(async () => {
  await Promise.all([store.close(), temporal?.close()]);
});

/** Whether the region serves the tag at `digest` and every child by digest. */
async function servesWhole(name: string, repository: string, tag: string, digest: string, children: OciImage[]): Promise<boolean> {
  const tagged = await getManifest(region(name).registryUrl, repository, tag, 'HEAD');
  if (tagged.status !== 200 || tagged.digest !== digest) return false;
  for (const child of children) {
    if ((await getManifest(region(name).registryUrl, repository, child.manifestDigest, 'HEAD')).status !== 200) return false;
  }
  return true;
}

/** The longest history among the replications of `repository`, and how many there were. */
async function replicationHistories(repository: string): Promise<{ executions: number; longest: number }> {
  let [executions, longest] = [0, 0];
  for await (const execution of temporal.client.workflow.list({ query: `WorkflowType = 'replicateChange' AND FerryRepository = '${repository}'` })) {
    executions += 1;
    longest = Math.max(longest, execution.historyLength);
  }
  return { executions, longest };
}

describe(`an index of ${CHILDREN} children`, () => {
  it('is spread by backfill and put back by reconcile, each change one short workflow', async () => {
    const repository = parseRepositoryName(uniqueRepository('large-index'));
    const shared = seededLayer('large-index-shared', 4_000);
    const children: OciImage[] = [];
    for (let child = 0; child < CHILDREN; child++) children.push(await buildImage({ layers: [shared], architecture: `arch${child}`, tag: 'v1' }));
    const index = await buildIndex(children, { tag: 'v1' });
    await writeIndexBehindRegistry(config, 'eastus', repository, index);

    const backfill = await ferryCli(['backfill', '--repository', repository]);
    expect([backfill.code, backfill.stderr], backfill.stdout).toEqual([0, '']);
    expect(backfill.stdout).toContain('backfill: 1 of 1 tag(s) replicated, 0 failed, 0 already present everywhere');
    for (const name of ['westeurope', 'southeastasia']) {
      await waitUntil(`${name} serving the index and its ${CHILDREN} children`, () => servesWhole(name, repository, 'v1', index.manifestDigest, children), 120_000);
    }
    expect(await skopeoPull(`docker://${new URL(region('southeastasia').registryUrl).host}/${repository}:v1`)).toBe(index.manifestDigest);

    // westeurope loses the tag; reconcile copies it back from a region that holds it.
    const westeurope = RegionStorage.connect(region('westeurope'));
    await westeurope.deletePrefix(westeurope.layout.tagPrefix(repository, parseTag('v1')));
    await new Promise((resolve) => setTimeout(resolve, config.reconcile.settleSeconds * 1000 + 500));
    const reconcile = await ferryCli(['reconcile', '--repository', repository]);
    expect(reconcile.code, reconcile.stdout + reconcile.stderr).toBe(0);
    expect(reconcile.stdout).toMatch(new RegExp(`: ${repository}:v1 → ${index.manifestDigest}, back into westeurope, which lost it`));
    await waitUntil('westeurope serving the index again', () => servesWhole('westeurope', repository, 'v1', index.manifestDigest, children), 120_000);
    await waitUntil('the refill finished', async () => {
      const open = await store.pool.query(`SELECT 1 FROM replications WHERE repository = $1 AND outcome = 'pending'`, [repository]);
      return open.rowCount === 0;
    }, 60_000);

    // The backfill's replication and the refill: one execution each, as short as a one-image push.
    const histories = await replicationHistories(repository);
    console.log(`${CHILDREN}-child index: ${histories.executions} replications, longest history ${histories.longest} events`);
    expect(histories.executions).toBe(2);
    expect(histories.longest, `the longest replication history, whatever the ${CHILDREN} children`).toBeLessThanOrEqual(20);
  });
});
