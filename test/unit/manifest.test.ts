import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  MANIFEST_ACCEPT,
  ManifestError,
  OCI_INDEX,
  OCI_MANIFEST,
  parseManifest,
  resolveManifestGraph,
  type ManifestErrorCode,
} from '../../domain/manifest';
import { parseDigest, type Digest } from '../../domain/reference';

const fixtures = new URL('../fixtures/distribution-2.8/', import.meta.url);
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
}

/** A manifest push notification from the fixtures, with `includereferences: true`. */
function pushTarget(file: string): { digest: string; size: number; references: Descriptor[] } {
  const envelope = JSON.parse(readFileSync(new URL(`notifications/${file}`, fixtures), 'utf8'));
  return envelope.events[0].target;
}

// skopeo's serialization: compact JSON, keys in this order. With it the
// manifests below are the exact bytes eastus stored (their sha256 is checked).
const descriptor = ({ mediaType, digest, size, platform }: Descriptor) =>
  platform ? { mediaType, digest, size, platform } : { mediaType, digest, size };

function imageFromReferences(file: string): string {
  const [config, ...layers] = pushTarget(file).references;
  return JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptor(config!), layers: layers.map(descriptor) });
}

const encode = (json: string | object) => new TextEncoder().encode(typeof json === 'string' ? json : JSON.stringify(json));
const sha256 = (bytes: Uint8Array) => parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
const fakeDigest = (seed: string) => sha256(encode(seed));

const v1 = encode(imageFromReferences('0003.json'));
const v2 = encode(imageFromReferences('0007.json'));
const amd64 = encode(imageFromReferences('0010.json'));
const arm64 = encode(imageFromReferences('0013.json'));
const platforms = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux' },
];
const multi = encode(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: pushTarget('0014.json').references.map((child, i) => descriptor({ ...child, platform: platforms[i]! })),
  }),
);

const digests = {
  v1: parseDigest('sha256:3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b'),
  v2: parseDigest('sha256:7558a5fe69262baed49fda244168f06d20a282e81efaf46e29eac6cef4c76f8f'),
  amd64: parseDigest('sha256:f1f72c2d375423985053a0a3f2f8a7506ac3b3e73c8c130585290c2b47af9510'),
  arm64: parseDigest('sha256:6bf508eab25626648412492e130fda7aa8f4997fbe66bb5e7bbc10a4cd7b3270'),
  multi: parseDigest('sha256:1194cc5e0b4a00a871179e29011fd111036c728facaa423636d42a0809eee0ca'),
};
const blob = (hex: string) => parseDigest(`sha256:${hex}`);
const sharedLayer = blob('a619da87f909e9fe5f89751ea8d01d9c4f8d3c9996c0be5112dbbe672fdb4f42');

/**
 * Source storage as the resolve activity sees it: bytes by digest, verified
 * by sha256 like the activity does, and every read counted.
 */
function sourceStorage(manifests: Uint8Array[], unverified: Record<string, Uint8Array> = {}) {
  const byDigest = new Map<string, Uint8Array>(Object.entries(unverified));
  for (const bytes of manifests) byDigest.set(sha256(bytes), bytes);
  const reads: Digest[] = [];
  const readManifest = async (digest: Digest) => {
    reads.push(digest);
    const bytes = byDigest.get(digest);
    if (!bytes) throw new Error(`manifest unknown: ${digest}`);
    return bytes;
  };
  return { readManifest, reads };
}

function indexOf(children: Digest[], mediaType = OCI_INDEX): Uint8Array {
  return encode({ schemaVersion: 2, mediaType, manifests: children.map((digest) => ({ mediaType: OCI_INDEX, digest, size: 1 })) });
}

function expectManifestError(action: () => unknown, code: ManifestErrorCode, text?: string): void {
  expect(action).toThrow(ManifestError);
  expect(action).toThrow(expect.objectContaining({ code, ...(text ? { message: expect.stringContaining(text) } : {}) }));
}

async function expectGraphError(graph: Promise<unknown>, code: ManifestErrorCode, text: string): Promise<void> {
  await expect(graph).rejects.toThrow(ManifestError);
  await expect(graph).rejects.toMatchObject({ code, message: expect.stringContaining(text) });
}

describe('the real demo/app manifests', () => {
  it('are rebuilt byte for byte from the references their push notifications carry', () => {
    const stored = { v1, v2, amd64, arm64, multi };
    for (const [name, bytes] of Object.entries(stored)) {
      expect(sha256(bytes), name).toBe(digests[name as keyof typeof digests]);
    }
    expect([v1.length, v2.length, amd64.length, arm64.length, multi.length]).toEqual([401, 555, 401, 401, 491]);
  });
});

describe('parseManifest', () => {
  it('asks for all four manifest media types', () => {
    expect(MANIFEST_ACCEPT.split(', ')).toEqual([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX]);
  });

  it('reads an OCI image manifest: config and layers are blobs', () => {
    expect(parseManifest(v1)).toEqual({
      kind: 'image',
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: blob('5a7f57d9adc8fed45b0a26ce86a783302a13d2d632c334b682b4add33a25b8af'), size: 318 },
      layers: [{ mediaType: OCI_LAYER, digest: sharedLayer, size: 140 }],
    });
  });

  it('reads an OCI index: children are manifests with their platform', () => {
    expect(parseManifest(multi)).toEqual({
      kind: 'index',
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: digests.amd64, size: 401, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: OCI_MANIFEST, digest: digests.arm64, size: 401, platform: { os: 'linux', architecture: 'arm64' } },
      ],
    });
  });

  it('reads a Docker schema2 manifest, keeping foreign layers and their urls', () => {
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: fakeDigest('windows'), size: 1_000_000, urls: ['https://mcr.example/layer'] };
    const manifest = parseManifest(
      encode({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: fakeDigest('config'), size: 1469 },
        layers: [foreign, { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: sharedLayer, size: 140 }],
      }),
    );
    expect(manifest.kind).toBe('image');
    expect(manifest.mediaType).toBe(DOCKER_MANIFEST);
    expect(manifest.kind === 'image' && manifest.layers).toEqual([
      foreign,
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: sharedLayer, size: 140 },
    ]);
  });

  it('reads a Docker manifest list as an index, variant included', () => {
    const manifest = parseManifest(
      encode({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST_LIST,
        manifests: [{ mediaType: DOCKER_MANIFEST, digest: digests.v1, size: 401, platform: { architecture: 'arm', os: 'linux', variant: 'v7' } }],
      }),
    );
    expect(manifest).toEqual({
      kind: 'index',
      mediaType: DOCKER_MANIFEST_LIST,
      manifests: [{ mediaType: DOCKER_MANIFEST, digest: digests.v1, size: 401, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }],
    });
  });

  it('tells an index from an image by the manifests field when mediaType is absent, as Distribution does', () => {
    const withoutMediaType = (bytes: Uint8Array) => {
      const { mediaType: _, ...rest } = JSON.parse(new TextDecoder().decode(bytes));
      return encode(rest);
    };
    expect(parseManifest(withoutMediaType(multi))).toMatchObject({ kind: 'index', mediaType: OCI_INDEX });
    expect(parseManifest(withoutMediaType(v1))).toMatchObject({ kind: 'image', mediaType: OCI_MANIFEST });
  });

  it('reads an artifact (artifactType, empty config, subject) as an image and ignores unknown fields', () => {
    const empty = { mediaType: 'application/vnd.oci.empty.v1+json', digest: blob('44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'), size: 2 };
    const signature = parseManifest(
      encode({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        config: empty,
        layers: [{ ...empty, annotations: { 'dev.cosignproject.cosign/signature': 'MEUC' } }],
        subject: { mediaType: OCI_MANIFEST, digest: digests.v1, size: 401 },
        annotations: { 'org.opencontainers.image.created': '2026-11-22T03:56:24Z' },
      }),
    );
    expect(signature).toEqual({
      kind: 'image',
      mediaType: OCI_MANIFEST,
      config: empty,
      layers: [empty],
      subject: { mediaType: OCI_MANIFEST, digest: digests.v1, size: 401 },
    });
  });

  it('rejects a schema1 manifest', () => {
    const schema1 = { schemaVersion: 1, name: 'demo/app', tag: 'v1', architecture: 'amd64', fsLayers: [{ blobSum: sharedLayer }], history: [] };
    expectManifestError(() => parseManifest(encode(schema1)), 'SCHEMA1_UNSUPPORTED');
  });

  it.each([
    ['text that is not JSON', 'not json', 'INVALID_JSON'],
    ['a JSON array', '[]', 'INVALID_JSON'],
    ['a truncated manifest', new TextDecoder().decode(v1).slice(0, 200), 'INVALID_JSON'],
    ['an unknown mediaType', JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example+json' }), 'UNKNOWN_MEDIA_TYPE'],
    ['an unknown schemaVersion', JSON.stringify({ schemaVersion: 3, mediaType: OCI_MANIFEST }), 'UNKNOWN_MEDIA_TYPE'],
  ] as const)('rejects %s', (_, text, code) => {
    expectManifestError(() => parseManifest(encode(text)), code);
  });

  it('rejects bytes that are not UTF-8', () => {
    expectManifestError(() => parseManifest(new Uint8Array([0x7b, 0xff, 0x7d])), 'INVALID_JSON');
  });

  it.each([
    ['layers[0].digest', (m: Record<string, any>) => (m.layers[0].digest = 'sha256:ABC')],
    ['layers[0].digest', (m: Record<string, any>) => (m.layers[0].digest = `sha512:${'a'.repeat(128)}`)],
    ['config.size', (m: Record<string, any>) => (m.config.size = -1)],
    ['config.size', (m: Record<string, any>) => (m.config.size = 1.5)],
    ['config.size', (m: Record<string, any>) => (m.config.size = 2 ** 53)],
    ['config.size', (m: Record<string, any>) => (m.config.size = '318')],
    ['config.mediaType', (m: Record<string, any>) => delete m.config.mediaType],
    ['config', (m: Record<string, any>) => delete m.config],
    ['layers', (m: Record<string, any>) => (m.layers = {})],
    ['layers[0]', (m: Record<string, any>) => (m.layers[0] = 'a619')],
    ['layers[0].urls', (m: Record<string, any>) => (m.layers[0].urls = 'https://example')],
    ['subject.digest', (m: Record<string, any>) => (m.subject = { mediaType: OCI_MANIFEST, size: 1 })],
  ])('rejects a descriptor and names the bad field %s', (field, mutate) => {
    const manifest = JSON.parse(new TextDecoder().decode(v1));
    mutate(manifest);
    expectManifestError(() => parseManifest(encode(manifest)), 'INVALID_DESCRIPTOR', field);
  });

  it('rejects an index child with a bad digest, naming it', () => {
    const index = JSON.parse(new TextDecoder().decode(multi));
    index.manifests[1].digest = 'sha256:6bf508';
    expectManifestError(() => parseManifest(encode(index)), 'INVALID_DESCRIPTOR', 'manifests[1].digest');
  });
});

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
