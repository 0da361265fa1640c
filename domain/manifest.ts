// The manifest graph: what one pushed digest drags along. An image manifest
// names blobs (config + layers); an index names child manifests, which may be
// indexes again. Replication copies the graph bottom-up (post-order), so a
// pull in a target region never meets a manifest whose dependencies are
// missing (registry-spec §4.2, §4.7).
//
// No Node built-ins: workflow code imports these types, and the graph crosses
// the Temporal boundary as plain JSON.
import { parseDigest, InvalidReferenceError, type Digest } from './reference';

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export const MANIFEST_MEDIA_TYPES = [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX] as const;
export type ManifestMediaType = (typeof MANIFEST_MEDIA_TYPES)[number];

/**
 * Every manifest type, for an HTTP `Accept` header. The registry answers 404
 * for an OCI manifest or index the request does not name exactly (§1.3 step 4).
 */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

export function isManifestMediaType(value: unknown): value is ManifestMediaType {
  return (MANIFEST_MEDIA_TYPES as readonly unknown[]).includes(value);
}

/**
 * An OCI content descriptor (image-spec descriptor.md), the one type for a
 * config, a layer (both copied as blobs and linked under `_layers`), an
 * index's child manifest, and a referrer's `subject`.
 */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  /** Layers only: foreign / non-distributable, fetched by pullers from these URLs; registries need not hold it (§4.5). */
  urls?: string[];
  /** Index children only: the platform the child is for. */
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export type ParsedManifest =
  | { kind: 'image'; mediaType: ManifestMediaType; config: Descriptor; layers: Descriptor[]; subject?: Descriptor }
  | { kind: 'index'; mediaType: ManifestMediaType; manifests: Descriptor[]; subject?: Descriptor };

/** A manifest of the graph: its descriptor, and the blobs and children it names. */
export interface ManifestNode extends Descriptor {
  mediaType: ManifestMediaType;
  /** Config and layers (image manifests), each once. */
  blobDigests: Digest[];
  /** Child manifests (indexes), each once. */
  childDigests: Digest[];
}

export interface ManifestGraph {
  root: Digest;
  rootMediaType: ManifestMediaType;
  /** Post-order: every child before its parent, the root last. */
  manifests: ManifestNode[];
  /** Config and layers of every image in the graph, each digest once, configs first; foreign layers not. */
  blobs: Descriptor[];
  /**
   * Foreign layers (`urls` given, e.g. Windows base layers), named by some
   * image and held by no registry in the graph's own right: never copied or
   * checked, so an image that names them replicates like any other.
   */
  foreignLayers: Descriptor[];
  /** Sum of `blobs` sizes: the bytes a region receives. */
  totalBlobBytes: number;
}

export type ManifestErrorCode =
  | 'INVALID_JSON'
  | 'SCHEMA1_UNSUPPORTED'
  | 'UNKNOWN_MEDIA_TYPE'
  | 'INVALID_DESCRIPTOR'
  | 'MANIFEST_CYCLE'
  | 'GRAPH_TOO_DEEP'
  | 'GRAPH_TOO_LARGE';

export class ManifestError extends Error {
  constructor(
    readonly code: ManifestErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** Index levels below the root; multi-arch images use one. */
export const MAX_GRAPH_DEPTH = 8;
export const MAX_GRAPH_BLOBS = 10_000;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses manifest bytes and tells image from index the way Distribution's
 * manifest store does (§1.3 step 3): `schemaVersion: 2` plus `mediaType`;
 * without `mediaType`, a `manifests` field means an OCI index, anything else
 * an OCI manifest. Unknown fields are ignored; artifacts are images.
 */
export function parseManifest(bytes: Uint8Array): ParsedManifest {
  const document = decodeJson(bytes);
  if (document.schemaVersion === 1) {
    throw new ManifestError('SCHEMA1_UNSUPPORTED', 'schema1 manifests are not supported (Distribution v3 cannot serve them)');
  }
  if (document.schemaVersion !== 2) {
    throw new ManifestError('UNKNOWN_MEDIA_TYPE', `unrecognized manifest schemaVersion ${JSON.stringify(document.schemaVersion)}`);
  }
  const mediaType = detectMediaType(document);
  const subject = document.subject == null ? undefined : parseManifestDescriptor(document.subject, 'subject');
  const withSubject = subject === undefined ? {} : { subject };
  if (mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST) {
    const manifests = descriptorList(document.manifests, 'manifests').map((entry, i) =>
      parseManifestDescriptor(entry, `manifests[${i}]`),
    );
    return { kind: 'index', mediaType, manifests, ...withSubject };
  }
  const config = parseBlobDescriptor(document.config, 'config');
  const layers = descriptorList(document.layers, 'layers').map((entry, i) => parseBlobDescriptor(entry, `layers[${i}]`));
  return { kind: 'image', mediaType, config, layers, ...withSubject };
}

function decodeJson(bytes: Uint8Array): JsonObject {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ManifestError('INVALID_JSON', `manifest is not UTF-8 JSON: ${(error as Error).message}`);
  }
  if (!isObject(document)) throw new ManifestError('INVALID_JSON', 'manifest is not a JSON object');
  return document;
}

function detectMediaType(document: JsonObject): ManifestMediaType {
  const { mediaType } = document;
  if (mediaType === undefined || mediaType === '') {
    return document.manifests === undefined ? OCI_MANIFEST : OCI_INDEX;
  }
  if (!isManifestMediaType(mediaType)) {
    throw new ManifestError('UNKNOWN_MEDIA_TYPE', `unrecognized manifest mediaType ${JSON.stringify(mediaType)}`);
  }
  return mediaType;
}

// A missing list is an empty one: Distribution stores such manifests, and a
// replicator copies what the source serves rather than judging it.
function descriptorList(value: unknown, field: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidDescriptor(field, 'must be an array');
  return value;
}

/** A config or layer descriptor: `urls` kept when given. */
function parseBlobDescriptor(value: unknown, field: string): Descriptor {
  const descriptor = parseDescriptor(value, field);
  const urls = (value as JsonObject).urls;
  if (urls === undefined || urls === null) return descriptor;
  if (!Array.isArray(urls) || !urls.every((url) => typeof url === 'string')) {
    throw invalidDescriptor(`${field}.urls`, 'must be an array of strings');
  }
  return urls.length === 0 ? descriptor : { ...descriptor, urls };
}

/** A child or subject descriptor: `platform` kept when well-formed. */
function parseManifestDescriptor(value: unknown, field: string): Descriptor {
  const descriptor = parseDescriptor(value, field);
  const platform = parsePlatform((value as JsonObject).platform);
  return platform === undefined ? descriptor : { ...descriptor, platform };
}

function parseDescriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) throw invalidDescriptor(field, 'must be an object');
  const { digest, size, mediaType } = value;
  if (typeof mediaType !== 'string') throw invalidDescriptor(`${field}.mediaType`, 'must be a string');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalidDescriptor(`${field}.size`, `must be a non-negative integer, got ${JSON.stringify(size)}`);
  }
  try {
    return { digest: parseDigest(digest), size, mediaType };
  } catch (error) {
    if (error instanceof InvalidReferenceError) throw invalidDescriptor(`${field}.digest`, error.message);
    throw error;
  }
}

// The platform only helps a client pick a child; replication never depends on
// it, so a malformed one is dropped rather than failing the image.
function parsePlatform(value: unknown): Platform | undefined {
  if (!isObject(value)) return undefined;
  const { os, architecture, variant } = value;
  if (typeof os !== 'string' || typeof architecture !== 'string') return undefined;
  return typeof variant === 'string' ? { os, architecture, variant } : { os, architecture };
}

function invalidDescriptor(field: string, reason: string): ManifestError {
  return new ManifestError('INVALID_DESCRIPTOR', `manifest field ${field} ${reason}`);
}

/**
 * The graph's manifests in levels: image manifests first, then each index once
 * every child of it is in an earlier level, so the root is alone in the last.
 * Manifests of one level do not refer to each other and may be written together.
 */
export function manifestLevels(graph: ManifestGraph): ManifestNode[][] {
  const depth = new Map<Digest, number>();
  const levels: ManifestNode[][] = [];
  // Post-order: every child's depth is known before its parent's.
  for (const manifest of graph.manifests) {
    const level = manifest.childDigests.reduce((deepest, child) => Math.max(deepest, depth.get(child)! + 1), 0);
    depth.set(manifest.digest, level);
    (levels[level] ??= []).push(manifest);
  }
  return levels;
}

/**
 * Reads the manifest graph under `root`: each manifest once, children before
 * parents. `readManifest` returns the stored bytes of a digest, already
 * verified against it.
 */
export async function resolveManifestGraph(
  root: Digest,
  readManifest: (digest: Digest) => Promise<Uint8Array>,
): Promise<ManifestGraph> {
  const manifests: ManifestNode[] = [];
  const configs = new Map<Digest, Descriptor>();
  const layers = new Map<Digest, Descriptor>();
  /** Digests some image names without `urls`: held by the source and copied. */
  const plain = new Set<Digest>();
  const visited = new Set<Digest>();

  // Children are read one after another: the order of `manifests` stays
  // deterministic, and an index of many platforms does not burst the source.
  async function visit(digest: Digest, ancestors: readonly Digest[]): Promise<ManifestMediaType> {
    if (ancestors.includes(digest)) {
      throw new ManifestError('MANIFEST_CYCLE', `manifest ${digest} lists itself through ${ancestors.join(' -> ')}`);
    }
    if (ancestors.length > MAX_GRAPH_DEPTH) {
      throw new ManifestError('GRAPH_TOO_DEEP', `manifest ${digest} is nested deeper than ${MAX_GRAPH_DEPTH} indexes`);
    }
    const bytes = await readManifest(digest);
    const manifest = parseWithContext(digest, bytes);
    const node: ManifestNode = { digest, mediaType: manifest.mediaType, size: bytes.length, blobDigests: [], childDigests: [] };
    if (manifest.kind === 'index') {
      node.childDigests = unique(manifest.manifests.map((child) => child.digest));
      for (const child of node.childDigests) {
        if (visited.has(child)) continue;
        await visit(child, [...ancestors, digest]);
      }
    } else {
      addBlob(configs, manifest.config);
      for (const layer of manifest.layers) addBlob(layers, layer);
      node.blobDigests = unique([manifest.config, ...manifest.layers].map((blob) => blob.digest));
    }
    visited.add(digest);
    manifests.push(node);
    return manifest.mediaType;
  }

  function addBlob(into: Map<Digest, Descriptor>, blob: Descriptor): void {
    if (blob.urls === undefined) plain.add(blob.digest);
    if (configs.has(blob.digest) || layers.has(blob.digest)) return;
    into.set(blob.digest, blob);
    if (configs.size + layers.size > MAX_GRAPH_BLOBS) {
      throw new ManifestError('GRAPH_TOO_LARGE', `manifest graph of ${root} names more than ${MAX_GRAPH_BLOBS} blobs`);
    }
  }

  const rootMediaType = await visit(root, []);
  const all = [...configs.values(), ...layers.values()];
  // A digest some image names as a plain layer is copied, even if another names it foreign.
  const blobs = all.filter((blob) => plain.has(blob.digest)).map(({ urls: _foreign, ...blob }) => blob);
  const foreignLayers = all.filter((blob) => !plain.has(blob.digest));
  const totalBlobBytes = blobs.reduce((sum, blob) => sum + blob.size, 0);
  return { root, rootMediaType, manifests, blobs, foreignLayers, totalBlobBytes };
}

function parseWithContext(digest: Digest, bytes: Uint8Array): ParsedManifest {
  try {
    return parseManifest(bytes);
  } catch (error) {
    if (error instanceof ManifestError) throw new ManifestError(error.code, `manifest ${digest}: ${error.message}`);
    throw error;
  }
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}
