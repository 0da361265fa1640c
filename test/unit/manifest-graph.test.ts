// Resolving a pushed digest's manifest graph from a source's storage, verified.
import { describe, expect, it } from 'vitest';
import { manifestLevels, OCI_INDEX, OCI_MANIFEST, resolveManifestGraph } from '../../domain/manifest';
import { OCI_CONFIG, OCI_LAYER, encode, sha256, fakeDigest, v1, v2, amd64, arm64, multi, digests, blob, sharedLayer, sourceStorage, indexOf, expectGraphError } from './manifest-fixtures';

describe('resolveManifestGraph', () => {
  it('walks the real multi index: children before the index, blobs deduped, configs first', async () => {
    const source = sourceStorage([v1, v2, amd64, arm64, multi]);
    const graph = await resolveManifestGraph(digests.multi, source.readManifest);
    expect(graph.root).toBe(digests.multi);
    expect(graph.rootMediaType).toBe(OCI_INDEX);
    expect(graph.manifests).toEqual([
      {
        digest: digests.amd64,
        mediaType: OCI_MANIFEST,
        size: 401,
        blobDigests: [blob('e6c032b5a234bfaeb1b4513e7113328c6e483f50859cf39b2cccccd43189a909'), blob('3eaef28f8c88d32782eccd367cda519a430fe81898e9c3ee6b5c02ee226dcd57')],
        childDigests: [],
      },
      {
        digest: digests.arm64,
        mediaType: OCI_MANIFEST,
        size: 401,
        blobDigests: [blob('4b20e72f39b56433d7ac8df2ff852606700bf6ef4ce6423b319ae3989356c0e4'), blob('16bbb012b76db8ef663fb0ee5137e669b17e3913c4b5075e7453df4ec54f908b')],
        childDigests: [],
      },
      { digest: digests.multi, mediaType: OCI_INDEX, size: 491, blobDigests: [], childDigests: [digests.amd64, digests.arm64] },
    ]);
    expect(graph.blobs.map((b) => [b.digest.slice(7, 11), b.size, b.mediaType])).toEqual([
      ['e6c0', 321, OCI_CONFIG],
      ['4b20', 321, OCI_CONFIG],
      ['3eae', 136, OCI_LAYER],
      ['16bb', 135, OCI_LAYER],
    ]);
    expect(graph.totalBlobBytes).toBe(321 + 321 + 136 + 135);
    expect(source.reads).toEqual([digests.multi, digests.amd64, digests.arm64]);
  });

  it('resolves a single image to itself and its blobs', async () => {
    const graph = await resolveManifestGraph(digests.v2, sourceStorage([v2]).readManifest);
    expect(graph.manifests.map((m) => m.digest)).toEqual([digests.v2]);
    expect(graph.rootMediaType).toBe(OCI_MANIFEST);
    expect(graph.blobs.map((b) => b.size)).toEqual([392, 140, 135]);
    expect(graph.totalBlobBytes).toBe(667);
  });

  it('leaves foreign layers out of the blobs it copies, unless another image names the same digest as a plain layer', async () => {
    const FOREIGN = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
    const config = { mediaType: OCI_CONFIG, digest: fakeDigest('config'), size: 10 };
    const base = { mediaType: FOREIGN, digest: fakeDigest('windows base'), size: 5_000_000, urls: ['https://mcr.microsoft.com/v2/windows/servercore/blobs/x'] };
    const shared = { mediaType: FOREIGN, digest: fakeDigest('shared'), size: 7, urls: ['https://example.com/shared'] };
    const app = { mediaType: OCI_LAYER, digest: fakeDigest('app'), size: 20 };
    const windows = encode({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [base, shared, app] });
    const linux = encode({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, digest: fakeDigest('config 2') }, layers: [{ mediaType: OCI_LAYER, digest: shared.digest, size: 7 }] });
    const both = indexOf([sha256(windows), sha256(linux)]);
    const graph = await resolveManifestGraph(sha256(both), sourceStorage([windows, linux, both]).readManifest);
    expect(graph.foreignLayers).toEqual([base]);
    expect(graph.blobs.map((blob) => blob.digest)).toEqual([config.digest, fakeDigest('config 2'), shared.digest, app.digest]);
    expect(graph.blobs.every((blob) => blob.urls === undefined)).toBe(true);
    expect(graph.totalBlobBytes).toBe(10 + 10 + 7 + 20);
  });

  it('lists a layer shared by two images once', async () => {
    const both = indexOf([digests.v1, digests.v2]);
    const graph = await resolveManifestGraph(sha256(both), sourceStorage([v1, v2, both]).readManifest);
    expect(graph.blobs.filter((b) => b.digest === sharedLayer)).toHaveLength(1);
    expect(graph.blobs.map((b) => b.size)).toEqual([318, 392, 140, 135]);
    expect(graph.manifests.map((m) => m.blobDigests)).toContainEqual([blob('5a7f57d9adc8fed45b0a26ce86a783302a13d2d632c334b682b4add33a25b8af'), sharedLayer]);
  });

  it('walks a nested index post-order and reads a manifest listed twice only once', async () => {
    const outer = indexOf([digests.multi, digests.amd64, digests.v1]);
    const source = sourceStorage([v1, amd64, arm64, multi, outer]);
    const graph = await resolveManifestGraph(sha256(outer), source.readManifest);
    expect(graph.manifests.map((m) => m.digest)).toEqual([digests.amd64, digests.arm64, digests.multi, digests.v1, sha256(outer)]);
    expect(graph.manifests.at(-1)!.childDigests).toEqual([digests.multi, digests.amd64, digests.v1]);
    expect(source.reads.filter((d) => d === digests.amd64)).toHaveLength(1);
    expect(graph.blobs).toHaveLength(6);
  });

  it('groups a nested index into levels that only refer to earlier ones, the root alone last', async () => {
    const outer = indexOf([digests.multi, digests.amd64, digests.v1]);
    const graph = await resolveManifestGraph(sha256(outer), sourceStorage([v1, amd64, arm64, multi, outer]).readManifest);
    expect(manifestLevels(graph).map((level) => level.map((m) => m.digest))).toEqual([[digests.amd64, digests.arm64, digests.v1], [digests.multi], [sha256(outer)]]);
  });

  it('returns plain JSON that survives the Temporal boundary unchanged', async () => {
    const graph = await resolveManifestGraph(digests.multi, sourceStorage([amd64, arm64, multi]).readManifest);
    expect(JSON.parse(JSON.stringify(graph))).toEqual(graph);
  });

  it('rejects a cycle instead of walking forever', async () => {
    const a = fakeDigest('a');
    const b = fakeDigest('b');
    const storage = sourceStorage([], { [a]: indexOf([b]), [b]: indexOf([a]) });
    await expectGraphError(resolveManifestGraph(a, storage.readManifest), 'MANIFEST_CYCLE', a);
    const self = sourceStorage([v1], { [a]: indexOf([digests.v1, a]) });
    await expectGraphError(resolveManifestGraph(a, self.readManifest), 'MANIFEST_CYCLE', a);
  });

  it('accepts indexes nested 8 deep and rejects 9', async () => {
    const chain = (levels: number) => {
      const manifests: Uint8Array[] = [v1];
      for (let i = 0; i < levels; i++) manifests.push(indexOf([sha256(manifests.at(-1)!)]));
      return { root: sha256(manifests.at(-1)!), ...sourceStorage(manifests) };
    };
    const eight = chain(8);
    expect((await resolveManifestGraph(eight.root, eight.readManifest)).manifests).toHaveLength(9);
    const nine = chain(9);
    await expectGraphError(resolveManifestGraph(nine.root, nine.readManifest), 'GRAPH_TOO_DEEP', 'deeper than 8');
  });

  it('rejects a graph naming more than 10,000 blobs', async () => {
    const layers = Array.from({ length: 10_000 }, (_, i) => ({ mediaType: OCI_LAYER, digest: fakeDigest(`layer ${i}`), size: 1 }));
    const huge = encode({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: fakeDigest('config'), size: 1 }, layers });
    await expectGraphError(resolveManifestGraph(sha256(huge), sourceStorage([huge]).readManifest), 'GRAPH_TOO_LARGE', '10000');
  });

  it('names the child manifest that cannot be parsed', async () => {
    const schema1 = encode({ schemaVersion: 1, name: 'demo/app', fsLayers: [] });
    const index = indexOf([digests.v1, sha256(schema1)]);
    const graph = resolveManifestGraph(sha256(index), sourceStorage([v1, schema1, index]).readManifest);
    await expectGraphError(graph, 'SCHEMA1_UNSUPPORTED', sha256(schema1));
  });

  it('lets a failed read through untouched for the activity to retry', async () => {
    await expect(resolveManifestGraph(digests.multi, sourceStorage([multi]).readManifest)).rejects.toThrow(
      `manifest unknown: ${digests.amd64}`,
    );
  });
});
