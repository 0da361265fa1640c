// Where the benchmark runs: the local stack's regions and credentials, and
// the bench's own Ferry configuration (its own database, its own api port).
//
// Registries notify 127.0.0.1:8080 (stack/registry.yml.tmpl). The bench puts
// its notification relay there (bench/relay.ts) and runs Ferry's api behind it
// on FERRY_API_PORT, so it decides when Ferry hears about a push and can keep
// the skopeo baseline's pushes into westeurope and southeastasia away from it.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { configSchema, loadConfig, LOCAL_REGIONS, type RegionConfig, type ResolvedConfig } from '../domain/config';
import { recreateDatabase } from '../store/databases';
import { localEnv } from '../support/local-env';
import { holdTheStack, releaseTheStack } from '../support/processes';

export const repoRoot = new URL('../', import.meta.url).pathname;
export const benchWorkDir = `${repoRoot}.stack/bench`;
export const benchConfigPath = `${benchWorkDir}/ferry-config.json`;
export const BENCH_DATABASE = 'ferry_bench';
export const FERRY_API_PORT = 18080;
export const SOURCE_REGION = 'eastus';

/**
 * What every bench entry point does first: the local stack up (idempotent,
 * quick when it runs; installs and starts it otherwise), then the stack
 * held for `what` until the process exits, so no test run or other bench
 * shares its Temporal queues.
 */
export async function takeTheStack(what: string): Promise<void> {
  // Node 20 is what the project supports; the SDK's notice about its future Node 22 floor is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  execFileSync('bash', ['stack/stack.sh', 'up'], { cwd: repoRoot, stdio: 'inherit' });
  await holdTheStack(what);
  process.once('exit', releaseTheStack);
}

/** stack/local.env, then the caller's environment, then FERRY_CONFIG naming the bench configuration. */
export function benchEnv(): Record<string, string> {
  return {
    ...localEnv(),
    ...(process.env as Record<string, string>),
    FERRY_CONFIG: benchConfigPath,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/** Where the registries send notifications: Ferry's default ingest address. */
export function notificationAddress(): { host: string; port: number } {
  const { ingest } = configSchema.parse({});
  return { host: ingest.host, port: ingest.port };
}

/**
 * The regions the benchmark replicates among: the local stack's storage
 * regions, which it compares with raw bucket copies and `skopeo sync`. The
 * registry-API region (centralus) stays out, so figures stay comparable.
 */
export const BENCH_REGIONS = LOCAL_REGIONS.filter((region) => 's3' in region);

/**
 * A fresh database and the configuration file every bench Ferry process reads:
 * the local stack, with the reconcile schedule off (its fresh event store knows
 * nothing of earlier runs' buckets) and the api behind the relay; `overrides`
 * replace top-level fields (a scenario's regions, say).
 */
export async function prepareFerryConfig(overrides: Record<string, unknown> = {}): Promise<ResolvedConfig> {
  const postgresUrl = await recreateDatabase(configSchema.parse({}).postgresUrl, BENCH_DATABASE);
  await mkdir(benchWorkDir, { recursive: true });
  const config = {
    postgresUrl,
    ingest: { port: FERRY_API_PORT },
    reconcile: { scheduled: false },
    logLevel: 'warn',
    regions: BENCH_REGIONS,
    ...overrides,
  };
  await writeFile(benchConfigPath, JSON.stringify(config, null, 2));
  return loadConfig(benchEnv());
}

/** The local stack as Ferry sees it by default: regions with credentials, replication settings. */
export function stackConfig(): ResolvedConfig {
  const config = loadConfig({ ...benchEnv(), FERRY_CONFIG: '' });
  return { ...config, regions: config.regions.filter((region) => BENCH_REGIONS.some((bench) => bench.name === region.name)) };
}

export function sourceRegion(regions: RegionConfig[]): RegionConfig {
  return regions.find((region) => region.name === SOURCE_REGION)!;
}

export function targetRegions(regions: RegionConfig[]): RegionConfig[] {
  return regions.filter((region) => region.name !== SOURCE_REGION);
}
