// What one scenario run measured: written as JSON, turned into the Markdown
// table (bench/report.ts), the chart (bench/chart.ts) and the verdict on
// issue 6's targets (bench/targets.ts).
import type { ProcessUsage } from './processes';
import type { HotFunction } from './profile';
import type { StackCpu } from './stack-cpu';
import type { CopyMethod } from './raw-copy';
import type { ImageSetShape, NotificationTiming, ScenarioTargets } from './shape';
import { distribution, megabytesPerSecond, type Distribution } from './stats';
import type { TemporalCost } from './temporal-cost';

export interface RegionTiming {
  region: string;
  method: CopyMethod;
  /** From the phase's start until the region held the whole image set. */
  seconds: number;
}

/** One way of getting the image set from eastus into every target region, all regions at once. */
export interface PhaseTiming {
  /** Until the last region was done. */
  seconds: number;
  regions: RegionTiming[];
}

export interface RegionBytes {
  region: string;
  blobsCopied: number;
  bytesCopied: number;
  blobsSkipped: number;
  bytesSkipped: number;
  /** Copies into this region of the layer the most images share. */
  sharedLayerCopies: number;
}

export interface FerryRun extends PhaseTiming {
  notifications: NotificationTiming;
  /** How long skopeo took to push the set into eastus (inside `seconds` when notifications are live). */
  pushSeconds: number;
  /** Per image, push observed → region replicated (Ferry's own timestamps), by region. */
  lagSeconds: Record<string, number[]>;
  api: ProcessUsage;
  worker: ProcessUsage;
  /** Every stack process's CPU during the phase; absent from results older than the count. */
  stack?: StackCpu;
  bytes: RegionBytes[];
  /** The measured repository's workflow executions and their histories; absent from results older than the count. */
  temporal?: TemporalCost;
}

export interface ScenarioResult {
  scenario: string;
  description: string;
  shape: ImageSetShape;
  targets: ScenarioTargets;
  runId: string;
  startedAt: string;
  machine: { cpus: number; memoryGB: number; node: string };
  imageSet: { images: number; blobs: number; bytes: number };
  raw: PhaseTiming;
  skopeo: PhaseTiming;
  ferry: FerryRun;
  /** With --config: what the run merged into Ferry's config. */
  configOverrides?: Record<string, unknown>;
  /** With --profile: where each Ferry process spent its CPU (whole process lifetime). */
  profiles?: Record<string, HotFunction[]>;
}

export interface RegionComparison {
  region: string;
  method: CopyMethod;
  rawSeconds: number;
  skopeoSeconds: number;
  ferrySeconds: number;
  rawMBps: number;
  skopeoMBps: number;
  ferryMBps: number;
  /** Ferry's time over the raw copy's: 1 is the limit, higher is slower. */
  ferryOverRaw: number;
  /** Ferry's time over skopeo's: below 1/3 meets "3× faster". */
  ferryOverSkopeo: number;
  lag: Distribution;
}

/** Side by side per region, and for the whole run (`region: 'all'`, slowest method). */
export function compareRegions(result: ScenarioResult): RegionComparison[] {
  const bytes = result.imageSet.bytes;
  const row = (region: string, method: CopyMethod, raw: number, skopeo: number, ferry: number, lags: number[]): RegionComparison => ({
    region,
    method,
    rawSeconds: raw,
    skopeoSeconds: skopeo,
    ferrySeconds: ferry,
    rawMBps: megabytesPerSecond(bytes, raw),
    skopeoMBps: megabytesPerSecond(bytes, skopeo),
    ferryMBps: megabytesPerSecond(bytes, ferry),
    ferryOverRaw: ferry / raw,
    ferryOverSkopeo: ferry / skopeo,
    lag: distribution(lags),
  });
  const seconds = (phase: PhaseTiming, region: string) => phase.regions.find((timing) => timing.region === region)!.seconds;
  const regions = result.ferry.regions.map((timing) =>
    row(timing.region, timing.method, seconds(result.raw, timing.region), seconds(result.skopeo, timing.region), timing.seconds, result.ferry.lagSeconds[timing.region] ?? []),
  );
  const slowest = result.ferry.regions.some((timing) => timing.method === 'streamed') ? 'streamed' : 'server-side';
  return [
    ...regions,
    row('all', slowest, result.raw.seconds, result.skopeo.seconds, result.ferry.seconds, Object.values(result.ferry.lagSeconds).flat()),
  ];
}

/** From the last push into eastus finishing until the last region held the last image. */
export function secondsAfterLastPush(ferry: FerryRun): number {
  // Live, Ferry's time starts with the first push; held, once the push has finished.
  return ferry.notifications === 'live' ? ferry.seconds - ferry.pushSeconds : ferry.seconds;
}
