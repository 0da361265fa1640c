// The local stack's topology, read from domain/config.ts: its S3 endpoints
// (named s3-a, s3-b… in order of first use), its regions with their registry
// and cache ports, where registries notify the api, and every component in
// start order with the address it answers on. docker-compose.yml declares the
// same topology for users; test/unit/docker-compose.test.ts holds the two equal.
import { configSchema, LOCAL_REGIONS } from '../domain/config';

export interface S3Endpoint {
  name: string;
  port: number;
  accessKeyIdEnv: string;
  secretAccessKeyEnv: string;
}

export interface LocalRegion {
  name: string;
  registryPort: number;
  cachePort: number;
  s3: S3Endpoint;
  bucket: string;
}

export interface Topology {
  /** host:port of Ferry's api, where the registries send their notifications. */
  ingestAddress: string;
  temporalAddress: string;
  temporalUiAddress: string;
  postgresAddress: string;
  natsAddress: string;
  s3Endpoints: S3Endpoint[];
  regions: LocalRegion[];
}

const portOf = (url: string) => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);
const hostPort = (url: string) => {
  const { hostname, port } = new URL(url.includes('://') ? url : `tcp://${url}`);
  return `${hostname}:${port}`;
};

export function localTopology(): Topology {
  const defaults = configSchema.parse({});
  const s3Endpoints = new Map<string, S3Endpoint>();
  for (const { s3 } of LOCAL_REGIONS) {
    if (s3Endpoints.has(s3.endpoint)) continue;
    s3Endpoints.set(s3.endpoint, {
      name: `s3-${String.fromCharCode(97 + s3Endpoints.size)}`,
      port: portOf(s3.endpoint),
      accessKeyIdEnv: s3.accessKeyIdEnv,
      secretAccessKeyEnv: s3.secretAccessKeyEnv,
    });
  }
  const temporalPort = portOf(defaults.temporal.address);
  return {
    ingestAddress: `${defaults.ingest.host}:${defaults.ingest.port}`,
    temporalAddress: hostPort(defaults.temporal.address),
    // `temporal server start-dev` serves its UI on the frontend port + 1000.
    temporalUiAddress: `127.0.0.1:${temporalPort + 1000}`,
    postgresAddress: hostPort(defaults.postgresUrl),
    natsAddress: hostPort(defaults.natsUrl),
    s3Endpoints: [...s3Endpoints.values()],
    regions: LOCAL_REGIONS.map((region) => ({
      name: region.name,
      registryPort: portOf(region.registryUrl),
      cachePort: portOf(region.cachePurgeUrls[0]!),
      s3: s3Endpoints.get(region.s3.endpoint)!,
      bucket: region.s3.bucket,
    })),
  };
}

/** Every component the stack starts, in start order, with the address it answers on (null: none). */
export function componentAddresses(topology: Topology): [name: string, address: string | null][] {
  return [
    ['temporal', topology.temporalAddress],
    ...topology.s3Endpoints.map(({ name, port }): [string, string] => [name, `127.0.0.1:${port}`]),
    ...topology.regions.map(({ name, registryPort }): [string, string] => [`registry-${name}`, `127.0.0.1:${registryPort}`]),
    ...topology.regions.map(({ name, cachePort }): [string, string] => [`varnish-${name}`, `127.0.0.1:${cachePort}`]),
    ['api', topology.ingestAddress],
    ['worker', null],
  ];
}
