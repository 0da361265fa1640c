// docker-compose.yml is the same topology as the local stack (stack/topology.ts):
// same services and host ports, registries notifying Ferry's api, and Temporal
// knowing the search attributes that workflow code sets.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, LOCAL_REGIONS, resolveConfig } from '../../domain/config';
import { searchAttributeFlags } from '../../domain/workflow-contract';
import { tokenAuthEnv } from '../../stack/components';
import { stackBucketsFromEnv } from '../../stack/create-buckets';
import { localTopology, tokenServers } from '../../stack/topology';
import { localEnv } from '../../support/local-env';

interface ComposeService {
  ports?: string[];
  environment?: Record<string, string>;
  command?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  configs: Record<string, { content: string }>;
  volumes: Record<string, unknown>;
}

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const defaults = configSchema.parse({});
const portOf = (url: string) => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

function hostPorts(name: string): number[] {
  return (service(name).ports ?? []).map((mapping) => Number(mapping.split(':').at(-2)));
}

function environment(name: string): Record<string, string> {
  return service(name).environment ?? {};
}

const composeConfig = resolveConfig(JSON.parse(compose.configs['ferry-config']!.content), localEnv());

/** Paths of `{{placeholder}}` values in the registry template, as Distribution's REGISTRY_* variable names. */
function templatePlaceholderVariables(node: unknown, path: string[] = []): string[] {
  if (typeof node === 'string') return node.includes('{{') ? [['REGISTRY', ...path].join('_').toUpperCase()] : [];
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([key, child]) => templatePlaceholderVariables(child, [...path, key]));
}

describe('docker-compose.yml', () => {
  it('runs every local-stack component on the host port the local stack uses', () => {
    const expected: Record<string, number> = {
      temporal: portOf(defaults.temporal.address),
      // `temporal server start-dev` serves its UI on the frontend port + 1000.
      'temporal-ui': portOf(defaults.temporal.address) + 1000,
      postgres: portOf(defaults.postgresUrl),
      nats: portOf(defaults.natsUrl),
      'ferry-api': defaults.ingest.port,
    };
    for (const { name, port } of localTopology().s3Endpoints) expected[name] = port;
    for (const { server } of tokenServers(localTopology())) expected[server.name] = server.port;
    for (const region of LOCAL_REGIONS) {
      expected[`registry-${region.name}`] = portOf(region.registryUrl);
      expected[`varnish-${region.name}`] = portOf(region.cachePurgeUrls[0]!);
    }

    for (const [name, port] of Object.entries(expected)) expect(hostPorts(name), name).toEqual([port]);
    for (const worker of ['control', ...LOCAL_REGIONS.map((region) => region.name)]) expect(service(`ferry-worker-${worker}`).command).toEqual(['npx', 'tsx', 'workers/main.ts']);
    for (const binding of Object.values(compose.services).flatMap((entry) => entry.ports ?? [])) {
      expect(binding, 'published on loopback only').toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('gives Ferry the local regions, buckets and credential variables, reached by service name', () => {
    type Storage = { bucket: string; accessKeyIdEnv: string; secretAccessKeyEnv: string } | null | undefined;
    const shape = (regions: readonly { name: string; s3?: Storage; registryAuth?: { usernameEnv: string; passwordEnv: string } }[]) =>
      regions.map(({ name, s3, registryAuth }) => ({
        name,
        bucket: s3?.bucket ?? null,
        keys: s3 ? [s3.accessKeyIdEnv, s3.secretAccessKeyEnv] : null,
        login: registryAuth ? [registryAuth.usernameEnv, registryAuth.passwordEnv] : null,
      }));
    // The login of centralus (a registry-API region) is declared; southeastasia's registry asks for none under compose.
    const southeastasia = (regions: ReturnType<typeof shape>) => regions.map((region) => (region.name === 'southeastasia' ? { ...region, login: null } : region));
    expect(shape(composeConfig.regions)).toEqual(southeastasia(shape(LOCAL_REGIONS)));
    const { regions } = localTopology();
    for (const region of composeConfig.regions) {
      const local = regions.find(({ name }) => name === region.name)!;
      if (local.storageKnownToFerry) expect(region.s3?.endpoint).toBe(`http://${local.s3.name}:9000`);
      else expect(region.s3, `${region.name} is a registry-API region`).toBeNull();
      expect(region.registryUrl).toBe(`http://registry-${region.name}:5000`);
      expect(region.cachePurgeUrls).toEqual([`http://varnish-${region.name}:6081`]);
    }
  });

  it("makes each registry serve its region's bucket (a registry-API region's: the stack's own) and notify the api at its region's path", () => {
    const { regions } = localTopology();
    for (const region of composeConfig.regions) {
      const env = environment(`registry-${region.name}`);
      // Where the registry stores: Ferry's bucket, or for a registry-API region the one only the stack knows (stack/topology.ts).
      const local = regions.find(({ name }) => name === region.name)!;
      const storage = region.s3 ?? { endpoint: `http://${local.s3.name}:9000`, bucket: local.bucket, accessKeyIdEnv: local.s3.accessKeyIdEnv, secretAccessKeyEnv: local.s3.secretAccessKeyEnv };
      expect(storage.bucket).toBe(local.bucket);
      expect(env.REGISTRY_STORAGE_S3_REGIONENDPOINT).toBe(storage.endpoint);
      expect(env.REGISTRY_STORAGE_S3_BUCKET).toBe(storage.bucket);
      expect(env.REGISTRY_STORAGE_S3_ACCESSKEY).toMatch(new RegExp(`^\\$\\{${storage.accessKeyIdEnv}:`));
      expect(env.REGISTRY_STORAGE_S3_SECRETKEY).toMatch(new RegExp(`^\\$\\{${storage.secretAccessKeyEnv}:`));
      expect(env.REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL).toBe(
        `http://ferry-api:${defaults.ingest.port}/v1/notifications/distribution/${region.name}`,
      );
      // Each registry sends its own region's ingest token, the one Ferry's config names for that region.
      expect(region.ingestTokenEnv).toBe(LOCAL_REGIONS.find(({ name }) => name === region.name)!.ingestTokenEnv);
      expect(env.REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS).toMatch(new RegExp(`^\\{Authorization: \\[Bearer \\$\\{${region.ingestTokenEnv}:`));
    }
  });

  it("creates the registry-API regions' buckets, which Ferry's config does not name, on their S3 endpoints", () => {
    const expected = localTopology()
      .regions.filter((region) => !region.storageKnownToFerry)
      .map((region) => ({ endpoint: `http://${region.s3.name}:9000`, bucket: region.bucket, accessKeyIdEnv: region.s3.accessKeyIdEnv, secretAccessKeyEnv: region.s3.secretAccessKeyEnv }));
    expect(expected.map((bucket) => bucket.bucket)).toEqual(['region-centralus']);
    expect(stackBucketsFromEnv(environment('create-buckets'))).toEqual(expected);
    expect(service('create-buckets').command).toEqual(['npx', 'tsx', 'stack/create-buckets.ts']);
  });

  it("runs each token-login region's token server, and makes its registry take that server's tokens", () => {
    const servers = tokenServers(localTopology());
    expect(servers.map(({ region }) => region.name)).toEqual(['centralus']);
    for (const { region, server } of servers) {
      if (region.login?.kind !== 'token') throw new Error('unreachable');
      const token = service(server.name);
      expect(token.command).toEqual(['npx', 'tsx', 'stack/token-server.ts']);
      const env = environment(server.name);
      expect(env).toEqual({
        TOKEN_SERVER_ADDR: `0.0.0.0:${server.port}`,
        TOKEN_SERVER_KEY_DIR: '/keys',
        TOKEN_SERVER_ISSUER: server.issuer,
        TOKEN_SERVER_SERVICE: server.service,
        TOKEN_SERVER_USERNAME: `\${${region.login.usernameEnv}:?pass --env-file stack/local.env}`,
        TOKEN_SERVER_PASSWORD: `\${${region.login.passwordEnv}:?pass --env-file stack/local.env}`,
      });
      // The key volume: written by the token server, read by the registry (its JWKS).
      const keys = (token.volumes ?? []).find((volume) => volume.endsWith(':/keys'))!.split(':')[0]!;
      expect(Object.keys(compose.volumes)).toContain(keys);
      const registryName = `registry-${region.name}`;
      expect(service(registryName).volumes).toContain(`${keys}:/keys:ro`);
      // The realm is the token server on the compose network, where Ferry's workers reach it.
      const registryEnv = environment(registryName);
      const auth = tokenAuthEnv(server, '/keys/jwks.json', `http://${server.name}:${server.port}/token`);
      expect(Object.fromEntries(Object.entries(registryEnv).filter(([variable]) => variable.startsWith('REGISTRY_AUTH_')))).toEqual(auth);
      expect((service(registryName).depends_on as Record<string, { condition: string }>)[server.name]).toEqual({ condition: 'service_healthy' });
    }
    // Every other registry asks for no token.
    for (const region of LOCAL_REGIONS.filter((candidate) => !servers.some(({ region: tokenRegion }) => tokenRegion.name === candidate.name))) {
      expect(Object.keys(environment(`registry-${region.name}`)).filter((variable) => variable.startsWith('REGISTRY_AUTH_')), region.name).toEqual([]);
    }
  });

  it('overrides every placeholder of stack/registry.yml.tmpl in each registry', () => {
    const placeholders = templatePlaceholderVariables(parse(read('stack/registry.yml.tmpl')));
    expect(placeholders.length).toBeGreaterThan(0);
    for (const region of LOCAL_REGIONS) {
      const overridden = Object.keys(environment(`registry-${region.name}`));
      for (const variable of placeholders) {
        // An override of a whole map (e.g. endpoint headers) covers every value inside it.
        const covered = overridden.some((name) => variable === name || variable.startsWith(`${name}_`));
        expect(covered, `registry-${region.name} sets ${variable}`).toBe(true);
      }
    }
  });

  it("runs the api, a control worker and one worker per region queue, each with only the secrets its role uses", () => {
    const local = localEnv();
    // What compose substitutes for ${NAME:?...} from --env-file stack/local.env.
    const given = (name: string) =>
      Object.fromEntries(Object.entries(environment(name)).map(([variable, value]) => [variable, value.replace(/^\$\{([A-Z0-9_]+):\?[^}]*\}$/, (_, from: string) => local[from] ?? '')]));
    const config = JSON.parse(compose.configs['ferry-config']!.content);
    const api = given('ferry-api');
    expect(Object.keys(api).filter((variable) => /^FERRY_(S3|REGISTRY)_/.test(variable))).toEqual([]);
    expect(resolveConfig(config, api, { role: 'api' }).auth.tokens.map((token) => token.name)).toEqual([...LOCAL_REGIONS.map((region) => `ingest-${region.name}`), 'reader', 'admin']);

    const workers = ['control', ...LOCAL_REGIONS.map((region) => region.name)];
    for (const worker of workers) {
      const env = given(`ferry-worker-${worker}`);
      expect(Object.keys(env).filter((variable) => /TOKEN_|READ_TOKEN|ADMIN_TOKEN/.test(variable)), worker).toEqual([]);
      // The queues each polls come from FERRY_WORKER_QUEUES, as loadConfig reads them.
      const queues = env.FERRY_WORKER_QUEUES!.split(',');
      expect(queues, worker).toEqual([worker === 'control' ? 'ferry-control' : `ferry-region-${worker}`]);
      const resolved = resolveConfig({ ...config, worker: { ...config.worker, queues } }, env, { role: 'worker' });
      // Every region is a source of every other here, so each worker reads every region's storage, and
      // logs in at each registry-API region's registry (its only way in).
      expect(resolved.regions.filter((region) => region.s3 !== null).every((region) => region.s3!.credentials !== null), worker).toBe(true);
      const apiRegions = resolved.regions.filter((region) => region.s3 === null);
      expect(apiRegions.map((region) => region.name)).toEqual(['centralus']);
      for (const region of apiRegions) {
        const auth = LOCAL_REGIONS.find(({ name }) => name === region.name)!.registryAuth!;
        expect(region.registryCredentials, `${worker} at ${region.name}`).toEqual({ username: local[auth.usernameEnv], password: local[auth.passwordEnv] });
      }
      expect(resolved.nats.token).toBe(local.FERRY_NATS_TOKEN);
      expect(decodeURIComponent(new URL(resolved.postgresUrl).password)).toBe(local.FERRY_POSTGRES_PASSWORD);
    }
    expect(service('nats').command).toContain('${FERRY_NATS_TOKEN:?pass --env-file stack/local.env}');
    expect(environment('postgres').POSTGRES_PASSWORD).toBe('${FERRY_POSTGRES_PASSWORD:?pass --env-file stack/local.env}');
  });

  it("takes PURGE at each region's cache from that region's worker only", () => {
    const addressOf = (name: string) => (service(name) as { networks?: { default?: { ipv4_address?: string } } }).networks?.default?.ipv4_address;
    const command = service('varnish-eastus').command!.join(' ');
    expect(command).toContain('{{PURGERS}}|\\"127.0.0.1\\"; \\"$$PURGER\\";|');
    const addresses = new Set<string>();
    for (const region of LOCAL_REGIONS) {
      const address = addressOf(`ferry-worker-${region.name}`);
      expect(address, region.name).toMatch(/^172\.30\.0\.\d+$/);
      expect(environment(`varnish-${region.name}`).PURGER, region.name).toBe(address);
      addresses.add(address!);
    }
    expect(addresses.size, 'one address per worker').toBe(LOCAL_REGIONS.length);
    expect(addresses.has(addressOf('ferry-worker-control')!)).toBe(false);
  });

  it('registers the search attributes declared in the workflow contract', () => {
    const registered = environment('temporal-setup').FERRY_SEARCH_ATTRIBUTES?.split(/\s+/);
    expect(registered).toEqual(searchAttributeFlags());
  });
});

/** Every top-level folder a file reaches through relative imports, starting from `entries`. */
function foldersImportedFrom(entries: string[]): Set<string> {
  const root = new URL('../../', import.meta.url);
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const [, specifier] of readFileSync(new URL(file, root), 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.\.?\/[^']+)'/g)) {
      const resolved = new URL(specifier!, new URL(file, root)).pathname.slice(root.pathname.length);
      queue.push(resolved.endsWith('.ts') || resolved.endsWith('.sql') ? resolved : `${resolved}.ts`);
    }
  }
  return new Set([...seen].map((file) => file.split('/')[0]!));
}

describe('the Ferry image of docker-compose.yml', () => {
  const dockerfile = (compose as unknown as { 'x-ferry': { build: { dockerfile_inline: string } } })['x-ferry'].build.dockerfile_inline;
  const copied = new Set([...dockerfile.matchAll(/^COPY (\S+) \S+$/gm)].map((match) => match[1]!));

  it('copies every folder the api and the worker import', () => {
    const needed = foldersImportedFrom(['api/main.ts', 'workers/main.ts', 'workers/bundle.ts', 'workflows/index.ts']);
    expect([...needed].filter((folder) => !copied.has(folder))).toEqual([]);
  });

  it('builds the workflow bundle once, into the image', () => {
    expect(dockerfile).toMatch(/^RUN npm run build:workflows$/m);
  });
});
