// Stack tests run against the real local stack: `stack up` (idempotent, fast
// when already up), then Ferry's api and worker as real processes built from
// this checkout, stopped again at the end.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { configSchema } from '../../domain/config';
import { localTopology } from '../../stack/topology';
import { recreateDatabase } from '../../store/databases';
import { PLAN_PAGE_SIZE, PLAN_PAGES_PER_RUN, repoRoot, SCOPED_PREFIX, SCOPED_TOKEN, TEST_DATABASE, TEST_RULES, testConfigPath, WAITS_PER_TOKEN } from '../support/env';
import { holdTheStack, releaseTheStack } from '../../support/processes';
import { pidOf, portOpen, startFerry, stopExtraWorkers, stopFerry, waitUntil } from '../support/processes';

/** Workflows an interrupted run left running would write into this run's fresh database. */
async function terminateLeftoverWorkflows(): Promise<void> {
  const connection = await Connection.connect({ address: configSchema.parse({}).temporal.address });
  const temporal = new Client({ connection });
  for await (const execution of temporal.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
    await temporal.workflow.getHandle(execution.workflowId, execution.runId).terminate('left over by an earlier test run').catch(() => undefined);
  }
  await connection.close();
}

/**
 * Every run starts from an empty event store, in its own database beside the
 * dev one, and with a tokens file (auth.tokensFile) holding a read token
 * scoped to one team's repositories, fresh each run; and the replication rules
 * of test/stack/rules.test.ts (TEST_RULES); and reconcile and backfill plans
 * paged a few tags at a time, so every run of them pages and continues as new.
 */
async function freshDatabase(): Promise<void> {
  const postgresUrl = await recreateDatabase(configSchema.parse({}).postgresUrl, TEST_DATABASE);
  mkdirSync(`${repoRoot}.stack/run`, { recursive: true });
  const tokensFile = `${repoRoot}.stack/run/test-tokens.json`;
  writeFileSync(tokensFile, JSON.stringify([{ name: SCOPED_TOKEN, token: randomBytes(24).toString('base64url'), scopes: [`read:${SCOPED_PREFIX}`] }]), { mode: 0o600 });
  const ingest = { waits: { maxWaitsPerToken: WAITS_PER_TOKEN } };
  writeFileSync(testConfigPath, JSON.stringify({ postgresUrl, reconcile: { scheduled: false, settleSeconds: 1, pageSize: PLAN_PAGE_SIZE, pagesPerRun: PLAN_PAGES_PER_RUN }, auth: { tokensFile }, ingest, rules: TEST_RULES }, null, 2));
}

export async function setup(): Promise<void> {
  await holdTheStack('stack test run');
  if (process.env.FERRY_SKIP_STACK_UP !== '1') {
    execFileSync('bash', ['stack/stack.sh', 'up'], { cwd: repoRoot, stdio: 'inherit' });
  }
  // Leftovers of a run that was interrupted before its teardown: Ferry's processes, and toxics left on a region's link.
  await Promise.all([stopFerry('api'), stopFerry('worker'), stopExtraWorkers()]);
  await fetch(`http://${localTopology().faultProxy.apiAddress}/reset`, { method: 'POST' });
  await terminateLeftoverWorkflows();
  await freshDatabase();
  if (await portOpen(8080)) {
    throw new Error('port 8080 is taken (a Ferry api from `npm start`?): stop it with `npm run stack -- stop-ferry` before running the tests');
  }
  startFerry('worker');
  startFerry('api');
  await waitUntil('the Ferry api answering on :8080 (log: .stack/logs/test-api.log)', async () => {
    if (pidOf('api') === null) throw new Error('the Ferry api exited; see .stack/logs/test-api.log');
    return portOpen(8080);
  }, 60_000);
}

export async function teardown(): Promise<void> {
  await Promise.all([stopFerry('api'), stopFerry('worker'), stopExtraWorkers()]);
  releaseTheStack();
}
