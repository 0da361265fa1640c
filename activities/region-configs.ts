// The configured regions by name, as the HTTP-facing activities look them up,
// with one registry client per region (its login and tokens shared by the
// pull check and the cache check).
import type { RegionConfig } from '../domain/config';
import { RegistryClient } from './registry-client';

export type RegionConfigs = ReadonlyMap<string, RegionConfig>;

export function regionConfigOf(regions: RegionConfigs, name: string): RegionConfig {
  const region = regions.get(name);
  if (!region) throw new Error(`region ${name} is not configured`);
  return region;
}

export type RegistryClients = ReadonlyMap<string, RegistryClient>;

/** One client per region, logging in with the region's registry credentials; a request not answered within `timeoutMs` fails. */
export function connectRegistries(regions: RegionConfigs, timeoutMs: number): RegistryClients {
  return new Map([...regions.values()].map((region) => [region.name, new RegistryClient(region.registryCredentials, timeoutMs)]));
}

/** A region's registry URL, caches and client. */
export function registryOf(regions: RegionConfigs, registries: RegistryClients, name: string): { registry: string; caches: string[]; client: RegistryClient } {
  const region = regionConfigOf(regions, name);
  const client = registries.get(name);
  if (!client) throw new Error(`region ${name} has no registry client`);
  return { registry: region.registryUrl, caches: region.cachePurgeUrls, client };
}
