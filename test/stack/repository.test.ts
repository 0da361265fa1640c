// RegionRepository's verbs against a real bucket: the keys Distribution reads,
// written and read back through the layout, on versitygw.
import { describe, expect, it } from 'vitest';
import { StorageRepository } from '../../activities/repository';
import { RegionStorage } from '../../activities/storage';
import { digestOf } from '../../domain/content-digest';
import { parseDigest, parseRepositoryName, parseTag, type Digest } from '../../domain/reference';
import { localConfig, uniqueRepository } from '../support/ferry';

const config = localConfig();
const storage = RegionStorage.connect(config.regions.find((region) => region.name === 'westeurope')!);
const freshRepository = () => new StorageRepository(storage, parseRepositoryName(uniqueRepository('verbs')));

describe('RegionRepository', () => {
  it('puts a manifest as data then revision link, reads it back verified, and skips data already there', async () => {
    const repository = freshRepository();
    const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, at: Date.now() }));
    const digest = digestOf(bytes);
    expect(await repository.getManifest(digest)).toEqual({ found: 'not-linked' });
    await repository.putManifest({ digest, size: bytes.length }, async () => bytes);
    expect(await storage.readLink(storage.layout.revisionLink(repository.name, digest))).toBe(digest);
    expect(await repository.hasManifest(digest)).toBe(true);
    expect(await repository.getManifest(digest)).toEqual({ found: 'ok', bytes: Buffer.from(bytes) });

    const other = freshRepository();
    let read = 0;
    await other.putManifest({ digest, size: bytes.length }, async () => (read++, bytes));
    expect(read).toBe(0);
    expect(await other.hasManifest(digest)).toBe(true);

    await other.unlinkManifest(digest);
    expect(await other.hasManifest(digest)).toBe(false);
    expect(await repository.hasManifest(digest)).toBe(true);
  });

  it('reports a manifest whose data does not hash to its digest as corrupt', async () => {
    const repository = freshRepository();
    const digest = digestOf(new TextEncoder().encode(`meant ${Date.now()}`));
    await repository.putManifest({ digest, size: 3 }, async () => new TextEncoder().encode('bad'));
    expect(await repository.getManifest(digest)).toMatchObject({ found: 'corrupt', actual: digestOf(new TextEncoder().encode('bad')) });
  });

  it('tags, looks tags up by digest, and untags', async () => {
    const repository = freshRepository();
    const [a, b] = [digestOf(new TextEncoder().encode(`a ${Date.now()}`)), digestOf(new TextEncoder().encode(`b ${Date.now()}`))];
    await repository.tag(parseTag('v1'), a);
    await repository.tag(parseTag('latest'), a);
    await repository.tag(parseTag('v2'), b);
    expect(await repository.tagged(parseTag('v1'))).toBe(a);
    expect((await repository.lookup(a)).sort()).toEqual(['latest', 'v1']);
    expect(await storage.readLink(storage.layout.tagIndexLink(repository.name, parseTag('v2'), b))).toBe(b);

    await repository.tag(parseTag('v1'), b);
    expect(await repository.lookup(a)).toEqual(['latest']);
    expect(await repository.untag(parseTag('v1'), a), 'judged on a digest it no longer holds').toBe(false);
    expect(await repository.tagged(parseTag('v1'))).toBe(b);
    expect(await repository.untag(parseTag('v1'), b)).toBe(true);
    expect(await repository.tagged(parseTag('v1'))).toBeNull();
    expect(await repository.lookup(b)).toEqual(['v2']);
  });

  it("puts back a tag its registry pushed while Ferry removed it: the push's index link came after the current link", async () => {
    const repository = freshRepository();
    const [a, b] = [digestOf(new TextEncoder().encode(`judged ${Date.now()}`)), digestOf(new TextEncoder().encode(`pushed ${Date.now()}`))];
    await repository.tag(parseTag('race'), a);
    // Storage times are whole seconds: the push comes in a later one.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // The registry's push has written its index link, not yet its current link, when Ferry removes the tag judged on a.
    await storage.writeLink(storage.layout.tagIndexLink(repository.name, parseTag('race'), b), b);
    expect(await repository.untag(parseTag('race'), a)).toBe(false);
    expect(await repository.tagged(parseTag('race')), "the push's current link put back").toBe(b);
  });

  it('links and unlinks a blob', async () => {
    const repository = freshRepository();
    const digest = digestOf(new TextEncoder().encode(`blob ${Date.now()}`));
    expect(await repository.linksBlob(digest)).toBe(false);
    await repository.linkBlob(digest);
    expect(await repository.linksBlob(digest)).toBe(true);
    await repository.unlinkBlob(digest);
    expect(await repository.linksBlob(digest)).toBe(false);
  });
});

describe('RegionStorage.deleteKeys', () => {
  it('fails when S3 answers 200 but names a key it could not delete', async () => {
    // versitygw's posix backend refuses to delete a "directory" key that still has children.
    const prefix = `${uniqueRepository('delete-errors')}/`;
    await storage.put(`${prefix}dir/child`, new Uint8Array([1]));
    await expect(storage.deleteKeys([`${prefix}dir/`])).rejects.toThrow(/westeurope: 1 key\(s\) not deleted, first .*dir\/: ErrDirectoryNotEmpty/);
    await storage.deleteKeys([`${prefix}dir/child`]);
    expect(await storage.head(`${prefix}dir/child`)).toBeNull();
  });
});
