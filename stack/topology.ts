// The local stack's topology, read from domain/config.ts: its S3 endpoints
// (named s3-a, s3-b… in order of first use), its regions with their registry
// and cache ports and logins, where registries notify the api, and every
// component in start order with the address it answers on. The far region's
// S3 endpoint is toxiproxy, in front of its S3 server on another port, so a
// test can give that region latency and a thin link (test/stack/slow-region).
// A registry-API region (no s3 in Ferry's config) still has a registry here,
// storing in a bucket only the stack knows of, and logs in with the
// Distribution token flow at a token server of its own (stack/token-server.ts).
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

/** The server a token-login registry sends its clients to (Distribution's token auth, stack/token-server.ts). */
export interface TokenServer {
  /** The component's name: token-<region>. */
  name: string;
  port: number;
  /** Where the registry's challenge sends clients: http://127.0.0.1:<port>/token. */
  realm: string;
  /** The token's audience, which the registry checks (auth.token.service). */
  service: string;
  /** The token's issuer, which the registry checks (auth.token.issuer). */
  issuer: string;
}

/**
 * The login a region's registry requires: `basic`, an htpasswd file answered
 * with Basic auth; `token`, the bearer-token flow, the user and password
 * exchanged at `tokenServer` for a token. null: open.
 */
export type RegistryLogin =
  | { kind: 'basic'; usernameEnv: string; passwordEnv: string }
  | { kind: 'token'; usernameEnv: string; passwordEnv: string; tokenServer: TokenServer };

export interface LocalRegion {
  name: string;
  registryPort: number;
  cachePort: number;
  /** Where its registry stores. */
  s3: S3Endpoint;
  bucket: string;
  /**
   * False for a registry-API region: Ferry's config names no bucket for it,
   * and the registry's storage (`s3`, `bucket`) is the stack's own fact.
   */
  storageKnownToFerry: boolean;
  /** The login its registry requires; null: open. */
  login: RegistryLogin | null;
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

/** The far region, whose S3 endpoint goes through toxiproxy (unless a nearer region shares it). */
export const FAR_REGION = 'southeastasia';
/**
 * Where the registry of a registry-API region stores: a bucket of its own
 * (region-<name>) on this region's S3 endpoint, with its credentials. Ferry's
 * config never learns it; only the registry and the stack's bucket set-up do.
 */
export const API_REGION_STORAGE_OF = 'eastus';
/** The S3 server behind a proxied endpoint listens this far above the endpoint's port. */
const PROXIED_SERVER_OFFSET = 10;
/** A token-login registry's token server listens this far above the registry's port (centralus: 5004 → 5014). */
const TOKEN_SERVER_OFFSET = 10;
const TOXIPROXY_API = '127.0.0.1:8474';

const portOf = (url: string) => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);
const hostPort = (url: string) => {
  const { hostname, port } = new URL(url.includes('://') ? url : `tcp://${url}`);
  return `${hostname}:${port}`;
};

type LocalRegionConfig = (typeof LOCAL_REGIONS)[number];
type StorageConfig = NonNullable<Extract<LocalRegionConfig, { s3: unknown }>['s3']>;

const storageOf = (region: LocalRegionConfig): StorageConfig | undefined => ('s3' in region ? region.s3 : undefined);

function regionNamed(name: string): LocalRegionConfig & { s3: StorageConfig } {
  const region = LOCAL_REGIONS.find((candidate) => candidate.name === name);
  const s3 = region === undefined ? undefined : storageOf(region);
  if (region === undefined || s3 === undefined) throw new Error(`stack/topology.ts: LOCAL_REGIONS has no region ${name} with storage`);
  return { ...region, s3 };
}

/** Where a region's registry stores: its configured bucket, or for a registry-API region the stack's own. */
function registryStorage(region: LocalRegionConfig): { endpoint: string; bucket: string; accessKeyIdEnv: string; secretAccessKeyEnv: string; known: boolean } {
  const s3 = storageOf(region);
  if (s3 !== undefined) return { ...s3, known: true };
  const host = regionNamed(API_REGION_STORAGE_OF).s3;
  return { endpoint: host.endpoint, bucket: `region-${region.name}`, accessKeyIdEnv: host.accessKeyIdEnv, secretAccessKeyEnv: host.secretAccessKeyEnv, known: false };
}

/** A region with storage and a login answers Basic (htpasswd); a registry-API region with a login, the token flow. */
function loginOf(region: LocalRegionConfig, registryPort: number): RegistryLogin | null {
  const auth = 'registryAuth' in region ? region.registryAuth : undefined;
  if (auth === undefined) return null;
  if (storageOf(region) !== undefined) return { kind: 'basic', ...auth };
  const port = registryPort + TOKEN_SERVER_OFFSET;
  return {
    kind: 'token',
    ...auth,
    tokenServer: {
      name: `token-${region.name}`,
      port,
      realm: `http://127.0.0.1:${port}/token`,
      service: `registry-${region.name}`,
      issuer: `ferry-local-token-${region.name}`,
    },
  };
}

export function localTopology(): Topology {
  const defaults = configSchema.parse({});
  const s3Endpoints = new Map<string, S3Endpoint>();
  const storages = LOCAL_REGIONS.map(registryStorage);
  // The far region's endpoint, if no nearer region's registry stores there, goes through toxiproxy.
  const far = regionNamed(FAR_REGION).s3.endpoint;
  const sharedWithNear = LOCAL_REGIONS.some((region, index) => region.name !== FAR_REGION && storages[index]!.endpoint === far);
  for (const storage of storages) {
    if (s3Endpoints.has(storage.endpoint)) continue;
    const proxied = storage.endpoint === far && !sharedWithNear;
    const port = portOf(storage.endpoint);
    s3Endpoints.set(storage.endpoint, {
      name: `s3-${String.fromCharCode(97 + s3Endpoints.size)}`,
      port,
      serverPort: proxied ? port + PROXIED_SERVER_OFFSET : port,
      proxied,
      accessKeyIdEnv: storage.accessKeyIdEnv,
      secretAccessKeyEnv: storage.secretAccessKeyEnv,
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
    regions: LOCAL_REGIONS.map((region, index) => {
      const storage = storages[index]!;
      const registryPort = portOf(region.registryUrl);
      return {
        name: region.name,
        registryPort,
        cachePort: portOf(region.cachePurgeUrls[0]!),
        s3: s3Endpoints.get(storage.endpoint)!,
        bucket: storage.bucket,
        storageKnownToFerry: storage.known,
        login: loginOf(region, registryPort),
        ingestTokenEnv: region.ingestTokenEnv,
      };
    }),
    faultProxy: { apiAddress: TOXIPROXY_API, proxies },
  };
}

/** The token servers of the token-login regions, in region order. */
export function tokenServers(topology: Topology): { region: LocalRegion; server: TokenServer }[] {
  return topology.regions.flatMap((region) => (region.login?.kind === 'token' ? [{ region, server: region.login.tokenServer }] : []));
}

/** Every component the stack starts, in start order, with the address it answers on (null: none). */
export function componentAddresses(topology: Topology): [name: string, address: string | null][] {
  return [
    ['temporal', topology.temporalAddress],
    ...topology.s3Endpoints.map(({ name, serverPort }): [string, string] => [name, `127.0.0.1:${serverPort}`]),
    ['toxiproxy', topology.faultProxy.apiAddress],
    ...tokenServers(topology).map(({ server }): [string, string] => [server.name, `127.0.0.1:${server.port}`]),
    ...topology.regions.map(({ name, registryPort }): [string, string] => [`registry-${name}`, `127.0.0.1:${registryPort}`]),
    ...topology.regions.map(({ name, cachePort }): [string, string] => [`varnish-${name}`, `127.0.0.1:${cachePort}`]),
    ['api', topology.ingestAddress],
    ['worker', null],
  ];
}
