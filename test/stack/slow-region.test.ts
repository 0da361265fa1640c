// A slow region finishes (issue 11, "slow regions finish"): southeastasia's
// S3 endpoint is toxiproxy (stack/topology.ts); this test gives it 300 ms per
// response and a 1 MB/s link both ways, pushes a 200-child index with a 20 MB
// layer into eastus, and shows that southeastasia completes on its first
// attempt (its activity heartbeats through long phases; no request or
// heartbeat timeout retries it) while westeurope, not slowed, completes first.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';
import { outcomeFilter, regionMessageFilter, type OutcomeMessage, type RegionMessage } from '../../domain/subjects';
import { searchAttributes } from '../../domain/workflow-contract';
import { localTopology } from '../../stack/topology';
import { connectTemporal, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage, buildIndex, seededLayer, type OciImage } from '../support/oci-image';
import { getManifest, skopeoCopy } from '../support/registry';

const config = localConfig();
const region = Object.fromEntries(config.regions.map((r) => [r.name, r]));
const topology = localTopology();
const toxiproxy = `http://${topology.faultProxy.apiAddress}`;
const farEndpoint = topology.regions.find((r) => r.name === 'southeastasia')!.s3;
const CHILDREN = 200;
const LARGE_LAYER_BYTES = 20 * 1024 * 1024;

let temporal: Awaited<ReturnType<typeof connectTemporal>>;

async function toxiproxyCall(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<void> {
  const response = await fetch(`${toxiproxy}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`toxiproxy ${method} ${path} answered ${response.status}: ${text}`);
}

/** 300 ms on every response, 1 MB/s each way, on the far region's S3 endpoint. */
async function slowDownFarRegion(): Promise<void> {
  const proxy = `/proxies/${farEndpoint.name}/toxics`;
  await toxiproxyCall('POST', proxy, { name: 'latency', type: 'latency', stream: 'downstream', attributes: { latency: 300 } });
  await toxiproxyCall('POST', proxy, { name: 'bandwidth-up', type: 'bandwidth', stream: 'upstream', attributes: { rate: 1000 } });
  await toxiproxyCall('POST', proxy, { name: 'bandwidth-down', type: 'bandwidth', stream: 'downstream', attributes: { rate: 1000 } });
}

beforeAll(async () => {
  expect(farEndpoint.proxied, 'the far region reaches its storage through toxiproxy').toBe(true);
  temporal = await connectTemporal(config);
});

afterEach(async () => {
  // Every toxic off again, whatever the test did: the other tests run at full speed.
  await toxiproxyCall('POST', '/reset');
});

afterAll(async () => {
  await temporal?.close();
});

describe('a region 300 ms away on a 1 MB/s link', () => {
  it(`takes a ${CHILDREN}-child index with a 20 MB layer on its first attempt, and holds no other region back`, async () => {
    const repository = parseRepositoryName(uniqueRepository('slow-region'));
    const shared = seededLayer('slow-region-shared', 2_000);
    const children: OciImage[] = [];
    for (let child = 0; child < CHILDREN; child++) {
      const layers = child === 0 ? [shared, { size: LARGE_LAYER_BYTES }] : [shared];
      children.push(await buildImage({ layers, architecture: `arch${child}`, tag: 'v1' }));
    }
    const index = await buildIndex(children, { tag: 'v1' });
    const digest = parseDigest(index.manifestDigest);

    // The tag's announcements (skopeo pushes each child by digest first; those replicate on their own).
    const announced = await MessageCollector.start<RegionMessage>(config.natsUrl, regionMessageFilter('*', repository, { tag: parseTag('v1') }));
    const outcomes = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, digest));
    await slowDownFarRegion();
    const pushedAt = Date.now();
    try {
      await skopeoCopy(index.reference, `docker://${new URL(region.eastus!.registryUrl).host}/${repository}:v1`);
      const [outcome] = await outcomes.waitFor(1, 540_000);
      expect(outcome!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
      // Each region announced before the outcome, but this collector is a consumer of its own: it may deliver later.
      await announced.waitFor(2, 30_000);
    } finally {
      await Promise.all([announced.stop(), outcomes.stop()]);
    }

    const replicated = (name: string) => announced.messages.find((message) => message.body.region === name && message.body.kind === 'replicated');
    const [westeurope, southeastasia] = [replicated('westeurope'), replicated('southeastasia')];
    expect(westeurope?.body.digest).toBe(index.manifestDigest);
    expect(southeastasia?.body.digest).toBe(index.manifestDigest);
    console.log(
      `slow region: westeurope announced ${((westeurope!.receivedAt - pushedAt) / 1000).toFixed(1)} s after the push began, ` +
        `southeastasia ${((southeastasia!.receivedAt - pushedAt) / 1000).toFixed(1)} s`,
    );
    // Not held back: the near region is done before the far one.
    expect(westeurope!.receivedAt).toBeLessThan(southeastasia!.receivedAt);

    // The far region serves the whole index, through its login.
    const served = await getManifest(region.southeastasia!.registryUrl, repository, 'v1');
    expect([served.status, served.digest]).toEqual([200, index.manifestDigest]);

    // One attempt per region: nothing was retried, for a timeout or anything else.
    const executions = [];
    const query = `${searchAttributes.repository.name} = '${repository}' AND ${searchAttributes.digest.name} = '${digest}'`;
    for await (const execution of temporal.client.workflow.list({ query })) executions.push(execution);
    expect(executions).toHaveLength(1);
    const history = await temporal.client.workflow.getHandle(executions[0]!.workflowId).fetchHistory();
    const events = history.events ?? [];
    const started = events.filter((event) => event.activityTaskStartedEventAttributes != null).map((event) => event.activityTaskStartedEventAttributes!.attempt);
    expect(started).toEqual([1, 1]);
    expect(events.filter((event) => event.activityTaskTimedOutEventAttributes != null || event.activityTaskFailedEventAttributes != null)).toEqual([]);
  }, 600_000);
});
