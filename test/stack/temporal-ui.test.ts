// An operator finds a stuck replication and reads why, where operators look:
// `ferry stuck` (the real CLI process) and the Temporal UI's Pending
// Activities, loaded in headless Chromium (Debian's, driven by playwright-core)
// with a screenshot kept as proof in .stack/artifacts/. The region is really
// down: S3 endpoint B, southeastasia's storage, is stopped, so the region's
// activity (id: the region) fails with ECONNREFUSED until it is started
// again, its heartbeat details still naming the phase and bytes it reached.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { REPLICATION_WORKFLOW, searchAttributes, type RegionProgress } from '../../domain/workflow-contract';
import { localStackEnv, repoRoot } from '../support/env';
import { localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { waitUntil } from '../support/processes';
import { skopeoCopy } from '../support/registry';
import { temporalConnectOptions } from '../../domain/config';

const run = promisify(execFile);
const config = localConfig();
const TEMPORAL_UI = 'http://127.0.0.1:8233';
const SCREENSHOT = `${repoRoot}.stack/artifacts/temporal-ui-pending-activity.png`;
const DOWN_REGION = 'southeastasia';
/** Where southeastasia's activities try to connect: the stopped S3 endpoint B. */
const downEndpoint = new URL(config.regions.find((region) => region.name === DOWN_REGION)!.s3!.endpoint).host;
/** No internet here: without these, Chromium floods refused connections to Google services. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function stack(...args: string[]): void {
  execFileSync('bash', ['stack/stack.sh', ...args], { cwd: repoRoot, stdio: 'pipe' });
}

interface PendingActivity {
  activityId?: string | null;
  activityType?: { name?: string | null } | null;
  attempt?: number | null;
  lastFailure?: { message?: string | null } | null;
  heartbeatDetails?: { payloads?: Payload[] | null } | null;
}

describe('a replication into a region whose storage is down', () => {
  const repository = parseRepositoryName(uniqueRepository('stuck'));
  let connection: Connection;
  let temporal: Client;
  let outcome: MessageCollector<OutcomeMessage>;
  let digest: string;
  let workflowId = '';

  /** The region's pending activity, as the server reports it (what the UI renders). */
  async function pendingInRegion(): Promise<PendingActivity[]> {
    const pending = ((await temporal.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? []) as PendingActivity[];
    return pending.filter((activity) => activity.activityId === DOWN_REGION);
  }

  function progressOf(activity: PendingActivity): RegionProgress {
    return defaultPayloadConverter.fromPayload<RegionProgress>(activity.heartbeatDetails!.payloads![0]!);
  }

  beforeAll(async () => {
    connection = await Connection.connect(temporalConnectOptions(config));
    temporal = new Client({ connection, namespace: config.temporal.namespace });
    const image = await buildImage({ layers: [{ size: 300_000 }], tag: 'v1' });
    digest = parseDigest(image.manifestDigest);
    outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(digest)));

    stack('stop', 's3-b');
    await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:v1`);
    // Found the way an operator would: by the FerryRepository search attribute.
    await waitUntil(`the replication of ${repository} in Temporal visibility`, async () => {
      const query = `${searchAttributes.repository.name} = '${repository}' AND WorkflowType = '${REPLICATION_WORKFLOW}'`;
      for await (const execution of temporal.workflow.list({ query })) workflowId = execution.workflowId;
      return workflowId !== '';
    }, 30_000);
    await waitUntil(`a retried activity in ${DOWN_REGION} refused by ${downEndpoint}`, async () => {
      const pending = await pendingInRegion().catch(() => []);
      return pending.some((activity) => (activity.attempt ?? 0) >= 3 && (activity.lastFailure?.message ?? '').includes(`ECONNREFUSED ${downEndpoint}`));
    }, 60_000);
  });

  afterAll(async () => {
    stack('up');
    await outcome?.stop();
    await connection?.close();
  });

  it('is listed by `ferry stuck` with the region, the activity, its attempt and the refused connection', async () => {
    // The region's last move (its heartbeat: phase "blobs", nothing landed) must be older than the window asked for.
    const [pending] = await pendingInRegion();
    const progress = progressOf(pending!);
    // Two blobs: the config and the layer; neither landed.
    expect(progress).toMatchObject({ phase: 'blobs', blobs: 2, blobsDone: 0, bytesDone: 0 });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(progress.progressAt) + 6_000 - Date.now())));
    const started = Date.now();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'stuck', '--older-than', '5s'], { cwd: repoRoot, env: localStackEnv() });
    console.log(`$ ferry stuck --older-than 5s   (${Date.now() - started} ms)\n${stdout}`);

    const blocks = stdout.trim().split('\n\n');
    expect(blocks[0]).toMatch(/^\d+ replication\(s\) without progress for 5s or more/);
    const block = blocks.find((candidate) => candidate.split('\n')[0] === workflowId);
    expect(block, `a block for "${workflowId}"`).toBeDefined();
    const lines = block!.split('\n');
    expect(lines).toContain(`  reference      ${repository}:v1@${digest}`);
    expect(lines.find((line) => line.startsWith('  last progress  '))).toMatch(/^ {2}last progress {2}(\d+[dhms] ?)+ ago \(\d{4}-\d\d-\d\dT/);
    const stuckOn = lines.filter((line) => line.startsWith('  stuck on '));
    expect(stuckOn, 'only the region that is down').toEqual([
      expect.stringMatching(new RegExp(`^ {2}stuck on ${DOWN_REGION}: phase blobs, no progress for (\\d+[dhms] ?)+ \\(workflow "${escapeRegExp(workflowId)}"\\)$`)),
    ]);
    const activity = lines.find((line) => line.startsWith('    activity '));
    expect(activity).toMatch(/^ {4}activity replicateIntoRegion: attempt (\d+), (scheduled|started)/);
    expect(lines).toContain('      progress: 0 of 2 blobs, 0.0 of 0.3 MB');
    expect(Number(/attempt (\d+)/.exec(activity!)![1])).toBeGreaterThanOrEqual(3);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^ {6}last failure: .*ECONNREFUSED ${escapeRegExp(downEndpoint)}`)));
  });

  it('is found in the Temporal UI by a search-attribute query, its pending activity showing attempt and last failure', async () => {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
    mkdirSync(`${repoRoot}.stack/artifacts`, { recursive: true });
    try {
      // The workflow list of UI 2.42.1 takes a visibility query in `?query=`; child workflows are listed too.
      const query = `${searchAttributes.repository.name}="${repository}"`;
      await page.goto(`${TEMPORAL_UI}/namespaces/${config.temporal.namespace}/workflows?query=${encodeURIComponent(query)}`);
      const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: workflowId, exact: true }) });
      await row.waitFor({ timeout: 30_000 });
      expect(await row.innerText()).toMatch(new RegExp(`Running[\\s\\S]*${REPLICATION_WORKFLOW}`));
      await row.getByRole('link', { name: workflowId, exact: true }).click();

      await page.getByRole('tab', { name: /^Pending Activities/ }).click();
      await page.waitForURL(/\/pending-activities$/);
      await page.getByText(`ECONNREFUSED ${downEndpoint}`).first().waitFor({ timeout: 30_000 });
      const text = await page.locator('main').innerText();
      expect(text).toContain(workflowId);
      expect(text).toContain('replicateIntoRegion');
      // The heartbeat details: the phase the region reached.
      expect(text).toMatch(/"phase":\s*"blobs"/);
      expect(text).toContain(`"message": "connect ECONNREFUSED ${downEndpoint}"`);
      const shownAttempt = Number(/Attempt\s+(\d+) of Unlimited/.exec(text)?.[1]);
      expect(shownAttempt).toBeGreaterThanOrEqual(3);

      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      console.log(`Temporal UI ${page.url()}: replicateIntoRegion at attempt ${shownAttempt} of Unlimited, last failure ECONNREFUSED ${downEndpoint}; screenshot ${SCREENSHOT}`);
    } catch (error) {
      await page.screenshot({ path: `${repoRoot}.stack/artifacts/temporal-ui-failure.png`, fullPage: true }).catch(() => undefined);
      throw error;
    } finally {
      await browser.close();
    }
  });

  it('catches up once the storage is back, with no operator action', async () => {
    stack('up');
    const [result] = await outcome.waitFor(1, 120_000);
    expect(result!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'stuck', '--older-than', '5s'], { cwd: repoRoot, env: localStackEnv() });
    expect(stdout).not.toContain(workflowId);
  });
});
