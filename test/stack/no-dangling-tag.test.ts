// Invariant 2, no dangling tag: while pushes, overwrites and deletes of a few
// tags land in random regions, a puller loops over every region, direct and
// through Varnish. Whenever a tag resolves, every manifest and blob it names
// must be there; a tag that was pullable must never vanish unless deleted.
// Seeded: the seed is printed, FERRY_TEST_SEED=<seed> replays the sequence.
import { afterAll, describe, expect, it } from 'vitest';
import { MANIFEST_ACCEPT, parseManifest } from '../../domain/manifest';
import { parseRepositoryName } from '../../domain/reference';
import { connectStore, localConfig, uniqueRepository } from '../support/ferry';
import { buildImage, seededLayer } from '../support/oci-image';
import { waitUntil } from '../support/processes';
import { getManifest, skopeoCopy } from '../support/registry';

const config = localConfig();
const store = connectStore(config);
afterAll(() => store.close());
const seed = Number(process.env.FERRY_TEST_SEED ?? Date.now() % 1_000_000);
const OPERATIONS = 10;
const TAGS = ['alpha', 'beta'];

function random(start: number): () => number {
  let state = start >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const endpoints = config.regions.flatMap((region) => [
  { name: `${region.name} direct`, url: region.registryUrl },
  { name: `${region.name} via cache`, url: region.cachePurgeUrls[0]! },
]);

/** What a client sees pulling repository:tag from one endpoint. */
async function pullCheck(url: string, repository: string, tag: string): Promise<{ resolved: string | null; missing: string[] }> {
  const root = await getManifest(url, repository, tag);
  if (root.status === 404) return { resolved: null, missing: [] };
  if (root.status !== 200) return { resolved: null, missing: [`manifest ${tag}: HTTP ${root.status}`] };
  const missing: string[] = [];
  const manifests = [new Uint8Array(root.body)];
  while (manifests.length > 0) {
    const parsed = parseManifest(manifests.pop()!);
    const blobs = parsed.kind === 'image' ? [parsed.config, ...parsed.layers] : [];
    for (const blob of blobs) {
      const response = await fetch(`${url}/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD' });
      if (response.status !== 200) missing.push(`blob ${blob.digest}: HTTP ${response.status}`);
    }
    for (const child of parsed.kind === 'index' ? parsed.manifests : []) {
      const response = await fetch(`${url}/v2/${repository}/manifests/${child.digest}`, { headers: { Accept: MANIFEST_ACCEPT } });
      if (response.status !== 200) missing.push(`child ${child.digest}: HTTP ${response.status}`);
      else manifests.push(new Uint8Array(await response.arrayBuffer()));
    }
  }
  return { resolved: root.digest, missing };
}

describe('no dangling tag', () => {
  it(`under random pushes, overwrites and deletes across regions (seed ${seed})`, async () => {
    console.log(`no-dangling-tag seed ${seed} (replay with FERRY_TEST_SEED=${seed})`);
    const next = random(seed);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
    const repository = parseRepositoryName(uniqueRepository('churn'));
    const violations: string[] = [];
    const everPullable = new Set<string>();
    const deleted = new Set<string>();
    let checks = 0;
    let pulling = true;

    const puller = (async () => {
      while (pulling) {
        for (const endpoint of endpoints) {
          for (const tag of TAGS) {
            const seen = await pullCheck(endpoint.url, repository, tag);
            checks++;
            const key = `${endpoint.name} ${tag}`;
            for (const missing of seen.missing) violations.push(`${key} → ${seen.resolved}: ${missing}`);
            if (seen.resolved) everPullable.add(key);
            else if (everPullable.has(key) && !deleted.has(tag)) violations.push(`${key}: was pullable, now MANIFEST_UNKNOWN`);
          }
        }
      }
    })();

    const expected = new Map<string, string | null>();
    const log: string[] = [];
    for (let i = 0; i < OPERATIONS; i++) {
      const tag = pick(TAGS);
      const region = pick(config.regions);
      const current = await getManifest(region.registryUrl, repository, tag);
      if (next() < 0.25 && current.status === 200) {
        deleted.add(tag);
        const response = await fetch(`${region.registryUrl}/v2/${repository}/manifests/${tag}`, { method: 'DELETE' });
        expect(response.status).toBe(202);
        expected.set(tag, null);
        log.push(`delete ${tag} in ${region.name}`);
      } else {
        const image = await buildImage({ layers: [seededLayer(`${repository}-base`, 200_000), { size: 20_000 + Math.floor(next() * 200_000) }], tag });
        await skopeoCopy(image.reference, `docker://${new URL(region.registryUrl).host}/${repository}:${tag}`);
        expected.set(tag, image.manifestDigest);
        log.push(`push ${tag} ${image.manifestDigest.slice(7, 19)} to ${region.name}`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.floor(next() * 400)));
    }
    console.log(`operations: ${log.join('; ')}`);

    await waitUntil('every replication of the sequence finishing', async () => {
      const pending = await store.pool.query(`SELECT 1 FROM replications WHERE repository = $1 AND outcome = 'pending'`, [repository]);
      return pending.rows.length === 0;
    }, 180_000);
    pulling = false;
    await puller;
    console.log(`puller: ${checks} pulls checked across ${endpoints.length} endpoints, ${violations.length} violations`);
    expect(violations).toEqual([]);

    for (const [tag, digest] of expected) {
      for (const region of config.regions) {
        const seen = await getManifest(region.registryUrl, repository, tag);
        expect(seen.status === 200 ? seen.digest : null, `${region.name} ${tag} converged`).toBe(digest);
      }
    }
  });
});
