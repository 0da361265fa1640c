import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chartSvg, niceCeiling } from '../../bench/chart';
import { markdownReport, summaryTable } from '../../bench/report';
import { compareRegions, type ScenarioResult } from '../../bench/results';
import { evaluateTargets } from '../../bench/targets';

function result(overrides: Partial<ScenarioResult> = {}): ScenarioResult {
  return {
    scenario: 'large',
    description: '3 images with one 1 GiB layer each',
    shape: { images: 3, layers: [{ bytes: 1024 ** 3, sharedBy: 1 }] },
    targets: { rawRatio: { 'server-side': 1.1, streamed: 1.25 } },
    runId: 'test',
    startedAt: '2026-01-01T00:00:00.000Z',
    machine: { cpus: 2, memoryGB: 24, node: '20.19.0' },
    imageSet: { images: 3, blobs: 9, bytes: 3_000_000_000 },
    raw: {
      seconds: 20,
      regions: [
        { region: 'westeurope', method: 'server-side', seconds: 10 },
        { region: 'southeastasia', method: 'streamed', seconds: 20 },
      ],
    },
    skopeo: {
      seconds: 120,
      regions: [
        { region: 'westeurope', method: 'server-side', seconds: 110 },
        { region: 'southeastasia', method: 'streamed', seconds: 120 },
      ],
    },
    ferry: {
      seconds: 30,
      regions: [
        { region: 'westeurope', method: 'server-side', seconds: 15 },
        { region: 'southeastasia', method: 'streamed', seconds: 24 },
      ],
      notifications: 'after-push',
      pushSeconds: 40,
      lagSeconds: { westeurope: [5, 10, 15], southeastasia: [8, 16, 24] },
      api: { cpuSeconds: 1, startRssMB: 100, peakRssMB: 120 },
      worker: { cpuSeconds: 40, startRssMB: 200, peakRssMB: 250 },
      bytes: [
        { region: 'southeastasia', blobsCopied: 6, bytesCopied: 3e9, blobsSkipped: 0, bytesSkipped: 0, sharedLayerCopies: 1 },
        { region: 'westeurope', blobsCopied: 6, bytesCopied: 3e9, blobsSkipped: 0, bytesSkipped: 0, sharedLayerCopies: 1 },
      ],
    },
    ...overrides,
  };
}

describe('bench comparisons', () => {
  it('puts Ferry beside the raw copy and skopeo per region and for the whole run', () => {
    const [westeurope, southeastasia, all] = compareRegions(result());
    expect(westeurope).toMatchObject({ region: 'westeurope', ferryOverRaw: 1.5, ferryMBps: 200 });
    expect(southeastasia).toMatchObject({ region: 'southeastasia', method: 'streamed', ferryOverRaw: 1.2, ferryOverSkopeo: 0.2 });
    expect(all).toMatchObject({ region: 'all', method: 'streamed', ferryOverRaw: 1.5, ferryOverSkopeo: 0.25 });
    expect(all!.lag).toMatchObject({ count: 6, max: 24 });
  });

  it('judges each target of the scenario and the ones every scenario has', () => {
    const verdicts = Object.fromEntries(evaluateTargets(result()).map((verdict) => [verdict.target, verdict.met]));
    expect(verdicts).toEqual({
      'Ferry ≥ 3× faster than skopeo sync (all regions)': true,
      'worker peak RSS < 300 MB': true,
      'westeurope: Ferry ≤ 1.1× the raw server-side copy': false,
      'southeastasia: Ferry ≤ 1.25× the raw streamed copy': true,
    });
  });

  it('checks lag percentiles and shared-layer copies where a scenario asks for them', () => {
    const many = result({ targets: { lagSeconds: { p50: 1, p99: 30 }, sharedLayerCopiesPerRegion: 1 } });
    many.ferry.bytes[0]!.sharedLayerCopies = 4;
    const verdicts = evaluateTargets(many).map((verdict) => [verdict.target, verdict.measured, verdict.met]);
    expect(verdicts).toContainEqual(['lag p50 < 1 s', '12.50 s', false]);
    expect(verdicts).toContainEqual(['lag p99 < 30 s', '23.60 s', true]);
    expect(verdicts).toContainEqual(['southeastasia: shared base layer copied 1×', '4×', false]);
  });

  it("judges Temporal's budget per push and per image when the run counted it", () => {
    const counted = result();
    counted.ferry.temporal = { executions: 9, historyEvents: 474, activityTasks: 60, localActivities: 3, searchAttributeUpserts: 81, workflowTasks: 45 };
    const verdicts = evaluateTargets(counted).map((verdict) => [verdict.target, verdict.measured, verdict.met]);
    expect(verdicts).toContainEqual(['≤ 1 workflow execution per push (budget for 3 blobs × 2 regions)', '3.00 (9 for 3 images)', false]);
    expect(verdicts).toContainEqual(['≤ 20 history events per image (budget for 3 blobs × 2 regions)', '158.0', false]);
    counted.ferry.temporal = { executions: 3, historyEvents: 54, activityTasks: 6, localActivities: 0, searchAttributeUpserts: 0, workflowTasks: 9 };
    expect(evaluateTargets(counted).filter((verdict) => verdict.target.includes('budget')).every((verdict) => verdict.met)).toBe(true);
  });

  it('compares with skopeo only when notifications were held, and judges a live run by its tail after the push', () => {
    const live = result({ targets: { lagSeconds: { p50: 1, p99: 3 }, lastImageAfterPushSeconds: 5 } });
    live.ferry = { ...live.ferry, notifications: 'live', seconds: 44, pushSeconds: 40 };
    const verdicts = evaluateTargets(live).map((verdict) => [verdict.target, verdict.measured, verdict.met]);
    expect(verdicts.map(([target]) => target)).not.toContain('Ferry ≥ 3× faster than skopeo sync (all regions)');
    expect(verdicts).toContainEqual(['last image replicated ≤ 5 s after the last push', '4.00 s', true]);
    live.ferry.seconds = 46;
    expect(evaluateTargets(live).find((verdict) => verdict.target.startsWith('last image'))?.met).toBe(false);
  });

  it('reports CPU seconds per image and the Temporal cost per image', () => {
    const counted = result();
    counted.ferry.temporal = { executions: 3, historyEvents: 54, activityTasks: 6, localActivities: 0, searchAttributeUpserts: 3, workflowTasks: 9 };
    const report = markdownReport(counted);
    expect(report).toContain('| worker | 40.0 | 13.333 | 200 MB | 250 MB |');
    expect(report).toContain('| total | 3 | 54 | 6 | 0 | 3 | 9 |');
    expect(report).toContain('| per image (executions: per push) | 1.00 | 18.00 | 2.00 | 0.00 | 1.00 | 3.00 |');
    expect(report).toContain('The last image was in every region 30.00 s after the last push finished.');
    expect(summaryTable([counted])).toContain('| 41.0 | 13.333 | 1.0 / 18.0 / 2.0 / 0.0 / 1.0 / 3.0 |');
  });

  it('still renders results from before the Temporal count', () => {
    const older = result();
    expect(older.ferry.temporal).toBeUndefined();
    expect(markdownReport(older)).toContain('Temporal cost: not counted in this run.');
    expect(summaryTable([older])).toContain('| 41.0 | 13.333 | – |');
  });

  it('renders every committed result in bench/results, whatever version of the bench wrote it', () => {
    const dir = new URL('../../bench/results/', import.meta.url);
    const committed = readdirSync(dir)
      .filter((name) => name.endsWith('.json'))
      .map((name) => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as ScenarioResult);
    expect(committed.length).toBeGreaterThan(0);
    for (const each of committed) expect(markdownReport(each)).toContain(`## ${each.scenario}:`);
    expect(summaryTable(committed).split('\n')).toHaveLength(2 + committed.length);
  });

  it('reports ratios in the Markdown table and the summary', () => {
    const report = markdownReport(result());
    expect(report).toContain('| **Ferry ÷ raw** | **1.50×** | **1.20×** | **1.50×** |');
    expect(report).toContain('| **Ferry ÷ skopeo** | **0.14×** | **0.20×** | **0.25×** |');
    expect(report).toContain('| westeurope: Ferry ≤ 1.1× the raw server-side copy | 1.50× (15.00 s vs 10.00 s) | **no** |');
    expect(summaryTable([result()])).toContain('| large | 30.00 s | westeurope 1.50× (server-side)<br>southeastasia 1.20× (streamed) | 1.50× | 0.25× (4.0× faster) |');
  });

  it('draws both panels of the chart', () => {
    const svg = chartSvg(result());
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('>southeastasia</text>');
    expect(svg).toContain('Ferry ÷ raw 1.50×');
    expect(svg.match(/<polyline/g)).toHaveLength(2);
  });

  it('rounds axis maxima up to 1, 2 or 5 times a power of ten', () => {
    expect(niceCeiling(0.7)).toBe(1);
    expect(niceCeiling(13)).toBe(20);
    expect(niceCeiling(420)).toBe(500);
    expect(niceCeiling(0)).toBe(1);
  });
});
