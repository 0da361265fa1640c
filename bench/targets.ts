// Issue 6's targets, checked against one scenario's measurements. Every
// scenario: the worker's peak RSS under 300 MB, and Temporal's budget of
// DESIGN.md ("Cost of one push") where the run counted it. Where Ferry hears
// of the pushes once they are all in eastus, its time covers the same work as
// skopeo's: there it must be at least 3× faster. Live, its time includes the
// push itself, so the scenario's lag and last-image targets judge it instead.
// Plus what the scenario itself declares.
import { compareRegions, secondsAfterLastPush, type ScenarioResult } from './results';
import { perImage } from './temporal-cost';

export const SKOPEO_SPEEDUP = 3;
export const WORKER_PEAK_RSS_MB = 300;
/** DESIGN.md's budget, stated for an image of 3 blobs into 2 target regions. */
export const EXECUTIONS_PER_PUSH = 1;
export const HISTORY_EVENTS_PER_IMAGE = 20;

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
  const verdicts: TargetVerdict[] = [];
  if (result.ferry.notifications === 'after-push') {
    verdicts.push({
      target: `Ferry ≥ ${SKOPEO_SPEEDUP}× faster than skopeo sync (all regions)`,
      measured: `${times(result.skopeo.seconds / result.ferry.seconds)} faster (${seconds(result.ferry.seconds)} vs ${seconds(result.skopeo.seconds)})`,
      met: result.ferry.seconds * SKOPEO_SPEEDUP <= result.skopeo.seconds,
    });
  }
  verdicts.push({
    target: `worker peak RSS < ${WORKER_PEAK_RSS_MB} MB`,
    measured: `${result.ferry.worker.peakRssMB.toFixed(0)} MB`,
    met: result.ferry.worker.peakRssMB < WORKER_PEAK_RSS_MB,
  });
  if (result.ferry.temporal) {
    const cost = perImage(result.ferry.temporal, result.imageSet.images);
    verdicts.push(
      {
        target: `≤ ${EXECUTIONS_PER_PUSH} workflow execution per push (budget for 3 blobs × 2 regions)`,
        measured: `${cost.executions.toFixed(2)} (${result.ferry.temporal.executions} for ${result.imageSet.images} images)`,
        met: cost.executions <= EXECUTIONS_PER_PUSH,
      },
      {
        target: `≤ ${HISTORY_EVENTS_PER_IMAGE} history events per image (budget for 3 blobs × 2 regions)`,
        measured: cost.historyEvents.toFixed(1),
        met: cost.historyEvents <= HISTORY_EVENTS_PER_IMAGE,
      },
    );
  }
  const { rawRatio, lagSeconds, sharedLayerCopiesPerRegion, lastImageAfterPushSeconds } = result.targets;
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
  if (lastImageAfterPushSeconds !== undefined) {
    const after = secondsAfterLastPush(result.ferry);
    verdicts.push({ target: `last image replicated ≤ ${lastImageAfterPushSeconds} s after the last push`, measured: seconds(after), met: after <= lastImageAfterPushSeconds });
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
