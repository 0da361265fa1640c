// The Markdown report of one scenario: the side-by-side table (absolute
// times, throughput, and Ferry's ratios to the raw limit and to skopeo, which
// stay meaningful on a noisy machine), Ferry's own costs (bytes, CPU and
// memory, Temporal work per image), and the targets.
import { profileTable } from './profile';
import { compareRegions, secondsAfterLastPush, type RegionComparison, type ScenarioResult } from './results';
import { describeShape } from './shape';
import { stackCpuTable } from './stack-cpu';
import { evaluateTargets } from './targets';
import { perImage, type TemporalCost } from './temporal-cost';

const MB = 1e6;

function fixed(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** Throughput with enough digits to tell small runs apart. */
function rate(megabytesPerSecond: number): string {
  return `${fixed(megabytesPerSecond, megabytesPerSecond < 10 ? 2 : 0)} MB/s`;
}

function regionHeading(comparison: RegionComparison): string {
  return comparison.region === 'all' ? 'all regions' : `${comparison.region} (${comparison.method})`;
}

function table(header: string[], rows: string[][]): string {
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

const TEMPORAL_FIGURES: Array<[keyof TemporalCost, string]> = [
  ['executions', 'workflow executions'],
  ['historyEvents', 'history events'],
  ['activityTasks', 'activity tasks'],
  ['localActivities', 'local activities (markers)'],
  ['searchAttributeUpserts', 'search-attribute upserts'],
  ['workflowTasks', 'workflow tasks'],
];

function temporalTable(result: ScenarioResult): string {
  const { temporal } = result.ferry;
  if (!temporal) return 'Temporal cost: not counted in this run.';
  const per = perImage(temporal, result.imageSet.images);
  return table(
    ['Temporal (FerryRepository of the run)', ...TEMPORAL_FIGURES.map(([, caption]) => caption)],
    [
      ['total', ...TEMPORAL_FIGURES.map(([figure]) => String(temporal[figure]))],
      ['per image (executions: per push)', ...TEMPORAL_FIGURES.map(([figure]) => fixed(per[figure]))],
    ],
  );
}

/** `executions / events / activity tasks / local activities / upserts / workflow tasks` per image, for the summary. */
function temporalPerImage(result: ScenarioResult): string {
  const { temporal } = result.ferry;
  if (!temporal) return '–';
  const per = perImage(temporal, result.imageSet.images);
  return TEMPORAL_FIGURES.map(([figure]) => fixed(per[figure], 1)).join(' / ');
}

export function markdownReport(result: ScenarioResult): string {
  const comparisons = compareRegions(result);
  const cells = (render: (comparison: RegionComparison) => string) => comparisons.map(render);
  const { ferry } = result;
  const images = result.imageSet.images;
  const timing =
    ferry.notifications === 'live'
      ? `notifications live: Ferry's time starts with the first push into eastus (the push took ${fixed(ferry.pushSeconds, 1)} s)`
      : `notifications held until all ${result.imageSet.images} images were in eastus (push: ${fixed(ferry.pushSeconds, 1)} s, not counted), then released at once`;
  const comparison = table(
    ['', ...cells(regionHeading)],
    [
      ['raw SDK copy', ...cells((c) => `${fixed(c.rawSeconds)} s · ${rate(c.rawMBps)}`)],
      ['skopeo sync', ...cells((c) => `${fixed(c.skopeoSeconds)} s · ${rate(c.skopeoMBps)}`)],
      ['Ferry', ...cells((c) => `${fixed(c.ferrySeconds)} s · ${rate(c.ferryMBps)}`)],
      ['**Ferry ÷ raw**', ...cells((c) => `**${fixed(c.ferryOverRaw)}×**`)],
      ['**Ferry ÷ skopeo**', ...cells((c) => `**${fixed(c.ferryOverSkopeo)}×**`)],
      ['Ferry lag p50 / p95 / p99', ...cells((c) => `${fixed(c.lag.p50)} / ${fixed(c.lag.p95)} / ${fixed(c.lag.p99)} s`)],
    ],
  );
  const bytes = table(
    ['region', 'blobs copied', 'MB copied', 'blobs skipped', 'MB skipped', 'copies of the most shared layer'],
    ferry.bytes.map((b) => [b.region, String(b.blobsCopied), fixed(b.bytesCopied / MB, 1), String(b.blobsSkipped), fixed(b.bytesSkipped / MB, 1), String(b.sharedLayerCopies)]),
  );
  const usage = table(
    ['Ferry process', 'CPU seconds', 'CPU seconds per image', 'RSS at start', 'peak RSS'],
    [
      ['api', fixed(ferry.api.cpuSeconds, 1), fixed(ferry.api.cpuSeconds / images, 3), `${fixed(ferry.api.startRssMB, 0)} MB`, `${fixed(ferry.api.peakRssMB, 0)} MB`],
      ['worker', fixed(ferry.worker.cpuSeconds, 1), fixed(ferry.worker.cpuSeconds / images, 3), `${fixed(ferry.worker.startRssMB, 0)} MB`, `${fixed(ferry.worker.peakRssMB, 0)} MB`],
      [
        'api + worker',
        fixed(ferry.api.cpuSeconds + ferry.worker.cpuSeconds, 1),
        fixed((ferry.api.cpuSeconds + ferry.worker.cpuSeconds) / images, 3),
        `${fixed(ferry.api.startRssMB + ferry.worker.startRssMB, 0)} MB`,
        `${fixed(ferry.api.peakRssMB + ferry.worker.peakRssMB, 0)} MB`,
      ],
    ],
  );
  const targets = table(
    ['target', 'measured', 'met'],
    evaluateTargets(result).map((verdict) => [verdict.target, verdict.measured, verdict.met ? 'yes' : '**no**']),
  );
  return [
    `## ${result.scenario}: ${result.description}`,
    '',
    `Shape: ${describeShape(result.shape)}; ${result.imageSet.blobs} distinct blobs, ${fixed(result.imageSet.bytes / MB, 1)} MB, ` +
      `from eastus into every other region. Run ${result.runId} at ${result.startedAt} on ${result.machine.cpus} CPUs, ` +
      `${result.machine.memoryGB} GB, Node ${result.machine.node}.` +
      (result.configOverrides === undefined ? '' : ` Ferry's config with ${JSON.stringify(result.configOverrides)} merged in.`),
    '',
    `Each row copies the same blobs from eastus into every target region at once; a region's time runs until it holds the whole set. ` +
      `Ferry: ${timing}; a region is done when it announced the last image replicated. ` +
      `The last image was in every region ${fixed(secondsAfterLastPush(ferry))} s after the last push finished.`,
    '',
    comparison,
    '',
    bytes,
    '',
    usage,
    '',
    ...(ferry.stack === undefined ? [] : [stackCpuTable(ferry.stack, images), '']),
    temporalTable(result),
    '',
    targets,
    '',
    ...Object.entries(result.profiles ?? {}).map(([role, hot]) => profileTable(role, hot)),
  ].join('\n');
}

/** One line per scenario: the ratios at a glance, for bench/results/summary.md. */
export function summaryTable(results: ScenarioResult[]): string {
  const rows = results.map((result) => {
    const comparisons = compareRegions(result);
    const all = comparisons.find((comparison) => comparison.region === 'all')!;
    const perRegion = (render: (comparison: RegionComparison) => string) =>
      comparisons.filter((comparison) => comparison.region !== 'all').map((comparison) => `${comparison.region} ${render(comparison)}`).join('<br>');
    const bytes = result.ferry.bytes.map((b) => `${b.region} ${fixed(b.bytesCopied / MB, 0)} / ${fixed(b.bytesSkipped / MB, 0)}`).join('<br>');
    const verdicts = evaluateTargets(result);
    return [
      result.scenario,
      `${fixed(all.ferrySeconds)} s`,
      perRegion((c) => `${fixed(c.ferryOverRaw)}× (${c.method})`),
      `${fixed(all.ferryOverRaw)}×`,
      `${fixed(all.ferryOverSkopeo)}× (${fixed(1 / all.ferryOverSkopeo, 1)}× faster)`,
      `${fixed(all.lag.p50)} / ${fixed(all.lag.p95)} / ${fixed(all.lag.p99)} s`,
      `${fixed(result.ferry.worker.startRssMB, 0)} → ${fixed(result.ferry.worker.peakRssMB, 0)} / ${fixed(result.ferry.api.peakRssMB, 0)} MB`,
      fixed(result.ferry.api.cpuSeconds + result.ferry.worker.cpuSeconds, 1),
      fixed(result.ferry.worker.cpuSeconds / result.imageSet.images, 3),
      temporalPerImage(result),
      bytes,
      `${verdicts.filter((verdict) => verdict.met).length} of ${verdicts.length}`,
    ];
  });
  return table(
    [
      'scenario',
      'Ferry wall',
      'Ferry ÷ raw, per region',
      'Ferry ÷ raw, all',
      'Ferry ÷ skopeo',
      'lag p50 / p95 / p99',
      'worker RSS start → peak / api peak',
      'CPU s (api + worker)',
      'worker CPU s per image',
      'Temporal per image: executions / events / activity tasks / local activities / SA upserts / workflow tasks',
      'MB copied / skipped',
      'targets met',
    ],
    rows,
  );
}
