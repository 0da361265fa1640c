// The configured regions by name, as the HTTP-facing activities look them up.
import type { RegionConfig } from '../domain/config';

export type RegionConfigs = ReadonlyMap<string, RegionConfig>;

export function regionConfigOf(regions: RegionConfigs, name: string): RegionConfig {
  const region = regions.get(name);
  if (!region) throw new Error(`region ${name} is not configured`);
  return region;
}
