// Every configured region as the activities reach it: a storage region
// through its bucket (storage.ts), a registry-API region through its
// registry (registry-repository.ts). The activities ask for a repository, or
// a blob source, by region name and never care which kind it is, except where
// bytes cross (blobs.ts picks the copy path by the pair of kinds).
import { isRegistryApiRegion } from '../domain/config';
import type { Digest, RepositoryName } from '../domain/reference';
import type { BlobSource } from './blob-source';
import { regionConfigOf, type RegionConfigs, type RegistryClients } from './region-configs';
import { RegistryRepository } from './registry-repository';
import { StorageRepository, type RegionRepository } from './repository';
import { storageOf, type RegionStorage, type Storages } from './storage';

export class Regions {
  constructor(
    readonly configs: RegionConfigs,
    readonly storages: Storages,
    private readonly registries: RegistryClients,
    /** A blob read from a registry that sends nothing for this long fails. */
    private readonly idleMs: number,
  ) {}

  /** Whether the region is reached through its registry's API only. */
  isRegistryApi(region: string): boolean {
    return isRegistryApiRegion(regionConfigOf(this.configs, region));
  }

  /** Whether this process can read the region (its storage credentials, or its registry). */
  reachable(region: string): boolean {
    return this.configs.has(region) && (this.isRegistryApi(region) ? this.registries.has(region) : this.storages.has(region));
  }

  /** The region's storage; throws for a registry-API region, or one whose credentials this worker lacks. */
  storage(region: string): RegionStorage {
    if (this.isRegistryApi(region)) throw new Error(`region ${region} is reached through its registry's API: it has no storage`);
    return storageOf(this.storages, region);
  }

  /** A repository of a registry-API region. */
  registryRepository(region: string, name: RepositoryName): RegistryRepository {
    const config = regionConfigOf(this.configs, region);
    const client = this.registries.get(region);
    if (client === undefined) throw new Error(`this worker holds no registry client for region ${region}`);
    return new RegistryRepository(region, config.registryUrl, client, name);
  }

  repository(region: string, name: RepositoryName): RegionRepository {
    return this.isRegistryApi(region) ? this.registryRepository(region, name) : new StorageRepository(this.storage(region), name);
  }

  /** Where a copy reads a blob: the region's storage, or its registry's repository `name` (blobs are per repository there). */
  blobSource(region: string, name: RepositoryName | undefined): BlobSource {
    if (!this.isRegistryApi(region)) return storageBlobs(this.storage(region));
    if (name === undefined) throw new Error(`a blob of registry-API region ${region} is read from a repository; none was named`);
    const repository = this.registryRepository(region, name);
    return {
      region,
      head: (digest, signal) => repository.blobHead(digest, signal),
      open: (digest, signal) => repository.openBlob(digest, this.idleMs, signal),
    };
  }
}

/** A storage region's blobs as a copy reads them: under their data keys. */
export function storageBlobs(storage: RegionStorage): BlobSource {
  const key = (digest: Digest) => storage.layout.blobData(digest);
  return {
    region: storage.region.name,
    head: (digest, signal) => storage.head(key(digest), signal),
    open: (digest, signal) => storage.getStream(key(digest), signal),
  };
}
