// RegistryRepository's verbs against a real registry: centralus, the local
// stack's registry-API region (Distribution v3.1.1 behind the token flow).
// The edges the replication tests pass only sometimes: a mount the registry
// declines, a resumed upload whose Location fell behind, a tag judged wrongly,
// a manifest naming a blob the repository lacks. Ferry's writes here carry its
// User-Agent, so their notifications are echoes Ferry ignores.
import { createHash, randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { RegistryClient } from '../../activities/registry-client';
import { RegistryRepository } from '../../activities/registry-repository';
import { digestOf } from '../../domain/content-digest';
import { parseDigest, parseRepositoryName, parseTag, type Digest } from '../../domain/reference';
import { API_PREFIX, API_REGION } from '../support/env';
import { localConfig } from '../support/ferry';

const config = localConfig();
const region = config.regions.find((candidate) => candidate.name === API_REGION)!;
const client = new RegistryClient(region.registryCredentials, 30_000);
const fresh = (name: string) => new RegistryRepository(API_REGION, region.registryUrl, client, parseRepositoryName(`${API_PREFIX}/verbs-${name}-${randomBytes(4).toString('hex')}`));
const blob = (bytes: Buffer) => ({ digest: parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`), size: bytes.length, bytes });

/** An OCI image manifest naming `config` and `layer`, as bytes. */
function manifestOf(configBlob: { digest: Digest; size: number }, layer: { digest: Digest; size: number }): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configBlob.digest, size: configBlob.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
    }),
  );
}

describe('RegistryRepository', () => {
  it('puts blobs and a manifest, tags, looks up and untags only what it judged', async () => {
    const repository = fresh('manifest');
    const configBlob = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', at: Date.now() })));
    const layer = blob(randomBytes(3000));
    const bytes = manifestOf(configBlob, layer);
    const digest = digestOf(bytes);

    // The registry refuses a manifest naming blobs the repository lacks: no dangling manifest is possible.
    await expect(repository.putManifest({ digest, size: bytes.length }, bytes)).rejects.toThrow(/answered 400 .*MANIFEST_BLOB_UNKNOWN/s);
    for (const each of [configBlob, layer]) await repository.putBlob(each, each.bytes);
    expect(await repository.blobHead(layer.digest)).toMatchObject({ size: layer.size });

    expect(await repository.getManifest(digest)).toEqual({ found: 'not-linked' });
    await repository.putManifest({ digest, size: bytes.length }, bytes);
    expect(await repository.getManifest(digest)).toEqual({ found: 'ok', bytes: new Uint8Array(bytes) });
    let read = 0;
    await repository.putManifest({ digest, size: bytes.length }, async () => (read++, bytes));
    expect(read, 'a manifest already there is not read again').toBe(0);

    const tag = parseTag('v1');
    expect(await repository.tagged(tag)).toBeNull();
    await repository.tag(tag, digest);
    expect([await repository.tagged(tag), await repository.taggedWithTime(tag), await repository.taggedSince(tag, new Date(0))]).toEqual([digest, { digest, modifiedAt: null }, [digest]]);
    expect(await repository.lookup(digest)).toEqual([tag]);

    expect(await repository.untag(tag, digestOf(new TextEncoder().encode('another'))), 'judged to hold another digest: left alone').toBe(false);
    expect(await repository.tagged(tag)).toBe(digest);
    expect(await repository.untag(tag, digest)).toBe(true);
    expect(await repository.tagged(tag)).toBeNull();
    expect(await repository.hasManifest(digest), 'a tag delete leaves the manifest').toBe(true);
    await repository.unlinkManifest(digest);
    expect(await repository.hasManifest(digest)).toBe(false);
  });

  it('mounts a blob from a repository that holds it, and uploads when the registry declines the mount', async () => {
    const home = fresh('home');
    const layer = blob(randomBytes(5000));
    await home.putBlob(layer, layer.bytes);

    const mounted = fresh('mounted');
    expect(await mounted.startUpload(undefined, { digest: layer.digest, from: home.name })).toBe('mounted');
    expect(await mounted.blobHead(layer.digest)).toMatchObject({ size: layer.size });

    // The named repository does not hold it: the registry opens an upload instead, which serves.
    const declined = fresh('declined');
    const session = await declined.startUpload(undefined, { digest: layer.digest, from: parseRepositoryName(`${API_PREFIX}/nowhere`) });
    expect(session).not.toBe('mounted');
    if (session === 'mounted') return;
    await declined.finishUpload(session, layer.digest, layer.bytes);
    expect(await declined.blobHead(layer.digest)).toMatchObject({ size: layer.size });
  });

  it('finds how far a chunked upload got from any of its Locations, writes only at the latest, and checks the digest', async () => {
    const repository = fresh('chunks');
    const layer = blob(randomBytes(3 * 1024 * 1024));
    const [first, second, third] = [layer.bytes.subarray(0, 1 << 20), layer.bytes.subarray(1 << 20, 2 << 20), layer.bytes.subarray(2 << 20)];
    const opened = await repository.startUpload();
    if (opened === 'mounted') throw new Error('a plain upload answered as a mount');
    const afterFirst = await repository.appendChunk(opened, first);
    const afterSecond = await repository.appendChunk(afterFirst, second);

    // What a retried attempt finds: the bytes held, from the latest Location or one behind it (a heartbeat's)...
    expect(await repository.resumeUpload(afterSecond.location)).toMatchObject({ offset: 2 << 20 });
    const behind = (await repository.resumeUpload(afterFirst.location))!;
    expect(behind.offset).toBe(2 << 20);
    // ...whose signed state the registry refuses to write at: resuming takes the fresh Location the GET gave.
    await expect(repository.appendChunk({ location: afterFirst.location, offset: 2 << 20 }, third)).rejects.toThrow(/answered 416/);

    // Closed under the wrong digest, the registry refuses: nothing lands under either digest.
    const wrong = digestOf(new TextEncoder().encode('not these bytes'));
    const resumed = behind;
    const done = await repository.appendChunk(resumed, third);
    await expect(repository.finishUpload(done, wrong, undefined)).rejects.toThrow(/answered 400/);
    expect(await repository.blobHead(wrong)).toBeNull();

    const again = await repository.startUpload();
    if (again === 'mounted') throw new Error('a plain upload answered as a mount');
    await repository.finishUpload(await repository.appendChunk(again, layer.bytes), layer.digest, undefined);
    const read = await repository.openBlob(layer.digest, 30_000, new AbortController().signal);
    expect(read?.size).toBe(layer.size);
    expect((await buffer(read!.stream)).equals(layer.bytes), 'the bytes read back are the bytes uploaded').toBe(true);
  });
});
