// Parsing manifests: the real demo/app ones, and every way a manifest can be refused.
import { describe, expect, it } from 'vitest';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MANIFEST_ACCEPT, OCI_INDEX, OCI_MANIFEST, parseManifest } from '../../domain/manifest';
import { OCI_CONFIG, OCI_LAYER, descriptor, encode, sha256, fakeDigest, v1, v2, amd64, arm64, multi, digests, blob, sharedLayer, expectManifestError } from './manifest-fixtures';

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
