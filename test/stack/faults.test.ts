// Invariants 4, 6 and 7 under real faults: a worker killed mid-copy, a region
// whose storage is down, Temporal, Postgres and NATS restarted mid-flight, and
// a change recorded while Temporal was down, never redelivered, started by the sweeper.
import { execFileSync } from 'node:child_process';
import { ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName, type Digest, type RepositoryName } from '../../domain/reference';
import { outcomeFilter, regionMessageFilter, type OutcomeMessage, type RegionMessage } from '../../domain/subjects';
import type { EventStore } from '../../store/event-store';
import { repoRoot } from '../support/env';
import { connectStore, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { skopeoCopy, skopeoPull } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';
import { startFerry, stopFerry, waitUntil } from '../support/processes';
import { temporalConnectOptions } from '../../domain/config';

const config = localConfig();
const southeastasia = RegionStorage.connect(config.regions.find((region) => region.name === 'southeastasia')!);
const collectors: MessageCollector<never>[] = [];
let store: EventStore;
let connection: Connection;
let temporal: Client;

beforeAll(async () => {
  store = connectStore(config);
  connection = await Connection.connect(temporalConnectOptions(config));
  temporal = new Client({ connection });
});
afterAll(async () => {
  await Promise.all(collectors.map((collector) => collector.stop()));
  await connection.close();
  await store.close();
});

function stack(...args: string[]): void {
  execFileSync('bash', ['stack/stack.sh', ...args], { cwd: repoRoot, stdio: 'pipe' });
}

async function collect<T>(filter: string): Promise<MessageCollector<T>> {
  const collector = await MessageCollector.start<T>(config.natsUrl, filter);
  collectors.push(collector as MessageCollector<never>);
  return collector;
}

/** Pushes with skopeo to eastus and starts watching what Ferry announces for it. */
async function pushWatched(image: OciImage, repository: RepositoryName) {
  const digest = parseDigest(image.manifestDigest);
  const replicated = await collect<RegionMessage>(regionMessageFilter('*', repository));
  const outcome = await collect<OutcomeMessage>(outcomeFilter(repository, digest));
  await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:${image.tag}`);
  return { digest, replicated, outcome };
}

async function workflowIdOf(repository: string, digest: Digest): Promise<string> {
  let workflowId = '';
  await waitUntil(`the replication of ${digest} being recorded`, async () => {
    const rows = await store.pool.query<{ workflow_id: string }>(`SELECT workflow_id FROM replications WHERE repository = $1 AND digest = $2`, [repository, digest]);
    workflowId = rows.rows[0]?.workflow_id ?? '';
    return workflowId !== '';
  }, 30_000);
  return workflowId;
}

/**
 * Exactly one "replicated" per region, also after a settling pause for late duplicates.
 * A collector whose consumer a NATS restart dropped sees messages only once its
 * ordered consumer is recreated (after missed heartbeats), hence the wait for two first.
 */
async function expectAnnouncedOnce(replicated: MessageCollector<RegionMessage>): Promise<void> {
  await replicated.waitFor(2, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(replicated.messages.map((message) => message.body.region).sort()).toEqual(['southeastasia', 'westeurope']);
}

describe('a worker killed in the middle of a large streamed copy', () => {
  it('is replaced by one that resumes from the parts already uploaded, never exposing a partial blob', async () => {
    const repository = parseRepositoryName(uniqueRepository('large'));
    const image = await buildImage({ layers: [{ size: 220_000_000 }], tag: 'v1' });
    const layer = parseDigest(image.layers[0]!.digest);
    const size = image.layers[0]!.size;
    const blobKey = southeastasia.layout.blobData(layer);
    const { replicated, outcome } = await pushWatched(image, repository);

    let partsAtKill = 0;
    await waitUntil('4 parts uploaded to southeastasia', async () => {
      const uploads = await southeastasia.s3.send(new ListMultipartUploadsCommand({ Bucket: southeastasia.bucket, Prefix: blobKey }));
      const uploadId = uploads.Uploads?.[0]?.UploadId;
      if (!uploadId) return false;
      const parts = await southeastasia.s3.send(new ListPartsCommand({ Bucket: southeastasia.bucket, Key: blobKey, UploadId: uploadId }));
      partsAtKill = parts.Parts?.length ?? 0;
      return partsAtKill >= 4;
    }, 120_000);
    await stopFerry('worker', 'SIGKILL');
    expect(await southeastasia.head(blobKey), 'no partial object under the final key').toBeNull();
    startFerry('worker');

    const [result] = await outcome.waitFor(1, 150_000);
    expect(result!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    const copies = (await store.eventsOf(result!.body.replicationId)).filter((event) => event.type === 'BlobCopied' && event.region === 'southeastasia' && event.data.digest === layer);
    expect(copies).toHaveLength(1);
    const bytesSent = copies[0]!.data.bytesSent as number;
    console.log(`resume: ${partsAtKill} parts (${partsAtKill * config.replication.partSizeBytes} bytes) uploaded before the kill; the new worker sent ${bytesSent} of ${size} bytes`);
    expect(bytesSent).toBeLessThanOrEqual(size - partsAtKill * config.replication.partSizeBytes);
    expect(await southeastasia.head(blobKey)).toEqual({ size, etag: expect.any(String) });
    expect(await skopeoPull(`docker://127.0.0.1:5003/${repository}:v1`)).toBe(image.manifestDigest);
    await expectAnnouncedOnce(replicated);
  });
});

describe('a region whose storage is down', () => {
  it('delays only itself, shows why in Temporal, and catches up after recovery with no operator action', async () => {
    const repository = parseRepositoryName(uniqueRepository('outage'));
    const image = await buildImage({ layers: [{ size: 500_000 }], tag: 'v1' });
    stack('stop', 's3-b');
    const downSince = Date.now();
    try {
      const { digest, replicated, outcome } = await pushWatched(image, repository);
      const [westeurope] = await replicated.waitFor(1, 30_000);
      expect(westeurope!.body.region).toBe('westeurope');

      const replication = temporal.workflow.getHandle(await workflowIdOf(repository, digest));
      let pending: { activityId: string; attempt: number; lastFailure?: { message?: string | null } | null } | undefined;
      await waitUntil('a retried pending activity in southeastasia', async () => {
        const activities = ((await replication.describe()).raw.pendingActivities ?? []) as Array<NonNullable<typeof pending>>;
        // westeurope announced from inside its activity, whose completion reaches the server a moment later.
        if (activities.some((activity) => activity.activityId === 'westeurope')) return false;
        // westeurope is done: the one activity still pending is southeastasia's.
        expect(activities.map((activity) => activity.activityId)).toEqual(['southeastasia']);
        pending = activities[0];
        return (pending?.attempt ?? 0) >= 3;
      }, 60_000);
      expect(pending!.lastFailure?.message).toBeTruthy();
      console.log(`southeastasia down: pending activity at attempt ${pending!.attempt}, last failure "${pending!.lastFailure?.message}"`);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 60_000 - (Date.now() - downSince))));

      stack('up');
      const [result] = await outcome.waitFor(1, 90_000);
      expect(result!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
      console.log(`southeastasia caught up ${((Date.now() - downSince) / 1000).toFixed(1)} s after its storage went down`);
      await expectAnnouncedOnce(replicated);
    } finally {
      stack('up');
    }
  });
});

describe('infrastructure restarted mid-flight', () => {
  const restarts: Record<string, () => void> = {
    Temporal: () => {
      stack('stop', 'temporal');
      stack('up');
    },
    Postgres: () => {
      execFileSync('bash', ['-c', 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart']);
    },
    NATS: () => {
      execFileSync('bash', ['-c', 'pkill -x nats-server; while pgrep -x nats-server >/dev/null; do sleep 0.1; done']);
      stack('up');
    },
  };

  it.each(Object.keys(restarts))('%s: no accepted push is lost and each region is announced once', async (component) => {
    const repository = parseRepositoryName(uniqueRepository(`restart-${component.toLowerCase()}`));
    const image = await buildImage({ layers: [{ size: 40_000_000 }], tag: 'v1' });
    const { digest, replicated, outcome } = await pushWatched(image, repository);
    await workflowIdOf(repository, digest);
    restarts[component]!();
    const [result] = await outcome.waitFor(1, 120_000);
    expect(result!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    await expectAnnouncedOnce(replicated);
    expect(await skopeoPull(`docker://127.0.0.1:5003/${repository}:v1`)).toBe(image.manifestDigest);
  });
});

describe('a change recorded while its workflow could not start', () => {
  it('is started by the api sweeper once Temporal is back, with no redelivery of the notification', async () => {
    const repository = parseRepositoryName(uniqueRepository('unstarted'));
    const image = await buildImage({ layers: [{ size: 50_000 }], tag: 'v1' });
    const outcome = await collect<OutcomeMessage>(outcomeFilter(repository, parseDigest(image.manifestDigest)));
    await writeImageBehindRegistry(config, 'eastus', repository, image, null);
    const pendingStarts = () =>
      store.pool.query(`SELECT p.replication_id FROM pending_starts p JOIN replications r ON r.id = p.replication_id WHERE r.repository = $1`, [repository]);
    stack('stop', 'temporal');
    try {
      // Recorded and answered (ingest waits for Postgres only); the start cannot happen, and the registry never resends.
      const response = await notify(config, 'eastus', pushNotification(repository, image));
      expect(response.status, await response.text()).toBe(202);
      expect((await pendingStarts()).rows).toHaveLength(1);
    } finally {
      stack('up');
    }
    const [result] = await outcome.waitFor(1, 120_000);
    expect(result!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    expect((await pendingStarts()).rows, 'nothing left for the sweeper').toHaveLength(0);
    expect(await skopeoPull(`docker://127.0.0.1:5003/${repository}:v1`)).toBe(image.manifestDigest);
  });
});
