// A region cut off and back (issue 14, item 6), on the real stack. The worker
// reaches southeastasia's storage, registry and cache through proxies of its
// own (toxiproxy), which the test disables: Ferry cannot reach the region,
// while the region's registry and its pushers still can. During the cut,
// pushes land in both southeastasia and eastus, including the same tag in
// both, southeastasia's later. Once the proxies are back:
// - every region converges on one digest per tag, by the documented rule
//   (between source regions, the later event time wins);
// - no write made during the cut is lost;
// - nothing echoes: no replication Ferry did not get a push for, no tag
//   written again once converged, and reconcile finds no drift.
// The time from the region's return to convergence is printed.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_REGIONS } from '../../domain/config';
import { parseRepositoryName } from '../../domain/reference';
import type { EventStore } from '../../store/event-store';
import { localTopology } from '../../stack/topology';
import { localStackEnv, repoRoot } from '../support/env';
import { connectStore, localConfig, storageRegions, uniqueRepository } from '../support/ferry';
import { buildImage, seededLayer, type OciImage } from '../support/oci-image';
import { restartWorkerWith, waitUntil } from '../support/processes';
import { dockerReference, getManifest, skopeoCopy } from '../support/registry';

const config = localConfig();
const toxiproxy = `http://${localTopology().faultProxy.apiAddress}`;
const far = config.regions.find((region) => region.name === 'southeastasia')!;
const farS3 = localTopology().s3Endpoints.find((endpoint) => `http://127.0.0.1:${endpoint.port}` === far.s3!.endpoint)!;
/** Ferry's own ways into southeastasia: its storage (the S3 server itself, behind no other proxy), its registry, its cache. */
const LINKS = [
  { name: 'ferry-far-s3', listen: '127.0.0.1:19002', upstream: `127.0.0.1:${farS3.serverPort}` },
  { name: 'ferry-far-registry', listen: '127.0.0.1:15003', upstream: new URL(far.registryUrl).host },
  { name: 'ferry-far-cache', listen: '127.0.0.1:16083', upstream: new URL(far.cachePurgeUrls[0]!).host },
];
const CUT_SECONDS = 20;
let store: EventStore;
let restoreWorker: () => Promise<void>;

async function toxiproxyCall(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<Response> {
  return fetch(`${toxiproxy}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function setLinks(enabled: boolean): Promise<void> {
  for (const link of LINKS) {
    const answer = await toxiproxyCall('POST', `/proxies/${link.name}`, { enabled });
    if (!answer.ok) throw new Error(`toxiproxy: ${link.name} answered ${answer.status}: ${await answer.text()}`);
  }
}

beforeAll(async () => {
  for (const link of LINKS) {
    await toxiproxyCall('DELETE', `/proxies/${link.name}`);
    const created = await toxiproxyCall('POST', '/proxies', { ...link, enabled: true });
    if (!created.ok) throw new Error(`toxiproxy: creating ${link.name} answered ${created.status}: ${await created.text()}`);
  }
  const regions = LOCAL_REGIONS.map((region) =>
    region.name === far.name && 's3' in region
      ? { ...region, s3: { ...region.s3, endpoint: `http://${LINKS[0]!.listen}` }, registryUrl: `http://${LINKS[1]!.listen}`, cachePurgeUrls: [`http://${LINKS[2]!.listen}`] }
      : region,
  );
  restoreWorker = await restartWorkerWith('cut-off', (current) => ({ ...current, regions }));
  store = connectStore(config);
});

afterAll(async () => {
  await restoreWorker();
  for (const link of LINKS) await toxiproxyCall('DELETE', `/proxies/${link.name}`);
  await store.close();
});

const push = (image: OciImage, region: string, repository: string, tag: string) =>
  skopeoCopy(image.reference, dockerReference(config.regions.find((r) => r.name === region)!.registryUrl, repository, tag));

/** Every region's digest for `tag`, as its registry serves it (null: none). */
async function tagEverywhere(repository: string, tag: string): Promise<Record<string, string | null>> {
  const answers = await Promise.all(storageRegions(config).map(async (region) => [region.name, (await getManifest(region.registryUrl, repository, tag, 'HEAD')).digest] as const));
  return Object.fromEntries(answers.map(([region, digest]) => [region, digest ?? null]));
}

async function converged(repository: string, expected: Record<string, string>): Promise<boolean> {
  for (const [tag, digest] of Object.entries(expected)) {
    if (Object.values(await tagEverywhere(repository, tag)).some((held) => held !== digest)) return false;
  }
  return true;
}

describe('a region cut off from Ferry', () => {
  it('converges when it comes back: one digest per tag, no write lost, nothing echoed', async () => {
    const repository = parseRepositoryName(uniqueRepository('cut-off'));
    const build = (name: string) => buildImage({ layers: [seededLayer(`cut-${name}-${Date.now()}`, 300_000)], tag: name });
    const [base, sharedEast, sharedFar, eastOnly, farOnly] = await Promise.all(['base', 'shared-east', 'shared-far', 'east-only', 'far-only'].map(build));
    await push(base!, 'eastus', repository, 'base');
    await waitUntil('base everywhere', () => converged(repository, { base: base!.manifestDigest }), 90_000);

    await setLinks(false);
    const cutAt = Date.now();
    await push(sharedEast!, 'eastus', repository, 'shared');
    await push(eastOnly!, 'eastus', repository, 'east-only');
    await push(farOnly!, 'southeastasia', repository, 'far-only');
    // Later than eastus's push of the same tag: by the documented rule, the one every region ends on.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await push(sharedFar!, 'southeastasia', repository, 'shared');
    // The rest of the world goes on meanwhile: westeurope gets eastus's pushes.
    await waitUntil('westeurope replicating eastus during the cut', async () => (await tagEverywhere(repository, 'east-only')).westeurope === eastOnly!.manifestDigest, 60_000);
    expect((await tagEverywhere(repository, 'east-only')).southeastasia, 'nothing reaches the cut region').toBe(null);
    expect((await tagEverywhere(repository, 'far-only')).westeurope, "nothing leaves the cut region's storage").toBe(null);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, cutAt + CUT_SECONDS * 1000 - Date.now())));

    await setLinks(true);
    const backAt = Date.now();
    const expected = { base: base!.manifestDigest, shared: sharedFar!.manifestDigest, 'east-only': eastOnly!.manifestDigest, 'far-only': farOnly!.manifestDigest };
    await waitUntil('every region converging', () => converged(repository, expected), 180_000);
    const seconds = (Date.now() - backAt) / 1000;
    console.log(`failover: cut ${((backAt - cutAt) / 1000).toFixed(1)} s; every region converged ${seconds.toFixed(1)} s after southeastasia came back`);

    // Nothing echoes: one replication per push, from the region pushed to, and no tag written again.
    const eventsNow = async () => Number((await store.pool.query<{ n: string }>(`SELECT count(*) AS n FROM events e JOIN replications r ON r.id = e.replication_id WHERE r.repository = $1`, [repository])).rows[0]!.n);
    // Converged storage comes before each replication's tail (pull check, purge, announcement, outcome): let them finish first.
    await waitUntil('every replication finished', async () => (await store.pool.query(`SELECT 1 FROM replications WHERE repository = $1 AND outcome = 'pending'`, [repository])).rowCount === 0, 60_000);
    const settled = await eventsNow();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    expect(await eventsNow(), 'nothing recorded once converged').toBe(settled);
    const replications = await store.pool.query<{ source_region: string; tag: string; digest: string }>(
      `SELECT source_region, tag, digest FROM replications WHERE repository = $1 ORDER BY id`,
      [repository],
    );
    expect(replications.rows.map((row) => `${row.tag} from ${row.source_region}`).sort()).toEqual(
      ['base from eastus', 'east-only from eastus', 'far-only from southeastasia', 'shared from eastus', 'shared from southeastasia'].sort(),
    );
    const writes = await store.pool.query<{ region: string; digest: string }>(
      `SELECT region, data->>'digest' AS digest FROM events WHERE type = 'TagReplicated' AND data->>'repository' = $1 AND data->>'tag' = 'shared' ORDER BY seq`,
      [repository],
    );
    for (const region of ['eastus', 'westeurope', 'southeastasia']) {
      const order = writes.rows.filter((row) => row.region === region).map((row) => row.digest);
      expect(order.filter((digest) => digest === sharedFar!.manifestDigest).length, `${region} written with the winner at most once`).toBeLessThanOrEqual(1);
      const won = order.indexOf(sharedFar!.manifestDigest);
      if (won >= 0) expect(order.slice(won), `${region}: nothing written after the winner`).toEqual([sharedFar!.manifestDigest]);
    }
    const report = execFileSync(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'reconcile', '--repository', repository], { cwd: repoRoot, env: localStackEnv(), encoding: 'utf8' });
    expect(report).toContain('reconcile: 0 drift(s) found');
  }, 420_000);
});
