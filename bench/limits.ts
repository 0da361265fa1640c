// The per-region limit benchmark of issue 13: one 1 GiB layer pushed into
// eastus, replicated into westeurope uncapped (server-side copy) and into
// southeastasia capped at `--rate` MB/s (streamed). The capped region should
// take size ÷ rate (50 s ± 10 % for 1 GiB at 20 MB/s); the other, its full
// speed.
//
//   npm run bench:limits [-- --mib 1024 --rate 20 --out DIR]
//
// Writes limits.json and limits.md to bench/results/limits (or --out).
import { mkdir, writeFile } from 'node:fs/promises';
import pg from 'pg';
import { parseArgs } from 'node:util';
import { parseDigest, parseRepositoryName } from '../domain/reference';
import { regionMessageFilter, type RegionMessage } from '../domain/subjects';
import { MessageCollector } from '../test/support/ferry';
import { buildImage } from '../test/support/oci-image';
import { notify, pushNotification, writeImageBehindRegistry } from '../test/support/source-writer';
import { BENCH_REGIONS, prepareFerryConfig, repoRoot, SOURCE_REGION, takeTheStack } from './environment';
import { startFerry } from './ferry-run';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, rate: { type: 'string', default: '20' }, out: { type: 'string' } } });
const MIB = Number(values.mib);
const RATE_MB = Number(values.rate);
const CAPPED = 'southeastasia';
const outDir = values.out ?? `${repoRoot}bench/results/limits`;
if (!(MIB > 0 && RATE_MB > 0)) throw new Error('--mib and --rate must be positive');

await takeTheStack('bench:limits');
const regions = BENCH_REGIONS.map((region) => (region.name === CAPPED ? { ...region, limits: { bytesPerSecond: RATE_MB * 1_000_000 } } : region));
const config = await prepareFerryConfig({ regions });
console.log(`building a ${MIB} MiB layer…`);
const image = await buildImage({ layers: [{ size: MIB * 1024 * 1024 }], tag: 'v1' });
const repository = parseRepositoryName(`bench-limits-${Date.now().toString(36)}/large`);
await writeImageBehindRegistry(config, SOURCE_REGION, repository, image, null);
const processes = await startFerry();
try {
  const messages = await MessageCollector.start<RegionMessage>(config.natsUrl, regionMessageFilter('*', repository, { digest: parseDigest(image.manifestDigest) }));
  const response = await notify(config, SOURCE_REGION, pushNotification(repository, image));
  if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  await messages.waitFor(2, 600_000);
  await messages.stop();
  const layerBytes = image.layers[0]!.size;
  // The layer's copy alone, as the worker timed it (BlobCopied: first byte read to the upload completed).
  const client = new pg.Client({ connectionString: config.postgresUrl });
  await client.connect();
  const copies = await client.query<{ region: string; seconds: string }>(
    `SELECT region, data->>'seconds' AS seconds FROM events WHERE type = 'BlobCopied' AND data->>'digest' = $1`,
    [image.layers[0]!.digest],
  );
  await client.end();
  const copySeconds = new Map(copies.rows.map((row) => [row.region, Number(row.seconds)]));
  const rows = messages.messages.map(({ body }) => {
    const seconds = (Date.parse(body.completedAt) - Date.parse(body.observedAt)) / 1000;
    const copy = copySeconds.get(body.region)!;
    return { region: body.region, kind: body.kind, capMBps: body.region === CAPPED ? RATE_MB : null, seconds, copySeconds: copy, copyMBps: layerBytes / 1_000_000 / copy };
  });
  const expected = layerBytes / 1_000_000 / RATE_MB;
  const capped = rows.find((row) => row.region === CAPPED)!;
  const within = Math.abs(capped.copySeconds - expected) <= expected * 0.1;
  await mkdir(outDir, { recursive: true });
  await writeFile(`${outDir}/limits.json`, `${JSON.stringify({ layerBytes, rateMBps: RATE_MB, expectedSeconds: expected, rows }, null, 2)}\n`);
  const markdown = [
    '# A per-region byte rate (issue 13)',
    '',
    `One image of one ${MIB} MiB layer (${(layerBytes / 1_000_000).toFixed(0)} MB) pushed into ${SOURCE_REGION}; ${CAPPED} capped at ${RATE_MB} MB/s (regions[].limits.bytesPerSecond), westeurope not. ` +
      'copy s: the layer\'s copy as the worker timed it (first byte read to the upload completed, BlobCopied); push → replicated s: from the push observed to the region announced (resolving the source, the copy, links, tag, cache purge, pull check). Real local stack, 2 cores.',
    '',
    '| region | cap MB/s | copy | copy s | copy MB/s | push → replicated s |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.region} | ${row.capMBps ?? '–'} | ${row.region === CAPPED ? 'streamed' : 'server-side'} | ${row.copySeconds.toFixed(1)} | ${row.copyMBps.toFixed(1)} | ${row.seconds.toFixed(1)} |`,
    ),
    '',
    `Target: the capped copy takes size ÷ rate = ${expected.toFixed(1)} s ± 10 % ${within ? '✔' : '✘'} (${capped.copySeconds.toFixed(1)} s).`,
    '',
  ].join('\n');
  await writeFile(`${outDir}/limits.md`, markdown);
  console.log(markdown);
} finally {
  await Promise.all([processes.api.stop(), processes.worker.stop()]);
}
