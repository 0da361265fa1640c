// The local stack's topology, read from domain/config.ts: its S3 endpoints
// (named s3-a, s3-b… in order of first use), its regions with their registry
// and cache ports and logins, where registries notify the api, and every
// component in start order with the address it answers on. The far region's
// S3 endpoint is toxiproxy, in front of its S3 server on another port, so a
// test can give that region latency and a thin link (test/stack/slow-region).
// docker-compose.yml declares the same topology for users;
// test/unit/docker-compose.test.ts holds the two equal.
import { configSchema, LOCAL_REGIONS } from '../domain/config';

export interface S3Endpoint {
  name: string;
  /** Where clients reach it: the S3 server, or toxiproxy in front of it. */
  port: number;
  /** Where the S3 server listens: `port` itself unless proxied. */
  serverPort: number;
  proxied: boolean;
  accessKeyIdEnv: string;
  secretAccessKeyEnv: string;
}

export interface LocalRegion {
  name: string;
  registryPort: number;
  cachePort: number;
  s3: S3Endpoint;
  bucket: string;
  /** The variables holding the login its registry requires (htpasswd); null: open. */
  login: { usernameEnv: string; passwordEnv: string } | null;
  /** The variable holding the token its registry sends with notifications (scope ingest:<region>). */
  ingestTokenEnv: string;
}

/** toxiproxy: its API, and a proxy for each proxied S3 endpoint, named after it. */
export interface FaultProxy {
  apiAddress: string;
  proxies: { name: string; listen: string; upstream: string }[];
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
  faultProxy: FaultProxy;
}

/** The S3 server behind a proxied endpoint listens this far above the endpoint's port. */
const PROXIED_SERVER_OFFSET = 10;
const TOXIPROXY_API = '127.0.0.1:8474';

const portOf = (url: string) => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);
const hostPort = (url: string) => {
  const { hostname, port } = new URL(url.includes('://') ? url : `tcp://${url}`);
  return `${hostname}:${port}`;
};

export function localTopology(): Topology {
  const defaults = configSchema.parse({});
  const s3Endpoints = new Map<string, S3Endpoint>();
  // The last region is the far one; its endpoint, if no nearer region shares it, goes through toxiproxy.
  const far = LOCAL_REGIONS.at(-1)!.s3.endpoint;
  const sharedWithNear = LOCAL_REGIONS.slice(0, -1).some((region) => region.s3.endpoint === far);
  for (const { s3 } of LOCAL_REGIONS) {
    if (s3Endpoints.has(s3.endpoint)) continue;
    const proxied = s3.endpoint === far && !sharedWithNear;
    const port = portOf(s3.endpoint);
    s3Endpoints.set(s3.endpoint, {
      name: `s3-${String.fromCharCode(97 + s3Endpoints.size)}`,
      port,
      serverPort: proxied ? port + PROXIED_SERVER_OFFSET : port,
      proxied,
      accessKeyIdEnv: s3.accessKeyIdEnv,
      secretAccessKeyEnv: s3.secretAccessKeyEnv,
    });
  }
  const proxies = [...s3Endpoints.values()]
    .filter((endpoint) => endpoint.proxied)
    .map((endpoint) => ({ name: endpoint.name, listen: `127.0.0.1:${endpoint.port}`, upstream: `127.0.0.1:${endpoint.serverPort}` }));
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
      login: ('registryAuth' in region ? region.registryAuth : undefined) ?? null,
      ingestTokenEnv: region.ingestTokenEnv,
    })),
    faultProxy: { apiAddress: TOXIPROXY_API, proxies },
  };
}

/** Every component the stack starts, in start order, with the address it answers on (null: none). */
export function componentAddresses(topology: Topology): [name: string, address: string | null][] {
  return [
    ['temporal', topology.temporalAddress],
    ...topology.s3Endpoints.map(({ name, serverPort }): [string, string] => [name, `127.0.0.1:${serverPort}`]),
    ['toxiproxy', topology.faultProxy.apiAddress],
    ...topology.regions.map(({ name, registryPort }): [string, string] => [`registry-${name}`, `127.0.0.1:${registryPort}`]),
    ...topology.regions.map(({ name, cachePort }): [string, string] => [`varnish-${name}`, `127.0.0.1:${cachePort}`]),
    ['api', topology.ingestAddress],
    ['worker', null],
  ];
}
