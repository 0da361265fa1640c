// The real demo/app manifests recorded from a Distribution 2.8 registry, and
// helpers the manifest tests share (manifest-parse and manifest-graph).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
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

export const fixtures = new URL('../fixtures/distribution-2.8/', import.meta.url);
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
}

/** A manifest push notification from the fixtures, with `includereferences: true`. */
export function pushTarget(file: string): { digest: string; size: number; references: Descriptor[] } {
  const envelope = JSON.parse(readFileSync(new URL(`notifications/${file}`, fixtures), 'utf8'));
  return envelope.events[0].target;
}

// skopeo's serialization: compact JSON, keys in this order. With it the
// manifests below are the exact bytes eastus stored (their sha256 is checked).
export const descriptor = ({ mediaType, digest, size, platform }: Descriptor) =>
  platform ? { mediaType, digest, size, platform } : { mediaType, digest, size };

export function imageFromReferences(file: string): string {
  const [config, ...layers] = pushTarget(file).references;
  return JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptor(config!), layers: layers.map(descriptor) });
}

export const encode = (json: string | object) => new TextEncoder().encode(typeof json === 'string' ? json : JSON.stringify(json));
export const sha256 = (bytes: Uint8Array) => parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
export const fakeDigest = (seed: string) => sha256(encode(seed));

export const v1 = encode(imageFromReferences('0003.json'));
export const v2 = encode(imageFromReferences('0007.json'));
export const amd64 = encode(imageFromReferences('0010.json'));
export const arm64 = encode(imageFromReferences('0013.json'));
export const platforms = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux' },
];
export const multi = encode(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: pushTarget('0014.json').references.map((child, i) => descriptor({ ...child, platform: platforms[i]! })),
  }),
);

export const digests = {
  v1: parseDigest('sha256:3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b'),
  v2: parseDigest('sha256:7558a5fe69262baed49fda244168f06d20a282e81efaf46e29eac6cef4c76f8f'),
  amd64: parseDigest('sha256:f1f72c2d375423985053a0a3f2f8a7506ac3b3e73c8c130585290c2b47af9510'),
  arm64: parseDigest('sha256:6bf508eab25626648412492e130fda7aa8f4997fbe66bb5e7bbc10a4cd7b3270'),
  multi: parseDigest('sha256:1194cc5e0b4a00a871179e29011fd111036c728facaa423636d42a0809eee0ca'),
};
export const blob = (hex: string) => parseDigest(`sha256:${hex}`);
export const sharedLayer = blob('a619da87f909e9fe5f89751ea8d01d9c4f8d3c9996c0be5112dbbe672fdb4f42');

/**
 * Source storage as the resolve activity sees it: bytes by digest, verified
 * by sha256 like the activity does, and every read counted.
 */
export function sourceStorage(manifests: Uint8Array[], unverified: Record<string, Uint8Array> = {}) {
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

export function indexOf(children: Digest[], mediaType = OCI_INDEX): Uint8Array {
  return encode({ schemaVersion: 2, mediaType, manifests: children.map((digest) => ({ mediaType: OCI_INDEX, digest, size: 1 })) });
}

export function expectManifestError(action: () => unknown, code: ManifestErrorCode, text?: string): void {
  expect(action).toThrow(ManifestError);
  expect(action).toThrow(expect.objectContaining({ code, ...(text ? { message: expect.stringContaining(text) } : {}) }));
}

export async function expectGraphError(graph: Promise<unknown>, code: ManifestErrorCode, text: string): Promise<void> {
  await expect(graph).rejects.toThrow(ManifestError);
  await expect(graph).rejects.toMatchObject({ code, message: expect.stringContaining(text) });
}

