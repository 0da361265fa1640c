// Issue 6's targets, checked against one scenario's measurements. Every
// scenario: Ferry at least 3× faster than skopeo to the same regions, and the
// worker's peak RSS under 300 MB; plus what the scenario itself declares.
import { compareRegions, type ScenarioResult } from './results';

export const SKOPEO_SPEEDUP = 3;
export const WORKER_PEAK_RSS_MB = 300;

export interface TargetVerdict {
  target: string;
  measured: string;
  met: boolean;
}

const times = (value: number) => `${value.toFixed(2)}×`;
const seconds = (value: number) => `${value.toFixed(2)} s`;

export function evaluateTargets(result: ScenarioResult): TargetVerdict[] {
  const comparisons = compareRegions(result);
  const all = comparisons.find((comparison) => comparison.region === 'all')!;
  const verdicts: TargetVerdict[] = [
    {
      target: `Ferry ≥ ${SKOPEO_SPEEDUP}× faster than skopeo sync (all regions)`,
      measured: `${times(result.skopeo.seconds / result.ferry.seconds)} faster (${seconds(result.ferry.seconds)} vs ${seconds(result.skopeo.seconds)})`,
      met: result.ferry.seconds * SKOPEO_SPEEDUP <= result.skopeo.seconds,
    },
    {
      target: `worker peak RSS < ${WORKER_PEAK_RSS_MB} MB`,
      measured: `${result.ferry.worker.peakRssMB.toFixed(0)} MB`,
      met: result.ferry.worker.peakRssMB < WORKER_PEAK_RSS_MB,
    },
  ];
  const { rawRatio, lagSeconds, sharedLayerCopiesPerRegion } = result.targets;
  if (rawRatio) {
    for (const comparison of comparisons.filter((candidate) => candidate.region !== 'all')) {
      const limit = rawRatio[comparison.method];
      verdicts.push({
        target: `${comparison.region}: Ferry ≤ ${limit}× the raw ${comparison.method} copy`,
        measured: `${times(comparison.ferryOverRaw)} (${seconds(comparison.ferrySeconds)} vs ${seconds(comparison.rawSeconds)})`,
        met: comparison.ferryOverRaw <= limit,
      });
    }
  }
  if (lagSeconds) {
    verdicts.push(
      { target: `lag p50 < ${lagSeconds.p50} s`, measured: seconds(all.lag.p50), met: all.lag.p50 < lagSeconds.p50 },
      { target: `lag p99 < ${lagSeconds.p99} s`, measured: seconds(all.lag.p99), met: all.lag.p99 < lagSeconds.p99 },
    );
  }
  if (sharedLayerCopiesPerRegion !== undefined) {
    for (const bytes of result.ferry.bytes) {
      verdicts.push({
        target: `${bytes.region}: shared base layer copied ${sharedLayerCopiesPerRegion}×`,
        measured: `${bytes.sharedLayerCopies}×`,
        met: bytes.sharedLayerCopies <= sharedLayerCopiesPerRegion,
      });
    }
  }
  return verdicts;
}
