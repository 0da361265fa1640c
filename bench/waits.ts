// The long-poll benchmark of issue 12: deploy pipelines waiting on the api
// while registries push. Three phases, each pushing `--pushes` new images
// (one small layer each) into eastus, notified by `--senders` senders at once:
//   burst     no waiter; the worker replicates while ingest answers
//   waited    `--waiters` long polls held first (spread evenly over the pushed
//             tags, each until replicated in westeurope and southeastasia)
//   api-only  the same waiters, with the worker stopped while ingest answers
//             and started once it is done: the api's own cost, as production
//             runs it, with workers on other machines than the api
// Each phase measures ingest latency and answers, and the api's Postgres
// connections; the waited ones also how many waits ended replicated, how
// long after their push, and what the api answered them.
//
//   npm run bench:waits [-- --waiters 1000 --pushes 100 --senders 3 --out DIR]
//
// Writes waits.json and waits.md to bench/results/long-poll (or --out).
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { ResolvedConfig } from '../domain/config';
import { buildImage, type OciImage } from '../test/support/oci-image';
import { pushNotification, writeImageBehindRegistry } from '../test/support/source-writer';
import { BENCH_DATABASE, FERRY_API_PORT, prepareFerryConfig, repoRoot, SOURCE_REGION, takeTheStack } from './environment';
import { startFerry } from './ferry-run';
import { MeasuredFerryProcess, waitUntil } from './processes';
import { percentile } from './stats';

const { values } = parseArgs({
  options: { waiters: { type: 'string', default: '1000' }, pushes: { type: 'string', default: '100' }, senders: { type: 'string', default: '3' }, out: { type: 'string' } },
});
const WAITERS = Number(values.waiters);
const PUSHES = Number(values.pushes);
/**
 * Notifications in flight at once. A Distribution registry sends each
 * endpoint's events one at a time, in order, so the default is one sender
 * per region's registry, each as fast as Ferry answers.
 */
const INGEST_CONCURRENCY = Number(values.senders);
// Apart from the scenarios: bench/results/*.json are ScenarioResults (summary.md reads them all).
const outDir = values.out ?? `${repoRoot}bench/results/long-poll`;

interface IngestFigures {
  requests: number;
  statuses: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface WaitFigures {
  waiters: number;
  replicated: number;
  /** Answers of every long-poll request, by HTTP status. */
  statuses: Record<string, number>;
  requests: number;
  /** From its image's notification being accepted to the waiter's answer. */
  afterPushP50Ms: number;
  afterPushP99Ms: number;
}

type Phase = 'burst' | 'waited' | 'api-only';

interface PhaseResult {
  phase: Phase;
  ingest: IngestFigures;
  waits: WaitFigures | null;
  /** Most connections the api held to Postgres at once (application_name ferry-api and ferry-api-reads), sampled every 100 ms. */
  postgresConnections: { ingest: number; reads: number };
  apiCpuSeconds: number;
  apiPeakRssMB: number;
  seconds: number;
}

const api = `http://127.0.0.1:${FERRY_API_PORT}`;

function count(statuses: Record<string, number>, status: number): void {
  statuses[status] = (statuses[status] ?? 0) + 1;
}

/** Samples the api's Postgres connections until stopped. */
function sampleConnections(postgresUrl: string): { stop: () => Promise<{ ingest: number; reads: number }> } {
  const client = new pg.Client({ connectionString: postgresUrl });
  const most = { ingest: 0, reads: 0 };
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ application_name: string; n: number }>(
        `SELECT application_name, count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 GROUP BY application_name`,
        [BENCH_DATABASE],
      );
      for (const row of rows) {
        if (row.application_name === 'ferry-api') most.ingest = Math.max(most.ingest, row.n);
        if (row.application_name === 'ferry-api-reads') most.reads = Math.max(most.reads, row.n);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return most;
    },
  };
}

async function images(config: ResolvedConfig, prefix: string): Promise<Array<{ repository: string; image: OciImage }>> {
  const made: Array<{ repository: string; image: OciImage }> = [];
  for (let index = 0; index < PUSHES; index++) {
    const repository = `${prefix}/app-${index}`;
    const image = await buildImage({ layers: [{ size: 4096 + index }], tag: 'v1' });
    await writeImageBehindRegistry(config, SOURCE_REGION, repository, image, null);
    made.push({ repository, image });
  }
  return made;
}

/** Posts every push's notification, INGEST_CONCURRENCY at a time; resolves with the figures and when each was accepted. */
async function ingest(config: ResolvedConfig, pushes: Array<{ repository: string; image: OciImage }>): Promise<{ figures: IngestFigures; acceptedAt: Map<string, number> }> {
  const token = config.auth.tokens.find((candidate) => candidate.name === `ingest-${SOURCE_REGION}`)!.secret;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const acceptedAt = new Map<string, number>();
  const queue = [...pushes];
  await Promise.all(
    Array.from({ length: INGEST_CONCURRENCY }, async () => {
      for (let push = queue.shift(); push !== undefined; push = queue.shift()) {
        const started = performance.now();
        const response = await fetch(`${api}/v1/notifications/distribution/${SOURCE_REGION}`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: `Bearer ${token}` },
          body: pushNotification(push.repository, push.image),
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - started);
        count(statuses, response.status);
        acceptedAt.set(push.repository, Date.now());
      }
    }),
  );
  return {
    figures: { requests: latencies.length, statuses, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: Math.max(...latencies) },
    acceptedAt,
  };
}

/** One pipeline: long polls until its reference is no longer waiting. */
async function waiter(token: string, repository: string, statuses: Record<string, number>): Promise<{ state: string; at: number; requests: number }> {
  let requests = 0;
  for (;;) {
    requests++;
    const query = new URLSearchParams({ repository, tag: 'v1', regions: 'westeurope,southeastasia', timeout: '60' });
    const response = await fetch(`${api}/v1/wait?${query}`, { headers: { authorization: `Bearer ${token}` } });
    count(statuses, response.status);
    const body = (await response.json()) as { state?: string };
    if (response.status === 429) {
      await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('retry-after') ?? 1) * 1000));
      continue;
    }
    if (response.status !== 200) return { state: `http ${response.status}`, at: Date.now(), requests };
    if (body.state !== 'waiting') return { state: body.state!, at: Date.now(), requests };
  }
}

async function heldWaits(adminToken: string): Promise<number> {
  const text = await (await fetch(`${api}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })).text();
  return Number(/^ferry_waits_held (\d+)/m.exec(text)?.[1] ?? 0);
}

async function phase(config: ResolvedConfig, processes: { api: MeasuredFerryProcess; worker: MeasuredFerryProcess }, name: Phase, waiters: number): Promise<PhaseResult> {
  const prefix = `bench-waits-${Date.now().toString(36)}-${name}`;
  const pushes = await images(config, prefix);
  const secret = (token: string) => config.auth.tokens.find((candidate) => candidate.name === token)!.secret;
  const waitStatuses: Record<string, number> = {};
  const held = Array.from({ length: waiters }, (_, index) => ({ repository: pushes[index % pushes.length]!.repository }));
  const started = Date.now();
  await processes.api.beginMeasurement();
  const connections = sampleConnections(config.postgresUrl);
  const answers = held.map(({ repository }) => waiter(secret('reader'), repository, waitStatuses));
  if (waiters > 0) await waitUntil(`${waiters} waits held by the api`, async () => (await heldWaits(secret('admin'))) >= waiters, 120_000);
  if (name === 'api-only') await processes.worker.stop();
  const { figures, acceptedAt } = await ingest(config, pushes);
  if (name === 'api-only') processes.worker = MeasuredFerryProcess.start('worker');
  const ended = await Promise.all(answers);
  const usage = await processes.api.usage();
  const afterPush = ended.map((end, index) => end.at - acceptedAt.get(held[index]!.repository)!);
  return {
    phase: name,
    ingest: figures,
    waits:
      waiters === 0
        ? null
        : {
            waiters,
            replicated: ended.filter((end) => end.state === 'replicated').length,
            statuses: waitStatuses,
            requests: ended.reduce((sum, end) => sum + end.requests, 0),
            afterPushP50Ms: percentile(afterPush, 50),
            afterPushP99Ms: percentile(afterPush, 99),
          },
    postgresConnections: await connections.stop(),
    apiCpuSeconds: usage.cpuSeconds,
    apiPeakRssMB: usage.peakRssMB,
    seconds: (Date.now() - started) / 1000,
  };
}

function report(results: PhaseResult[], config: ResolvedConfig): string {
  const statuses = (counts: Record<string, number>) =>
    Object.entries(counts)
      .map(([status, n]) => `${n}× ${status}`)
      .join(', ');
  const rows = results.map((result) =>
    [
      result.phase,
      result.waits?.waiters ?? 0,
      result.ingest.requests,
      statuses(result.ingest.statuses),
      result.ingest.p50Ms.toFixed(1),
      result.ingest.p99Ms.toFixed(1),
      result.ingest.maxMs.toFixed(1),
      result.waits === null ? '–' : `${result.waits.replicated}/${result.waits.waiters}`,
      result.waits === null ? '–' : statuses(result.waits.statuses),
      result.waits === null ? '–' : `${(result.waits.afterPushP50Ms / 1000).toFixed(2)} / ${(result.waits.afterPushP99Ms / 1000).toFixed(2)}`,
      `${result.postgresConnections.ingest} + ${result.postgresConnections.reads}`,
      result.apiCpuSeconds.toFixed(1),
      result.apiPeakRssMB.toFixed(0),
      result.seconds.toFixed(1),
    ].join(' | '),
  );
  const waited = results.filter((result) => result.waits !== null);
  const verdict = (ok: boolean) => (ok ? '✔' : '✘');
  const no503 = results.every((result) => !result.ingest.statuses['503'] && !result.waits?.statuses['503']);
  return [
    `# Long polls under a push burst (issue 12)`,
    '',
    `Each phase: ${PUSHES} pushes of one small image each into ${SOURCE_REGION}, notified by ${INGEST_CONCURRENCY} senders at once (a registry sends one endpoint's events one at a time). ` +
      `burst: no waiter. waited: ${WAITERS} long polls (GET /v1/wait, one read token) held first, ${WAITERS / PUSHES} on each pushed tag, each until replicated in westeurope and southeastasia. ` +
      `api-only: the same, with the worker stopped while ingest answers (the api's own cost, workers elsewhere as in production) and started after. ` +
      `Api limits: ingest.waits.maxWaits ${config.ingest.waits.maxWaits}, maxWaitsPerToken ${config.ingest.waits.maxWaitsPerToken}, readPoolSize ${config.ingest.readPoolSize}. Real local stack, one api and one worker process, 2 cores.`,
    '',
    '| phase | waiters | notifications | ingest answers | ingest p50 ms | ingest p99 ms | ingest max ms | waits replicated | wait answers | wait end after push p50 / p99 s | api Postgres connections (ingest + reads, peak) | api CPU s | api peak RSS MB | phase s |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
    '',
    `Bounds: ingest p99 under 100 ms with the waiters: worker beside the api ${verdict(waited[0]!.ingest.p99Ms < 100)}, api alone ${verdict(waited[1]!.ingest.p99Ms < 100)}; no 503 ${verdict(no503)}; ` +
      `Postgres connections of the api bounded by its pools (10 + ${config.ingest.readPoolSize}) ${verdict(results.every((result) => result.postgresConnections.ingest <= 10 && result.postgresConnections.reads <= config.ingest.readPoolSize))}.`,
    '',
  ].join('\n');
}

if (![WAITERS, PUSHES, INGEST_CONCURRENCY].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('--waiters, --pushes and --senders must be positive integers');
await takeTheStack('bench:waits');
const config = await prepareFerryConfig();
const processes = await startFerry();
try {
  const results = [await phase(config, processes, 'burst', 0), await phase(config, processes, 'waited', WAITERS), await phase(config, processes, 'api-only', WAITERS)];
  await mkdir(outDir, { recursive: true });
  await writeFile(`${outDir}/waits.json`, `${JSON.stringify({ waiters: WAITERS, pushes: PUSHES, results }, null, 2)}\n`);
  const markdown = report(results, config);
  await writeFile(`${outDir}/waits.md`, markdown);
  console.log(markdown);
} finally {
  await Promise.all([processes.api.stop(), processes.worker.stop()]);
}
