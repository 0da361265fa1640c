// Invariant 9: the source's storage decides. A notification is a hint: a delete
// the source did not make removes nothing, a time from the future neither wins
// nor freezes a tag, a late digest delete unlinks nothing a newer push brought
// back, and an event id reused with other content is refused. A region's
// own change of a tag whose notification Ferry has not recorded yet is never
// overwritten blindly: the replication into it waits for that notification
// (and says so in its heartbeat), or, if none comes, the region's storage
// orders the two by its write time.
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageRepository } from '../../activities/repository';
import { RegionStorage } from '../../activities/storage';
import { parseDigest, parseRepositoryName, parseTag, type RepositoryName } from '../../domain/reference';
import type { OutcomeMessage } from '../../domain/subjects';
import type { EventStore } from '../../store/event-store';
import { connectStore, connectTemporal, localConfig, MessageCollector, storageRegions, uniqueRepository } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { waitUntil } from '../support/processes';
import { getManifest, skopeoCopy } from '../support/registry';
import { deleteNotification, notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const TIMEOUT = 120_000;
const HOUR = 3600_000;
let store: EventStore;
let temporal: Awaited<ReturnType<typeof connectTemporal>>;
const collectors: MessageCollector<OutcomeMessage>[] = [];

beforeAll(async () => {
  [store, temporal] = [connectStore(config), await connectTemporal(config)];
});
afterAll(async () => {
  await Promise.all([...collectors.map((collector) => collector.stop()), store.close(), temporal.close()]);
});

/** What the region activity of a replication says it waits for, in its last heartbeat (the Temporal UI shows the same). */
async function waitingFor(replicationId: number, region: string): Promise<string | null> {
  const row = await store.pool.query(`SELECT workflow_id FROM replications WHERE id = $1`, [replicationId]);
  const description = await temporal.client.workflow.getHandle(row.rows[0].workflow_id).describe();
  const activity = (description.raw.pendingActivities ?? []).find((pending) => pending.activityId === region);
  const payload = activity?.heartbeatDetails?.payloads?.[0];
  if (!payload) return null;
  return defaultPayloadConverter.fromPayload<{ waitingFor?: string | null }>(payload).waitingFor ?? null;
}

async function servedIn(region: string, repository: string, tag: string): Promise<string | null> {
  const manifest = await getManifest(config.regions.find((each) => each.name === region)!.registryUrl, repository, tag);
  return manifest.status === 200 ? manifest.digest : null;
}

async function outcomes(repository: RepositoryName): Promise<MessageCollector<OutcomeMessage>> {
  const collector = await MessageCollector.start<OutcomeMessage>(config.natsUrl, `ferry.outcome.${repository.replaceAll('.', '%2E')}.>`);
  collectors.push(collector);
  return collector;
}

async function expectServedEverywhere(repository: string, tag: string, image: OciImage): Promise<void> {
  for (const region of storageRegions(config)) {
    const manifest = await getManifest(region.registryUrl, repository, tag);
    expect(manifest.status, `${region.name} serves ${repository}:${tag}`).toBe(200);
    expect(manifest.digest, `${region.name} serves the source's image`).toBe(image.manifestDigest);
    // Through the cache too, in the regions Ferry writes to: what a puller there gets.
    if (region.name === 'eastus') continue;
    const cached = await getManifest(region.cachePurgeUrls[0]!, repository, tag);
    expect(cached.digest, `${region.name}'s cache serves the source's image`).toBe(image.manifestDigest);
  }
}

async function pushWithSkopeo(image: OciImage, repository: string, tag: string): Promise<void> {
  await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:${tag}`);
}

async function accepted(response: Response): Promise<number> {
  expect(response.status, await response.clone().text()).toBe(202);
  const body = (await response.json()) as { accepted: Array<{ replicationId: number }> };
  return body.accepted[0]!.replicationId;
}

describe('the source storage decides', () => {
  it('a delete dated a year ahead for a tag the source still holds removes it nowhere, and later pushes still arrive', async () => {
    const repository = parseRepositoryName(uniqueRepository('forged-delete'));
    const [first, second] = await Promise.all([buildImage({ layers: [{ size: 30_000 }], tag: 't' }), buildImage({ layers: [{ size: 30_000 }], tag: 't' })]);
    const finished = await outcomes(repository);
    await pushWithSkopeo(first!, repository, 't');
    await finished.waitFor(1, TIMEOUT);
    await expectServedEverywhere(repository, 't', first!);

    const forged = await accepted(await notify(config, 'eastus', deleteNotification(repository, { tag: 't' }, new Date(Date.now() + 365 * 24 * HOUR))));
    const [, deleted] = await finished.waitFor(2, TIMEOUT);
    expect(deleted!.body.replicationId).toBe(forged);
    await expectServedEverywhere(repository, 't', first!);
    const skipped = await store.pool.query(`SELECT data FROM events WHERE type = 'DeleteApplied' AND replication_id = $1`, [forged]);
    expect(skipped.rows.map((row) => row.data.removedTags)).toEqual([[], []]);
    expect(skipped.rows.map((row) => row.data.skipped)).toEqual(['the source still holds the tag', 'the source still holds the tag']);
    const recorded = await store.pool.query(`SELECT occurred_at FROM region_tags WHERE region = 'eastus' AND repository = $1 AND tag = 't'`, [repository]);
    expect(recorded.rows[0].occurred_at.getTime(), 'the forged time is bounded by the skew').toBeLessThanOrEqual(Date.now() + config.ingest.maxClockSkewSeconds * 1000);

    await pushWithSkopeo(second!, repository, 't');
    await finished.waitFor(3, TIMEOUT);
    await expectServedEverywhere(repository, 't', second!);
  });

  it('a push dated an hour ahead does not block the pushes after it', async () => {
    const repository = parseRepositoryName(uniqueRepository('future-push'));
    const [ahead, next] = await Promise.all([buildImage({ layers: [{ size: 20_000 }], tag: 'v' }), buildImage({ layers: [{ size: 20_000 }], tag: 'v' })]);
    const finished = await outcomes(repository);
    await writeImageBehindRegistry(config, 'eastus', repository, ahead!, null);
    await accepted(await notify(config, 'eastus', pushNotification(repository, ahead!, crypto.randomUUID(), new Date(Date.now() + HOUR))));
    await finished.waitFor(1, TIMEOUT);
    await expectServedEverywhere(repository, 'v', ahead!);

    // Pushed right away: its real time is earlier than the bounded future one.
    await pushWithSkopeo(next!, repository, 'v');
    await finished.waitFor(2, TIMEOUT);
    await expectServedEverywhere(repository, 'v', next!);
  });

  it('a digest delete delivered after the digest was pushed again unlinks nothing', async () => {
    const repository = parseRepositoryName(uniqueRepository('late-digest-delete'));
    const image = await buildImage({ layers: [{ size: 25_000 }], tag: 'r' });
    const finished = await outcomes(repository);
    await pushWithSkopeo(image, repository, 'r');
    await finished.waitFor(1, TIMEOUT);
    // The source deleted the digest and got it pushed again; its delete notification arrives last.
    const late = await accepted(await notify(config, 'eastus', deleteNotification(repository, { digest: image.manifestDigest }, new Date(Date.now() - 1000))));
    const [, deleted] = await finished.waitFor(2, TIMEOUT);
    expect(deleted!.body.replicationId).toBe(late);
    await expectServedEverywhere(repository, 'r', image);
    for (const region of storageRegions(config)) {
      expect((await getManifest(region.registryUrl, repository, image.manifestDigest)).status, `${region.name} keeps the manifest`).toBe(200);
    }
  });

  it('a digest delete whose manifest an older push wrote back into the source still removes the tag there, and keeps the manifest', async () => {
    const repository = parseRepositoryName(uniqueRepository('written-back-digest'));
    const image = await buildImage({ layers: [{ size: 25_000 }], tag: 'w' });
    const finished = await outcomes(repository);
    await pushWithSkopeo(image, repository, 'w');
    await finished.waitFor(1, TIMEOUT);
    // westeurope deleted the digest, and the replication of an older push of it wrote the manifest
    // back (its tag move refused): the manifest is there, the tag is not.
    const westeurope = new StorageRepository(RegionStorage.connect(config.regions.find((region) => region.name === 'westeurope')!), repository);
    expect(await westeurope.untag(parseTag('w'), parseDigest(image.manifestDigest))).toBe(true);
    const late = await accepted(await notify(config, 'westeurope', deleteNotification(repository, { digest: image.manifestDigest })));
    await finished.waitFor(2, TIMEOUT);
    const applied = await store.pool.query(`SELECT region, data FROM events WHERE type = 'DeleteApplied' AND replication_id = $1 ORDER BY region`, [late]);
    const targets = storageRegions(config).filter((region) => region.name !== 'westeurope');
    expect(applied.rows.map((row) => [row.region, row.data.removedTags, row.data.skipped])).toEqual(
      targets.map((region) => [region.name, ['w'], 'the source still holds the digest']).sort(),
    );
    for (const region of storageRegions(config)) {
      expect(await servedIn(region.name, repository, 'w'), `${region.name} has no tag w`).toBeNull();
      expect((await getManifest(region.registryUrl, repository, image.manifestDigest)).status, `${region.name} keeps the manifest`).toBe(200);
    }
  });

  it('refuses an event id seen before with other content, and records nothing of its envelope', async () => {
    const repository = parseRepositoryName(uniqueRepository('reused-id'));
    const [original, other] = await Promise.all([buildImage({ layers: [{ size: 10_000 }], tag: 'x' }), buildImage({ layers: [{ size: 10_000 }], tag: 'x' })]);
    await writeImageBehindRegistry(config, 'eastus', repository, original!, null);
    const id = crypto.randomUUID();
    const at = new Date();
    await accepted(await notify(config, 'eastus', pushNotification(repository, original!, id, at)));
    // The same notification again is a redelivery, accepted as a duplicate.
    const again = await notify(config, 'eastus', pushNotification(repository, original!, id, at));
    expect(((await again.json()) as { accepted: Array<{ duplicate: boolean }> }).accepted[0]!.duplicate).toBe(true);

    const alone = await notify(config, 'eastus', pushNotification(repository, other!, id, at));
    expect(alone.status, 'the reused id alone').toBe(409);
    const forgedBody = JSON.parse(pushNotification(repository, other!, id, at));
    forgedBody.events.unshift(JSON.parse(pushNotification(repository, other!)).events[0]);
    const refused = await notify(config, 'eastus', JSON.stringify(forgedBody));
    expect(refused.status).toBe(409);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('CONFLICTING_EVENT');
    expect(error.message).toMatch(/digest/);
    const recorded = await store.pool.query(`SELECT digest FROM replications WHERE repository = $1`, [repository]);
    expect(recorded.rows).toEqual([{ digest: original!.manifestDigest }]);
  });

  it("a region's own later push that Ferry has not heard of is not overwritten: the replication waits for its notification, and the later push wins everywhere", async () => {
    const repository = parseRepositoryName(uniqueRepository('unheard-push'));
    const [earlier, later] = await Promise.all([buildImage({ layers: [{ size: 20_000 }], tag: 'u' }), buildImage({ layers: [{ size: 20_000 }], tag: 'u' })]);
    const finished = await outcomes(repository);
    await writeImageBehindRegistry(config, 'southeastasia', repository, earlier!, null);
    const earlierAt = new Date();
    // eastus's registry took a later push of the tag; its notification is late.
    await writeImageBehindRegistry(config, 'eastus', repository, later!, null);
    const first = await accepted(await notify(config, 'southeastasia', pushNotification(repository, earlier!, crypto.randomUUID(), earlierAt)));

    await waitUntil('westeurope serving the earlier push', async () => (await servedIn('westeurope', repository, 'u')) === earlier!.manifestDigest, TIMEOUT);
    let waiting: string | null = null;
    await waitUntil("eastus's region activity saying what it waits for", async () => (waiting = await waitingFor(first, 'eastus')) !== null, TIMEOUT);
    expect(waiting).toContain(`eastus ${repository}:u`);
    expect(waiting).toContain(later!.manifestDigest);
    expect(await servedIn('eastus', repository, 'u'), 'eastus keeps its own push meanwhile').toBe(later!.manifestDigest);

    await accepted(await notify(config, 'eastus', pushNotification(repository, later!, crypto.randomUUID(), new Date())));
    await finished.waitFor(2, TIMEOUT);
    await expectServedEverywhere(repository, 'u', later!);
    const superseded = await store.pool.query(`SELECT data FROM events WHERE type = 'TagSuperseded' AND replication_id = $1 AND region = 'eastus'`, [first]);
    expect(superseded.rows, "the earlier push gave way in eastus").toHaveLength(1);
  });

  it("with no notification of the region's own push, the region's storage decides by its write time", async () => {
    const repository = parseRepositoryName(uniqueRepository('lost-notification'));
    const [earlier, later] = await Promise.all([buildImage({ layers: [{ size: 20_000 }], tag: 'n' }), buildImage({ layers: [{ size: 20_000 }], tag: 'n' })]);
    const finished = await outcomes(repository);
    await writeImageBehindRegistry(config, 'southeastasia', repository, earlier!, null);
    // Dated before eastus's write by more than the storage's one-second time resolution.
    const earlierAt = new Date(Date.now() - 2_000);
    await writeImageBehindRegistry(config, 'eastus', repository, later!, null);
    const started = Date.now();
    await accepted(await notify(config, 'southeastasia', pushNotification(repository, earlier!, crypto.randomUUID(), earlierAt)));
    await finished.waitFor(1, TIMEOUT);
    expect(Date.now() - started, 'eastus waited for a notification first').toBeGreaterThanOrEqual((config.replication.awaitNotificationSeconds - 2) * 1000);
    expect(await servedIn('eastus', repository, 'n')).toBe(later!.manifestDigest);
    expect(await servedIn('westeurope', repository, 'n')).toBe(earlier!.manifestDigest);
  });
});
