// Builds OCI image layouts on disk without Docker, for skopeo to push.
//
// A layer is a real gzip'd tar holding one file of `size` pseudo-random bytes.
// The bytes come from AES-CTR keyed by the layer's seed, so two layers with the
// same seed are byte-identical (same digest) and tests can share base layers;
// a layer without a seed gets a random one. Content is streamed to disk, so
// large layers cost disk bandwidth, not memory.
//
// Layout written (OCI image-layout spec):
//   <layoutDir>/oci-layout
//   <layoutDir>/index.json            -> the manifest (or index), tagged <tag>
//   <layoutDir>/blobs/sha256/<hex>    -> layers, config, manifest(s)
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlib } from 'node:zlib';
import { tap, tarChunks } from '../../support/seeded-tar';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** A Windows base layer's type: pullers fetch it from its `urls`, registries do not hold it. */
export const FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export interface LayerSpec {
  /** Bytes of file content inside the tar; the blob is slightly larger (tar headers, gzip framing). */
  size: number;
  /** Same seed and size ⇒ same layer digest. Omit for a unique layer. */
  seed?: string;
  /** A foreign layer (FOREIGN_LAYER, with this URL): in the layout, but no registry is given it. */
  foreignUrl?: string;
}

export interface BlobRef {
  digest: string;
  size: number;
  urls?: string[];
}

export interface Platform {
  os: string;
  architecture: string;
}

interface OciLayout {
  layoutDir: string;
  tag: string;
  /** skopeo source or destination: `oci:<layoutDir>:<tag>`. */
  reference: string;
  manifestDigest: string;
  manifestSize: number;
}

export interface OciImage extends OciLayout {
  configDigest: string;
  configSize: number;
  layers: BlobRef[];
  platform: Platform;
}

export interface OciIndex extends OciLayout {
  images: OciImage[];
}

export interface ImageOptions {
  layers: LayerSpec[];
  architecture?: string;
  os?: string;
  tag?: string;
}

/** A layer whose content depends only on `seed` and `size`, for base layers shared between images. */
export function seededLayer(seed: string, size: number): LayerSpec {
  return { seed, size };
}

/** Builds a single-platform image: gzip'd tar layers, a config with the platform, an OCI manifest. */
export async function buildImage(options: ImageOptions): Promise<OciImage> {
  const platform = { os: options.os ?? 'linux', architecture: options.architecture ?? 'amd64' };
  const tag = options.tag ?? 'latest';
  const layoutDir = await createLayout();
  const layers: BlobRef[] = [];
  const diffIds: string[] = [];
  for (const spec of options.layers) {
    const layer = await writeLayer(layoutDir, spec);
    layers.push(layer.blob);
    diffIds.push(layer.diffId);
  }
  const config = await writeJsonBlob(layoutDir, {
    ...platform,
    // A unique label keeps two images with identical layers distinct.
    config: { Labels: { 'dev.ferry.test.image': randomUUID() } },
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
  const manifest = {
    config: { mediaType: OCI_CONFIG, ...config },
    layers: layers.map((layer) => ({ mediaType: layer.urls === undefined ? OCI_LAYER_GZIP : FOREIGN_LAYER, ...layer })),
  };
  return finishImage(layoutDir, tag, manifest, { config, layers, platform });
}

/** Writes an OCI manifest of `fields` into the layout, tagged `tag`, and describes the image. */
async function finishImage(layoutDir: string, tag: string, fields: object, parts: { config: BlobRef; layers: BlobRef[]; platform: Platform }): Promise<OciImage> {
  const manifest = await writeJsonBlob(layoutDir, { schemaVersion: 2, mediaType: OCI_MANIFEST, ...fields });
  await writeLayoutIndex(layoutDir, { mediaType: OCI_MANIFEST, ...manifest }, tag);
  return {
    layoutDir,
    tag,
    reference: `oci:${layoutDir}:${tag}`,
    manifestDigest: manifest.digest,
    manifestSize: manifest.size,
    configDigest: parts.config.digest,
    configSize: parts.config.size,
    layers: parts.layers,
    platform: parts.platform,
  };
}

/** The OCI empty descriptor's content: the config of an artifact that has none (image-spec manifest.md). */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

/**
 * An OCI artifact (image-spec 1.1): `artifactType`, the empty config, one
 * payload blob, and a `subject` naming the image it is about, tagged as
 * cosign tags a signature (`sha256-<hex>.sig`) unless `tag` says otherwise.
 */
export async function buildArtifact(subject: OciImage, options: { artifactType: string; payload: string; tag?: string }): Promise<OciImage> {
  const layoutDir = await createLayout();
  const tag = options.tag ?? `${subject.manifestDigest.replace(':', '-')}.sig`;
  const config = await writeJsonBlob(layoutDir, {});
  const payload = await writeJsonBlob(layoutDir, options.payload);
  const manifest = {
    artifactType: options.artifactType,
    config: { mediaType: OCI_EMPTY, ...config },
    layers: [{ mediaType: options.artifactType, ...payload }],
    subject: { mediaType: OCI_MANIFEST, digest: subject.manifestDigest, size: subject.manifestSize },
  };
  return finishImage(layoutDir, tag, manifest, { config, layers: [payload], platform: subject.platform });
}

/**
 * A cosign signature of `subject` as cosign writes it under `sha256-<hex>.sig`:
 * one uncompressed simple-signing layer carrying its signature as an
 * annotation, and a config naming that layer as its rootfs. Every signer of
 * one image signs the same payload, so two signers' layers share a digest and
 * differ only in the annotation, as with cosign itself.
 */
export async function buildCosignSignature(subject: OciImage, signer: string): Promise<OciImage> {
  const layoutDir = await createLayout();
  const payload = await writeJsonBlob(layoutDir, {
    critical: { identity: { 'docker-reference': 'ferry.test/app' }, image: { 'docker-manifest-digest': subject.manifestDigest }, type: 'cosign container image signature' },
    optional: null,
  });
  const epoch = '0001-01-01T00:00:00Z';
  const config = await writeJsonBlob(layoutDir, { architecture: '', created: epoch, history: [{ created: epoch }], os: '', rootfs: { type: 'layers', diff_ids: [payload.digest] }, config: {} });
  const layer = {
    mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
    ...payload,
    annotations: { 'dev.cosignproject.cosign/signature': Buffer.from(`signature by ${signer}`).toString('base64') },
  };
  const tag = `${subject.manifestDigest.replace(':', '-')}.sig`;
  return finishImage(layoutDir, tag, { config: { mediaType: OCI_CONFIG, ...config }, layers: [layer] }, { config, layers: [payload], platform: subject.platform });
}

/**
 * The referrers fallback index of `subject` (OCI distribution spec 1.1), as a
 * client attaching `artifacts` of `artifactType` pushes it to a registry
 * without the referrers API: under the tag `sha256-<hex>`.
 */
export function buildReferrersIndex(subject: OciImage, artifacts: OciImage[], artifactType: string): Promise<OciIndex> {
  return buildIndex(artifacts, { tag: subject.manifestDigest.replace(':', '-'), describe: () => ({ artifactType }) });
}

/**
 * Builds a multi-platform OCI index over `images`, in a new layout holding all
 * of their blobs; `describe` gives each image's entry other fields than its platform.
 */
export async function buildIndex(images: OciImage[], options: { tag?: string; describe?: (image: OciImage) => object } = {}): Promise<OciIndex> {
  const tag = options.tag ?? 'latest';
  const layoutDir = await createLayout();
  for (const image of images) {
    for (const blob of [...image.layers, { digest: image.configDigest }, { digest: image.manifestDigest }]) {
      await shareBlob(image.layoutDir, layoutDir, blob.digest);
    }
  }
  const index = await writeJsonBlob(layoutDir, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((image) => ({
      mediaType: OCI_MANIFEST,
      digest: image.manifestDigest,
      size: image.manifestSize,
      ...(options.describe?.(image) ?? { platform: image.platform }),
    })),
  });
  await writeLayoutIndex(layoutDir, { mediaType: OCI_INDEX, ...index }, tag);
  return {
    layoutDir,
    tag,
    reference: `oci:${layoutDir}:${tag}`,
    manifestDigest: index.digest,
    manifestSize: index.size,
    images,
  };
}

async function createLayout(): Promise<string> {
  const layoutDir = await mkdtemp(join(tmpdir(), 'ferry-oci-'));
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return layoutDir;
}

/** The bytes of a blob (or manifest) of a layout. */
export function readLayoutBlob(layoutDir: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(layoutDir, digest));
}

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function writeJsonBlob(layoutDir: string, value: unknown): Promise<BlobRef> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(layoutDir, digest), bytes);
  return { digest, size: bytes.length };
}

async function writeLayoutIndex(layoutDir: string, descriptor: BlobRef & { mediaType: string }, tag: string): Promise<void> {
  const index = {
    schemaVersion: 2,
    manifests: [{ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  await writeFile(join(layoutDir, 'index.json'), JSON.stringify(index));
}

async function shareBlob(fromLayout: string, toLayout: string, digest: string): Promise<void> {
  const from = blobPath(fromLayout, digest);
  const to = blobPath(toLayout, digest);
  try {
    await link(from, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'EXDEV') throw error;
    await copyFile(from, to);
  }
}

/** Streams tar(file of `size` seeded bytes) through gzip into the layout; returns blob digest and diff_id. */
async function writeLayer(layoutDir: string, spec: LayerSpec): Promise<{ blob: BlobRef; diffId: string }> {
  const seed = spec.seed ?? randomBytes(16).toString('hex');
  const tarHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let blobSize = 0;
  const temporary = join(layoutDir, 'blobs', 'sha256', `.layer-${randomUUID()}`);
  await pipeline(
    Readable.from(tarChunks(`ferry/${seed}.bin`, spec.size, seed)),
    tap((chunk) => tarHash.update(chunk)),
    // Level 1: real deflate framing, and fast, since random bytes do not compress anyway.
    createGzip({ level: zlib.Z_BEST_SPEED }),
    tap((chunk) => {
      blobHash.update(chunk);
      blobSize += chunk.length;
    }),
    createWriteStream(temporary),
  );
  const digest = `sha256:${blobHash.digest('hex')}`;
  await rename(temporary, blobPath(layoutDir, digest));
  return { blob: { digest, size: blobSize, ...(spec.foreignUrl === undefined ? {} : { urls: [spec.foreignUrl] }) }, diffId: `sha256:${tarHash.digest('hex')}` };
}
