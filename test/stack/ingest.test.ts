// The ingest edge on the real api: bad input gets a precise answer and
// changes nothing; input we accepted is recorded once.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName, parseTag, type RepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import type { EventStore } from '../../store/event-store';
import { localStackEnv, repoRoot } from '../support/env';
import { bearer, connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage, OCI_MANIFEST, type OciImage } from '../support/oci-image';
import { writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const ingest = `http://${config.ingest.host}:${config.ingest.port}/v1/notifications`;
const V1 = 'application/vnd.docker.distribution.events.v1+json';
const fixture = (name: string) => readFileSync(new URL(`../fixtures/distribution-2.8/notifications/${name}`, import.meta.url), 'utf8');

let store: EventStore;
beforeAll(() => {
  store = connectStore(config);
});
afterAll(async () => {
  await store.close();
});

async function post(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  const response = await fetch(`${ingest}/${path}`, {
    method: 'POST',
    headers: { 'content-type': V1, ...bearer(config, 'ingest-eastus'), ...headers },
    body,
  });
  return { status: response.status, body: (await response.json()) as never };
}

/** A real 2.8 manifest-push envelope with `target` fields replaced. */
function pushEnvelope(target: Record<string, unknown>, id = crypto.randomUUID()): string {
  const envelope = JSON.parse(fixture('0003.json'));
  envelope.events[0].id = id;
  Object.assign(envelope.events[0].target, target);
  return JSON.stringify(envelope);
}

async function eventCount(): Promise<number> {
  return (await store.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM events`)).rows[0]!.n;
}

/** An image written into eastus's storage as its registry would, with no notification sent. */
async function imageInEastus(name: string): Promise<{ repository: RepositoryName; image: OciImage }> {
  const repository = parseRepositoryName(uniqueRepository(name));
  const image = await buildImage({ layers: [{ size: 50_000 }], tag: 'v1' });
  await writeImageBehindRegistry(config, 'eastus', repository, image, null);
  return { repository, image };
}

/** `body` with its first event naming `pushed` (a body that is no envelope stays as it is). */
function naming(body: string, { repository, image }: { repository: RepositoryName; image: OciImage }): string {
  let envelope;
  try {
    envelope = JSON.parse(body);
  } catch {
    return body;
  }
  const target = envelope?.events?.[0]?.target;
  if (target === undefined) return body;
  Object.assign(target, { repository, digest: image.manifestDigest, tag: image.tag, size: image.manifestSize, length: image.manifestSize, mediaType: OCI_MANIFEST });
  delete target.references;
  return JSON.stringify(envelope);
}

const storageOf = (regionName: string) => RegionStorage.connect(config.regions.find((region) => region.name === regionName)!);

/** Every key a region's storage holds of `pushed`: under its repository, and its blobs' data. */
async function keysOf(regionName: string, { repository, image }: { repository: RepositoryName; image: OciImage }): Promise<string[]> {
  const storage = storageOf(regionName);
  const keys: string[] = [];
  for await (const objects of storage.objectsUnder(`${storage.layout.repositoriesPrefix()}${repository}/`)) keys.push(...objects.map((object) => object.key));
  for (const digest of [image.manifestDigest, image.configDigest, ...image.layers.map((layer) => layer.digest)]) {
    const key = storage.layout.blobData(parseDigest(digest));
    if ((await storage.head(key)) !== null) keys.push(key);
  }
  return keys;
}

function tagKey(regionName: string, { repository, image }: { repository: RepositoryName; image: OciImage }): string {
  return storageOf(regionName).layout.tagCurrentLink(repository, parseTag(image.tag));
}

const digest = `sha256:${'a'.repeat(64)}`;

describe('ingest rejects bad input precisely and writes nothing', () => {
  const cases: Array<[string, string, string, Record<string, string>, number, string]> = [
    ['no token', 'distribution/eastus', pushEnvelope({}), { authorization: '' }, 401, 'UNAUTHORIZED'],
    ['a wrong token', 'distribution/eastus', pushEnvelope({}), { authorization: 'Bearer nope' }, 401, 'UNAUTHORIZED'],
    // The token is checked before the body is read: a caller without one costs no parsing.
    ['no token and an oversized body', 'distribution/eastus', JSON.stringify({ events: [], pad: 'x'.repeat(300 * 1024) }), { authorization: '' }, 401, 'UNAUTHORIZED'],
    // A token leaked from one region's registry cannot speak for another region.
    ["another region's ingest token", 'distribution/eastus', pushEnvelope({}), bearer(config, 'ingest-westeurope'), 403, 'FORBIDDEN'],
    ['a read token', 'distribution/eastus', pushEnvelope({}), bearer(config, 'reader'), 403, 'FORBIDDEN'],
    ['an admin token', 'distribution/eastus', pushEnvelope({}), bearer(config, 'admin'), 403, 'FORBIDDEN'],
    ['a wrong content type', 'distribution/eastus', pushEnvelope({}), { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['malformed JSON', 'distribution/eastus', '{"events": [', {}, 400, 'MALFORMED_ENVELOPE'],
    ['an oversized body', 'distribution/eastus', JSON.stringify({ events: [], pad: 'x'.repeat(300 * 1024) }), {}, 413, 'BODY_TOO_LARGE'],
    ['an unknown region', 'distribution/mars', pushEnvelope({}), {}, 404, 'UNKNOWN_REGION'],
    ['an unknown format', 'quay/eastus', pushEnvelope({}), {}, 404, 'UNKNOWN_FORMAT'],
    ['an events field that is not an array', 'distribution/eastus', JSON.stringify({ events: {} }), {}, 400, 'MALFORMED_ENVELOPE'],
  ];

  it.each(cases)('answers %s with its status and code', async (_name, path, body, headers, status, code) => {
    const before = await eventCount();
    const response = await post(path, body, headers);
    expect(response.status).toBe(status);
    expect(response.body.error?.code).toBe(code);
    expect(response.body.error?.message).toMatch(/\w+ \w+/);
    expect(await eventCount()).toBe(before);
  });

  it('acknowledges events it does not act on (pull, mount, blob push, unknown action) without recording them', async () => {
    const before = await eventCount();
    for (const name of ['0001.json', '0004.json', '0026.json']) {
      const response = await post('distribution/eastus', fixture(name));
      expect(response.status, name).toBe(202);
      expect(response.body.accepted).toEqual([]);
    }
    const unknown = JSON.parse(fixture('0003.json'));
    unknown.events[0].action = 'teleport';
    expect((await post('distribution/eastus', JSON.stringify(unknown))).body.ignored).toEqual([
      { eventId: unknown.events[0].id, reason: 'unknown action "teleport"' },
    ]);
    expect(await eventCount()).toBe(before);
  });

  it('never lets a rejected notification reach storage, once a later accepted one has replicated', async () => {
    // The rejected requests name an image the source holds, so any of them accepted would replicate it.
    const rejected = await imageInEastus('rejected');
    for (const [name, path, body, headers, status] of cases) {
      expect((await post(path, naming(body, rejected), headers)).status, name).toBe(status);
    }
    // Replication is asynchronous: only after one accepted later has reached its outcome is the absence of the others telling.
    const accepted = await imageInEastus('accepted');
    const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(accepted.repository, parseDigest(accepted.image.manifestDigest)));
    try {
      expect((await post('distribution/eastus', naming(pushEnvelope({}), accepted))).status).toBe(202);
      const [message] = await outcome.waitFor(1, 60_000);
      expect([...message!.body.succeeded].sort()).toEqual(['southeastasia', 'westeurope']);
      expect(message!.body.failed).toEqual([]);
    } finally {
      await outcome.stop();
    }
    for (const region of ['westeurope', 'southeastasia']) {
      expect(await keysOf(region, accepted), `${region} holds the accepted push`).toContain(tagKey(region, accepted));
      expect(await keysOf(region, rejected), `${region} holds nothing of the rejected ones`).toEqual([]);
    }
    const recorded = await store.pool.query(`SELECT id FROM replications WHERE repository = $1`, [rejected.repository]);
    expect(recorded.rows).toEqual([]);
  });
});

describe('ingest keeps events it cannot read as dead letters, and blocks nothing behind them', () => {
  const unreadable: Array<[string, Record<string, unknown>]> = [
    ['a repository with ..', { repository: 'demo/../etc' }],
    ['an uppercase repository', { repository: 'Demo/App' }],
    ['a _layers segment', { repository: 'demo/_layers' }],
    ['a /_manifests segment', { repository: 'demo/_manifests/tags' }],
    ['a tag with /', { tag: 'v1/current' }],
    ['a 129-character tag', { tag: 'v'.repeat(129) }],
    ['a sha512 digest', { digest: `sha512:${'a'.repeat(128)}` }],
    ['uppercase digest hex', { digest: digest.toUpperCase() }],
  ];

  it.each(unreadable)('acknowledges %s with 202, keeps it with its reason, and records no replication', async (_name, target) => {
    const id = crypto.randomUUID();
    const before = await eventCount();
    const response = await post('distribution/eastus', pushEnvelope(target, id));
    expect(response.status).toBe(202);
    expect(response.body.accepted).toEqual([]);
    expect(response.body.deadLettered).toEqual([{ eventId: id, code: 'INVALID_REFERENCE', reason: expect.stringMatching(/events\[0\]\.target\.\w+/) }]);
    expect(await eventCount()).toBe(before);
    const kept = await store.pool.query(`SELECT source_region, format, code, event FROM dead_letters WHERE event_id = $1`, [id]);
    expect(kept.rows).toEqual([{ source_region: 'eastus', format: 'distribution', code: 'INVALID_REFERENCE', event: JSON.parse(pushEnvelope(target, id)).events[0] }]);
  });

  it('processes the rest of the envelope, keeps a redelivered dead letter once, counts and lists it', async () => {
    const repository = `it-dead-${Date.now().toString(36)}/app`;
    const good = JSON.parse(pushEnvelope({ repository, digest, tag: 'v1' })).events[0];
    const bad = JSON.parse(pushEnvelope({ repository, digest: `sha512:${'b'.repeat(128)}`, tag: 'v2' })).events[0];
    const body = JSON.stringify({ events: [bad, good] });
    const first = await post('distribution/eastus', body);
    expect(first.status).toBe(202);
    expect((first.body.accepted as unknown[]).length).toBe(1);
    expect(first.body.deadLettered).toEqual([{ eventId: bad.id, code: 'INVALID_REFERENCE', reason: expect.any(String) }]);
    expect((await post('distribution/eastus', body)).status).toBe(202);
    const kept = await store.pool.query(`SELECT count(*)::int AS n FROM dead_letters WHERE event_id = $1`, [bad.id]);
    expect(kept.rows[0].n).toBe(1);
    const replications = await store.pool.query(`SELECT tag FROM replications WHERE repository = $1`, [repository]);
    expect(replications.rows).toEqual([{ tag: 'v1' }]);

    const metrics = await (await fetch(`http://${config.ingest.host}:${config.ingest.port}/metrics`, { headers: bearer(config, 'admin') })).text();
    expect(metrics).toMatch(/ferry_notification_events_total\{region="eastus",outcome="dead-lettered"\} [1-9]/);
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'dead-letters', ...args], { cwd: repoRoot, env: localStackEnv() });
    const { stdout } = await cli('--region', 'eastus', '--limit', '100');
    expect(stdout).toContain(`event ${bad.id}  INVALID_REFERENCE`);
    expect(stdout).toContain('sha512');
    await expect(cli('--region', 'mars')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('region "mars" is not configured') });
  });
});

describe('ingest records an accepted notification once', () => {
  it('answers a redelivered notification with the same replication and workflow', async () => {
    const envelope = pushEnvelope({ repository: `it-dup-${Date.now().toString(36)}/app`, digest, tag: 'v1' });
    const first = await post('distribution/eastus', envelope);
    const again = await post('distribution/eastus', envelope);
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    const [accepted] = first.body.accepted as Array<{ replicationId: number; workflowId: string; duplicate: boolean }>;
    expect(again.body.accepted).toEqual([{ ...accepted, duplicate: true }]);
    expect(accepted!.duplicate).toBe(false);
    const rows = await store.pool.query(`SELECT id FROM replications WHERE workflow_id = $1`, [accepted!.workflowId]);
    expect(rows.rows).toHaveLength(1);
  });
});
