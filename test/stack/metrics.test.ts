// Prometheus metrics on the api and the worker, and the worker's structured
// logs, after real replications: counters move by what the pushes did.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { repoRoot } from '../support/env';
import { bearer, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage, seededLayer, type OciImage } from '../support/oci-image';
import { skopeoCopy } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const worker = `http://${config.worker.metrics.host}:${config.worker.metrics.port}`;
const eastus = new URL(config.regions.find((region) => region.name === 'eastus')!.registryUrl).host;
const collectors: MessageCollector[] = [];

afterAll(async () => {
  await Promise.all(collectors.map((collector) => collector.stop()));
});

async function scrape(base: string): Promise<string> {
  // The api's /metrics needs a metrics (or admin) token; the worker's own listener ignores it.
  const response = await fetch(`${base}/metrics`, { headers: bearer(config, 'admin') });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return response.text();
}

/** The value of one sample, e.g. value(text, 'ferry_blobs_skipped_total', { region: 'westeurope' }); 0 when absent. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, label]) => `${key}="${label}"`);
  const line = text.split('\n').find((candidate) => {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(candidate);
    return match?.[1] === name && wanted.every((pair) => (match[2] ?? '').split(',').includes(pair));
  });
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function pushAndSettle(repository: string, image: OciImage): Promise<OutcomeMessage> {
  const outcomes = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(parseRepositoryName(repository), parseDigest(image.manifestDigest)));
  collectors.push(outcomes as MessageCollector);
  await skopeoCopy(image.reference, `docker://${eastus}/${repository}:${image.tag}`);
  const [outcome] = await outcomes.waitFor(1, 90_000);
  return outcome!.body;
}

describe('metrics and logs', () => {
  it('the worker counts lag, bytes copied and blobs skipped; the api counts notifications; both serve Temporal and process metrics', async () => {
    const repository = uniqueRepository('metrics');
    const base = seededLayer(`metrics-base-${repository}`, 1_500_000);
    const [workerBefore, apiBefore] = [await scrape(worker), await scrape(api)];

    await pushAndSettle(repository, await buildImage({ layers: [base, { size: 400_000 }], tag: 'v1' }));
    await pushAndSettle(repository, await buildImage({ layers: [base, { size: 200_000 }], tag: 'v2' }));
    const [workerAfter, apiAfter] = [await scrape(worker), await scrape(api)];
    const delta = (name: string, labels: Record<string, string>) => value(workerAfter, name, labels) - value(workerBefore, name, labels);

    for (const region of ['westeurope', 'southeastasia']) {
      expect(delta('ferry_replication_lag_seconds_count', { region }), region).toBe(2);
      expect(delta('ferry_replication_lag_seconds_sum', { region }), region).toBeGreaterThan(0);
      // The shared base was copied once per region and skipped by the second push.
      expect(delta('ferry_blobs_skipped_total', { region }), region).toBeGreaterThanOrEqual(1);
      expect(delta('ferry_blob_bytes_skipped_total', { region }), region).toBeGreaterThanOrEqual(1_500_000);
    }
    expect(delta('ferry_blob_bytes_copied_total', { region: 'westeurope', method: 'server-side' })).toBeGreaterThanOrEqual(1_500_000 + 400_000 + 200_000);
    expect(delta('ferry_blob_bytes_copied_total', { region: 'southeastasia', method: 'streamed' })).toBeGreaterThanOrEqual(1_500_000 + 400_000 + 200_000);
    expect(value(workerAfter, 'ferry_activities_in_flight', { activity: 'replicateIntoRegion' })).toBe(0);
    // The Temporal SDK's runtime metrics follow Ferry's on the same page.
    expect(workerAfter).toMatch(/^temporal_\w+/m);
    expect(workerAfter).toMatch(/^process_resident_memory_bytes|^temporal_worker_start/m);

    expect(value(apiAfter, 'ferry_notification_events_total', { region: 'eastus', outcome: 'accepted' }) - value(apiBefore, 'ferry_notification_events_total', { region: 'eastus', outcome: 'accepted' })).toBeGreaterThanOrEqual(2);
    expect(apiAfter).toMatch(/^ferry_replications_in_flight\{region="southeastasia"\} \d+$/m);
    // What FerryReplicationStuck reads (stack/ferry-alerts.yml), for every region.
    for (const region of ['eastus', 'westeurope', 'southeastasia']) expect(apiAfter).toMatch(new RegExp(`^ferry_replication_stalest_progress_seconds\\{region="${region}"\\} [\\d.e+-]+$`, 'm'));
    expect(apiAfter).toMatch(/^ferry_http_request_duration_seconds_count\{method="POST",route="\/v1\/notifications\/:format\/:region",status="202"\} \d+$/m);
    expect(apiAfter).toMatch(/^process_cpu_seconds_total \d/m);
  });

  it('counts a replication that failed for good by region and reason', async () => {
    const before = await scrape(worker);
    const repository = parseRepositoryName(uniqueRepository('metrics-failed'));
    const image = await buildImage({ layers: [{ size: 80_000 }], tag: 'v1' });
    await writeImageBehindRegistry(config, 'eastus', repository, image, { corrupt: parseDigest(image.layers[0]!.digest) });
    const outcomes = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(image.manifestDigest)));
    collectors.push(outcomes as MessageCollector);
    expect((await notify(config, 'eastus', pushNotification(repository, image))).status).toBe(202);
    await outcomes.waitFor(1, 60_000);
    const after = await scrape(worker);
    for (const region of ['westeurope', 'southeastasia']) {
      const labels = { region, reason: 'SourceBlobCorrupt' };
      expect(value(after, 'ferry_replication_failures_total', labels) - value(before, 'ferry_replication_failures_total', labels), region).toBe(1);
    }
  });

  it('logs JSON lines that name the push, region and digest of the activity', () => {
    const lines = readFileSync(`${repoRoot}.stack/logs/test-worker.log`, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const copied = lines.filter((line) => line.msg === 'blob copied');
    expect(copied.length).toBeGreaterThan(0);
    for (const line of copied) {
      expect(line).toMatchObject({ service: 'ferry-worker', activityType: 'replicateIntoRegion', replicationId: expect.any(Number), region: expect.any(String), digest: expect.stringMatching(/^sha256:/) });
      expect(line.activityId).toBe(line.region);
      expect(line.workflowId).toMatch(/^push .* #\d+$/);
      expect(line).not.toHaveProperty('taskToken');
    }
  });
});
