// Generates a scenario's image set as one OCI image layout on disk (every
// image a tag of the layout, blobs stored once), for skopeo to push.
//
// A layer is a gzip'd tar of one file of AES-CTR bytes keyed by the layer's
// seed (support/seeded-tar.ts, as the tests' images), so content is
// incompressible and identical seeds give identical digests. Configs and
// manifests are deterministic too, so a shape always yields the same set of
// blobs: the layout is kept under .stack/bench/images/ and reused by the next
// run of the same shape (1 GiB layers take a while to generate).
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlib } from 'node:zlib';
import { tap, tarChunks } from '../support/seeded-tar';
import { distinctLayers, type PlannedImage, type PlannedLayer } from './shape';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface Blob {
  digest: string;
  size: number;
}

export interface GeneratedImage {
  tag: string;
  manifest: Blob;
  config: Blob;
  layers: Blob[];
}

export interface ImageSet {
  layoutDir: string;
  images: GeneratedImage[];
  /** Every distinct blob object (layers, configs, manifests): what lands under blobs/ in a bucket. */
  blobs: Blob[];
}

const SET_FILE = 'image-set.json';

/** The layout for `images`, generated into `layoutDir` unless an earlier run left it complete there. */
export async function imageSet(layoutDir: string, images: PlannedImage[]): Promise<ImageSet> {
  const setFile = join(layoutDir, SET_FILE);
  if (existsSync(setFile)) return JSON.parse(await readFile(setFile, 'utf8')) as ImageSet;
  await rm(layoutDir, { recursive: true, force: true });
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const layers = new Map<string, Blob & { diffId: string }>();
  for (const layer of distinctLayers(images)) layers.set(layer.seed, await writeLayer(layoutDir, layer));

  const generated: GeneratedImage[] = [];
  for (const image of images) {
    const imageLayers = image.layers.map((layer) => layers.get(layer.seed)!);
    const config = await writeJsonBlob(layoutDir, {
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { 'dev.ferry.bench.image': image.tag } },
      rootfs: { type: 'layers', diff_ids: imageLayers.map((layer) => layer.diffId) },
    });
    const manifest = await writeJsonBlob(layoutDir, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, ...config },
      layers: imageLayers.map(({ digest, size }) => ({ mediaType: OCI_LAYER_GZIP, digest, size })),
    });
    generated.push({ tag: image.tag, manifest, config, layers: imageLayers.map(({ digest, size }) => ({ digest, size })) });
  }
  await writeFile(
    join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: generated.map((image) => ({
        mediaType: OCI_MANIFEST,
        ...image.manifest,
        annotations: { 'org.opencontainers.image.ref.name': image.tag },
      })),
    }),
  );
  const set: ImageSet = { layoutDir, images: generated, blobs: uniqueBlobs(generated) };
  await writeFile(setFile, JSON.stringify(set));
  return set;
}

function uniqueBlobs(images: GeneratedImage[]): Blob[] {
  const byDigest = new Map<string, Blob>();
  for (const image of images) {
    for (const blob of [...image.layers, image.config, image.manifest]) byDigest.set(blob.digest, blob);
  }
  return [...byDigest.values()];
}

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function writeJsonBlob(layoutDir: string, value: unknown): Promise<Blob> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(layoutDir, digest), bytes);
  return { digest, size: bytes.length };
}

/** Streams tar(one file of seeded bytes) through gzip into the layout; returns the blob and its diff_id. */
async function writeLayer(layoutDir: string, layer: PlannedLayer): Promise<Blob & { diffId: string }> {
  const tarHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let size = 0;
  const temporary = join(layoutDir, 'blobs', 'sha256', '.layer-in-progress');
  await pipeline(
    Readable.from(tarChunks(`bench/${layer.seed.replaceAll('/', '-')}.bin`, layer.bytes, layer.seed)),
    tap((chunk) => tarHash.update(chunk)),
    // Level 1: real deflate framing, and fast, since random bytes do not compress anyway.
    createGzip({ level: zlib.Z_BEST_SPEED }),
    tap((chunk) => {
      blobHash.update(chunk);
      size += chunk.length;
    }),
    createWriteStream(temporary),
  );
  const digest = `sha256:${blobHash.digest('hex')}`;
  await rename(temporary, blobPath(layoutDir, digest));
  return { digest, size, diffId: `sha256:${tarHash.digest('hex')}` };
}

/** The layer digest that appears in the most images (the first such layer on a tie). */
export function mostSharedLayer(images: GeneratedImage[]): string {
  const counts = new Map<string, number>();
  for (const layer of images.flatMap((image) => image.layers)) counts.set(layer.digest, (counts.get(layer.digest) ?? 0) + 1);
  let best = '';
  for (const [digest, count] of counts) if (count > (counts.get(best) ?? 0)) best = digest;
  return best;
}
