// The two baselines Ferry is compared with, on the bytes the Ferry phase
// pushed into eastus: the raw SDK copy between buckets (the limit) and
// `skopeo sync` between registries (what users would run instead). Both go
// to every target region at once, as Ferry does.
import type { RegionBucket } from './buckets';
import type { Blob } from './images';
import { copyMethod, rawCopy, type RawCopyOptions } from './raw-copy';
import type { PhaseTiming, RegionTiming } from './results';
import { registryHost, syncRepository } from './skopeo';

async function timeRegions(source: RegionBucket, targets: RegionBucket[], copy: (target: RegionBucket) => Promise<void>): Promise<PhaseTiming> {
  const started = performance.now();
  const regions: RegionTiming[] = await Promise.all(
    targets.map(async (target) => {
      await copy(target);
      return { region: target.region.name, method: copyMethod(source, target), seconds: (performance.now() - started) / 1000 };
    }),
  );
  return { seconds: (performance.now() - started) / 1000, regions };
}

export function runRaw(source: RegionBucket, targets: RegionBucket[], blobs: Blob[], options: RawCopyOptions): Promise<PhaseTiming> {
  return timeRegions(source, targets, (target) => rawCopy(source, target, blobs, options));
}

/**
 * One `skopeo sync` per target region, into `<namespace>/…` there. The
 * registries notify about these pushes too; the relay is dropping them.
 */
export function runSkopeo(source: RegionBucket, targets: RegionBucket[], repository: string, namespace: string): Promise<PhaseTiming> {
  const from = registryHost(source.region.registryUrl);
  return timeRegions(source, targets, (target) => syncRepository(from, repository, registryHost(target.region.registryUrl), namespace, target.region.registryCredentials));
}
