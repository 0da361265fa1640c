// The Ferry phase: the bench's own api and worker (fresh database), a warm-up
// replication so the measurement sees a running system rather than workflow
// bundling and cold connections, then skopeo pushes the image set into
// eastus and the phase runs until every target region announced every image
// replicated on NATS. Before its worker stops, the phase counts what the
// replication cost Temporal (bench/temporal-cost.ts).
import { Client, Connection } from '@temporalio/client';
import { ReadGrant } from '../domain/auth';
import { temporalConnectOptions, type ResolvedConfig } from '../domain/config';
import { Announcements } from './announcements';
import type { RegionBucket } from './buckets';
import { FERRY_API_PORT, prepareFerryConfig } from './environment';
import type { ImageSet } from './images';
import { MeasuredFerryProcess, portOpen, waitUntil } from './processes';
import { copyMethod } from './raw-copy';
import type { NotificationRelay } from './relay';
import type { FerryRun, RegionBytes } from './results';
import type { Scenario } from './shape';
import { forEachLimited } from '../support/concurrency';
import { pushFromLayout, registryHost } from './skopeo';
import { StackCpuMeter } from './stack-cpu';
import { readTemporalCost } from './temporal-cost';

export interface FerryPhaseInput {
  scenario: Scenario;
  set: ImageSet;
  warmUp: ImageSet;
  repository: string;
  source: RegionBucket;
  targets: RegionBucket[];
  relay: NotificationRelay;
  /** The layer the most images share: its copies per region are counted. */
  sharedLayer: string;
  /** Run api and worker under the V8 CPU profiler, writing their profiles here. */
  profileDir?: string | undefined;
  /** Merged into the config of Ferry's api and worker (bench --config). */
  configOverrides?: Record<string, unknown> | undefined;
}

const REPLICATION_TIMEOUT_MS = 60 * 60 * 1000;

async function withTemporal<T>(config: ResolvedConfig, use: (temporal: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect(temporalConnectOptions(config));
  try {
    return await use(new Client({ connection, namespace: config.temporal.namespace }));
  } finally {
    await connection.close();
  }
}

/** Workflows an interrupted run left behind would write into this run's fresh database. */
async function terminateRunningWorkflows(temporal: Client): Promise<void> {
  for await (const execution of temporal.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
    await temporal.workflow.getHandle(execution.workflowId, execution.runId).terminate('left over before a bench run').catch(() => undefined);
  }
}

async function pushSet(set: ImageSet, host: string, repository: string, concurrency: number): Promise<void> {
  await forEachLimited(set.images, concurrency, (image) => pushFromLayout(set.layoutDir, image.tag, host, repository));
}

interface ReplicationsPage {
  items: Array<{ replicationId: number; regions: Record<string, { blobsCopied: number; blobsSkipped: number; bytesCopied: number; bytesSkipped: number }> }>;
  next: string | null;
}

/** A token of the configuration that may read every repository (read:* or admin). */
function readAllToken(config: ResolvedConfig): string {
  const token = config.auth.tokens.find((candidate) => ReadGrant.of(candidate).all);
  if (token === undefined) throw new Error('the configuration has no token with read:* or admin; the bench reads Ferry’s status API with one');
  return token.secret;
}

async function apiGet<T>(config: ResolvedConfig, path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${FERRY_API_PORT}${path}`, { headers: { authorization: `Bearer ${readAllToken(config)}` } });
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** Ferry's own account of the bytes it moved, read through its status API (/v1/replications and each one's events). */
async function regionBytes(config: ResolvedConfig, repository: string, sharedLayer: string): Promise<RegionBytes[]> {
  const byRegion = new Map<string, RegionBytes>();
  const ids: number[] = [];
  for (let path: string | null = `/v1/replications?${new URLSearchParams({ repository, limit: '500' })}`; path !== null; ) {
    const page: ReplicationsPage = await apiGet<ReplicationsPage>(config, path);
    for (const item of page.items) {
      ids.push(item.replicationId);
      for (const [region, done] of Object.entries(item.regions)) {
        const sum = byRegion.get(region) ?? { region, blobsCopied: 0, bytesCopied: 0, blobsSkipped: 0, bytesSkipped: 0, sharedLayerCopies: 0 };
        sum.blobsCopied += done.blobsCopied;
        sum.bytesCopied += done.bytesCopied;
        sum.blobsSkipped += done.blobsSkipped;
        sum.bytesSkipped += done.bytesSkipped;
        byRegion.set(region, sum);
      }
    }
    path = page.next;
  }
  await forEachLimited(ids, 8, async (id) => {
    const { events } = await apiGet<{ events: Array<{ type: string; region: string | null; data: { digest?: string } }> }>(config, `/v1/replications/${id}/events`);
    for (const event of events) {
      if (event.type === 'BlobCopied' && event.data.digest === sharedLayer && event.region !== null) byRegion.get(event.region)!.sharedLayerCopies++;
    }
  });
  return [...byRegion.values()].sort((a, b) => a.region.localeCompare(b.region));
}

/** The bench's api and worker, once the api answers; `profileDir`: under the V8 CPU profiler. */
export async function startFerry(profileDir?: string): Promise<{ api: MeasuredFerryProcess; worker: MeasuredFerryProcess }> {
  if (await portOpen(FERRY_API_PORT)) throw new Error(`port ${FERRY_API_PORT} is taken (another bench?)`);
  const worker = MeasuredFerryProcess.start('worker', profileDir);
  const api = MeasuredFerryProcess.start('api', profileDir);
  await waitUntil(`Ferry's api answering on :${FERRY_API_PORT} (log: .stack/logs/bench-api.log)`, async () => {
    if (!api.running || !worker.running) throw new Error('a Ferry process exited; see .stack/logs/bench-api.log and bench-worker.log');
    return portOpen(FERRY_API_PORT);
  }, 60_000);
  return { api, worker };
}

export async function runFerry(input: FerryPhaseInput): Promise<FerryRun> {
  const { scenario, set, repository, relay, targets } = input;
  const config = await prepareFerryConfig(input.configOverrides);
  await withTemporal(config, terminateRunningWorkflows);
  const announcements = await Announcements.start(config);
  const { api, worker } = await startFerry(input.profileDir);
  const eastus = registryHost(input.source.region.registryUrl);
  try {
    relay.setMode('forward');
    const warmUpRepository = `${repository.split('/')[0]}/warm-up`;
    await pushSet(input.warmUp, eastus, warmUpRepository, 1);
    await announcements.waitForAll(warmUpRepository, input.warmUp.images.length * targets.length, 5 * 60 * 1000);

    await Promise.all([api.beginMeasurement(), worker.beginMeasurement()]);
    let stackCpu = await StackCpuMeter.begin();
    relay.setMode(scenario.notifications === 'live' ? 'forward' : 'hold');
    const pushStarted = Date.now();
    await pushSet(set, eastus, repository, scenario.pushConcurrency);
    const pushSeconds = (Date.now() - pushStarted) / 1000;
    let started = pushStarted;
    if (scenario.notifications === 'after-push') {
      started = Date.now();
      // The stack's CPU from here: the push is not the replication's cost.
      stackCpu = await StackCpuMeter.begin();
      await relay.release();
    }
    const messages = await announcements.waitForAll(repository, set.images.length * targets.length, REPLICATION_TIMEOUT_MS);
    const [apiUsage, workerUsage, stack] = await Promise.all([api.usage(), worker.usage(), stackCpu.end()]);

    const regions = targets.map((target) => {
      const done = Math.max(...messages.filter((message) => message.region === target.region.name).map((message) => Date.parse(message.completedAt)));
      return { region: target.region.name, method: copyMethod(input.source, target), seconds: (done - started) / 1000 };
    });
    const lagSeconds = Object.fromEntries(
      targets.map((target) => [
        target.region.name,
        messages
          .filter((message) => message.region === target.region.name)
          .map((message) => (Date.parse(message.completedAt) - Date.parse(message.observedAt)) / 1000),
      ]),
    );
    return {
      seconds: Math.max(...regions.map((region) => region.seconds)),
      regions,
      notifications: scenario.notifications,
      pushSeconds,
      lagSeconds,
      api: apiUsage,
      worker: workerUsage,
      stack,
      bytes: await regionBytes(config, repository, input.sharedLayer),
      temporal: await withTemporal(config, (temporal) => readTemporalCost(temporal, repository)),
    };
  } finally {
    relay.setMode('drop');
    await announcements.stop();
    await Promise.all([api.stop(), worker.stop()]);
  }
}
