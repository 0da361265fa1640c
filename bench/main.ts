// The benchmark of issue 6: Ferry against the raw copy limit and against
// skopeo, side by side in one run, on the local stack (started if it is not).
//
//   npm run bench -- <large|many-small|many-small-drain|shared-base|all> [--images N] [--layers SIZE:SHARED,...] [--config JSON] [--profile] [--out DIR]
//
// --images and --layers change a scenario's shape (e.g. `--layers 2MiB:100,64KiB:1`:
// per layer position, its size and how many images share one variant of it);
// such runs write to .stack/bench/results unless --out says otherwise, so the
// committed results in bench/results always come from the scenarios as defined,
// unprofiled.
// --config JSON: its top-level fields replace those of the config of Ferry's api and worker
// (e.g. `--config '{"worker":{"maxCachedWorkflows":100}}'`), recorded in the
// result; such runs go to .stack/bench/results too.
// --profile runs Ferry's api and worker under the V8 CPU profiler and adds
// their hottest functions to the report (to find what limits a missed target;
// profiling costs some speed, so such runs go to .stack/bench/results too).
// Per scenario: <name>.json, <name>.md, <name>.svg and <name>.png; then
// summary.md over every result in the directory.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { drawChart } from './chart';
import { benchWorkDir, FERRY_API_PORT, notificationAddress, repoRoot, takeTheStack } from './environment';
import { NotificationRelay } from './relay';
import { markdownReport, summaryTable } from './report';
import type { ScenarioResult } from './results';
import { runScenario } from './scenario-run';
import { parseLayers, scenarioByName, SCENARIOS, type Scenario } from './shape';

function selectedScenarios(): { scenarios: Scenario[]; outDir: string; profile: boolean; configOverrides: Record<string, unknown> | undefined } {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { images: { type: 'string' }, layers: { type: 'string' }, config: { type: 'string' }, out: { type: 'string' }, profile: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) {
    throw new Error(`usage: npm run bench -- <${SCENARIOS.map((s) => s.name).join('|')}|all> [--images N] [--layers SIZE:SHARED,...] [--config JSON] [--profile] [--out DIR]`);
  }
  const chosen = positionals[0] === 'all' ? [...SCENARIOS] : [scenarioByName(positionals[0]!)];
  const configOverrides = values.config === undefined ? undefined : parseConfigOverrides(values.config);
  const exploratory = values.images !== undefined || values.layers !== undefined || configOverrides !== undefined || values.profile;
  const scenarios = chosen.map((scenario) => ({
    ...scenario,
    shape: {
      images: values.images === undefined ? scenario.shape.images : Number(values.images),
      layers: values.layers === undefined ? scenario.shape.layers : parseLayers(values.layers),
    },
  }));
  for (const scenario of scenarios) {
    if (!Number.isInteger(scenario.shape.images) || scenario.shape.images < 1) throw new Error('--images must be a positive integer');
  }
  const outDir = values.out ?? (exploratory ? `${benchWorkDir}/results` : `${repoRoot}bench/results`);
  return { scenarios, outDir, profile: values.profile, configOverrides };
}

function parseConfigOverrides(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`--config: not JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('--config: expected a JSON object, e.g. {"worker":{"maxCachedWorkflows":100}}');
  return parsed as Record<string, unknown>;
}

async function writeResult(outDir: string, result: ScenarioResult): Promise<void> {
  const base = `${outDir}/${result.scenario}`;
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  const report = markdownReport(result);
  await writeFile(`${base}.md`, report);
  await drawChart(result, `${base}.svg`, `${base}.png`);
  console.log(`\n${report}`);
}

async function writeSummary(outDir: string): Promise<void> {
  const results: ScenarioResult[] = [];
  for (const file of (await readdir(outDir)).filter((name) => name.endsWith('.json')).sort()) {
    results.push(JSON.parse(await readFile(`${outDir}/${file}`, 'utf8')) as ScenarioResult);
  }
  await writeFile(
    `${outDir}/summary.md`,
    `# Ferry bench: summary\n\nOne row per scenario (details and chart in <scenario>.md / .png). Ratios are Ferry's time over the baseline's: ` +
      `1.00× equals the raw SDK copy, below 0.33× is 3× faster than skopeo.\n\n${summaryTable(results)}\n`,
  );
}

const { scenarios, outDir, profile, configOverrides } = selectedScenarios();
await mkdir(outDir, { recursive: true });
await takeTheStack('bench');
const relay = await NotificationRelay.start(notificationAddress(), `http://127.0.0.1:${FERRY_API_PORT}`).catch((error: NodeJS.ErrnoException) => {
  if (error.code !== 'EADDRINUSE') throw error;
  throw new Error(`port ${notificationAddress().port} is taken (a Ferry api from \`npm start\` or the stack tests?); the bench relays the registries' notifications there`);
});
try {
  for (const scenario of scenarios) {
    await writeResult(outDir, await runScenario(scenario, relay, { profile, configOverrides }));
    await writeSummary(outDir);
  }
  console.log(`bench: results in ${outDir}`);
} finally {
  await relay.close();
}
