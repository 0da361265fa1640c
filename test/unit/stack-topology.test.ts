// The local stack's topology (stack/topology.ts): its regions' storage, logins
// and token servers, and the components in start order. The shapes of Ferry
// the local stack starts (stack/components.ts `ferry`): by default one worker
// for every queue; with `up --with-ferry --workers-per-region N` the
// production shape on one machine. Each worker is read back as it reads
// itself, through loadConfig on the environment it is given. The token server
// (stack/token-server.ts) answers in-process, on an ephemeral loopback port.
// No process is started.
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_REGIONS, loadConfig } from '../../domain/config';
import { CONTROL_TASK_QUEUE, regionTaskQueue } from '../../domain/workflow-contract';
import { ferry, isFerryProcess, registry, tokenServer } from '../../stack/components';
import { ensureSigningKey, grantedAccess, handleRequest, TOKEN_SECONDS } from '../../stack/token-server';
import { componentAddresses, FAR_REGION, localTopology, tokenServers } from '../../stack/topology';
import { localEnv } from '../../support/local-env';

const topology = localTopology();
const regions = topology.regions.map((region) => region.name);
/** The stack's environment (stack/local.env), without whatever the shell running the test holds. */
const env = localEnv();

/** Each worker of a shape, as it would configure itself. */
function workersOf(workersPerRegion?: number) {
  const [api, ...workers] = ferry(topology, env, workersPerRegion);
  expect(api!.spec.name).toBe('api');
  expect(api!.address).toBe(topology.ingestAddress);
  return workers.map(({ spec, address }) => {
    const config = loadConfig(spec.env, 'worker');
    return { name: spec.name, args: spec.args, address, queues: config.worker.queues, metrics: config.worker.metrics };
  });
}

describe("the local stack's Ferry workers", () => {
  it('are one worker polling every queue by default, metrics on :9464 and :9465', () => {
    const workers = workersOf();
    expect(workers.map((worker) => worker.name)).toEqual(['worker']);
    // No queues configured: the worker polls the control queue and every region's (workers/workers.ts).
    expect(workers[0]!.queues).toBeUndefined();
    expect(workers[0]!.metrics).toMatchObject({ port: 9464, runtimePort: 9465 });
  });

  it('with --workers-per-region 2, are a control worker and two workers per region queue, each on its own queue and metrics ports', () => {
    const workers = workersOf(2);
    expect(workers.map((worker) => worker.name)).toEqual(['worker-control', ...regions.flatMap((region) => [`worker-${region}-1`, `worker-${region}-2`])]);

    const control = workers.filter((worker) => worker.name === 'worker-control');
    expect(control.map((worker) => worker.queues)).toEqual([[CONTROL_TASK_QUEUE]]);
    for (const region of regions) {
      const own = workers.filter((worker) => worker.name.startsWith(`worker-${region}-`));
      expect(own.map((worker) => worker.queues), region).toEqual([[regionTaskQueue(region)], [regionTaskQueue(region)]]);
    }
    // Every queue is served, and no worker polls more than one.
    expect(new Set(workers.flatMap((worker) => worker.queues ?? []))).toEqual(new Set([CONTROL_TASK_QUEUE, ...regions.map(regionTaskQueue)]));

    const ports = workers.flatMap((worker) => [worker.metrics.port, worker.metrics.runtimePort]);
    expect(new Set(ports).size, 'metrics ports shared by two workers').toBe(ports.length);
    expect(ports).not.toContain(Number(topology.ingestAddress.split(':')[1]));
    expect(Math.min(...ports)).toBe(9464);

    // They run the same entry point as the single worker, answer on no address, and `stack stop-ferry` stops them.
    const [single] = workersOf();
    for (const worker of workers) {
      expect(worker.args, worker.name).toEqual(single!.args);
      expect(worker.address, worker.name).toBeNull();
      expect(isFerryProcess(worker.name), worker.name).toBe(true);
    }
  });

  it('with --workers-per-region 1, still split the queues: a control worker and one worker per region', () => {
    const workers = workersOf(1);
    expect(workers.map((worker) => [worker.name, worker.queues])).toEqual([
      ['worker-control', [CONTROL_TASK_QUEUE]],
      ...regions.map((region) => [`worker-${region}-1`, [regionTaskQueue(region)]]),
    ]);
  });
});

describe("the local stack's topology", () => {
  const byName = Object.fromEntries(topology.regions.map((region) => [region.name, region]));

  it('has every region of LOCAL_REGIONS, each with its registry and cache', () => {
    expect(topology.regions.map((region) => [region.name, region.registryPort, region.cachePort])).toEqual(
      LOCAL_REGIONS.map((region) => [region.name, Number(new URL(region.registryUrl).port), Number(new URL(region.cachePurgeUrls[0]!).port)]),
    );
  });

  it('puts the far region, found by name, behind toxiproxy, and no other', () => {
    const far = byName[FAR_REGION]!;
    expect(far.s3.proxied).toBe(true);
    expect(far.s3.serverPort).not.toBe(far.s3.port);
    expect(topology.faultProxy.proxies).toEqual([{ name: far.s3.name, listen: `127.0.0.1:${far.s3.port}`, upstream: `127.0.0.1:${far.s3.serverPort}` }]);
    for (const region of topology.regions.filter((candidate) => candidate.s3.name !== far.s3.name)) expect(region.s3.proxied, region.name).toBe(false);
  });

  it("stores a registry-API region's registry in a bucket of its own on eastus's endpoint, which Ferry's config does not name", () => {
    const centralus = byName.centralus!;
    expect(centralus.storageKnownToFerry).toBe(false);
    expect(centralus.s3).toBe(byName.eastus!.s3);
    expect(centralus.s3).toMatchObject({ port: 9000, accessKeyIdEnv: 'FERRY_S3_A_ACCESS_KEY_ID', secretAccessKeyEnv: 'FERRY_S3_A_SECRET_ACCESS_KEY' });
    expect(centralus.bucket).toBe('region-centralus');
    expect(loadConfig(env).regions.find((region) => region.name === 'centralus')!.s3).toBeNull();
    for (const region of topology.regions.filter((candidate) => candidate.name !== 'centralus')) expect(region.storageKnownToFerry, region.name).toBe(true);
    // No two registries share a bucket on one endpoint.
    const buckets = topology.regions.map((region) => `${region.s3.name}/${region.bucket}`);
    expect(new Set(buckets).size).toBe(buckets.length);
  });

  it('logs in at southeastasia with Basic (htpasswd), at centralus with tokens from its token server on 127.0.0.1:5014, and nowhere else', () => {
    expect(topology.regions.map((region) => [region.name, region.login?.kind ?? null])).toEqual([
      ['eastus', null],
      ['westeurope', null],
      ['southeastasia', 'basic'],
      ['centralus', 'token'],
    ]);
    expect(byName.centralus!.login).toEqual({
      kind: 'token',
      usernameEnv: 'FERRY_REGISTRY_CENTRALUS_USERNAME',
      passwordEnv: 'FERRY_REGISTRY_CENTRALUS_PASSWORD',
      tokenServer: { name: 'token-centralus', port: 5014, realm: 'http://127.0.0.1:5014/token', service: 'registry-centralus', issuer: 'ferry-local-token-centralus' },
    });
  });

  it('starts each token server before the registries, and gives every component its own address', () => {
    const components = componentAddresses(topology);
    const names = components.map(([name]) => name);
    for (const { server } of tokenServers(topology)) {
      expect(names.indexOf(server.name), server.name).toBeGreaterThan(names.indexOf('toxiproxy'));
      expect(names.indexOf(server.name), server.name).toBeLessThan(names.findIndex((name) => name.startsWith('registry-')));
    }
    expect(names).toContain('token-centralus');
    for (const region of topology.regions) expect(names).toEqual(expect.arrayContaining([`registry-${region.name}`, `varnish-${region.name}`]));
    const addresses = components.flatMap(([, address]) => (address === null ? [] : [address]));
    expect(new Set(addresses).size, 'two components on one address').toBe(addresses.length);
    // Nor on a Varnish admin port (cache port + 10) or a proxied S3 endpoint.
    const taken = new Set(addresses.map((address) => Number(address.split(':')[1])));
    for (const region of topology.regions) expect(taken.has(region.cachePort + 10), region.name).toBe(false);
    for (const proxy of topology.faultProxy.proxies) expect(taken.has(Number(proxy.listen.split(':')[1])), proxy.name).toBe(false);
  });

  it("runs the token server on loopback with the region's login, and makes the registry trust its key for its service", () => {
    const centralus = byName.centralus!;
    const server = tokenServer(centralus, env);
    expect(server.address).toBe('127.0.0.1:5014');
    expect(server.spec.args).toEqual(['--import', 'tsx', 'stack/token-server.ts']);
    expect(server.spec.env).toMatchObject({
      TOKEN_SERVER_ADDR: '127.0.0.1:5014',
      TOKEN_SERVER_ISSUER: 'ferry-local-token-centralus',
      TOKEN_SERVER_SERVICE: 'registry-centralus',
      TOKEN_SERVER_USERNAME: env.FERRY_REGISTRY_CENTRALUS_USERNAME,
      TOKEN_SERVER_PASSWORD: env.FERRY_REGISTRY_CENTRALUS_PASSWORD,
    });
    // Rendering the registry's config writes only under .stack/conf (its config, and the token server's key if missing).
    const registryEnv = registry(topology, centralus, env).spec.env;
    expect(registryEnv).toMatchObject({
      REGISTRY_AUTH_TOKEN_REALM: 'http://127.0.0.1:5014/token',
      REGISTRY_AUTH_TOKEN_SERVICE: 'registry-centralus',
      REGISTRY_AUTH_TOKEN_ISSUER: 'ferry-local-token-centralus',
      REGISTRY_AUTH_TOKEN_JWKS: `${server.spec.env.TOKEN_SERVER_KEY_DIR}/jwks.json`,
      REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS: '[RS256]',
    });
    expect(Object.keys(registryEnv).filter((variable) => variable.startsWith('REGISTRY_AUTH_HTPASSWD'))).toEqual([]);
  });
});

describe('the token server', () => {
  const USER = 'ferry-replicator';
  const PASSWORD = 'a-password';
  let dir: string;
  let server: Server;
  let base: string;
  let jwks: { keys: (JsonWebKey & { kid: string; alg: string })[] };

  beforeAll(async () => {
    dir = mkdtempSync(`${tmpdir()}/ferry-token-`);
    const key = ensureSigningKey(dir);
    jwks = JSON.parse(readFileSync(key.jwksPath, 'utf8'));
    const options = { key, issuer: 'test-issuer', service: 'registry-test', username: USER, password: PASSWORD };
    server = createServer((request, response) => handleRequest(request, response, options));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

  it('keeps its key across starts, and publishes it as a JWKS keyed by its thumbprint', () => {
    const again = ensureSigningKey(dir);
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', kid: again.kid, alg: 'RS256', use: 'sig' });
    expect(jwks.keys[0]!.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('answers 401 with a Basic challenge to no login, a wrong password or a wrong user', async () => {
    for (const headers of [{}, basic(USER, 'wrong'), basic('someone', PASSWORD)]) {
      const response = await fetch(`${base}/token?service=registry-test&scope=repository:it/probe:pull`, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Basic realm="test-issuer"');
    }
  });

  it('grants every requested action on each requested scope, in a JWT the registry can verify', async () => {
    const scopes = ['repository:it/probe:pull,push', 'repository:it/probe:delete', 'repository:localhost:5000/other:*', 'registry:catalog:*', 'repository:it/probe:bogus'];
    const query = new URLSearchParams([['service', 'registry-test'], ...scopes.map((scope): [string, string] => ['scope', scope])]);
    const before = Math.floor(Date.now() / 1000);
    const response = await fetch(`${base}/token?${query}`, { headers: basic(USER, PASSWORD) });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(TOKEN_SECONDS);
    expect(Date.parse(body.issued_at)).toBeGreaterThanOrEqual(before * 1000);

    const [header, payload, signature] = body.token.split('.') as [string, string, string];
    const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    expect(decode(header)).toEqual({ typ: 'JWT', alg: 'RS256', kid: jwks.keys[0]!.kid });
    const publicKey = createPublicKey({ key: jwks.keys[0]!, format: 'jwk' });
    expect(verify('sha256', Buffer.from(`${header}.${payload}`), publicKey, Buffer.from(signature, 'base64url'))).toBe(true);

    const claims = decode(payload);
    expect(claims).toMatchObject({ iss: 'test-issuer', sub: USER, aud: 'registry-test' });
    expect(claims.exp - claims.iat).toBe(TOKEN_SECONDS);
    expect(claims.nbf).toBe(claims.iat);
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    expect(claims.jti).toEqual(expect.any(String));
    expect(claims.access).toEqual([
      { type: 'repository', name: 'it/probe', actions: ['pull', 'push', 'delete'] },
      { type: 'repository', name: 'localhost:5000/other', actions: ['*'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('refuses tokens for another service', async () => {
    const response = await fetch(`${base}/token?service=elsewhere&scope=repository:it/probe:pull`, { headers: basic(USER, PASSWORD) });
    expect(response.status).toBe(400);
  });

  it('reads scopes separated by spaces, and leaves out malformed ones', () => {
    expect(grantedAccess(['repository:a:pull repository:b:push', 'repository(plugin):c:pull', 'nonsense', 'repository::pull', 'blob:x:pull'])).toEqual([
      { type: 'repository', name: 'a', actions: ['pull'] },
      { type: 'repository', name: 'b', actions: ['push'] },
      { type: 'repository', name: 'c', actions: ['pull'] },
    ]);
  });
});
