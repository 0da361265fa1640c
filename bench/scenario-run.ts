// One scenario, start to finish, on the same bytes:
//
//   clean    every bench repository and known bench blob out of all buckets
//   Ferry    push the set into eastus, Ferry replicates it everywhere (bench/ferry-run.ts)
//   clean    the target buckets only: eastus keeps the set for the baselines
//   raw      SDK copy of the set's blobs, eastus bucket → each target bucket
//   clean    the target buckets
//   skopeo   skopeo sync, eastus registry → each target registry
//   clean    every bucket
//
// Ferry goes first because its phase includes the push into eastus, which is
// what a user does and what its notifications start from.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { openBucket, removeBenchObjects, type RegionBucket } from './buckets';
import { runRaw, runSkopeo } from './baselines';
import { benchWorkDir, repoRoot, sourceRegion, stackConfig, targetRegions } from './environment';
import { runFerry } from './ferry-run';
import { imageSet, mostSharedLayer, type ImageSet } from './images';
import { hottestFunctions, type CpuProfile, type HotFunction } from './profile';
import type { NotificationRelay } from './relay';
import type { ScenarioResult } from './results';
import { planImages, type ImageSetShape, type Scenario } from './shape';

const imagesDir = `${benchWorkDir}/images`;
const WARM_UP_SHAPE: ImageSetShape = { images: 1, layers: [{ bytes: 64 * 1024, sharedBy: 1 }] };

function log(message: string): void {
  console.log(`bench: ${new Date().toISOString().slice(11, 19)} ${message}`);
}

function layoutDir(name: string, shape: ImageSetShape): string {
  return `${imagesDir}/${name}-${createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 12)}`;
}

/** Digests of every image set any bench run generated here: what cleanup removes from the buckets. */
async function knownBenchDigests(): Promise<string[]> {
  if (!existsSync(imagesDir)) return [];
  const digests: string[] = [];
  for (const entry of await readdir(imagesDir)) {
    const setFile = `${imagesDir}/${entry}/image-set.json`;
    if (existsSync(setFile)) digests.push(...(JSON.parse(await readFile(setFile, 'utf8')) as ImageSet).blobs.map((blob) => blob.digest));
  }
  return digests;
}

async function clean(buckets: RegionBucket[]): Promise<void> {
  const digests = await knownBenchDigests();
  await Promise.all(buckets.map((bucket) => removeBenchObjects(bucket, digests)));
}

async function readProfiles(profileDir: string): Promise<Record<string, HotFunction[]>> {
  const profiles: Record<string, HotFunction[]> = {};
  for (const role of ['worker', 'api']) {
    const profile = JSON.parse(await readFile(`${profileDir}/${role}.cpuprofile`, 'utf8')) as CpuProfile;
    profiles[role] = hottestFunctions(profile, repoRoot);
  }
  return profiles;
}

export async function runScenario(
  scenario: Scenario,
  relay: NotificationRelay,
  options: { profile: boolean; configOverrides?: Record<string, unknown> | undefined },
): Promise<ScenarioResult> {
  const runId = Date.now().toString(36);
  const profileDir = options.profile ? `${benchWorkDir}/profiles/${scenario.name}-${runId}` : undefined;
  const repository = `bench-${runId}/${scenario.name}`;
  const { regions, replication } = stackConfig();
  const source = openBucket(sourceRegion(regions));
  const targets = targetRegions(regions).map(openBucket);
  const all = [source, ...targets];

  log(`${scenario.name}: generating images (reused when an earlier run left them)`);
  const set = await imageSet(layoutDir(scenario.name, scenario.shape), planImages(scenario.name, scenario.shape));
  const warmUp = await imageSet(layoutDir('warm-up', WARM_UP_SHAPE), planImages('warm-up', WARM_UP_SHAPE));
  const bytes = set.blobs.reduce((sum, blob) => sum + blob.size, 0);
  const startedAt = new Date().toISOString();

  await clean(all);
  log(`${scenario.name}: Ferry (${set.images.length} images, ${(bytes / 1e6).toFixed(1)} MB, notifications ${scenario.notifications})`);
  const ferry = await runFerry({ scenario, set, warmUp, repository, source, targets, relay, sharedLayer: mostSharedLayer(set.images), profileDir, configOverrides: options.configOverrides });
  log(`${scenario.name}: Ferry done in ${ferry.seconds.toFixed(2)} s`);

  await clean(targets);
  const raw = await runRaw(source, targets, set.blobs, { blobConcurrency: replication.blobConcurrency, partSizeBytes: replication.partSizeBytes, partsInFlight: 4 });
  log(`${scenario.name}: raw SDK copy done in ${raw.seconds.toFixed(2)} s`);

  await clean(targets);
  relay.setMode('drop'); // skopeo's pushes into the target registries notify too: Ferry must not hear them
  const skopeo = await runSkopeo(source, targets, repository, `bench-${runId}-skopeo`);
  log(`${scenario.name}: skopeo sync done in ${skopeo.seconds.toFixed(2)} s`);

  await clean(all);
  return {
    scenario: scenario.name,
    description: scenario.description,
    shape: scenario.shape,
    targets: scenario.targets,
    runId,
    startedAt,
    machine: { cpus: cpus().length, memoryGB: Math.round(totalmem() / 1024 ** 3), node: process.versions.node },
    imageSet: { images: set.images.length, blobs: set.blobs.length, bytes },
    raw,
    skopeo,
    ferry,
    ...(options.configOverrides === undefined ? {} : { configOverrides: options.configOverrides }),
    ...(profileDir === undefined ? {} : { profiles: await readProfiles(profileDir) }),
  };
}
