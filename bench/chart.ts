// The chart of one scenario, drawn as SVG and turned into PNG by headless
// Chromium (installed by stack/stack.sh): left, the distribution of per-image
// lag in each region (share of images replicated within x seconds); right,
// throughput per region of the raw copy, skopeo and Ferry.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { compareRegions, type ScenarioResult } from './results';

export const CHART_WIDTH = 1100;
export const CHART_HEIGHT = 460;

const PANEL = { top: 70, height: 300, lagLeft: 70, lagWidth: 420, barsLeft: 620, barsWidth: 440 };
const REGION_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
const PHASE_COLORS = { raw: '#7f7f7f', skopeo: '#ff7f0e', ferry: '#1f77b4' };

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (char) => `&#${char.charCodeAt(0)};`);
}

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${escapeXml(content)}</text>`;
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((candidate) => candidate >= value)!;
}

function axes(left: number, width: number, max: number, label: string, yLabel: string, yTicks: Array<[number, string]>): string[] {
  const bottom = PANEL.top + PANEL.height;
  const parts = [
    `<line x1="${left}" y1="${PANEL.top}" x2="${left}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${bottom}" x2="${left + width}" y2="${bottom}" stroke="#333"/>`,
    text(left + width / 2, bottom + 40, label, 'text-anchor="middle"'),
    text(left - 50, PANEL.top - 14, yLabel),
  ];
  for (const [value, caption] of yTicks) {
    const y = bottom - value * PANEL.height;
    parts.push(`<line x1="${left - 4}" y1="${y}" x2="${left + width}" y2="${y}" stroke="#ddd"/>`, text(left - 8, y + 4, caption, 'text-anchor="end"'));
  }
  for (let tick = 0; tick <= 5; tick++) {
    const x = left + (tick / 5) * width;
    parts.push(text(x, bottom + 18, `${+((max * tick) / 5).toPrecision(3)}`, 'text-anchor="middle"'));
  }
  return parts;
}

function lagPanel(result: ScenarioResult): string[] {
  const regions = Object.entries(result.ferry.lagSeconds);
  const max = niceCeiling(Math.max(...regions.flatMap(([, lags]) => lags), 0));
  const { lagLeft: left, lagWidth: width, top, height } = PANEL;
  const parts = axes(left, width, max, 'lag: push observed → region replicated (s)', 'share of images', [
    [0, '0'],
    [0.5, '50%'],
    [0.95, '95%'],
    [1, '100%'],
  ]);
  regions.forEach(([region, lags], index) => {
    const sorted = [...lags].sort((a, b) => a - b);
    const points = [`${left},${top + height}`];
    sorted.forEach((lag, rank) => {
      const x = left + (lag / max) * width;
      points.push(`${x.toFixed(1)},${(top + height - (rank / sorted.length) * height).toFixed(1)}`);
      points.push(`${x.toFixed(1)},${(top + height - ((rank + 1) / sorted.length) * height).toFixed(1)}`);
    });
    const color = REGION_COLORS[index % REGION_COLORS.length]!;
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>`);
    // Legend bottom right, where the curves (rising from the left) are not.
    const legendY = top + height - 20 * (regions.length - index) - 10;
    parts.push(`<rect x="${left + width - 150}" y="${legendY}" width="12" height="12" fill="${color}"/>`, text(left + width - 132, legendY + 11, region));
  });
  return parts;
}

function throughputPanel(result: ScenarioResult): string[] {
  const comparisons = compareRegions(result);
  const max = niceCeiling(Math.max(...comparisons.flatMap((c) => [c.rawMBps, c.skopeoMBps, c.ferryMBps])));
  const { barsLeft: left, barsWidth: width, top, height } = PANEL;
  const bottom = top + height;
  const parts = [
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${bottom}" x2="${left + width}" y2="${bottom}" stroke="#333"/>`,
    text(left - 50, top - 14, 'MB/s (image set bytes ÷ time until the region held all of it)'),
  ];
  for (let tick = 0; tick <= 4; tick++) {
    const y = bottom - (tick / 4) * height;
    parts.push(`<line x1="${left - 4}" y1="${y}" x2="${left + width}" y2="${y}" stroke="#ddd"/>`, text(left - 8, y + 4, `${+((max * tick) / 4).toPrecision(3)}`, 'text-anchor="end"'));
  }
  const group = width / comparisons.length;
  const bar = group / 4;
  comparisons.forEach((comparison, index) => {
    const x0 = left + index * group + bar / 2;
    const bars: Array<[keyof typeof PHASE_COLORS, number]> = [
      ['raw', comparison.rawMBps],
      ['skopeo', comparison.skopeoMBps],
      ['ferry', comparison.ferryMBps],
    ];
    bars.forEach(([phase, value], offset) => {
      const barHeight = (value / max) * height;
      parts.push(`<rect x="${(x0 + offset * bar).toFixed(1)}" y="${(bottom - barHeight).toFixed(1)}" width="${(bar - 2).toFixed(1)}" height="${barHeight.toFixed(1)}" fill="${PHASE_COLORS[phase]}"/>`);
    });
    parts.push(text(x0 + 1.5 * bar, bottom + 18, comparison.region === 'all' ? 'all regions' : comparison.region, 'text-anchor="middle"'));
    parts.push(text(x0 + 1.5 * bar, bottom + 34, `Ferry ÷ raw ${comparison.ferryOverRaw.toFixed(2)}×`, 'text-anchor="middle" font-size="11"'));
  });
  (['raw', 'skopeo', 'ferry'] as const).forEach((phase, index) => {
    const caption = { raw: 'raw SDK copy (the limit)', skopeo: 'skopeo sync', ferry: 'Ferry' }[phase];
    parts.push(`<rect x="${left + 12}" y="${top + 10 + index * 20}" width="12" height="12" fill="${PHASE_COLORS[phase]}"/>`, text(left + 30, top + 21 + index * 20, caption));
  });
  return parts;
}

export function chartSvg(result: ScenarioResult): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    text(CHART_WIDTH / 2, 28, `Ferry bench, ${result.scenario}: ${result.description}`, 'text-anchor="middle" font-size="16" font-weight="bold"'),
    ...lagPanel(result),
    ...throughputPanel(result),
    '</svg>',
  ].join('\n');
}

/** Writes the SVG and its PNG screenshot beside each other. */
export async function drawChart(result: ScenarioResult, svgPath: string, pngPath: string): Promise<void> {
  await writeFile(svgPath, chartSvg(result));
  await promisify(execFile)('chromium', [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--hide-scrollbars',
    `--window-size=${CHART_WIDTH},${CHART_HEIGHT}`,
    `--screenshot=${pngPath}`,
    `file://${svgPath}`,
  ]);
}
