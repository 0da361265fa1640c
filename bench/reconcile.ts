// Reconcile at the scale of a repository (issue 13): `--tags` tags (5,000 by
// default) of one small image in every region, first recorded by
// `ferry recover` (storage becomes the record where every region agrees),
// then:
//   1. a reconcile that finds nothing: the scan of every region's tags;
//   2. a backfill that finds every tag present everywhere: its plan;
//   3. `--spread` tags gone from southeastasia's storage: a backfill into it
//      that replicates each, until every one is done;
//   4. eastus's copies of `--drifts` tags moved behind its registry with no
//      notification: a reconcile that plans them, records them a page at a
//      time and starts a replication each, continuing as new;
//   5. those replications, until every one is done.
// Reports each phase's time, the workflows' runs and the largest history of
// one run, read from Temporal.
//
//   npm run bench:reconcile [-- --tags 5000 --spread 500 --drifts 5000 --out DIR]
//
// Writes reconcile.json and reconcile.md to bench/results/reconcile (or --out).
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { connectStorages } from '../activities/storage';
import { temporalConnectOptions } from '../domain/config';
import { parseDigest, parseRepositoryName, parseTag } from '../domain/reference';
import { forEachLimited } from '../support/concurrency';
import { buildImage } from '../test/support/oci-image';
import { writeImageBehindRegistry } from '../test/support/source-writer';
import { benchEnv, prepareFerryConfig, repoRoot, takeTheStack } from './environment';
import { startFerry } from './ferry-run';

const run = promisify(execFile);
const { values } = parseArgs({ options: { tags: { type: 'string', default: '5000' }, spread: { type: 'string', default: '500' }, drifts: { type: 'string', default: '5000' }, out: { type: 'string' } } });
const TAGS = Number(values.tags);
const SPREAD = Number(values.spread);
const DRIFTS = Number(values.drifts);
const outDir = values.out ?? `${repoRoot}bench/results/reconcile`;
const upToTags = (count: number) => Number.isInteger(count) && count >= 0 && count <= TAGS;
if (!(Number.isInteger(TAGS) && TAGS > 0 && upToTags(SPREAD) && upToTags(DRIFTS))) throw new Error('--tags must be positive, --spread and --drifts from 0 to --tags');

await takeTheStack('bench:reconcile');
const config = await prepareFerryConfig({ reconcile: { scheduled: false, settleSeconds: 1 } });
const storages = connectStorages(config.regions, 30_000);
const repository = parseRepositoryName(`bench-reconcile-${Date.now().toString(36)}/many`);
const seconds = (since: number) => (Date.now() - since) / 1000;
const ferry = async (...args: string[]) => (await run(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', ...args], { cwd: repoRoot, env: benchEnv(), maxBuffer: 64 * 1024 * 1024 })).stdout;

console.log(`writing ${TAGS} tags into ${config.regions.length} regions…`);
const [image, moved] = [await buildImage({ layers: [{ size: 4_000 }], tag: 't0' }), await buildImage({ layers: [{ size: 4_100 }], tag: 't0' })];
const writeStarted = Date.now();
for (const region of config.regions) await writeImageBehindRegistry(config, region.name, repository, image, null);
await writeImageBehindRegistry(config, 'eastus', repository, moved, null);
const tags = Array.from({ length: TAGS }, (_, index) => parseTag(`t${index}`));
for (const storage of storages.values()) {
  await forEachLimited(tags, 32, (tag) => storage.writeLink(storage.layout.tagCurrentLink(repository, tag), parseDigest(image.manifestDigest)));
}
const writeSeconds = seconds(writeStarted);

/** The runs of `type` workflows started since `since` (continue-as-new makes several), with their history lengths. */
async function workflowRuns(type: string, since: number): Promise<Array<{ runId: string; historyLength: number }>> {
  const runs: Array<{ runId: string; historyLength: number }> = [];
  for await (const execution of temporal.workflow.list({ query: `WorkflowType = '${type}' AND StartTime > '${new Date(since - 1_000).toISOString()}'` })) {
    runs.push({ runId: execution.runId, historyLength: execution.historyLength ?? 0 });
  }
  return runs;
}

/** Waits until `count` replications of the repository have an outcome. */
async function untilReplicated(count: number, since: number): Promise<void> {
  for (;;) {
    const done = await database.query<{ n: string }>(`SELECT count(*) AS n FROM replications WHERE repository = $1 AND outcome <> 'pending'`, [repository]);
    if (Number(done.rows[0]!.n) >= count) return;
    if (seconds(since) > 3_600) throw new Error(`${done.rows[0]!.n} of ${count} replications done after an hour`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

const processes = await startFerry();
const connection = await Connection.connect(temporalConnectOptions(config));
const temporal = new Client({ connection, namespace: config.temporal.namespace });
const database = new pg.Client({ connectionString: config.postgresUrl });
await database.connect();
try {
  const recoverStarted = Date.now();
  await ferry('recover', '--repository', repository);
  const recoverSeconds = seconds(recoverStarted);

  const scanStarted = Date.now();
  const clean = await ferry('reconcile', '--repository', repository);
  const scanSeconds = seconds(scanStarted);
  if (!clean.includes('reconcile: 0 drift(s) found')) throw new Error(`a reconcile of a recovered repository found drift:\n${clean.slice(0, 2000)}`);

  const backfillStarted = Date.now();
  const present = await ferry('backfill', '--repository', repository);
  const backfillSeconds = seconds(backfillStarted);
  if (!present.includes(`backfill: 0 of 0 tag(s) replicated, 0 failed, ${TAGS} already present everywhere`)) throw new Error(`a backfill of a consistent repository did something:\n${present.slice(0, 2000)}`);

  // Gone from southeastasia's storage: a backfill into it puts them back.
  const southeastasia = storages.get('southeastasia')!;
  await forEachLimited(tags.slice(TAGS - SPREAD), 32, async (tag) => {
    await southeastasia.deletePrefix(southeastasia.layout.tagPrefix(repository, tag));
  });
  const spreadStarted = Date.now();
  const spread = await ferry('backfill', '--repository', repository, '--to', 'southeastasia');
  const spreadPlanSeconds = seconds(spreadStarted);
  if (!spread.includes(`backfill: ${SPREAD} of ${SPREAD} tag(s) replicated, 0 failed`)) throw new Error(`expected ${SPREAD} tags backfilled:\n${spread.slice(0, 2000)}`);
  await untilReplicated(SPREAD, spreadStarted);
  const spreadSeconds = seconds(spreadStarted);
  const backfillRuns = await workflowRuns('backfill', backfillStarted);

  // Moved behind eastus's registry: each a push Ferry never heard of.
  const eastus = storages.get('eastus')!;
  await forEachLimited(tags.slice(0, DRIFTS), 32, (tag) => eastus.writeLink(eastus.layout.tagCurrentLink(repository, tag), parseDigest(moved.manifestDigest)));
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const repairStarted = Date.now();
  const report = await ferry('reconcile', '--repository', repository);
  const repairSeconds = seconds(repairStarted);
  if (!report.includes(`reconcile: ${DRIFTS} drift(s) found`)) throw new Error(`expected ${DRIFTS} drifts:\n${report.slice(0, 2000)}`);

  const runs = await workflowRuns('reconcile', repairStarted);
  await untilReplicated(SPREAD + DRIFTS, repairStarted);
  const replicateSeconds = seconds(repairStarted);
  const outcomes = await database.query<{ outcome: string; n: string }>(`SELECT outcome, count(*) AS n FROM replications WHERE repository = $1 GROUP BY outcome`, [repository]);
  const result = {
    tags: TAGS,
    regions: config.regions.length,
    drifts: DRIFTS,
    pageSize: config.reconcile.pageSize,
    pagesPerRun: config.reconcile.pagesPerRun,
    writeSeconds,
    recoverSeconds,
    scanSeconds,
    backfillSeconds,
    spread: SPREAD,
    spreadPlanSeconds,
    spreadSeconds,
    backfillRuns: backfillRuns.length,
    longestBackfillRunHistory: Math.max(...backfillRuns.map((entry) => entry.historyLength)),
    repairSeconds,
    reconcileRuns: runs.length,
    longestRunHistory: Math.max(...runs.map((entry) => entry.historyLength)),
    replicateSeconds,
    outcomes: Object.fromEntries(outcomes.rows.map((row) => [row.outcome, Number(row.n)])),
  };
  await mkdir(outDir, { recursive: true });
  await writeFile(`${outDir}/reconcile.json`, `${JSON.stringify(result, null, 2)}\n`);
  const markdown = [
    '# Reconcile of a large repository (issue 13)',
    '',
    `${TAGS} tags of one small image in each of ${result.regions} regions (${TAGS * result.regions} tags scanned per reconcile), written behind the registries in ${writeSeconds.toFixed(0)} s. Real local stack, 2 cores; each figure is the wall time of the \`ferry\` command as a process.`,
    '',
    '| phase | s |',
    '|---|---|',
    `| \`ferry recover --repository\`: every tag recorded from storage | ${recoverSeconds.toFixed(1)} |`,
    `| \`ferry reconcile\`, no drift: the scan of ${TAGS * result.regions} tags | ${scanSeconds.toFixed(1)} |`,
    `| \`ferry backfill\`, every tag present everywhere: its plan | ${backfillSeconds.toFixed(1)} |`,
    `| \`ferry backfill --to southeastasia\`, ${SPREAD} tags gone from it: plan, record and start a replication each | ${spreadPlanSeconds.toFixed(1)} |`,
    `| …until all ${SPREAD} replicated (from the backfill's start) | ${spreadSeconds.toFixed(1)} |`,
    `| \`ferry reconcile\`, ${DRIFTS} drifts: scan, plan, record and start a replication each | ${repairSeconds.toFixed(1)} |`,
    `| …until all ${DRIFTS} repairs replicated (from the reconcile's start) | ${replicateSeconds.toFixed(1)} |`,
    '',
    `The two backfills ran as ${result.backfillRuns} workflow run(s); the longest run's history had ${result.longestBackfillRunHistory} events.`,
    `The reconcile with drift ran as ${result.reconcileRuns} workflow run(s) (pages of ${result.pageSize}, ${result.pagesPerRun} pages per run, then continue-as-new); the longest run's history had ${result.longestRunHistory} events. Outcomes: ${JSON.stringify(result.outcomes)}.`,
    '',
  ].join('\n');
  await writeFile(`${outDir}/reconcile.md`, markdown);
  console.log(markdown);
} finally {
  await database.end();
  await connection.close();
  await Promise.all([processes.api.stop(), processes.worker.stop()]);
}
