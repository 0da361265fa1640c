// The regions' buckets as the bench touches them: plain AWS SDK clients, and
// the cleanup that runs between phases so every phase starts from targets
// that hold none of the scenario's blobs (otherwise the next phase would skip
// them and look fast). Keys come from domain/layout.ts, like Ferry's own.
import { RegionStorage } from '../activities/storage';
import type { RegionConfig } from '../domain/config';
import { parseDigest } from '../domain/reference';

/** Every repository the bench pushes starts with this, in every region and phase. */
export const BENCH_REPOSITORY_PREFIX = 'bench-';

/** A region's bucket: the same client and layout Ferry's activities use. */
export type RegionBucket = RegionStorage;

export function openBucket(region: RegionConfig): RegionBucket {
  return RegionStorage.connect(region);
}

export function blobKey(bucket: RegionBucket, digest: string): string {
  return bucket.layout.blobData(parseDigest(digest));
}

/**
 * Removes every bench repository (links, tags, uploads) and the given blobs.
 * Behind the registry's back, which is safe: the stack's registries run
 * without a blob descriptor cache, and bench repositories are never reused.
 */
export async function removeBenchObjects(bucket: RegionBucket, digests: Iterable<string>): Promise<void> {
  await bucket.deletePrefix(`${bucket.layout.repositoriesPrefix()}${BENCH_REPOSITORY_PREFIX}`);
  await bucket.deleteKeys([...new Set(digests)].map((digest) => blobKey(bucket, digest)));
}
