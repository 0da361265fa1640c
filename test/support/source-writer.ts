// Writes an OCI image into a region's bucket exactly as its registry would
// (through the one storage layout module), optionally damaged, and sends the
// notification that registry would send. Lets tests put a corrupt or missing
// blob in a source region, which no real client can push.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegionStorage } from '../../activities/storage';
import type { ResolvedConfig } from '../../domain/config';
import { parseDigest, parseRepositoryName, parseTag, type Digest, type RepositoryName, type Tag } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { bearer, MessageCollector } from './ferry';
import type { OciImage, OciIndex } from './oci-image';
import { forEachLimited } from '../../support/concurrency';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/distribution-2.8/notifications/${name}.json`, import.meta.url), 'utf8'));
const template = fixture('0003');
/** Recorded deletes: 0033 of a tag, 0032 of a manifest by digest. */
const tagDeleteTemplate = fixture('0033');
const digestDeleteTemplate = fixture('0032');

export type Damage = { corrupt: Digest } | { omit: Digest } | null;

function blobBytes(image: { layoutDir: string }, digest: string): Buffer {
  return readFileSync(join(image.layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

export async function writeImageBehindRegistry(config: ResolvedConfig, regionName: string, repositoryName: string, image: OciImage, damage: Damage): Promise<void> {
  const storage = RegionStorage.connect(config.regions.find((region) => region.name === regionName)!);
  const repository = parseRepositoryName(repositoryName);
  await writeManifestContent(storage, repository, image, damage);
  await writeTag(storage, repository, parseTag(image.tag), parseDigest(image.manifestDigest));
}

/** An index written behind the registry as its push leaves it: every child (blobs, manifest), then the index, then its tag. */
export async function writeIndexBehindRegistry(config: ResolvedConfig, regionName: string, repositoryName: string, index: OciIndex): Promise<void> {
  const storage = RegionStorage.connect(config.regions.find((region) => region.name === regionName)!);
  const repository = parseRepositoryName(repositoryName);
  await forEachLimited(index.images, 16, (image) => writeManifestContent(storage, repository, image, null));
  const manifest = parseDigest(index.manifestDigest);
  await storage.put(storage.layout.blobData(manifest), blobBytes(index, manifest));
  await storage.writeLink(storage.layout.revisionLink(repository, manifest), manifest);
  await writeTag(storage, repository, parseTag(index.tag), manifest);
}

/** An image's blobs, linked into the repository, then its manifest; no tag. */
async function writeManifestContent(storage: RegionStorage, repository: RepositoryName, image: OciImage, damage: Damage): Promise<void> {
  const manifest = parseDigest(image.manifestDigest);
  // A foreign layer is never uploaded: clients skip it, pullers fetch it from its URLs.
  for (const blob of [{ digest: image.configDigest }, ...image.layers.filter((layer) => layer.urls === undefined)]) {
    const digest = parseDigest(blob.digest);
    if (damage && 'omit' in damage && damage.omit === digest) continue;
    const bytes = blobBytes(image, digest);
    if (damage && 'corrupt' in damage && damage.corrupt === digest) bytes[bytes.length >> 1]! ^= 0xff;
    await storage.put(storage.layout.blobData(digest), bytes);
    await storage.writeLink(storage.layout.layerLink(repository, digest), digest);
  }
  await storage.put(storage.layout.blobData(manifest), blobBytes(image, manifest));
  await storage.writeLink(storage.layout.revisionLink(repository, manifest), manifest);
}

async function writeTag(storage: RegionStorage, repository: RepositoryName, tag: Tag, manifest: Digest): Promise<void> {
  await storage.writeLink(storage.layout.tagIndexLink(repository, tag, manifest), manifest);
  await storage.writeLink(storage.layout.tagCurrentLink(repository, tag), manifest);
}

/** The Distribution 2.8 envelope a registry sends for a manifest push, with a fresh event id. */
export function pushNotification(
  repository: string,
  image: Pick<OciImage, 'manifestDigest' | 'manifestSize' | 'tag'>,
  id: string = crypto.randomUUID(),
  timestamp = new Date(),
): string {
  const envelope = structuredClone(template);
  const event = envelope.events[0];
  event.id = id;
  event.timestamp = timestamp.toISOString();
  Object.assign(event.target, {
    repository,
    digest: image.manifestDigest,
    size: image.manifestSize,
    length: image.manifestSize,
    tag: image.tag,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
  });
  delete event.target.references;
  return JSON.stringify(envelope);
}

/** The envelope a registry sends for `DELETE /v2/<repository>/manifests/<tag or digest>`, with a fresh event id. */
export function deleteNotification(repository: string, target: { tag: string } | { digest: string }, timestamp = new Date()): string {
  const envelope = structuredClone('tag' in target ? tagDeleteTemplate : digestDeleteTemplate);
  const event = envelope.events[0];
  event.id = crypto.randomUUID();
  event.timestamp = timestamp.toISOString();
  event.target = { repository, ...target };
  return JSON.stringify(envelope);
}

export async function notify(config: ResolvedConfig, regionName: string, body: string): Promise<Response> {
  return fetch(`http://${config.ingest.host}:${config.ingest.port}/v1/notifications/distribution/${regionName}`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', ...bearer(config, `ingest-${regionName}`) },
    body,
  });
}

/**
 * Writes `image` into `regionName` behind its registry, notifies Ferry as
 * that registry would, and resolves with the outcome Ferry announced on NATS.
 */
export async function pushBehindRegistry(config: ResolvedConfig, regionName: string, repository: string, image: OciImage, timeoutMs = 90_000): Promise<OutcomeMessage> {
  await writeImageBehindRegistry(config, regionName, repository, image, null);
  const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(parseRepositoryName(repository), parseDigest(image.manifestDigest)));
  try {
    const response = await notify(config, regionName, pushNotification(repository, image));
    if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
    const [message] = await outcome.waitFor(1, timeoutMs);
    return message!.body;
  } finally {
    await outcome.stop();
  }
}
