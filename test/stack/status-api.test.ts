// The status API on the live api: every documented route answers as
// documented, and a push's status shows each region replicated with its lag.
import { afterAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { bearer, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { skopeoCopy } from '../support/registry';

const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const reader = bearer(config, 'reader');
const collectors: MessageCollector<never>[] = [];
afterAll(() => Promise.all(collectors.map((collector) => collector.stop())));

async function get(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${api}${path}`, { headers: reader });
  return { status: response.status, body: await response.json() };
}

async function pushAndWait(repository: string, tag: string): Promise<string> {
  const image = await buildImage({ layers: [{ size: 120_000 }], tag });
  const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(parseRepositoryName(repository), parseDigest(image.manifestDigest)));
  collectors.push(outcome as MessageCollector<never>);
  await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:${tag}`);
  await outcome.waitFor(1, 60_000);
  return image.manifestDigest;
}

describe('the status API', () => {
  const repository = uniqueRepository('status');

  it('answers every documented operation with the one status its case calls for, a documented one', async () => {
    const document = (await get('/v1/openapi.json')).body;
    const error = (code: string) => ({ error: { code, message: expect.stringMatching(/\w+ \w+/) } });
    const samples: Record<string, { path: string; init?: RequestInit; status: number; body?: unknown }> = {
      'GET /healthz': { path: '/healthz', status: 200 },
      'GET /v1/openapi.json': { path: '/v1/openapi.json', status: 200 },
      'GET /metrics': { path: '/metrics', init: { headers: bearer(config, 'admin') }, status: 200 },
      // No push of the tag observed, no time to wait: the answer is that the region is still waiting.
      'GET /v1/wait': { path: `/v1/wait?repository=${repository}&tag=none&regions=westeurope&timeout=0`, status: 200, body: expect.objectContaining({ state: 'waiting' }) },
      // Authentication answers before anything is read of the request.
      'POST /v1/notifications/{format}/{region}': {
        path: '/v1/notifications/distribution/eastus',
        init: { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } },
        status: 401,
        body: error('UNAUTHORIZED'),
      },
      'GET /v1/status': { path: `/v1/status?repository=${repository}&tag=none`, status: 404, body: error('NOT_FOUND') },
      'GET /v1/replications': { path: '/v1/replications?limit=1', status: 200 },
      'GET /v1/replications/{id}/events': { path: '/v1/replications/999999999/events', status: 404, body: error('NOT_FOUND') },
      // The admin routes refuse a read token before doing anything (test/stack/admin.test.ts runs them).
      'GET /v1/admin/stuck': { path: '/v1/admin/stuck', status: 403, body: error('FORBIDDEN') },
      'POST /v1/admin/reconcile': { path: '/v1/admin/reconcile', init: { method: 'POST', headers: reader }, status: 403, body: error('FORBIDDEN') },
      'POST /v1/admin/backfill': { path: '/v1/admin/backfill', init: { method: 'POST', headers: reader }, status: 403, body: error('FORBIDDEN') },
      'GET /v1/admin/runs': { path: '/v1/admin/runs?workflowId=none', status: 403, body: error('FORBIDDEN') },
    };
    const operations = Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, responses: Object.keys(operation.responses) })),
    );
    expect(operations.map((operation) => operation.key).sort()).toEqual(Object.keys(samples).sort());
    for (const operation of operations) {
      const sample = samples[operation.key]!;
      expect(operation.responses, `${operation.key} documents ${sample.status}`).toContain(String(sample.status));
      const response = await fetch(`${api}${sample.path}`, sample.init ?? { headers: reader });
      expect(response.status, operation.key).toBe(sample.status);
      const type = response.headers.get('content-type') ?? '';
      const body = type.includes('json') ? await response.json() : await response.text();
      if (sample.body !== undefined) expect(body, operation.key).toEqual(sample.body);
    }
  });

  it('shows a replicated push region by region, with lag, bytes and its event history', async () => {
    const digest = await pushAndWait(repository, 'v1');
    const { status, body } = await get(`/v1/status?repository=${repository}&tag=v1`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ repository, tag: 'v1', digest, sourceRegion: 'eastus', outcome: 'succeeded' });
    for (const region of ['westeurope', 'southeastasia']) {
      const view = body.regions[region];
      expect(view.state, region).toBe('replicated');
      expect(view.lagSeconds).toBeGreaterThan(0);
      expect(view.bytesDone).toBe(view.bytesTotal);
      expect(view.bytesTotal).toBeGreaterThan(120_000);
    }
    expect((await get(`/v1/status?repository=${repository}&digest=${digest}`)).body.replicationId).toBe(body.replicationId);

    const history = (await get(`/v1/replications/${body.replicationId}/events`)).body.events.map((event: { type: string }) => event.type);
    expect(history[0]).toBe('ReplicationObserved');
    expect(history).toContain('SourceResolved');
    expect(history.filter((type: string) => type === 'CompletionPublished')).toHaveLength(2);
    expect(history.at(-1)).toBe('ReplicationFinished');
  });

  it('lists replications by repository, newest first, a page at a time', async () => {
    await pushAndWait(repository, 'v2');
    await pushAndWait(repository, 'v3');
    const first = (await get(`/v1/replications?repository=${repository}&limit=2`)).body;
    expect(first.items.map((item: { tag: string }) => item.tag)).toEqual(['v3', 'v2']);
    const second = (await get(first.next)).body;
    expect(second.items.map((item: { tag: string }) => item.tag)).toEqual(['v1']);
    expect(second.next).toBeNull();
    expect((await get(`/v1/replications?repository=${repository}&state=failed`)).body.items).toEqual([]);
  });

  it('rejects bad queries with a code and a sentence', async () => {
    const cases: Array<[string, string]> = [
      ['/v1/status?repository=Bad/Name&tag=v1', 'INVALID_REFERENCE'],
      [`/v1/status?repository=${repository}`, 'INVALID_QUERY'],
      ['/v1/replications?state=lost', 'INVALID_QUERY'],
    ];
    for (const [path, code] of cases) {
      const { status, body } = await get(path);
      expect({ status, body }, path).toEqual({ status: 400, body: { error: { code, message: expect.stringMatching(/\w+ \w+/) } } });
    }
  });
});
