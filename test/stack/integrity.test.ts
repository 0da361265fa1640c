// Invariant 5, integrity: a corrupt or missing source blob fails that image
// visibly and for good, writes nothing under a final key, never moves the
// target tag, and leaves other images alone; and no leftover upload part
// ends up inside a blob unchecked.
import { createHash } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName, type Digest } from '../../domain/reference';
import { outcomeFilter, regionMessageFilter, type OutcomeMessage, type RegionMessage } from '../../domain/subjects';
import { FailureType } from '../../domain/workflow-contract';
import { localConfig, MessageCollector, storageRegions, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { getManifest, skopeoCopy, skopeoPull } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry, type Damage } from '../support/source-writer';
import { temporalConnectOptions } from '../../domain/config';

const config = localConfig();
const targets = storageRegions(config).filter((region) => region.name !== 'eastus');
const collectors: MessageCollector<never>[] = [];
let connection: Connection;
let temporal: Client;

beforeAll(async () => {
  connection = await Connection.connect(temporalConnectOptions(config));
  temporal = new Client({ connection });
});
afterAll(async () => {
  await Promise.all(collectors.map((collector) => collector.stop()));
  await connection.close();
});

async function collect<T>(filter: string): Promise<MessageCollector<T>> {
  const collector = await MessageCollector.start<T>(config.natsUrl, filter);
  collectors.push(collector as MessageCollector<never>);
  return collector;
}

async function replicateDamaged(damage: (layer: Digest) => Damage, layerSize = 120_000) {
  const repository = parseRepositoryName(uniqueRepository('damaged'));
  const image = await buildImage({ layers: [{ size: layerSize }], tag: 'v1' });
  const layer = parseDigest(image.layers[0]!.digest);
  await writeImageBehindRegistry(config, 'eastus', repository, image, damage(layer));
  const failures = await collect<RegionMessage>(regionMessageFilter('*', repository, undefined, 'failed'));
  const outcome = await collect<OutcomeMessage>(outcomeFilter(repository, parseDigest(image.manifestDigest)));
  const response = await notify(config, 'eastus', pushNotification(repository, image));
  expect(response.status).toBe(202);
  const { accepted } = (await response.json()) as { accepted: Array<{ workflowId: string }> };
  return { repository, image, layer, failures, outcome, workflowId: accepted[0]!.workflowId };
}

/** The workflow ends FAILED, naming the regions, rather than retrying. */
async function expectWorkflowFailed(workflowId: string): Promise<void> {
  const handle = temporal.workflow.getHandle(workflowId);
  await expect(handle.result()).rejects.toMatchObject({ cause: { message: expect.stringMatching(/^replication failed in (southeastasia|westeurope) \(/) } });
  expect((await handle.describe()).status.name).toBe('FAILED');
}

async function expectNothingLanded(repository: string, layer: Digest): Promise<void> {
  for (const target of targets) {
    const storage = RegionStorage.connect(target);
    expect(await storage.head(storage.layout.blobData(layer)), `${target.name}: no object under the blob's final key`).toBeNull();
    expect(await storage.newestOpenUpload(storage.layout.blobData(layer)), `${target.name}: no upload left open for a corrupt blob`).toBeNull();
    expect((await getManifest(target.registryUrl, repository, 'v1')).status, `${target.name}: tag not moved`).toBe(404);
  }
}

describe('a damaged source image', () => {
  it('with a corrupt layer fails in every region with a clear, non-retried reason, and writes nothing', async () => {
    const good = await buildImage({ layers: [{ size: 80_000 }], tag: 'v1' });
    const goodRepository = uniqueRepository('healthy');
    const goodOutcome = await collect<OutcomeMessage>(outcomeFilter(parseRepositoryName(goodRepository), parseDigest(good.manifestDigest)));

    const damaged = await replicateDamaged((layer) => ({ corrupt: layer }));
    await skopeoCopy(good.reference, `docker://127.0.0.1:5001/${goodRepository}:v1`);

    const failures = await damaged.failures.waitFor(2, 60_000);
    for (const failure of failures) {
      expect(failure.body.failure?.code).toBe(FailureType.sourceBlobCorrupt);
      expect(failure.body.failure?.reason).toContain(`source blob ${damaged.layer} in eastus is corrupt`);
    }
    const [outcome] = await damaged.outcome.waitFor(1, 30_000);
    expect(outcome!.body.succeeded).toEqual([]);
    await expectWorkflowFailed(damaged.workflowId);
    await expectNothingLanded(damaged.repository, damaged.layer);

    const [healthy] = await goodOutcome.waitFor(1, 60_000);
    expect(healthy!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
  });

  it('with a corrupt layer of several parts, copied in parts server-side and streamed, exposes nothing and leaves no upload open', async () => {
    // 70 MB: two server-side part copies into westeurope and five streamed parts into southeastasia, all before the hash fails.
    const damaged = await replicateDamaged((layer) => ({ corrupt: layer }), 70_000_000);
    const failures = await damaged.failures.waitFor(2, 90_000);
    expect(failures.map((failure) => failure.body.failure?.code)).toEqual([FailureType.sourceBlobCorrupt, FailureType.sourceBlobCorrupt]);
    await damaged.outcome.waitFor(1, 30_000);
    await expectWorkflowFailed(damaged.workflowId);
    await expectNothingLanded(damaged.repository, damaged.layer);
  });

  it('never completes a streamed copy from a resumed part that holds other bytes of the same length', async () => {
    // Someone (a crashed attempt, or anyone) left an open upload of the layer's key in southeastasia
    // (streamed from eastus) whose part 1 has the right length and the wrong bytes.
    const repository = parseRepositoryName(uniqueRepository('resumed-part'));
    const image = await buildImage({ layers: [{ size: 20_000_000 }], tag: 'v1' });
    const layer = parseDigest(image.layers[0]!.digest);
    const southeastasia = RegionStorage.connect(targets.find((region) => region.name === 'southeastasia')!);
    const key = southeastasia.layout.blobData(layer);
    const planted = await southeastasia.startUpload(key);
    await southeastasia.uploadPart(key, planted, 1, Buffer.alloc(config.replication.partSizeBytes, 7));

    const outcome = await collect<OutcomeMessage>(outcomeFilter(repository, parseDigest(image.manifestDigest)));
    await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:v1`);
    const [done] = await outcome.waitFor(1, 90_000);
    expect(done!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    const stored = await southeastasia.getStream(key);
    const hash = createHash('sha256');
    for await (const chunk of stored!.stream as AsyncIterable<Buffer>) hash.update(chunk);
    expect(`sha256:${hash.digest('hex')}`).toBe(layer);
    expect(await skopeoPull(`docker://127.0.0.1:5003/${repository}:v1`)).toBe(image.manifestDigest);
  });

  it('with a missing layer fails the same way instead of retrying forever', async () => {
    const damaged = await replicateDamaged((layer) => ({ omit: layer }));
    const failures = await damaged.failures.waitFor(2, 60_000);
    expect(failures.map((failure) => failure.body.failure?.code)).toEqual([FailureType.sourceBlobMissing, FailureType.sourceBlobMissing]);
    await damaged.outcome.waitFor(1, 30_000);
    await expectWorkflowFailed(damaged.workflowId);
    await expectNothingLanded(damaged.repository, damaged.layer);
  });
});
