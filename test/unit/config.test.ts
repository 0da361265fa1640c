import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { natsConnectOptions } from '../../activities/announce';
import { ConfigError, configSchema, copyMethod, isRegistryApiRegion, loadConfig, LOCAL_REGIONS, receivesFrom, resolveConfig, sharesStorageEndpoint, temporalConnectOptions } from '../../domain/config';

const env = {
  FERRY_S3_A_ACCESS_KEY_ID: 'a',
  FERRY_S3_A_SECRET_ACCESS_KEY: 'a-secret',
  FERRY_S3_B_ACCESS_KEY_ID: 'b',
  FERRY_S3_B_SECRET_ACCESS_KEY: 'b-secret',
  FERRY_INGEST_TOKEN_EASTUS: 'ingest-eastus-secret',
  FERRY_INGEST_TOKEN_WESTEUROPE: 'ingest-westeurope-secret',
  FERRY_INGEST_TOKEN_SOUTHEASTASIA: 'ingest-southeastasia-secret',
  FERRY_READ_TOKEN: 'read-secret',
  FERRY_ADMIN_TOKEN: 'admin-secret',
  FERRY_REGISTRY_SOUTHEASTASIA_USERNAME: 'puller',
  FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD: 'pull-secret',
  FERRY_INGEST_TOKEN_CENTRALUS: 'ingest-centralus-secret',
  FERRY_REGISTRY_CENTRALUS_USERNAME: 'replicator',
  FERRY_REGISTRY_CENTRALUS_PASSWORD: 'replicator-secret',
};

function problemsOf(input: unknown, environment: Record<string, string> = env, files: Record<string, string> = {}): string[] {
  try {
    resolveConfig(input, environment, {
      readFile: (path) => {
        if (files[path] === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
        return files[path];
      },
    });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration', () => {
  it('defaults to the local four-region stack, with secrets from the environment', () => {
    const config = resolveConfig({}, env);
    expect(config.regions.map((region) => region.name)).toEqual(['eastus', 'westeurope', 'southeastasia', 'centralus']);
    expect(config.regions[2]!.s3!.credentials).toEqual({ accessKeyId: 'b', secretAccessKey: 'b-secret' });
    // centralus is reached through its registry's API only: no bucket, and its login.
    expect([config.regions[3]!.s3, config.regions[3]!.registryCredentials]).toEqual([null, { username: 'replicator', password: 'replicator-secret' }]);
    // Each region's registry has its own ingest token; a reader and an admin token complete the local set.
    expect(config.auth.tokens).toEqual([
      { name: 'ingest-eastus', secret: 'ingest-eastus-secret', scopes: [{ kind: 'ingest', region: 'eastus' }] },
      { name: 'ingest-westeurope', secret: 'ingest-westeurope-secret', scopes: [{ kind: 'ingest', region: 'westeurope' }] },
      { name: 'ingest-southeastasia', secret: 'ingest-southeastasia-secret', scopes: [{ kind: 'ingest', region: 'southeastasia' }] },
      { name: 'ingest-centralus', secret: 'ingest-centralus-secret', scopes: [{ kind: 'ingest', region: 'centralus' }] },
      { name: 'reader', secret: 'read-secret', scopes: [{ kind: 'read', prefix: '*' }] },
      { name: 'admin', secret: 'admin-secret', scopes: [{ kind: 'admin' }] },
    ]);
    expect(config.temporal.address).toBe('127.0.0.1:7233');
    // southeastasia's and centralus's registries ask for a login; its credentials come from the variables it names.
    expect(config.regions.map((region) => region.registryCredentials)).toEqual([null, null, { username: 'puller', password: 'pull-secret' }, { username: 'replicator', password: 'replicator-secret' }]);
  });

  it('takes a region with no s3 as a registry-API region: streamed to and from, its login needed wherever it is read', () => {
    const [eastus, , , centralus] = resolveConfig({}, env).regions;
    expect([isRegistryApiRegion(centralus!), isRegistryApiRegion(eastus!)]).toEqual([true, false]);
    expect([copyMethod(eastus!, centralus!), copyMethod(centralus!, eastus!)]).toEqual(['streamed', 'streamed']);
    // eastus's worker reads centralus (a source) through its registry: centralus's login, and no storage keys for it.
    const worker = loadConfig({ ...env, FERRY_WORKER_QUEUES: 'ferry-region-eastus' }, 'worker');
    expect(worker.regions.map((region) => [region.name, region.s3?.credentials !== null && region.s3 !== null, region.registryCredentials?.username ?? null])).toEqual([
      ['eastus', true, null],
      ['westeurope', true, null],
      ['southeastasia', true, null],
      ['centralus', false, 'replicator'],
    ]);
    expect(() => loadConfig({ ...envWithout('FERRY_REGISTRY_CENTRALUS_'), FERRY_WORKER_QUEUES: 'ferry-region-eastus' }, 'worker')).toThrow(/FERRY_REGISTRY_CENTRALUS_USERNAME is not set/);
  });

  it('lets eastus and westeurope copy server-side, and southeastasia only by streaming', () => {
    const [eastus, westeurope, southeastasia] = resolveConfig({}, env).regions;
    expect(sharesStorageEndpoint(eastus!, westeurope!)).toBe(true);
    expect(sharesStorageEndpoint(eastus!, southeastasia!)).toBe(false);
  });

  it('names the field and the problem of a bad value', () => {
    const regions = structuredClone(LOCAL_REGIONS);
    if ('s3' in regions[1]!) regions[1].s3.endpoint = 'ftp://nowhere';
    regions[2]!.name = 'Bad Name';
    expect(problemsOf({ regions, ingest: { port: 70000 } })).toEqual([
      'regions.1.s3.endpoint: must be an http(s) URL',
      'regions.2.name: must be lowercase letters, digits and dashes, starting with a letter',
      'ingest.port: Too big: expected number to be <=65535',
    ]);
  });

  it("leaves the workflow cache to the SDK unless set, and refuses one the SDK would not take", () => {
    expect(configSchema.parse({}).worker.maxCachedWorkflows).toBeUndefined();
    expect(configSchema.parse({ worker: { maxCachedWorkflows: 1000 } }).worker.maxCachedWorkflows).toBe(1000);
    expect(problemsOf({ worker: { maxCachedWorkflows: 1 } })).toEqual(['worker.maxCachedWorkflows: Too small: expected number to be >=2']);
  });

  it('rejects duplicate region names and a single region', () => {
    expect(problemsOf({ regions: [LOCAL_REGIONS[0], LOCAL_REGIONS[0]] })).toEqual(['regions.1.name: duplicate region name "eastus"']);
    expect(problemsOf({ regions: [LOCAL_REGIONS[0]] })).toEqual(['regions: needs at least two regions to replicate between']);
  });

  it('says which environment variable is missing instead of starting without credentials', () => {
    const { FERRY_S3_B_SECRET_ACCESS_KEY: _omitted, ...partial } = env;
    expect(problemsOf({}, partial)).toEqual(['regions.2.s3.secretAccessKeyEnv: environment variable FERRY_S3_B_SECRET_ACCESS_KEY is not set']);
  });

  it('says which registry login variable is missing, and rejects a login that names no variable', () => {
    const { FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD: _omitted, ...partial } = env;
    expect(problemsOf({}, partial)).toEqual(['regions.2.registryAuth.passwordEnv: environment variable FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD is not set']);
    const regions = LOCAL_REGIONS.map((region, index) => (index === 0 ? { ...region, registryAuth: { usernameEnv: 'user name', passwordEnv: 'P' } } : region));
    expect(problemsOf({ regions })).toEqual(['regions.0.registryAuth.usernameEnv: must be an environment variable name']);
  });

  it('reads scoped tokens from the environment and from a tokens file', () => {
    const config = resolveConfig(
      { auth: { tokens: [{ name: 'ci', tokenEnv: 'CI_TOKEN', scopes: ['read:team-a/', 'metrics'] }], tokensFile: '/run/secrets/ferry-tokens.json' } },
      { ...env, CI_TOKEN: 'ci-secret-value' },
      { readFile: () => JSON.stringify([{ name: 'team-b', token: 'team-b-secret-value', scopes: ['read:team-b'] }]) },
    );
    expect(config.auth.tokens.slice(4)).toEqual([
      { name: 'ci', secret: 'ci-secret-value', scopes: [{ kind: 'read', prefix: 'team-a' }, { kind: 'metrics' }] },
      { name: 'team-b', secret: 'team-b-secret-value', scopes: [{ kind: 'read', prefix: 'team-b' }] },
    ]);
  });

  it('names every bad token: unknown scope, unknown region, bad prefix, unreadable file, shared secret, shared name', () => {
    const tokens = [
      { name: 'x', tokenEnv: 'X_TOKEN', scopes: ['write:all', 'ingest:mars', 'read:Team A'] },
      { name: 'copy', tokenEnv: 'X_TOKEN', scopes: ['read:*'] },
      { name: 'copy', tokenEnv: 'FERRY_ADMIN_TOKEN', scopes: ['admin'] },
    ];
    expect(problemsOf({ auth: { tokens, tokensFile: '/missing.json' } }, { ...env, X_TOKEN: 'x-secret' })).toEqual([
      'auth.tokens.0.scopes.0: "write:all" is not a scope: use ingest:<region>, read:<prefix>, read:*, metrics or admin',
      'auth.tokens.0.scopes.1: "ingest:mars": ingest needs a configured region (eastus, westeurope, southeastasia, centralus)',
      'auth.tokens.0.scopes.2: "read:Team A": read needs a repository prefix (team-a, team-a/app) or *',
      "auth.tokensFile /missing.json: ENOENT: no such file or directory, open '/missing.json'",
      'auth: tokens "x" and "copy" have the same secret; give each its own',
      'auth: two tokens are named "copy"',
    ]);
  });

  it('refuses a tokens file that is not a list of tokens, and a config no registry could notify', () => {
    expect(problemsOf({ auth: { tokensFile: '/t.json' } }, env, { '/t.json': '[{"name":"t","token":"short","scopes":[]}]' })).toEqual([
      'auth.tokensFile /t.json: 0.token: must be at least 16 characters',
      'auth.tokensFile /t.json: 0.scopes: give at least one scope',
    ]);
    const regions = LOCAL_REGIONS.map(({ ingestTokenEnv: _none, ...region }) => region);
    expect(problemsOf({ regions })).toEqual([
      'auth: no token may send notifications; give each region an ingestTokenEnv (scopes: ingest:eastus, ingest:westeurope, ingest:southeastasia, ingest:centralus)',
    ]);
    // The deprecated shared token still works, for every region.
    const shared = resolveConfig({ regions, ingest: { tokenEnv: 'SHARED' } }, { ...env, SHARED: 'shared-secret' });
    expect(shared.auth.tokens[0]).toEqual({ name: 'ingest-shared', secret: 'shared-secret', scopes: ['eastus', 'westeurope', 'southeastasia', 'centralus'].map((region) => ({ kind: 'ingest', region })) });
  });
});

/** The variables a process of `role` holds: env without those `without` names. */
function envWithout(...without: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !without.some((prefix) => name.startsWith(prefix))));
}

describe('least privilege: each process resolves only the secrets it uses', () => {
  it('starts the api with no storage or registry credentials, and resolves none', () => {
    const config = resolveConfig({}, envWithout('FERRY_S3_', 'FERRY_REGISTRY_'), { role: 'api' });
    expect(config.regions.map((region) => [region.s3?.credentials ?? null, region.registryCredentials])).toEqual([
      [null, null],
      [null, null],
      [null, null],
      [null, null],
    ]);
    expect(config.auth.tokens.map((token) => token.name)).toEqual(['ingest-eastus', 'ingest-westeurope', 'ingest-southeastasia', 'ingest-centralus', 'reader', 'admin']);
    // The same environment is not enough for a process that replicates.
    expect(() => resolveConfig({}, envWithout('FERRY_S3_', 'FERRY_REGISTRY_'), { role: 'all' })).toThrow(/FERRY_S3_A_ACCESS_KEY_ID is not set/);
  });

  it("gives a region worker its region's and its sources' credentials, and no api token", () => {
    const regions = LOCAL_REGIONS.map((region) => (region.name === 'westeurope' ? { ...region, sources: ['eastus'] } : region));
    // (centralus, a registry-API region, has no storage: its login is what a worker reading it needs.)
    const worker = { queues: ['ferry-region-westeurope'] };
    // Region B (southeastasia) is neither westeurope nor its source: its keys and login are not needed.
    const config = resolveConfig({ regions, worker }, envWithout('FERRY_S3_B_', 'FERRY_REGISTRY_', 'FERRY_INGEST_', 'FERRY_READ_', 'FERRY_ADMIN_'), { role: 'worker' });
    expect(config.regions.map((region) => [region.name, region.s3?.credentials?.accessKeyId ?? null])).toEqual([
      ['eastus', 'a'],
      ['westeurope', 'a'],
      ['southeastasia', null],
      ['centralus', null],
    ]);
    expect(config.auth.tokens).toEqual([]);
    // A worker on the control queue reads every region (reconcile, backfill).
    expect(() => resolveConfig({ regions, worker: { queues: ['ferry-control', 'ferry-region-westeurope'] } }, envWithout('FERRY_S3_B_'), { role: 'worker' })).toThrow(
      /regions\.2\.s3\.accessKeyIdEnv: environment variable FERRY_S3_B_ACCESS_KEY_ID is not set/,
    );
    // The CLI talks to Temporal, Postgres and the api only.
    expect(resolveConfig({}, {}, { role: 'cli' }).regions.every((region) => (region.s3?.credentials ?? null) === null)).toBe(true);
  });

  it("gives a region worker the logins of its own registries only, and takes its queues from FERRY_WORKER_QUEUES", () => {
    const folder = mkdtempSync(join(tmpdir(), 'ferry-queues-'));
    writeFileSync(join(folder, 'config.json'), '{}');
    // westeurope's worker reads southeastasia's storage (a source) but never logs in to its registry.
    const config = loadConfig({ ...envWithout('FERRY_REGISTRY_SOUTHEASTASIA_'), FERRY_CONFIG: join(folder, 'config.json'), FERRY_WORKER_QUEUES: 'ferry-region-westeurope' }, 'worker');
    expect(config.worker.queues).toEqual(['ferry-region-westeurope']);
    expect(config.regions.map((region) => [region.name, region.s3 !== null && region.s3.credentials !== null, region.registryCredentials?.username ?? null])).toEqual([
      ['eastus', true, null],
      ['westeurope', true, null],
      ['southeastasia', true, null],
      // centralus is a source reached through its registry only: its login is the way in.
      ['centralus', false, 'replicator'],
    ]);
    expect(() => loadConfig({ ...envWithout('FERRY_REGISTRY_'), FERRY_WORKER_QUEUES: 'ferry-region-southeastasia' }, 'worker')).toThrow(/FERRY_REGISTRY_SOUTHEASTASIA_USERNAME is not set/);
  });

  it('takes a worker\'s metrics ports from FERRY_WORKER_METRICS_PORTS, so several share a host, and names a bad one', () => {
    const config = loadConfig({ ...env, FERRY_WORKER_METRICS_PORTS: '9470,9471' }, 'worker');
    expect(config.worker.metrics).toMatchObject({ port: 9470, runtimePort: 9471 });
    expect(() => loadConfig({ ...env, FERRY_WORKER_METRICS_PORTS: '9470' }, 'worker')).toThrow(/FERRY_WORKER_METRICS_PORTS=9470: expected two ports/);
    expect(() => loadConfig({ ...env, FERRY_WORKER_METRICS_PORTS: 'x,9471' }, 'worker')).toThrow(/worker\.metrics\.port/);
  });

  it('keeps the repairs of one reconcile run bounded (pageSize × pagesPerRun)', () => {
    expect(resolveConfig({}, env).reconcile).toMatchObject({ pageSize: 200, pagesPerRun: 4 });
    expect(() => resolveConfig({ reconcile: { pageSize: 1000, pagesPerRun: 6 } }, env)).toThrow(/reconcile\.pagesPerRun: pageSize × pagesPerRun must be at most 5000/);
  });

  it('bounds the blob claim lease (replication.claimSeconds)', () => {
    expect(resolveConfig({}, env).replication.claimSeconds).toBe(15);
    expect(() => resolveConfig({ replication: { claimSeconds: 1 } }, env)).toThrow(/replication\.claimSeconds/);
  });

  it('replicates a push only into the regions that take its source, and checks the names', () => {
    const regions = LOCAL_REGIONS.map((region) => (region.name === 'westeurope' ? { ...region, sources: ['eastus'] } : region));
    const config = resolveConfig({ regions }, env);
    expect(config.regions.map((region) => region.sources)).toEqual([
      ['westeurope', 'southeastasia', 'centralus'],
      ['eastus'],
      ['eastus', 'westeurope', 'centralus'],
      ['eastus', 'westeurope', 'southeastasia'],
    ]);
    expect(['eastus', 'westeurope', 'southeastasia', 'centralus'].filter((target) => receivesFrom(config, target, 'southeastasia'))).toEqual(['eastus', 'centralus']);
    expect(receivesFrom(config, 'westeurope', 'eastus')).toBe(true);
    const bad = LOCAL_REGIONS.map((region) => (region.name === 'eastus' ? { ...region, sources: ['eastus', 'mars'] } : region));
    expect(problemsOf({ regions: bad })).toEqual(['regions.0.sources.0: "eastus" is not another configured region', 'regions.0.sources.1: "mars" is not another configured region']);
  });
});

describe('TLS and credentials of Temporal, NATS and Postgres', () => {
  const folder = mkdtempSync(join(tmpdir(), 'ferry-tls-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(folder, name), text);
    return join(folder, name);
  };
  const ca = file('ca.pem', 'CA PEM');
  const cert = file('client.pem', 'CLIENT PEM');
  const key = file('client.key', 'KEY PEM');

  it('connects to Temporal with mutual TLS and an API key from the environment', () => {
    const config = resolveConfig({ temporal: { address: 'ns.tmprl.cloud:7233', tls: { caFile: ca, certFile: cert, keyFile: key, serverName: 'ns.tmprl.cloud' }, apiKeyEnv: 'TEMPORAL_KEY' } }, { ...env, TEMPORAL_KEY: 'k-1' });
    const options = temporalConnectOptions(config);
    expect(options.address).toBe('ns.tmprl.cloud:7233');
    expect(options.apiKey).toBe('k-1');
    expect(options.tls?.serverNameOverride).toBe('ns.tmprl.cloud');
    expect(options.tls?.serverRootCACertificate?.toString()).toBe('CA PEM');
    expect([options.tls?.clientCertPair?.crt.toString(), options.tls?.clientCertPair?.key.toString()]).toEqual(['CLIENT PEM', 'KEY PEM']);
    // Plain by default, as the local dev server speaks.
    expect(temporalConnectOptions(resolveConfig({}, env))).toEqual({ address: '127.0.0.1:7233' });
    expect(problemsOf({ temporal: { tls: { certFile: cert } } })).toEqual(['temporal.tls: mutual TLS needs both certFile and keyFile']);
    expect(problemsOf({ temporal: { apiKeyEnv: 'TEMPORAL_KEY' } })).toEqual(['temporal.apiKeyEnv: environment variable TEMPORAL_KEY is not set']);
  });

  it('authenticates to NATS with a token or a creds file, over TLS when configured', () => {
    const withToken = natsConnectOptions(resolveConfig({ nats: { tokenEnv: 'NATS_TOKEN', tls: { caFile: ca } } }, { ...env, NATS_TOKEN: 'n-1' }));
    expect(withToken).toEqual({ servers: 'nats://127.0.0.1:4222', token: 'n-1', tls: { caFile: ca } });
    const creds = file('ferry.creds', '-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n');
    expect(natsConnectOptions(resolveConfig({ nats: { credsFile: creds } }, env)).authenticator).toBeTypeOf('function');
    expect(problemsOf({ nats: { tokenEnv: 'T', credsFile: creds } })).toEqual(['nats: give tokenEnv or credsFile, not both']);
  });

  it("puts Postgres's password from the environment into the URL, keeping sslmode", () => {
    const config = resolveConfig({ postgresUrl: 'postgres://ferry@db.internal:5432/ferry?sslmode=verify-full&sslrootcert=/ca.pem', postgresPasswordEnv: 'PGPASS' }, { ...env, PGPASS: 'p@ss/w:rd' });
    const url = new URL(config.postgresUrl);
    expect([url.username, decodeURIComponent(url.password), url.host, url.searchParams.get('sslmode'), url.searchParams.get('sslrootcert')]).toEqual(['ferry', 'p@ss/w:rd', 'db.internal:5432', 'verify-full', '/ca.pem']);
  });
});
