// docker-compose.yml is the same topology as the local stack (stack/topology.ts):
// same services and host ports, registries notifying Ferry's api, and Temporal
// knowing the search attributes that workflow code sets.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, LOCAL_REGIONS, resolveConfig } from '../../domain/config';
import { searchAttributeFlags } from '../../domain/workflow-contract';
import { localTopology } from '../../stack/topology';
import { localEnv } from '../../support/local-env';

interface ComposeService {
  ports?: string[];
  environment?: Record<string, string>;
  command?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  configs: Record<string, { content: string }>;
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
    const shape = (regions: readonly { name: string; s3: { bucket: string; accessKeyIdEnv: string; secretAccessKeyEnv: string } }[]) =>
      regions.map(({ name, s3 }) => ({ name, bucket: s3.bucket, keys: [s3.accessKeyIdEnv, s3.secretAccessKeyEnv] }));
    expect(shape(composeConfig.regions)).toEqual(shape(LOCAL_REGIONS));
    const { regions } = localTopology();
    for (const region of composeConfig.regions) {
      const local = regions.find(({ name }) => name === region.name)!;
      expect(region.s3.endpoint).toBe(`http://${local.s3.name}:9000`);
      expect(region.registryUrl).toBe(`http://registry-${region.name}:5000`);
      expect(region.cachePurgeUrls).toEqual([`http://varnish-${region.name}:6081`]);
    }
  });

  it("makes each registry serve its region's bucket and notify the api at its region's path", () => {
    for (const region of composeConfig.regions) {
      const env = environment(`registry-${region.name}`);
      expect(env.REGISTRY_STORAGE_S3_REGIONENDPOINT).toBe(region.s3.endpoint);
      expect(env.REGISTRY_STORAGE_S3_BUCKET).toBe(region.s3.bucket);
      expect(env.REGISTRY_STORAGE_S3_ACCESSKEY).toMatch(new RegExp(`^\\$\\{${region.s3.accessKeyIdEnv}:`));
      expect(env.REGISTRY_STORAGE_S3_SECRETKEY).toMatch(new RegExp(`^\\$\\{${region.s3.secretAccessKeyEnv}:`));
      expect(env.REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL).toBe(
        `http://ferry-api:${defaults.ingest.port}/v1/notifications/distribution/${region.name}`,
      );
      // Each registry sends its own region's ingest token, the one Ferry's config names for that region.
      expect(region.ingestTokenEnv).toBe(LOCAL_REGIONS.find(({ name }) => name === region.name)!.ingestTokenEnv);
      expect(env.REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS).toMatch(new RegExp(`^\\{Authorization: \\[Bearer \\$\\{${region.ingestTokenEnv}:`));
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
    expect(resolveConfig(config, api, { role: 'api' }).auth.tokens.map((token) => token.name)).toEqual(['ingest-eastus', 'ingest-westeurope', 'ingest-southeastasia', 'reader', 'admin']);

    const workers = ['control', ...LOCAL_REGIONS.map((region) => region.name)];
    for (const worker of workers) {
      const env = given(`ferry-worker-${worker}`);
      expect(Object.keys(env).filter((variable) => /TOKEN_|READ_TOKEN|ADMIN_TOKEN/.test(variable)), worker).toEqual([]);
      // The queues each polls come from FERRY_WORKER_QUEUES, as loadConfig reads them.
      const queues = env.FERRY_WORKER_QUEUES!.split(',');
      expect(queues, worker).toEqual([worker === 'control' ? 'ferry-control' : `ferry-region-${worker}`]);
      const resolved = resolveConfig({ ...config, worker: { ...config.worker, queues } }, env, { role: 'worker' });
      // Every region is a source of every other here, so each worker reads every region's storage.
      expect(resolved.regions.every((region) => region.s3.credentials !== null), worker).toBe(true);
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
