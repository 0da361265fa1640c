// The shape of an image set, and the scenarios of issue 6 (many-small twice:
// replicated while the push runs, and drained as one backlog after it).
//
// A shape says how many images there are and, per layer position (base
// first), how large the layer is and how many images share one variant of it:
// `sharedBy: 1` gives every image its own layer, `sharedBy: 50` makes images
// 0-49 share one layer, 50-99 the next, and so on. Layer content depends only
// on (scenario, position, variant), so a shape always yields the same digests:
// cleanup can find every blob a run created, and generated layers are reused.

export interface LayerShape {
  bytes: number;
  sharedBy: number;
}

export interface ImageSetShape {
  images: number;
  layers: LayerShape[];
}

/**
 * How Ferry hears about the pushes:
 * - `live`: notifications flow while skopeo pushes (what the lag target is about);
 * - `after-push`: they are held until every image is in eastus, then released at
 *   once, so Ferry's wall time covers the same work as the raw and skopeo copies.
 */
export type NotificationTiming = 'live' | 'after-push';

/** What issue 6 expects of Ferry in a scenario, beyond what it expects everywhere (see bench/targets.ts). */
export interface ScenarioTargets {
  /** Ferry's time into a region at most this many times the raw copy's, per copy method. */
  rawRatio?: { 'server-side': number; streamed: number };
  /** Per-image lag (push observed → region replicated), seconds. */
  lagSeconds?: { p50: number; p99: number };
  /** How often the layer most images share may be copied into each region. */
  sharedLayerCopiesPerRegion?: number;
  /** The last image in every region at most this many seconds after the last push into eastus finished. */
  lastImageAfterPushSeconds?: number;
}

export interface Scenario {
  name: string;
  description: string;
  shape: ImageSetShape;
  /** skopeo processes pushing into eastus at once. */
  pushConcurrency: number;
  notifications: NotificationTiming;
  targets: ScenarioTargets;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

const MANY_SMALL: ImageSetShape = {
  images: 500,
  layers: [
    { bytes: 2 * MIB, sharedBy: 100 },
    { bytes: 512 * KIB, sharedBy: 10 },
    { bytes: 64 * KIB, sharedBy: 1 },
  ],
};

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'large',
    description: '3 images with one 1 GiB layer each',
    shape: { images: 3, layers: [{ bytes: GIB, sharedBy: 1 }] },
    pushConcurrency: 3,
    notifications: 'after-push',
    targets: { rawRatio: { 'server-side': 1.1, streamed: 1.25 } },
  },
  {
    name: 'many-small',
    description: '500 images of 3 small layers, base layers shared, replicated while skopeo pushes them as fast as it can',
    shape: MANY_SMALL,
    pushConcurrency: 4,
    notifications: 'live',
    targets: { lagSeconds: { p50: 1, p99: 3 }, lastImageAfterPushSeconds: 5 },
  },
  {
    name: 'many-small-drain',
    description: '500 images of 3 small layers, base layers shared, notified all at once after the push: a backlog to drain',
    shape: MANY_SMALL,
    pushConcurrency: 4,
    notifications: 'after-push',
    targets: {},
  },
  {
    name: 'shared-base',
    description: '50 images sharing a 200 MB base layer',
    shape: {
      images: 50,
      layers: [
        { bytes: 200 * 1000 * 1000, sharedBy: 50 },
        { bytes: 256 * KIB, sharedBy: 1 },
      ],
    },
    pushConcurrency: 4,
    notifications: 'after-push',
    targets: { sharedLayerCopiesPerRegion: 1 },
  },
];

export function scenarioByName(name: string): Scenario {
  const scenario = SCENARIOS.find((candidate) => candidate.name === name);
  if (!scenario) throw new Error(`unknown scenario "${name}"; expected one of ${SCENARIOS.map((s) => s.name).join(', ')} or all`);
  return scenario;
}

const UNITS: Record<string, number> = { '': 1, B: 1, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3, KIB: KIB, MIB: MIB, GIB: GIB };

/** `64KiB`, `200MB`, `1GiB` or a plain byte count. */
export function parseBytes(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? UNITS[match[2]!.toUpperCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`"${text}" is not a size such as 64KiB, 200MB or 1GiB`);
  return Math.round(Number(match[1]) * unit);
}

/** `--layers 2MiB:100,512KiB:10,64KiB:1`: per position, size and how many images share a variant. */
export function parseLayers(text: string): LayerShape[] {
  return text.split(',').map((item) => {
    const [size, sharedBy = '1'] = item.split(':');
    const shared = Number(sharedBy);
    if (!Number.isInteger(shared) || shared < 1) throw new Error(`"${item}": the share count after ':' must be a positive integer`);
    return { bytes: parseBytes(size ?? ''), sharedBy: shared };
  });
}

export interface PlannedLayer {
  /** Same seed ⇒ same bytes ⇒ same digest. */
  seed: string;
  bytes: number;
}

export interface PlannedImage {
  tag: string;
  layers: PlannedLayer[];
}

export function imageTag(index: number): string {
  return `img-${String(index).padStart(4, '0')}`;
}

/** Which layer every image gets, base first. */
export function planImages(scenario: string, shape: ImageSetShape): PlannedImage[] {
  return Array.from({ length: shape.images }, (_, index) => ({
    tag: imageTag(index),
    layers: shape.layers.map((layer, position) => ({
      seed: `${scenario}/${position}/${layer.bytes}/${Math.floor(index / layer.sharedBy)}`,
      bytes: layer.bytes,
    })),
  }));
}

/** Distinct layers of a plan, each once: what a replicator has to move at least once per region. */
export function distinctLayers(images: PlannedImage[]): PlannedLayer[] {
  const bySeed = new Map<string, PlannedLayer>();
  for (const layer of images.flatMap((image) => image.layers)) bySeed.set(layer.seed, layer);
  return [...bySeed.values()];
}

export function describeShape(shape: ImageSetShape): string {
  const layers = shape.layers.map((layer) => `${formatBytes(layer.bytes)}${layer.sharedBy > 1 ? ` shared by ${layer.sharedBy}` : ' unique'}`);
  return `${shape.images} images × [${layers.join(', ')}]`;
}

export function formatBytes(bytes: number): string {
  const units: Array<[number, string]> = [
    [GIB, 'GiB'],
    [MIB, 'MiB'],
    [KIB, 'KiB'],
  ];
  for (const [size, unit] of units) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return bytes >= 1000 * 1000 ? `${+(bytes / 1e6).toFixed(1)} MB` : `${bytes} B`;
}
