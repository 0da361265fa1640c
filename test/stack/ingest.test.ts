// The ingest edge on the real api: bad input gets a precise answer and
// changes nothing; input we accepted is recorded once.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import type { EventStore } from '../../store/event-store';
import { connectStore, localConfig } from '../support/ferry';

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
    headers: { 'content-type': V1, authorization: `Bearer ${config.ingest.token}`, ...headers },
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

async function keyCount(regionName: string): Promise<number> {
  const storage = RegionStorage.connect(config.regions.find((r) => r.name === regionName)!);
  let count = 0;
  for await (const objects of storage.objectsUnder('')) count += objects.length;
  return count;
}

const digest = `sha256:${'a'.repeat(64)}`;

describe('ingest rejects bad input precisely and writes nothing', () => {
  const cases: Array<[string, string, string, Record<string, string>, number, string]> = [
    ['no token', 'distribution/eastus', pushEnvelope({}), { authorization: '' }, 401, 'UNAUTHORIZED'],
    ['a wrong token', 'distribution/eastus', pushEnvelope({}), { authorization: 'Bearer nope' }, 401, 'UNAUTHORIZED'],
    ['a wrong content type', 'distribution/eastus', pushEnvelope({}), { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['malformed JSON', 'distribution/eastus', '{"events": [', {}, 400, 'MALFORMED_ENVELOPE'],
    ['an oversized body', 'distribution/eastus', JSON.stringify({ events: [], pad: 'x'.repeat(300 * 1024) }), {}, 413, 'BODY_TOO_LARGE'],
    ['an unknown region', 'distribution/mars', pushEnvelope({}), {}, 404, 'UNKNOWN_REGION'],
    ['an unknown format', 'quay/eastus', pushEnvelope({}), {}, 404, 'UNKNOWN_FORMAT'],
    ['a repository with ..', 'distribution/eastus', pushEnvelope({ repository: 'demo/../etc' }), {}, 400, 'INVALID_REFERENCE'],
    ['an uppercase repository', 'distribution/eastus', pushEnvelope({ repository: 'Demo/App' }), {}, 400, 'INVALID_REFERENCE'],
    ['a _layers segment', 'distribution/eastus', pushEnvelope({ repository: 'demo/_layers' }), {}, 400, 'INVALID_REFERENCE'],
    ['a /_manifests segment', 'distribution/eastus', pushEnvelope({ repository: 'demo/_manifests/tags' }), {}, 400, 'INVALID_REFERENCE'],
    ['a tag with /', 'distribution/eastus', pushEnvelope({ tag: 'v1/current' }), {}, 400, 'INVALID_REFERENCE'],
    ['a 129-character tag', 'distribution/eastus', pushEnvelope({ tag: 'v'.repeat(129) }), {}, 400, 'INVALID_REFERENCE'],
    ['a digest that is not sha256 hex', 'distribution/eastus', pushEnvelope({ digest: 'sha512:abc' }), {}, 400, 'INVALID_REFERENCE'],
    ['uppercase digest hex', 'distribution/eastus', pushEnvelope({ digest: digest.toUpperCase() }), {}, 400, 'INVALID_REFERENCE'],
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

  it('never lets a rejected notification reach storage', async () => {
    const keys = await Promise.all(config.regions.map((region) => keyCount(region.name)));
    for (const [, path, body, headers] of cases) await post(path, body, headers);
    expect(await Promise.all(config.regions.map((region) => keyCount(region.name)))).toEqual(keys);
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
